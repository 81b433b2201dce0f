"""The records store as a user (and an auditor) would check it, on SQLite and on PostgreSQL.

Every test taking ``records_url`` runs twice: against a SQLite file and against a fresh database
on a real PostgreSQL server (see ``postgres_server_url`` in conftest.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from analytics.cli import main
from analytics.core import records, warehouse
from analytics.core.audit_chain import record_hash, sha256_hex
from analytics.core.records import RecordsError, RecordsStore
from analytics.core.records_schema import METADATA
from analytics.core.scope import AccessScope
from analytics.core.settings import SettingsError, load_settings
from analytics.evaluation.app_server import free_port
from analytics.evaluation.records_throughput import BENCH_ACTOR_PREFIX, bench_row, measure_appends

REPO = Path(__file__).resolve().parents[1]
TABLE = "review_dispositions"


def disposition(finding: str = "F-1", disposition: str = "Query raised", site: str | None = "S01-001",
                reason: str = "digit preference confirmed on source review") -> dict[str, object]:
    return {"finding_id": finding, "study_id": "S01", "study_site_id": site, "disposition": disposition,
            "reason": reason}


@pytest.fixture
def store(records_url: str):
    with RecordsStore(records_url) as opened:
        yield opened


def fill_audit(store: RecordsStore, count: int) -> None:
    for i in range(count):
        store.audit(f"user{i}@cro.example", "lock", "presentation", f"deck-{i}", None, {"slide": i})


def raw_engine(url: str) -> sa.Engine:
    """A plain engine, as another client of the database would connect (no store, no hooks)."""
    return sa.create_engine(url, isolation_level="AUTOCOMMIT" if url.startswith("postgresql") else None)


def tamper(url: str, *statements: str) -> None:
    """Run SQL as someone with full rights to the database: the triggers are switched off first."""
    engine = raw_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").all():
                    conn.exec_driver_sql(f"DROP TRIGGER {name}")
            else:
                for table in ("audit_log", "audit_head", TABLE):
                    conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def verify_cli(url: str, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["records", "verify", "--url", url])
    return code, capsys.readouterr().out


# --- appends ---------------------------------------------------------------------------------


def test_an_append_is_kept_with_its_actor_and_utc_time_and_audited(store: RecordsStore) -> None:
    before = dt.datetime.now(dt.UTC)
    written = store.append(TABLE, disposition(), actor="dm@cro.example", scope=AccessScope(frozenset({"SP01"})))
    after = dt.datetime.now(dt.UTC)

    row = store.current(TABLE).iloc[0]
    assert row["actor"] == "dm@cro.example"
    assert row["disposition"] == "Query raised" and row["reason"] == disposition()["reason"]
    assert str(row["recorded_at"].tz) == "UTC"
    assert before <= row["recorded_at"].to_pydatetime() <= after
    assert row["recorded_at"].to_pydatetime() == written.recorded_at
    assert (row["record_id"], row["version"]) == (written.record_id, 1)

    log = store.audit_log()
    assert len(log) == 1
    entry = log.iloc[0]
    assert (entry["seq"], entry["actor"], entry["action"], entry["object_type"], entry["object_id"]) == (
        1, "dm@cro.example", "append", TABLE, "F-1")
    assert entry["recorded_at"].to_pydatetime() == written.recorded_at
    assert json.loads(entry["scope"]) == {"sponsor_ids": ["SP01"], "study_ids": None, "study_site_ids": None,
                                          "blinded": True, "subject_level": True}
    payload = json.loads(entry["payload"])
    assert payload == {"table": TABLE, "record_id": written.record_id, "version": 1, "row": disposition()}
    assert entry["payload_sha256"] == sha256_hex(entry["payload"])


def test_the_caller_sets_neither_time_nor_actor_nor_version(store: RecordsStore) -> None:
    for extra in ({"recorded_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, {"actor": "someone else"},
                  {"version": 7}, {"record_id": 1}):
        with pytest.raises(ValueError, match="set by the store"):
            store.append(TABLE, {**disposition(), **extra}, actor="dm@cro.example")
    with pytest.raises(ValueError, match="review_dispositions.reason is required"):
        store.append(TABLE, disposition(reason="  "), actor="dm@cro.example")
    with pytest.raises(ValueError, match="review_dispositions.study_id takes a text value"):
        store.append(TABLE, {**disposition(), "study_id": 17}, actor="dm@cro.example")
    with pytest.raises(ValueError, match="actor must be a non-empty string"):
        store.append(TABLE, disposition(), actor="")
    with pytest.raises(KeyError, match="no records table 'capa'"):
        store.append("capa", disposition(), actor="dm@cro.example")
    assert store.current(TABLE).empty and store.audit_log().empty  # nothing half-written


def test_a_correction_is_a_new_row_current_shows_it_and_history_keeps_both(store: RecordsStore) -> None:
    store.append(TABLE, disposition("F-1", "Query raised", site="S01-001"), actor="ann@cro.example")
    store.append(TABLE, disposition("F-2", "Not an issue", site=None), actor="ann@cro.example")
    corrected = store.append(TABLE, disposition("F-1", "Not an issue", site="S01-002",
                                                reason="site re-assigned: the finding is about S01-002"),
                             actor="bob@cro.example")
    assert corrected.version == 2

    history = store.history(TABLE, "F-1")
    assert history["version"].tolist() == [1, 2]
    assert history["disposition"].tolist() == ["Query raised", "Not an issue"]
    assert history["actor"].tolist() == ["ann@cro.example", "bob@cro.example"]
    assert history["recorded_at"].is_monotonic_increasing

    current = store.current(TABLE)
    assert current[["finding_id", "version", "disposition"]].values.tolist() == [
        ["F-2", 1, "Not an issue"], ["F-1", 2, "Not an issue"]]
    # Filters apply to the latest version: F-1 no longer concerns site S01-001.
    assert store.current(TABLE, where={"study_site_id": "S01-001"}).empty
    assert store.current(TABLE, where={"study_site_id": ["S01-002", "S01-003"]})["finding_id"].tolist() == ["F-1"]
    assert store.current(TABLE, where={"study_id": []}).empty
    assert store.audit_log()["action"].tolist() == ["append", "append", "correct"]


def test_the_store_offers_no_way_to_change_or_remove_a_record() -> None:
    public = [name for name in dir(RecordsStore) if not name.startswith("_")]
    assert not [name for name in public if any(word in name for word in ("update", "delete", "remove", "edit",
                                                                        "set", "replace", "drop"))]


def test_update_and_delete_issued_through_sql_are_refused_by_the_database(store: RecordsStore,
                                                                          records_url: str) -> None:
    store.append(TABLE, disposition(), actor="dm@cro.example")
    engine = raw_engine(records_url)
    try:
        for statement in (f"UPDATE {TABLE} SET disposition = 'Not an issue'", f"DELETE FROM {TABLE}",
                          "UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log",
                          "DELETE FROM audit_head", "UPDATE audit_head SET seq = 0"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only|only advances|cannot be deleted"):
                with engine.begin() as conn:
                    conn.exec_driver_sql(statement)
        if engine.dialect.name == "postgresql":
            for table in (TABLE, "audit_log", "audit_head"):
                with pytest.raises(sa.exc.DatabaseError, match="TRUNCATE refused"):
                    with engine.begin() as conn:
                        conn.exec_driver_sql(f"TRUNCATE {table}")
    finally:
        engine.dispose()
    assert store.current(TABLE)["disposition"].tolist() == ["Query raised"]
    assert store.verify_audit().ok


# --- the audit chain ---------------------------------------------------------------------------


def test_an_intact_chain_verifies_and_the_cli_says_so(store: RecordsStore, records_url: str,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert store.verify_audit().ok and store.verify_audit().records == 0
    fill_audit(store, 4)
    store.append(TABLE, disposition(), actor="dm@cro.example")
    result = store.verify_audit()
    assert (result.ok, result.records, result.head_seq, result.first_bad_seq) == (True, 5, 5, None)
    code, out = verify_cli(records_url, capsys)
    assert code == 0 and "audit chain holds: 5 records; head seq 5" in out

    assert main(["records", "log", "--url", records_url, "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert "user3@cro.example" in out and "dm@cro.example" in out and "user2@cro.example" not in out


EDITED_PAYLOAD = '{"slide":99}'
TAMPERING = {
    # name: (statements after filling records 1-5, first bad seq, words of the problem)
    "payload edited": ([f"UPDATE audit_log SET payload = '{EDITED_PAYLOAD}' WHERE seq = 3"], 3, "payload does not match"),
    "actor edited": (["UPDATE audit_log SET actor = 'someone.else@cro.example' WHERE seq = 2"], 2,
                     "fields do not match its hash"),
    "payload and its hash edited": ([f"UPDATE audit_log SET payload = '{EDITED_PAYLOAD}', "
                                     f"payload_sha256 = '{sha256_hex(EDITED_PAYLOAD)}' WHERE seq = 3"], 3,
                                    "fields do not match its hash"),
    "middle record deleted": (["DELETE FROM audit_log WHERE seq = 3"], 3, "record 3 is missing"),
    "last record deleted": (["DELETE FROM audit_log WHERE seq = 5"], 5, "record 5 deleted"),
    "two records swapped": (["UPDATE audit_log SET seq = -2 WHERE seq = 2", "UPDATE audit_log SET seq = 2 WHERE seq = 4",
                             "UPDATE audit_log SET seq = 4 WHERE seq = -2"], 2, "previous-hash link is broken"),
    "first record deleted and the rest renumbered": (
        ["DELETE FROM audit_log WHERE seq = 1"] + [f"UPDATE audit_log SET seq = {s - 1} WHERE seq = {s}"
                                                   for s in range(2, 6)], 1, "previous-hash link is broken"),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_with_the_audit_log_is_detected_and_the_cli_exits_1(
        kind: str, store: RecordsStore, records_url: str, capsys: pytest.CaptureFixture) -> None:
    fill_audit(store, 5)
    statements, bad_seq, words = TAMPERING[kind]
    tamper(records_url, *statements)
    result = store.verify_audit()
    assert not result.ok
    assert result.first_bad_seq == bad_seq, result.problem
    assert words in result.problem
    code, out = verify_cli(records_url, capsys)
    assert code == 1
    assert f"audit chain BROKEN at seq {bad_seq}: {result.problem}" in out


def test_a_record_rehashed_after_editing_breaks_the_link_of_the_next(store: RecordsStore, records_url: str) -> None:
    fill_audit(store, 5)
    log = store.audit_log().set_index("seq")
    forged = dict(log.loc[3]) | {"seq": 3, "payload": EDITED_PAYLOAD}
    forged["payload_sha256"] = sha256_hex(forged["payload"])
    forged["recorded_at"] = forged["recorded_at"].to_pydatetime()
    tamper(records_url, f"UPDATE audit_log SET payload = '{forged['payload']}', "
                        f"payload_sha256 = '{forged['payload_sha256']}', "
                        f"record_hash = '{record_hash(forged)}' WHERE seq = 3")
    result = store.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "does not follow record 3" in result.problem


def test_a_record_added_behind_the_stores_back_is_detected(store: RecordsStore, records_url: str) -> None:
    fill_audit(store, 3)
    last = store.audit_log().iloc[-1]
    forged = {"seq": 4, "actor": "intruder", "recorded_at": dt.datetime.now(dt.UTC), "action": "lock",
              "object_type": "presentation", "object_id": "deck-x", "scope": "null",
              "payload": "{}", "payload_sha256": sha256_hex("{}"), "prev_hash": last["record_hash"]}
    forged["record_hash"] = record_hash(forged)
    engine = raw_engine(records_url)
    try:  # inserting is not refused by a trigger: the chain's head is what catches it
        with engine.begin() as conn:
            conn.execute(sa.insert(records.AUDIT_LOG).values(forged))
    finally:
        engine.dispose()
    result = store.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "added outside the store" in result.problem


# --- concurrency -------------------------------------------------------------------------------


def _assert_nothing_lost(store: RecordsStore, writers: int, appends: int) -> None:
    log = store.audit_log()
    assert log["seq"].tolist() == list(range(1, writers * appends + 1))  # no gap, no fork
    assert log["recorded_at"].is_monotonic_increasing
    engine = raw_engine(store.engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.select(records.AREA_TABLES[TABLE])).mappings().all()
    finally:
        engine.dispose()
    assert len(stored) == writers * appends
    expected = {(f"{BENCH_ACTOR_PREFIX}{w}", tuple(bench_row(w, i).values())) for w in range(writers)
                for i in range(appends)}
    got = {(r["actor"], (r["finding_id"], r["study_id"], r["study_site_id"], r["disposition"], r["reason"]))
           for r in stored}
    assert got == expected
    versions = {(r["finding_id"], r["version"]) for r in stored}
    assert versions == {(bench_row(w, i)["finding_id"], i % 2 + 1) for w in range(writers) for i in range(appends)}
    result = store.verify_audit()
    assert result.ok and result.records == writers * appends, result.describe()


def test_twenty_threads_appending_at_once_lose_nothing_and_keep_the_chain(store: RecordsStore) -> None:
    measured = measure_appends(store, writers=20, appends_per_writer=10)
    print(f"\n{measured.as_dict()}")  # a figure, not an assertion: see `records bench` for the README's
    _assert_nothing_lost(store, 20, 10)


def test_twenty_processes_appending_at_once_to_sqlite_lose_nothing(tmp_path: Path) -> None:
    with RecordsStore(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        measured = measure_appends(store, writers=20, appends_per_writer=10, processes=True)
        print(f"\n{measured.as_dict()}")
        _assert_nothing_lost(store, 20, 10)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    with RecordsStore(f"sqlite:///{tmp_path / 'r.sqlite'}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


# --- migrations --------------------------------------------------------------------------------


def test_the_migrations_upgrade_an_empty_database_to_head_matching_the_declarations(
        records_url: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["records", "upgrade", "--url", records_url]) == 0
    assert f"revision (empty) -> {records.head_revision()}" in capsys.readouterr().out
    engine = records.create_records_engine(records_url)
    try:
        with engine.connect() as conn:
            assert records.database_revision(conn) == records.head_revision()
            assert records.known_revisions() >= {"0001", "0002"}
            assert set(sa.inspect(conn).get_table_names()) >= {"audit_log", "audit_head", TABLE}
            diffs = compare_metadata(MigrationContext.configure(conn), METADATA)
            assert diffs == [], f"the declarations and the migrations disagree: {diffs}"
    finally:
        engine.dispose()
    assert main(["records", "upgrade", "--url", records_url]) == 0
    head = records.head_revision()
    assert f"revision {head} -> {head}" in capsys.readouterr().out


def test_opening_the_store_upgrades_an_older_database_and_keeps_its_records(records_url: str) -> None:
    engine = records.create_records_engine(records_url)
    try:
        with engine.begin() as conn:
            command.upgrade(records._alembic_config(conn), "0001")
    finally:
        engine.dispose()
    with RecordsStore(records_url, upgrade=False) as old:
        assert old.revision() == "0001"
        fill_audit(old, 2)
    with RecordsStore(records_url) as store:
        assert store.revision() == records.head_revision()
        store.append(TABLE, disposition(), actor="dm@cro.example")
        result = store.verify_audit()
        assert result.ok and result.records == 3


def test_a_database_at_a_newer_revision_is_refused_with_a_clear_message(
        records_url: str, capsys: pytest.CaptureFixture) -> None:
    with RecordsStore(records_url) as store:
        fill_audit(store, 1)
    tamper(records_url, "UPDATE alembic_version SET version_num = '0099_from_the_future'")
    with pytest.raises(RecordsError, match=r"at revision '0099_from_the_future', newer than this release knows "
                                           rf"\(its newest is '{records.head_revision()}'\).*nothing was changed"):
        RecordsStore(records_url)
    assert main(["records", "verify", "--url", records_url]) == 2
    assert "newer than this release knows" in capsys.readouterr().err
    assert main(["records", "upgrade", "--url", records_url]) == 2
    engine = raw_engine(records_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0099_from_the_future"
    finally:
        engine.dispose()


def test_urls_the_store_cannot_serve_are_refused() -> None:
    with pytest.raises(RecordsError, match="SQLite or PostgreSQL, not 'mysql'"):
        RecordsStore("mysql://u@localhost/db")
    with pytest.raises(RecordsError, match="needs a SQLite file"):
        RecordsStore("sqlite://")
    closed = f"postgresql+psycopg://someone:secret@127.0.0.1:{free_port()}/records"
    with pytest.raises(RecordsError, match=r"cannot open the records database postgresql\+psycopg://someone:\*\*\*@"
                                           r"127\.0\.0\.1:\d+/records: connection failed") as refused:
        RecordsStore(closed)
    assert "secret" not in str(refused.value)


# --- settings ----------------------------------------------------------------------------------

PG_URL = "postgresql+psycopg://records@db.cro.example/records"


def test_the_records_url_comes_from_the_environment_then_the_secrets_then_the_default() -> None:
    secrets = {"connections": {"records": {"url": PG_URL}}}
    from_env = load_settings(environ={"CRO_RECORDS_URL": "sqlite:////srv/records.sqlite"}, secrets=secrets)
    assert (from_env.records_url, from_env.records_url_source) == ("sqlite:////srv/records.sqlite", "environment")
    from_secrets = load_settings(environ={}, secrets=secrets)
    assert (from_secrets.records_url, from_secrets.records_url_source) == (PG_URL, "secrets")
    default = load_settings(environ={}, secrets={})
    assert default.records_url == f"sqlite:///{REPO / 'data' / 'records.sqlite'}"
    assert default.records_url_source == "default"


def test_the_warehouse_path_matches_the_warehouse_modules_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRO_WAREHOUSE", raising=False)
    assert load_settings(secrets={}).warehouse_path == warehouse.default_db_path()
    monkeypatch.setenv("CRO_WAREHOUSE", "/srv/w.duckdb")
    assert load_settings(secrets={}).warehouse_path == warehouse.default_db_path() == Path("/srv/w.duckdb")


def _settings_in(folder: Path, secrets_text: str | None) -> subprocess.CompletedProcess:
    """load_settings() in a fresh process whose working folder (and home) is ``folder``."""
    if secrets_text is not None:
        (folder / ".streamlit").mkdir()
        (folder / ".streamlit" / "secrets.toml").write_text(secrets_text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CRO_RECORDS_URL"} | {"HOME": str(folder),
                                                                              "PYTHONPATH": str(REPO)}
    code = "from analytics.core.settings import load_settings; s = load_settings(); print(s.records_url_source, s.records_url)"
    return subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_streamlit_secrets_file_is_read_and_its_absence_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "without").mkdir()
    absent = _settings_in(tmp_path / "without", None)
    assert absent.returncode == 0, absent.stderr
    assert absent.stdout.startswith("default sqlite:///")
    (tmp_path / "with").mkdir()
    present = _settings_in(tmp_path / "with", f'[connections.records]\nurl = "{PG_URL}"\n')
    assert present.returncode == 0, present.stderr
    assert present.stdout.strip() == f"secrets {PG_URL}"


def test_a_secrets_file_that_cannot_be_read_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    broken = _settings_in(tmp_path, "[connections.records\nurl = \n")
    assert broken.returncode != 0
    assert SettingsError.__name__ in broken.stderr and "secrets.toml" in broken.stderr


def test_the_bench_command_prints_a_rate_and_refuses_a_database_that_holds_records(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["records", "bench", "--writers", "3", "--appends", "4"]) == 0
    out = capsys.readouterr().out
    assert "12 appends by 3 concurrent writer threads" in out and "appends/s" in out
    assert "audit chain holds: 12 records" in out
    url = f"sqlite:///{tmp_path / 'in-use.sqlite'}"
    with RecordsStore(url) as store:
        fill_audit(store, 1)
    assert main(["records", "bench", "--url", url]) == 2
    assert "already holds audit records" in capsys.readouterr().err
