"""The frame and the Overview page, as each role sees them (AppTest: server side, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.frame.identity import load_users
from analytics.frame.pages import PAGES, pages_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")
USERS = load_users()


def _run(user: str, monkeypatch: pytest.MonkeyPatch, params: dict | None = None) -> AppTest:
    monkeypatch.setenv("CRO_USER", user)
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    return at


ALLOWED = [(user, page) for user in sorted(USERS) if not USERS[user].disabled for page in pages_for(USERS[user].role)]


@pytest.mark.parametrize(("user", "page"), ALLOWED, ids=[f"{u}-{p.key}" for u, p in ALLOWED])
def test_every_page_renders_for_every_role_that_may_open_it(user, page, app_env, monkeypatch) -> None:
    at = _run(user, monkeypatch)
    at.switch_page(page.path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value  # every page has a title


def test_overview_shows_the_portfolio(app_env, monkeypatch) -> None:
    at = _run("local", monkeypatch)
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Studies", "Behind plan", "Randomized"]
    assert at.metric[0].value == "12"
    table = at.dataframe[0].value
    assert len(table) == 12 and table["Randomized"].le(table["Target"] * 1.5).all()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    enrollment = next(c for c in charts if "Enrollment against plan" in c["layout"]["title"]["text"])
    bars = [trace for trace in enrollment["data"] if trace["type"] == "bar"]
    assert sorted(y for trace in bars for y in trace["y"]) == sorted(table["Protocol"])
    # Every bar colour has its own legend entry naming the status it stands for.
    assert all(trace["name"].startswith("Randomized: ") and trace.get("showlegend", True) for trace in bars)
    # The overview links to every other page this user may open, each under its own title.
    links = [(link.proto.label, link.proto.page) for link in at.get("page_link")]
    role = USERS["local"].role
    assert links == [(p.title, p.url_path) for p in pages_for(role) if p.key != "overview"]


def test_sponsor_reviewer_sees_only_their_sponsor(app_env, monkeypatch) -> None:
    at = _run("sponsor_sp01", monkeypatch)
    table = at.dataframe[0].value
    assert set(table["Sponsor"]) and table["Sponsor"].nunique() == 1
    assert at.sidebar.multiselect(key="url_sponsor").options == [table["Sponsor"].iloc[0]]
    studies = at.sidebar.multiselect(key="url_study").options
    assert len(studies) == len(table) and all(f"({s})" in o or o == s for o, s in zip(sorted(studies),
                                                                                          sorted(table["Study"])))


def test_link_to_another_sponsors_study_is_refused_without_leaking(app_env, monkeypatch) -> None:
    at = _run("sponsor_sp01", monkeypatch, {"study": ["ST012"]})
    assert any("Study 'ST012' is not available to you" in w.value for w in at.warning)
    assert "ST012" not in set(at.dataframe[0].value["Study"])
    assert "study" not in at.query_params  # the refused value is gone from the URL


def test_a_study_link_and_the_study_widget_filter_the_page(app_env, monkeypatch) -> None:
    at = _run("local", monkeypatch, {"study": ["ST001", "ST005"]})
    assert not at.exception
    assert set(at.dataframe[0].value["Study"]) == {"ST001", "ST005"}
    assert at.metric[0].value == "2"
    at.sidebar.multiselect(key="url_study").unselect("ST005").run()
    assert set(at.dataframe[0].value["Study"]) == {"ST001"}
    assert at.query_params["study"] in ("ST001", ["ST001"])  # the widget wrote the value, not its label


def test_page_urls_are_the_file_names() -> None:
    # Streamlit serves a server's first request in its legacy pages-directory mode, which knows a
    # page only by its file name; any other URL would show "Page not found" on a fresh server.
    assert all(Path(p.path).stem == p.url_path for p in PAGES)


def test_role_page_lists_follow_the_users_file() -> None:
    assert "data" not in {p.key for p in pages_for(USERS["cra_demo"].role)}
    assert not USERS["local"].role.allows("load_data") and USERS["data_manager"].role.allows("load_data")
    assert {p.key for p in pages_for(USERS["admin"].role)} == {p.key for p in PAGES}


def test_missing_warehouse_is_a_clear_message(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRO_WAREHOUSE", str(tmp_path / "absent.duckdb"))
    at = _run("local", monkeypatch)
    assert not at.exception
    assert "python -m analytics build" in at.error[0].value


def test_unknown_user_is_a_clear_message(app_env, monkeypatch) -> None:
    at = _run("mallory", monkeypatch)
    assert not at.exception
    assert "user 'mallory' is not in the users file" in at.error[0].value


def test_imported_cdisc_pilot_appears_on_the_overview(pilot_db, monkeypatch) -> None:
    monkeypatch.setenv("CRO_WAREHOUSE", str(pilot_db))
    at = _run("local", monkeypatch, {"study": ["CDISCPILOT01"]})
    assert not at.exception
    row = at.dataframe[0].value.set_index("Study").loc["CDISCPILOT01"]
    assert (row["Randomized"], row["Sites"]) == (254, 17)
    # SDTM has no query or eCRF-entry data: absent, not zero.
    assert row[["Open queries", "Visits not entered > 10 d", "Overdue CAPAs"]].isna().all()
    assert any("no operational data" in c.value for c in at.caption)


def test_overview_risk_signals_match_the_heatmap(app_env, monkeypatch) -> None:
    from analytics.kri import service
    from analytics.core.scope import AccessScope, NO_FILTER
    from analytics.core.warehouse import Warehouse

    at = _run("local", monkeypatch)
    _, sites = service.kri_tables(Warehouse.open(app_env), AccessScope(), NO_FILTER, "calibrated")
    red = int((sites["red"] > 0).sum())
    metric = next(m for m in at.metric if m.label == "Sites with red flags")
    assert metric.value == str(red)
    table = at.dataframe[0].value
    assert int(table["Red-flag sites"].sum()) == red
    assert table["Risk view"].str.contains("rbm_heatmap\\?study=ST0").all()


@pytest.fixture(scope="module")
def dm_only_db(demo_db: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo plus a study imported from an SDTM folder that holds only DM (subjects, no events)."""
    import shutil

    from analytics.core import warehouse
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
    from analytics.importers.staging import commit

    root = tmp_path_factory.mktemp("dm_only")
    folder = root / "sdtm"
    folder.mkdir()
    shutil.copyfile(shared_data / "sdtm" / "cdiscpilot01" / "dm.xpt", folder / "dm.xpt")
    db = warehouse.copy_warehouse(demo_db, root / "warehouse.duckdb")
    commit(prepare_sdtm(folder, db, SdtmOptions(study_id="DMONLY")), db)
    warehouse.close_all()
    return db


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_every_page_handles_a_study_with_only_demographics(page, dm_only_db, monkeypatch) -> None:
    monkeypatch.setenv("CRO_WAREHOUSE", str(dm_only_db))
    at = _run("admin", monkeypatch, {"study": ["DMONLY"]} if "study" in page.filters else None)
    at.switch_page(page.path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
