"""Real browser: headless Debian Chromium driven by Playwright against `streamlit run`.

Skips with a reason when no Chromium is installed, except in CI (CRO_REQUIRE_BROWSER=1), where a
missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from analytics.evaluation.app_server import app_server, free_port
from analytics.frame.pages import PAGES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("CRO_REQUIRE_BROWSER") == "1"
IDLE_TIMEOUT_MS = 60_000

if CHROMIUM is None:
    if REQUIRED:
        raise RuntimeError("CRO_REQUIRE_BROWSER=1 but no chromium binary is installed (apt-get install chromium)")
    pytest.skip("no chromium binary found (install Debian's `chromium` to run browser tests)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

# A grid or chart can take seconds to draw after the run ends when the machine is busy (the browser
# tests failed at load 10-17 with Playwright's 5 s default); a waited-for element that never comes
# still fails.
expect.set_options(timeout=20_000)



@contextmanager
def streamlit_server(db: Path, user: str, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                     port: int | None = None) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port as ``user`` (``env`` and ``args`` added); yields the base URL."""
    with app_server(db, user, env=env, args=args, port=port) as (url, _):
        yield url


@pytest.fixture(scope="module")
def server(demo_db: Path) -> Iterator[str]:
    with streamlit_server(demo_db, "admin") as url:  # admin may open every page
        yield url


@pytest.fixture(scope="module")
def browser_page(server: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


IDLE_CHECK = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app && app.getAttribute('data-test-script-state') === 'notRunning'
        && !document.querySelector('[data-testid="stSkeleton"]');
}"""


def _wait_idle(page: Page) -> None:
    """Until the script has finished and no skeleton placeholders remain, and still so half a second
    later: the frame's own rerun (a link's parameters normalized) starts just after the first run
    ends, and a loaded machine widens that gap enough to catch it."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=IDLE_TIMEOUT_MS)
    for _ in range(20):
        page.wait_for_function(IDLE_CHECK, timeout=IDLE_TIMEOUT_MS)
        page.wait_for_timeout(500)
        if page.evaluate(IDLE_CHECK):
            return
    raise AssertionError("the app kept starting new runs for 20 checks")


@pytest.mark.parametrize("spec", PAGES, ids=lambda p: p.key)
def test_every_page_renders_its_charts_without_errors(browser_page: Page, server: str, spec) -> None:
    browser_page.goto(f"{server}/{spec.url_path}")
    _wait_idle(browser_page)
    expect(browser_page.get_by_test_id("stException")).to_have_count(0)
    expect(browser_page.locator('[data-testid="stAlertContentError"]')).to_have_count(0)
    expect(browser_page.get_by_test_id("stHeading").first).to_be_visible()
    charts = browser_page.get_by_test_id("stPlotlyChart")
    if spec.has_charts:
        expect(charts.first).to_be_visible(timeout=IDLE_TIMEOUT_MS)
    # Plotly has drawn at least one trace into every chart container.
    for i in range(charts.count()):
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached(timeout=IDLE_TIMEOUT_MS)


def test_deep_link_opens_the_filtered_view(browser_page: Page, server: str) -> None:
    browser_page.goto(f"{server}/?study=ST001&study=ST005")
    _wait_idle(browser_page)
    study_filter = browser_page.get_by_test_id("stMultiSelect").filter(has_text="Study")
    expect(study_filter).to_contain_text("ST001")
    expect(study_filter).to_contain_text("ST005")
    expect(browser_page.get_by_test_id("stMetricValue").first).to_have_text("2")
    assert "study=ST001" in browser_page.url and "study=ST005" in browser_page.url


def test_foreign_or_unknown_study_in_a_link_is_a_friendly_warning(browser_page: Page, server: str) -> None:
    browser_page.goto(f"{server}/?study=ST999")
    _wait_idle(browser_page)
    expect(browser_page.get_by_test_id("stAlertContentWarning")).to_contain_text("Study 'ST999' is not available")
    expect(browser_page.get_by_test_id("stException")).to_have_count(0)


FIRST_REQUESTS = [("cra_demo", "data", False)] + [("admin", p.url_path, True) for p in PAGES]


@pytest.mark.parametrize(("user", "url_path", "allowed"), FIRST_REQUESTS, ids=[f"{u}-{p}" for u, p, _ in FIRST_REQUESTS])
def test_deep_link_as_first_request_goes_through_the_frame(browser_page: Page, demo_db: Path, user, url_path,
                                                           allowed) -> None:
    # A fresh server: Streamlit's legacy pages-directory mode is active until the frame has run once.
    spec = next(p for p in PAGES if p.url_path == url_path)
    with streamlit_server(demo_db, user) as url:
        browser_page.goto(f"{url}/{url_path}")
        _wait_idle(browser_page)
        expect(browser_page.get_by_text("Signed in as")).to_be_visible()  # the frame ran
        heading = browser_page.get_by_role("heading", name=spec.title if spec.key != "rbm" else "RBM heatmap")
        if allowed:
            expect(heading.first).to_be_visible()
            expect(browser_page.get_by_text("Page not found")).to_have_count(0)
        else:
            expect(browser_page.get_by_role("heading", name="Data", exact=True)).to_have_count(0)


