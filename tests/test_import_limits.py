"""Nothing lost, nothing unbounded: missing columns, unsafe ids, huge cells, millions of errors, abandoned uploads,
and the schema migration that brings an older warehouse up."""

from __future__ import annotations

import gc
import os
import tempfile
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from analytics.core import warehouse
from analytics.cli import main as cli
from analytics.core import schema, warehouse
from analytics.core.warehouse import close_all
from analytics.importers import uploads
from analytics.importers.report import ERROR, MAX_EXAMPLES_PER_RULE
from analytics.importers.staging import commit
from analytics.importers.tables import prepare_tables
from tests.import_helpers import as_release_1, open_page, sha256
from tests.test_import_tables import REPO, write_portfolio


@pytest.fixture()
def seeded(tmp_path):
    """A warehouse holding the example operational study (the 'before' state of refused loads)."""
    db = tmp_path / "w.duckdb"
    commit(prepare_tables(write_portfolio(tmp_path / "seed"), db), db)
    close_all()
    return db


def test_a_studies_file_without_study_id_is_a_validation_error_not_a_crash(seeded, tmp_path, capsys):
    folder = write_portfolio(tmp_path / "export")
    (folder / "studies.csv").write_text("protocol_id,sponsor_id,blinded\nEX-001,SPX,yes\n")
    (folder / "subjects.csv").write_text("subject_id,study_id,status\nSTX-1-01-003,STX-1,Screening\n")
    before = sha256(seeded)
    assert cli(["import", "tables", str(folder), "--db", str(seeded)]) == 1
    out = capsys.readouterr().out
    assert "studies.csv, column study_id: required column is missing; expected a column 'study_id' (text)" in out
    assert "subjects.csv, column study_site_id: required column is missing" in out
    assert "Traceback" not in out and sha256(seeded) == before


