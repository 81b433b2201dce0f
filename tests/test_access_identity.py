"""Who the user is: the users file, the three sign-in modes, sign-out, idle timeout, presentation mode,
and the audit records each leaves (AppTest and the pure functions behind them)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.core import caching
from analytics.core.scope import AccessScope
from analytics.core.settings import Settings, load_settings
from analytics.frame import access, identity, signin
from analytics.frame.session import CONTEXT_KEY

APP = str(Path(__file__).resolve().parents[1] / "app.py")
GOOD_USER = '[users.ana]\nrole = "clinops_lead"\nsponsors = "*"\n'


def _users(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(text)
    return path


# --- the users file ------------------------------------------------------------------------------

MALFORMED = [
    ("not TOML", GOOD_USER + "[users.bo\nrole = 1\n", "line 4"),
    ("an unknown field opens nothing wide", GOOD_USER + '\n[users.sv]\nrole = "sponsor_viewer"\nsponsor = "SP01"\n'
     'sponsors = ["SP01"]\n', "line 7: user 'sv' has unknown field 'sponsor'"),
    ("no sponsors line", GOOD_USER + '\n[users.bo]\nrole = "clinops_lead"\n', "line 5: user 'bo' does not say"),
    ("a sponsor viewer of two sponsors", GOOD_USER + '\n[users.sv]\nrole = "sponsor_viewer"\n\nsponsors = ["SP01", '
     '"SP02"]\n', "line 8: user 'sv' is a sponsor viewer and must see exactly one"),
    ("a monitor without sites", GOOD_USER + '\n[users.m]\nrole = "monitor"\nsponsors = "*"\nstudies = ["ST001"]\n',
     "line 5: user 'm' is a monitor"),
    ("an unknown role", GOOD_USER + '\n[users."x@y.org"]\nname = "X"\nrole = "superuser"\nsponsors = "*"\n',
     "line 7: user 'x@y.org' has unknown role 'superuser'"),
    ("an empty sponsor list", GOOD_USER + '\n[users.e]\nrole = "clinops_lead"\nsponsors = []\n', "line 7"),
    ("one e-mail for two users", GOOD_USER + '\n[users.b]\nrole = "clinops_lead"\nsponsors = "*"\nemail = "ANA"\n',
     "names two users"),
    ("a stray section", GOOD_USER + '\n[roles.extra]\nx = 1\n', "unknown section 'roles'"),
]


@pytest.mark.parametrize(("case", "text", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_users_file_is_refused_naming_the_line(case, text, message, tmp_path) -> None:
    with pytest.raises(identity.IdentityError) as refused:
        identity.load_users(_users(tmp_path, text))
    assert message in str(refused.value), str(refused.value)


def test_the_shipped_users_file_has_every_role_of_the_issue() -> None:
    users = identity.load_users()
    roles = {u.role.name for u in users.values()}
    assert roles >= {"clinops_lead", "monitor", "sponsor_viewer", "data_manager", "quality_manager", "medical_writer",
                     "admin"}
    assert users["sponsor_sp01"].scope.subject_level is False
    assert users["monitor_sites"].scope.study_site_ids == {"ST001-1001", "ST001-1002", "ST001-1003"}
    assert users["jane.doe@cro.example"].disabled


def test_a_user_is_found_by_id_or_email_in_any_case(tmp_path) -> None:
    users = identity.load_users(_users(tmp_path, GOOD_USER + 'email = "Ana.Lima@CRO.example"\n'))
    assert identity.find_user(users, "ana.lima@cro.example").user_id == "ana"
    assert identity.find_user(users, "ANA").user_id == "ana"
    assert identity.find_user(users, "mallory@cro.example") is None


def test_a_malformed_users_file_stops_the_app_with_the_line_and_shows_no_data(tiny_db, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRO_WAREHOUSE", str(tiny_db))
    monkeypatch.setenv("CRO_USERS_FILE", str(_users(tmp_path, GOOD_USER + 'sponsor = "SP01"\n')))
    monkeypatch.setenv("CRO_USER", "ana")
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert "line 4" in at.error[0].value and "unknown field 'sponsor'" in at.error[0].value
    assert not at.dataframe and not at.get("plotly_chart") and not at.sidebar.multiselect


# --- sign-in, failure, sign-out, timeout (local mode in AppTest) -----------------------------------


def _audit_since(seq: int) -> pd.DataFrame:
    log = access.records_store().audit_log(last=50)
    return log[log["seq"] > seq]


def _head() -> int:
    log = access.records_store().audit_log(last=1)
    return int(log["seq"].iloc[0]) if len(log) else 0


@pytest.fixture
def local_app(tiny_db, monkeypatch):
    monkeypatch.setenv("CRO_WAREHOUSE", str(tiny_db))
    monkeypatch.delenv("CRO_USERS_FILE", raising=False)

    def start(user: str) -> AppTest:
        monkeypatch.setenv("CRO_USER", user)
        return AppTest.from_file(APP, default_timeout=120)

    return start


@pytest.mark.parametrize(("user", "reason"), [("mallory", "unknown user"), ("jane.doe@cro.example", "disabled user")])
def test_an_unknown_or_disabled_user_gets_a_message_no_data_and_a_failed_sign_in_record(user, reason,
                                                                                        local_app) -> None:
    before = _head()
    at = local_app(user).run()
    assert not at.exception and "ask an administrator" in at.error[0].value
    assert not at.dataframe and not at.metric and not at.sidebar.multiselect
    at.run()  # a rerun of the same session is not a second failure
    records = _audit_since(before)
    assert list(records["action"]) == [access.SIGN_IN_FAILED]
    assert records["actor"].iloc[0] == user and json.loads(records["payload"].iloc[0])["reason"] == reason


def test_sign_in_is_recorded_once_per_session_and_sign_out_ends_it(local_app) -> None:
    before = _head()
    at = local_app("local").run()
    at.run()
    assert list(_audit_since(before)["action"]) == [access.SIGN_IN]
    assert any("Local mode" in m.value for m in at.sidebar.markdown)
    at.sidebar.button(key="_cro_sign_out").click().run()
    assert "You signed out." in at.info[0].value
    assert not at.dataframe and not at.metric and CONTEXT_KEY not in at.session_state
    at.button(key="sign_in_again").click().run()
    assert at.dataframe and list(_audit_since(before)["action"]) == [access.SIGN_IN, access.SIGN_OUT, access.SIGN_IN]


def test_an_idle_session_ends_after_the_timeout(local_app, monkeypatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(signin, "_now", lambda: clock[0])
    monkeypatch.setenv("CRO_IDLE_TIMEOUT_MINUTES", "30")
    before = _head()
    at = local_app("local").run()
    clock[0] += 29 * 60
    at.run()
    assert at.dataframe  # 29 minutes of quiet: still signed in
    clock[0] += 31 * 60
    at.run()
    assert "ended after 30 minutes without activity" in at.info[0].value
    assert not at.dataframe and not at.metric and not at.sidebar.multiselect
    assert list(_audit_since(before)["action"]) == [access.SIGN_IN, access.SESSION_TIMEOUT]


# --- presentation mode ---------------------------------------------------------------------------


def test_presentation_mode_locks_every_session_of_the_user_until_they_sign_in_again(local_app, tiny_db) -> None:
    from analytics.core import warehouse

    with warehouse.inspect(tiny_db) as con:
        sponsors = dict(con.execute("SELECT sponsor_id, name FROM main.sponsors ORDER BY 1").fetchall())
    shown, hidden = sorted(sponsors)
    at = local_app("local").run()
    at.query_params["study"] = "ST001"
    at.sidebar.selectbox(key="_cro_present_to").set_value(shown).run()
    at.sidebar.button(key="_cro_present_lock").click().run()
    ctx = at.session_state[CONTEXT_KEY]
    assert ctx.user.presenting_sponsor == shown and ctx.scope.sponsor_ids == {shown} and not ctx.scope.subject_level
    assert at.sidebar.multiselect(key="url_sponsor").options == [sponsors[shown]]
    assert set(at.dataframe[0].value["Sponsor"]) == {sponsors[shown]}
    lock = access.records_store().current("presentation_locks", where={"user_id": "local"})
    assert bool(lock["locked"].iloc[-1]) and lock["sponsor_id"].iloc[-1] == shown
    second = local_app("local").run()  # a second tab: a new session of the same user
    assert set(second.dataframe[0].value["Sponsor"]) == {sponsors[shown]}
    # A link into the other sponsor finds nothing, and the message does not repeat what it asked for.
    with warehouse.inspect(tiny_db) as con:
        other_study = con.execute("SELECT min(study_id) FROM main.studies WHERE sponsor_id = ?", [hidden]).fetchone()[0]
    second.query_params["study"] = other_study
    second.run()
    assert [w.value for w in second.warning] == ["Part of the link is not available in this presentation; it was "
                                                 "left out."]
    assert other_study not in set(second.dataframe[0].value["Study"])
    second.sidebar.button(key="_cro_sign_out").click().run()
    second.button(key="sign_in_again").click().run()
    assert second.session_state[CONTEXT_KEY].user.presenting_sponsor is None
    assert not bool(access.records_store().current("presentation_locks", where={"user_id": "local"})["locked"].iloc[-1])
    assert set(local_app("local").run().dataframe[0].value["Sponsor"]) == set(sponsors.values())


# --- the modes' rules (pure) -----------------------------------------------------------------------


def _settings(**kw) -> Settings:
    return Settings(**{**load_settings({}, {}).__dict__, **kw})


HEADER = {"X-Forwarded-Email": "ana@cro.example"}


@pytest.mark.parametrize(("proxies", "headers", "address", "forwarded", "accepted"), [
    (("10.1.2.3",), HEADER, "10.1.2.3", "", True),
    (("10.1.2.0/24",), HEADER, "10.1.2.3", "", True),
    (("10.1.2.3",), HEADER, "10.9.9.9", "", False),  # another machine sends the header itself
    (("10.1.2.3",), HEADER, "10.1.2.3", None, False),  # uvicorn trusts loopback's X-Forwarded-For by default
    (("10.1.2.3", "127.0.0.1", "::1"), HEADER, "10.1.2.3", None, True),
    (("10.1.2.3",), HEADER, "10.1.2.3", "*", False),
    (("localhost",), HEADER, None, None, True),  # a proxy on this machine (Streamlit reports loopback as None)
    ((), HEADER, "10.1.2.3", "", False),  # no proxy configured: the mode refuses everyone
    (("10.1.2.3",), {}, "10.1.2.3", "", False),
    (("10.1.2.3",), {"x-forwarded-email": "ana\x00@cro.example"}, "10.1.2.3", "", False),
    (("10.1.2.3",), {"x-forwarded-email": "a" * 400}, "10.1.2.3", "", False),
    (("10.1.2.3",), [("X-Forwarded-Email", "ana@cro.example"), ("x-forwarded-email", "eve@x.org")],
     "10.1.2.3", "", False),  # a browser's own header next to the proxy's
])
def test_the_trusted_header_is_believed_only_from_the_proxy(proxies, headers, address, forwarded, accepted) -> None:
    claim = signin.header_claim(_settings(identity_mode="header", trusted_proxies=proxies), headers, address, forwarded)
    assert (claim.sign_in_id == "ana@cro.example") is accepted and (claim.refusal is None) is accepted


def test_local_mode_serves_only_this_machine() -> None:
    assert signin.local_claim(_settings(local_user="ana"), None).sign_in_id == "ana"
    assert signin.local_claim(_settings(), "192.0.2.7").refusal


def test_a_browser_on_this_machine_is_local_however_the_server_listens() -> None:
    # `streamlit run` without --server.address listens on every interface: this machine is ::ffff:127.0.0.1.
    for loopback in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.0.2", None, ""):
        assert signin.remote_address(loopback) is None, loopback
        assert signin.local_claim(_settings(local_user="ana"), signin.remote_address(loopback)).sign_in_id == "ana"
    for remote in ("192.0.2.7", "::ffff:192.0.2.7", "2001:db8::1"):
        assert signin.remote_address(remote) == remote
        assert signin.local_claim(_settings(), signin.remote_address(remote)).refusal


def test_an_oidc_sign_in_needs_a_verified_email_and_carries_when_it_happened() -> None:
    claim = signin.oidc_claim({"is_logged_in": True, "email": "ana@cro.example", "iat": 1_700_000_000})
    assert claim.sign_in_id == "ana@cro.example" and claim.authenticated_at.year == 2023
    assert signin.oidc_claim({"is_logged_in": True, "email": "a@b", "email_verified": False}).refusal
    assert signin.oidc_claim({"is_logged_in": False}).sign_in_id is None


def test_the_identity_settings_come_from_the_environment_or_the_secrets() -> None:
    settings = load_settings({"CRO_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2", "CRO_IDENTITY_MODE": "header"}, {})
    assert settings.identity_mode == "header" and settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert load_settings({}, {"auth": {"client_id": "x"}}).identity_mode == "oidc"
    assert load_settings({}, {}).identity_mode == "local"
    assert load_settings({}, {"identity": {"idle_timeout_minutes": 5}}).idle_timeout_minutes == 5


# --- the subject-level rule ------------------------------------------------------------------------


def test_page_facing_functions_refuse_subject_rows_to_an_aggregates_only_scope() -> None:
    rows = pd.DataFrame({"subject_id": ["S1"], "x": [1]})
    with pytest.raises(caching.SubjectLevelRefused):
        caching.check_subject_level(AccessScope(subject_level=False), (rows, pd.DataFrame()), "f")
    caching.check_subject_level(AccessScope(subject_level=False), rows.drop(columns="subject_id"), "f")
    caching.check_subject_level(AccessScope(), rows, "f")
