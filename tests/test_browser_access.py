"""Real browser, real sign-in: OIDC against a small OpenID provider on loopback, the trusted header of an
SSO proxy, and presentation mode (the back button and a second tab included).

Skips without Chromium like the other browser tests (fails in CI, CRO_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.evaluation.app_server import free_port
from tests.sso_proxy import sign_in_proxy
from tests.test_browser import CHROMIUM, IDLE_TIMEOUT_MS, _wait_idle, streamlit_server

from analytics.core import warehouse  # noqa: E402
from analytics.frame import access  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402
from tests.oidc_provider import OpenIDProvider  # noqa: E402

LEAD, SPONSOR = "lead@cro.example", "sponsor@cro.example"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                      "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def sponsors(tiny_db: Path) -> dict[str, list[str]]:
    """sponsor id -> its study ids in the tiny portfolio."""
    with warehouse.inspect(tiny_db) as con:
        rows = con.execute("SELECT sponsor_id, study_id FROM main.studies ORDER BY 1, 2").fetchall()
    found: dict[str, list[str]] = {}
    for sponsor, study in rows:
        found.setdefault(sponsor, []).append(study)
    return found


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser-users") / "users.toml"
    path.write_text(f'[users.lead]\nemail = "{LEAD}"\nrole = "clinops_lead"\nsponsors = "*"\n\n'
                    f'[users."{SPONSOR}"]\nrole = "sponsor_viewer"\nsponsors = ["SP01"]\n\n'
                    '[users.local]\nrole = "clinops_lead"\nsponsors = "*"\n')
    return path


def _studies_shown(page: Page) -> set[str]:
    """The study ids the Overview's study filter offers (its options are the studies the user may see)."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text="Study")
    box.get_by_role("combobox").click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return {o.rsplit("(", 1)[-1].rstrip(")") for o in options if o != "Select all"}


def _audit(actions: set[str]) -> list[tuple[str, str]]:
    log = access.records_store().audit_log(last=200)
    return [(r.actor, r.action) for r in log.itertuples() if r.action in actions]