def _busiest_site(demo_db: Path) -> str:
    from analytics.core import warehouse

    with warehouse.inspect(demo_db) as con:
        return con.execute("SELECT study_site_id FROM main.subjects GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
                           ).fetchone()[0]


def _share_link(page: Page) -> str:
    caption = page.get_by_test_id("stCaptionContainer").filter(has_text="Link to this view")
    expect(caption).to_have_count(1, timeout=IDLE_TIMEOUT_MS)
    return caption.locator("code").inner_text()


def _query(page: Page) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(page.url).query)


def test_overview_path_opens_the_overview(browser_page: Page, server: str) -> None:
    browser_page.goto(f"{server}/overview")
    _wait_idle(browser_page)
    expect(browser_page.get_by_role("heading", name="Portfolio overview")).to_be_visible()
    expect(browser_page.get_by_text("Page not found")).to_have_count(0)


def test_heatmap_drill_down_link_opens_the_site_view(browser_page: Page, server: str, demo_db: Path) -> None:
    busiest = _busiest_site(demo_db)
    browser_page.goto(f"{server}/rbm_heatmap?focus={busiest}&kri=ae_rate")
    _wait_idle(browser_page)
    expect(browser_page.get_by_test_id("stException")).to_have_count(0)
    expect(browser_page.get_by_test_id("stPlotlyChart")).to_have_count(3, timeout=IDLE_TIMEOUT_MS)
    assert _query(browser_page)["focus"] == [busiest]
    assert f"focus={busiest}" in _share_link(browser_page)


def test_changing_the_drill_down_site_three_times_shows_each_choice(browser_page: Page, server: str) -> None:
    browser_page.goto(f"{server}/rbm_heatmap")
    _wait_idle(browser_page)
    site_box = browser_page.get_by_test_id("stSelectbox").filter(has_text="Site")
    seen = []
    combobox = site_box.get_by_role("combobox")
    previous = combobox.input_value()
    for steps in (1, 4, 2):
        combobox.click()
        for _ in range(steps):
            browser_page.keyboard.press("ArrowDown")
        browser_page.keyboard.press("Enter")
        expect(combobox).not_to_have_value(previous, timeout=IDLE_TIMEOUT_MS)
        label = previous = combobox.input_value()
        number = re.search(r"site (\S+)\)$", label).group(1)
        browser_page.wait_for_url(re.compile(rf"focus=[^&]*-{re.escape(number)}(&|$)"), timeout=IDLE_TIMEOUT_MS)
        _wait_idle(browser_page)
        expect(browser_page.get_by_test_id("stPlotlyChart")).to_have_count(3, timeout=IDLE_TIMEOUT_MS)
        focus = _query(browser_page)["focus"][0]
        share = browser_page.get_by_test_id("stCaptionContainer").filter(has_text="Link to this view")
        expect(share).to_contain_text(f"focus={focus}", timeout=IDLE_TIMEOUT_MS)  # the page shows that site
        seen.append(label)
    assert len(set(seen)) == 3


def test_the_share_link_opens_the_same_view_in_a_fresh_browser(browser_page: Page, server: str, demo_db: Path) -> None:
    busiest = _busiest_site(demo_db)
    study = busiest.split("-")[0]
    browser_page.goto(f"{server}/rbm_heatmap?study={study}&method=funnel&focus={busiest}&kri=sae_rate")
    _wait_idle(browser_page)
    link = _share_link(browser_page)
    expected = {k: v for k, v in _query(browser_page).items()}
    fresh = browser_page.context.browser.new_context(viewport={"width": 1440, "height": 900})  # no shared state
    page = fresh.new_page()
    page.goto(link if link.startswith("http") else f"{server}{link}")
    _wait_idle(page)
    assert _query(page) == expected
    assert expected["method"] == ["funnel"] and expected["kri"] == ["sae_rate"] and expected["study"] == [study]
    expect(page.get_by_test_id("stSelectbox").filter(has_text="KRI").get_by_role("combobox")).to_have_value("SAE rate")
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(3, timeout=IDLE_TIMEOUT_MS)
    assert _share_link(page) == link
    fresh.close()


def test_clicking_a_red_heatmap_cell_opens_its_drill_down(browser_page: Page, server: str, demo_db: Path) -> None:
    from analytics.core.scope import AccessScope, NO_FILTER
    from analytics.core.warehouse import Warehouse
    from analytics.kri import service

    cells, _ = service.kri_tables(Warehouse.open(demo_db), AccessScope.full_access(), NO_FILTER, "calibrated")
    red = {(r.study_site_id, r.kri) for r in cells[cells["flag"] == 2].itertuples()}
    assert red, "the demo portfolio has red cells"
    browser_page.goto(f"{server}/rbm_heatmap")
    _wait_idle(browser_page)
    heatmap = browser_page.get_by_test_id("stPlotlyChart").first
    red_trace = heatmap.locator(".scatterlayer .trace").first  # legend order: red first
    red_trace.locator("path.point").first.click(force=True)
    _wait_idle(browser_page)
    expect(browser_page.get_by_test_id("stPlotlyChart")).to_have_count(3, timeout=IDLE_TIMEOUT_MS)
    query = _query(browser_page)
    assert (query["focus"][0], query.get("kri", ["ae_rate"])[0]) in red  # the default KRI is not spelled out