def test_the_data_page_shows_a_missing_key_column_as_an_error(seeded, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    folder = write_portfolio(tmp_path / "incoming" / "nokey")
    (folder / "studies.csv").write_text("protocol_id,sponsor_id,blinded\nEX-001,SPX,yes\n")
    monkeypatch.setenv("CRO_WAREHOUSE", str(seeded))
    monkeypatch.setenv("CRO_IMPORT_ROOT", str(tmp_path / "incoming"))
    monkeypatch.setenv("CRO_USER", "data_manager")
    at = open_page("pages/data.py")
    at.radio(key="import_kind").set_value("tables").run()
    at.radio(key="import_how").set_value("Folder on the server").run()
    at.text_input(key="import_folder").input("nokey").run()
    at.button(key="import_validate").click().run()
    assert not at.exception
    issues = next(d.value for d in at.dataframe if "Severity" in d.value.columns)
    assert ("studies.csv", "study_id", "required column is missing") in set(
        zip(issues["File"], issues["Column"], issues["Finding"]))


@pytest.mark.parametrize("bad_id, what", [("S1\x1b[31m", "ESC"), ("../../etc", "../"), ("S1\\x", "backslash")])
def test_identifiers_with_control_characters_or_path_separators_are_refused(tmp_path, bad_id, what):
    folder = write_portfolio(tmp_path / "export")
    (folder / "sites.csv").write_text(f"site_id,name,country_code\n{bad_id},Clinic,DE\nS2,Hopital Nord,FR\n")
    load = prepare_tables(folder, tmp_path / "w.duckdb")
    assert (f"sites.csv, row 1, column site_id: identifier contains a control character or a path separator; "
            f"expected letters, digits and punctuation other than / and \\, found {bad_id!r}") in [
        i.text() for i in load.report.errors], what


def test_a_nul_in_an_identifier_is_refused(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    pd.DataFrame({"site_id": ["S\x001", "S2"], "name": ["Clinic", "Hopital"], "country_code": ["DE", "FR"]}).to_parquet(
        folder / "sites.parquet")
    (folder / "sites.csv").unlink()
    load = prepare_tables(folder, tmp_path / "w.duckdb")
    errors = [i for i in load.report.errors if i.column == "site_id" and i.file == "sites.parquet"]
    assert [(e.file, e.row, e.found) for e in errors] == [("sites.parquet", 1, "S\x001")]


def test_a_five_megabyte_text_cell_is_refused_with_its_limit(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    huge = "x" * (5 * 1024 * 1024)
    (folder / "studies.csv").write_text("study_id,protocol_id,sponsor_id,title,blinded\n"
                                        f"STX-1,EX-001,SPX,{huge},yes\n")
    load = prepare_tables(folder, tmp_path / "w.duckdb")
    limit = schema.table("studies").column("title").text_limit
    assert limit == schema.TEXT_MAX_LENGTH
    assert [i.text() for i in load.report.errors] == [
        f"studies.csv, row 1, column title: text is longer than the column allows; expected at most {limit:,} "
        f"characters, found '{len(huge)} characters'"]


def test_errors_are_counted_in_full_but_only_the_first_examples_are_kept(tmp_path, capsys):
    """Many rows pointing at an unknown study: every one is counted, few become report entries."""
    n = 50_000
    folder = tmp_path / "export"
    folder.mkdir()
    pd.DataFrame({"subject_id": [f"NOPE-{i:06d}" for i in range(n)], "study_id": "NOPE",
                  "study_site_id": "NOPE-" + pd.Series(np.arange(n) % 40).astype(str), "status": "On study"}
                 ).to_parquet(folder / "subjects.parquet")
    load = prepare_tables(folder, tmp_path / "w.duckdb")
    report = load.report
    assert report.count(ERROR) == 2 * n
    assert report.totals[(ERROR, "subjects.parquet", "refers to a study that does not exist", "study_id")] == n
    assert len(report.issues) == 2 * MAX_EXAMPLES_PER_RULE
    frame = report.to_frame()
    assert set(frame["rule_total"]) == {n}
    assert cli(["import", "tables", str(folder), "--db", str(tmp_path / "w.duckdb")]) == 1
    out = capsys.readouterr().out
    assert f"    ... and {n - 5:,} more like this ({n:,} in all)" in out
    assert len(out.splitlines()) < 40


def test_a_replaced_upload_and_an_ended_session_leave_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    session: dict = {}
    first = uploads.new_upload_dir(session)
    (first / "dm.xpt").write_bytes(b"x")
    second = uploads.new_upload_dir(session)  # the user uploaded other files
    assert not first.exists() and second.exists() and second.name.startswith(uploads.UPLOAD_PREFIX)
    del session  # the session ends: its state is discarded
    gc.collect()
    assert not second.exists()


def test_upload_folders_older_than_a_day_are_removed_when_an_import_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = tmp_path / (uploads.UPLOAD_PREFIX + "abandoned")
    old.mkdir()
    (old / "dm.xpt").write_bytes(b"x")
    fresh = tmp_path / (uploads.UPLOAD_PREFIX + "in-use")
    fresh.mkdir()
    unrelated = tmp_path / "other-folder"
    unrelated.mkdir()
    stale = time.time() - uploads.STALE_AFTER - 60
    for path in (old / "dm.xpt", old, unrelated):
        os.utime(path, (stale, stale))
    prepare_tables(write_portfolio(tmp_path / "export"), tmp_path / "w.duckdb")
    assert not old.exists() and fresh.exists() and unrelated.exists()


def test_a_version_1_warehouse_is_migrated_up(tiny_db, tmp_path):
    """Simulate a file of the previous release: without the version-2 columns and tables, at version 1."""
    db = tmp_path / "old.duckdb"
    as_release_1(tiny_db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE main.historical_trial_sites")
        for table, column in (("main.adverse_events", "onset_date_imputed"), ("main.historical_trials", "sex"),
                              ("main.historical_trials", "eligibility_criteria"),
                              ("restricted.treatment_assignments", "arm_code")):
            con.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}")
        con.execute("DELETE FROM main.historical_trials")
        con.execute("INSERT INTO main.historical_trials (nct_id, title) VALUES ('NCT00000001', 'kept')")
        con.execute("INSERT INTO main.supplemental_qualifiers VALUES ('S', 'S-1', 'EX', 'EXSEQ=1', 'EXLOT', 'Lot', "
                    "'PLACEBO LOT 3'), ('S', 'S-1', 'AE', 'AESEQ=1', 'AETRTEM', 'TEAE', 'Y'), "
                    "('S', 'S-1', 'DM', '', 'TRT01P', 'Planned treatment', 'Placebo')")
    assert cli(["migrate", "--db", str(db)]) == 0
    with warehouse.inspect(db) as con:
        assert warehouse.current_version(con) == schema.SCHEMA_VERSION
        columns = set(con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall())
        for t in schema.TABLES:
            for c in t.columns:
                assert (t.name, c.name) in columns, (t.name, c.name)
        assert con.execute("SELECT title, sex FROM main.historical_trials").fetchall() == [("kept", None)]
        # Treatment-revealing qualifiers loaded by the previous release move to the restricted schema.
        assert con.execute("SELECT domain, qualifier FROM main.supplemental_qualifiers").fetchall() == [("AE", "AETRTEM")]
        assert con.execute("SELECT qualifier, value FROM restricted.treatment_qualifiers ORDER BY 1").fetchall() == [
            ("EXLOT", "PLACEBO LOT 3"), ("TRT01P", "Placebo")]