def _sign_in_with_oidc(page: Page, app: str, email: str) -> None:
    page.goto(app)
    _wait_idle(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#email", timeout=IDLE_TIMEOUT_MS)  # the provider's own page
    page.fill("#email", email)
    page.click("#submit")
    page.wait_for_url(f"{app}/**", timeout=IDLE_TIMEOUT_MS)
    _wait_idle(page)


def test_oidc_sign_in_as_two_roles_each_sees_their_own(browser, tiny_db, users_file, sponsors, tmp_path) -> None:
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    client_id, client_secret = "cro-workbench", secrets.token_urlsafe(16)
    with OpenIDProvider(client_id, client_secret, f"{app}/oauth2callback") as provider:
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(
            f'[auth]\nredirect_uri = "{app}/oauth2callback"\ncookie_secret = "{secrets.token_hex(16)}"\n'
            f'client_id = "{client_id}"\nclient_secret = "{client_secret}"\n'
            f'server_metadata_url = "{provider.metadata_url}"\n')
        env = {"CRO_USERS_FILE": str(users_file), "CRO_USER": ""}
        with streamlit_server(tiny_db, "", env=env, args=(f"--secrets.files={secrets_file}",), port=port):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.goto(app)
            _wait_idle(page)
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            expect(page.get_by_test_id("stDataFrame")).to_have_count(0)  # nothing before identity is known
            _sign_in_with_oidc(page, app, LEAD)
            expect(page.get_by_text("Signed in as")).to_contain_text("Clinical operations lead")
            assert _studies_shown(page) == {s for studies in sponsors.values() for s in studies}
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_selector("text=Sign in", timeout=IDLE_TIMEOUT_MS)
            _wait_idle(page)
            expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
            _sign_in_with_oidc(page, app, SPONSOR)
            expect(page.get_by_text("Signed in as")).to_contain_text("Sponsor viewer")
            assert _studies_shown(page) == set(sponsors["SP01"])
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_selector("text=Sign in", timeout=IDLE_TIMEOUT_MS)
            _sign_in_with_oidc(page, app, "mallory@evil.example")  # signed in at the provider, unknown here
            expect(page.get_by_test_id("stAlertContentError")).to_contain_text("not in the users file")
            expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
            context.close()
    assert provider.signed_in == [LEAD, SPONSOR, "mallory@evil.example"]
    trail = _audit({access.SIGN_IN, access.SIGN_OUT, access.SIGN_IN_FAILED})
    assert trail[-5:] == [("lead", "sign_in"), ("lead", "sign_out"), (SPONSOR, "sign_in"), (SPONSOR, "sign_out"),
                          ("mallory@evil.example", "sign_in_failed")]


@pytest.mark.parametrize(("proxies", "accepted"), [("127.0.0.1,::1", True), ("192.0.2.10", False)])
def test_the_trusted_header_signs_in_only_through_the_proxy(browser, tiny_db, users_file, sponsors, proxies,
                                                             accepted) -> None:
    env = {"CRO_USERS_FILE": str(users_file), "CRO_USER": "", "CRO_IDENTITY_MODE": "header",
           "CRO_TRUSTED_PROXIES": proxies, "FORWARDED_ALLOW_IPS": ""}
    with streamlit_server(tiny_db, "", env=env) as app, sign_in_proxy(app, "X-Forwarded-Email", SPONSOR) as proxied:
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(proxied)
        _wait_idle(page)
        if accepted:
            expect(page.get_by_text("Signed in as")).to_contain_text("Sponsor viewer")
            assert _studies_shown(page) == set(sponsors["SP01"])
        else:
            expect(page.get_by_test_id("stAlertContentError")).to_contain_text("accepted only from the sign-in proxy")
            expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
        context.close()


def test_presentation_mode_holds_on_the_back_button_and_in_a_second_tab(browser, tiny_db, users_file,
                                                                        sponsors) -> None:
    with warehouse.inspect(tiny_db) as con:
        sponsor_names = dict(con.execute("SELECT sponsor_id, name FROM main.sponsors").fetchall())
    shown, hidden = sorted(sponsors)
    with streamlit_server(tiny_db, "local", env={"CRO_USERS_FILE": str(users_file)}) as app:
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(f"{app}/overview?study={sponsors[hidden][0]}")
        _wait_idle(page)
        expect(page.get_by_test_id("stDataFrame").first).to_contain_text(sponsors[hidden][0])
        page.goto(f"{app}/site_performance")
        _wait_idle(page)
        page.get_by_text("Present to a sponsor").click()
        _wait_idle(page)
        box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Sponsor")
        box.scroll_into_view_if_needed()  # the last thing in the sidebar: its list opens below the fold otherwise
        # Typed, not clicked: the option list is redrawn while the sidebar settles, and a click on an
        # option can land on one that was just replaced.
        combo = box.get_by_role("combobox")
        combo.click()
        combo.fill(sponsor_names[shown])
        combo.press("Enter")
        expect(combo).to_have_value(sponsor_names[shown])
        page.get_by_role("button", name="Lock to this sponsor").click()
        _wait_idle(page)
        expect(page.get_by_text("Presenting to")).to_be_visible()
        page.goto(f"{app}/overview")
        _wait_idle(page)
        assert _studies_shown(page) == set(sponsors[shown])
        page.go_back()  # to site performance, then back again to the link naming the other sponsor's study
        _wait_idle(page)
        page.go_back()
        _wait_idle(page)
        expect(page.get_by_text("Presenting to")).to_be_visible()
        body = page.locator('[data-testid="stMain"]').inner_text()
        assert sponsors[hidden][0] not in body and all(s not in body for s in sponsors[hidden])
        second = context.new_page()  # a second tab: a new session of the same user
        second.goto(f"{app}/overview")
        _wait_idle(second)
        expect(second.get_by_text("Presenting to")).to_be_visible()
        assert _studies_shown(second) == set(sponsors[shown])
        second.get_by_role("button", name="Sign out").click()
        second.get_by_role("button", name="Sign in again").click()
        _wait_idle(second)
        expect(second.get_by_text("Presenting to")).to_have_count(0)
        assert _studies_shown(second) == {s for studies in sponsors.values() for s in studies}
        context.close()
    locks = access.records_store().current("presentation_locks", where={"user_id": "local"})
    assert not bool(locks["locked"].iloc[-1]) and json.dumps(locks["reason"].iloc[-1]) == '"signed in again"'
