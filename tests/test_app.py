"""The frame and the Overview page, as each role sees them (AppTest: server side, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.frame.identity import load_users
from analytics.frame.navigation import PAGES, pages_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")
USERS = load_users()


def _run(user: str, monkeypatch: pytest.MonkeyPatch, params: dict | None = None) -> AppTest:
    monkeypatch.setenv("CRO_USER", user)
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    return at


ALLOWED = [(user, page) for user in sorted(USERS) for page in pages_for(USERS[user].role)]


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
    assert labels[:3] == ["Studies", "Behind enrollment plan", "Randomized"]
    assert at.metric[0].value == "12"
    table = at.dataframe[0].value
    assert len(table) == 12 and table["randomized"].le(table["target_enrollment"]).all()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any("Enrollment against plan" in c["layout"]["title"]["text"] for c in charts)
    bars = next(c for c in charts if "Enrollment" in c["layout"]["title"]["text"])["data"][0]
    assert sorted(bars["y"]) == sorted(table["study_id"])


def test_sponsor_reviewer_sees_only_their_sponsor(app_env, monkeypatch) -> None:
    at = _run("sponsor_sp01", monkeypatch)
    table = at.dataframe[0].value
    assert set(table["sponsor_name"]) and table["sponsor_name"].nunique() == 1
    assert at.sidebar.multiselect(key="sponsor").options == ["SP01"]
    charts = json.dumps([json.loads(c.proto.spec) for c in at.get("plotly_chart")])
    foreign = set(at.sidebar.multiselect(key="study").options)
    assert foreign == set(table["study_id"])
    assert "ST0" in charts and all(s in foreign for s in json.loads(charts)[0]["data"][0]["y"])


def test_link_to_another_sponsors_study_is_refused_without_leaking(app_env, monkeypatch) -> None:
    at = _run("sponsor_sp01", monkeypatch, {"study": ["ST012"]})
    assert any("Study 'ST012' is not available to you" in w.value for w in at.warning)
    assert "ST012" not in set(at.dataframe[0].value["study_id"])


def test_choosing_a_study_filters_the_page(app_env, monkeypatch) -> None:
    # AppTest cannot drive URL-bound widgets (the browser test covers links); seed the widget state.
    monkeypatch.setenv("CRO_USER", "local")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["study"] = ["ST001", "ST005"]
    at.run()
    assert not at.exception
    assert set(at.dataframe[0].value["study_id"]) == {"ST001", "ST005"}
    assert at.metric[0].value == "2"


def test_page_urls_are_the_file_names() -> None:
    # Streamlit serves a server's first request in its legacy pages-directory mode, which knows a
    # page only by its file name; any other URL would show "Page not found" on a fresh server.
    assert all(Path(p.path).stem == p.url_path for p in PAGES)


def test_role_page_lists_follow_the_users_file() -> None:
    assert "data" not in {p.key for p in pages_for(USERS["cra_demo"].role)}
    assert not USERS["local"].role.can_load_data and USERS["data_manager"].role.can_load_data
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
    monkeypatch.setenv("CRO_USER", "local")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["study"] = ["CDISCPILOT01"]
    at.run()
    assert not at.exception
    row = at.dataframe[0].value.set_index("study_id").loc["CDISCPILOT01"]
    assert (row["randomized"], row["sites"]) == (254, 17)
    # SDTM has no query or eCRF-entry data: absent, not zero.
    assert row[["open_queries", "overdue_visits", "open_capas"]].isna().all()
    assert any("no operational data" in c.value for c in at.caption)


def test_overview_risk_signals_match_the_heatmap(app_env, monkeypatch) -> None:
    from analytics.kri import service
    from analytics.core.scope import AccessScope, NO_FILTER
    from analytics.core.warehouse import Warehouse

    at = _run("local", monkeypatch)
    _, sites = service.kri_tables(Warehouse.open(app_env), AccessScope(), NO_FILTER, "calibrated")
    red = int((sites["red"] > 0).sum())
    metric = next(m for m in at.metric if m.label == "Sites with a red risk flag")
    assert metric.value == str(red)
    table = at.dataframe[0].value
    assert int(table["red_sites"].sum()) == red
    assert table["risk_view"].str.contains("rbm_heatmap\\?study=ST0").all()
