"""Bad inputs are refused with the message a user sees, and the warehouse stays byte-for-byte the same."""

from __future__ import annotations

import os
import shutil

import duckdb
import pandas as pd
import pytest

from analytics.cli import main as cli
from analytics.importers import staging
from analytics.importers.report import ImportRefused
from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
from analytics.importers.tables import prepare_tables
from analytics.core import warehouse
from analytics.core.warehouse import close_all
from tests.import_helpers import BAD_INPUTS, PILOT, copy_domains, needs_shared_data, sha256
from tests.test_import_tables import write_portfolio

pytestmark = needs_shared_data


@pytest.fixture(scope="module")
def base_db(tmp_path_factory):
    """A warehouse holding one operational study, used as the 'before' state of every refused load."""
    root = tmp_path_factory.mktemp("base")
    db = root / "warehouse.duckdb"
    staging.commit(prepare_tables(write_portfolio(root / "export"), db), db)
    close_all()
    return db


@pytest.fixture()
def db(base_db, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    warehouse.copy_warehouse(base_db, copy)
    return copy


def refused_sdtm(db, folder, capsys, *extra: str) -> str:
    """Run the CLI on an SDTM folder, assert it refused and left the warehouse unchanged; return stdout."""
    before = sha256(db)
    code = cli(["import", "sdtm", str(folder), "--db", str(db), *extra])
    close_all()
    out = capsys.readouterr().out
    assert code == 1, out
    assert "REFUSED: nothing was loaded" in out
    assert sha256(db) == before
    assert not list(db.parent.glob("*.building*"))
    return out


def test_empty_xpt_is_refused(db, tmp_path, capsys):
    folder = copy_domains(tmp_path / "src", "dm.xpt")
    shutil.copyfile(BAD_INPUTS / "empty_dataset.xpt", folder / "ae.xpt")
    out = refused_sdtm(db, folder, capsys)
    assert "ae.xpt: file is empty (0 bytes); expected a dataset with a header and rows" in out


def test_html_saved_as_xpt_is_refused(db, tmp_path, capsys):
    folder = copy_domains(tmp_path / "src", "dm.xpt")
    shutil.copyfile(BAD_INPUTS / "html_saved_as.xpt", folder / "ae.xpt")
    out = refused_sdtm(db, folder, capsys)
    assert ("ae.xpt: file is an HTML/XML page (e.g. a saved error page), not a SAS XPORT transport file; "
            "expected a SAS XPORT header") in out
    assert "found '<HTML>" in out


def test_the_bad_inputs_folder_reports_every_problem_not_only_the_first(db, capsys):
    out = refused_sdtm(db, BAD_INPUTS, capsys)
    assert "empty_dataset.xpt: file is empty (0 bytes)" in out
    assert "html_saved_as.xpt: file is an HTML/XML page" in out
    assert "(folder): no DM dataset" in out
    assert "3 error(s)" in out


def test_unknown_domain_is_refused(db, tmp_path, capsys):
    folder = copy_domains(tmp_path / "src", "dm.xpt")
    (folder / "qq.csv").write_text("STUDYID,DOMAIN,USUBJID\nCDISCPILOT01,QQ,01-701-1015\n")
    out = refused_sdtm(db, folder, capsys)
    assert "qq.csv: unknown SDTM domain; expected a standard SDTM domain" in out
    assert "found 'QQ'" in out


def test_missing_key_column_is_refused(db, tmp_path, capsys):
    folder = tmp_path / "src"
    folder.mkdir()
    dm = pd.read_sas(PILOT / "dm.xpt", format="xport", encoding="utf-8")
    dm.drop(columns=["USUBJID"]).to_csv(folder / "dm.csv", index=False)
    out = refused_sdtm(db, folder, capsys)
    assert "dm.csv, column USUBJID: key column is missing; expected DM with column USUBJID" in out


def test_duplicate_subjects_are_refused_with_both_rows(db, tmp_path, capsys):
    folder = tmp_path / "src"
    folder.mkdir()
    dm = pd.read_sas(PILOT / "dm.xpt", format="xport", encoding="utf-8")
    pd.concat([dm, dm.iloc[[5]]]).to_csv(folder / "dm.csv", index=False)
    out = refused_sdtm(db, folder, capsys)
    subject = dm["USUBJID"].iloc[5]
    assert (f"dm.csv, row 307, column USUBJID: duplicate record key; expected a unique key (first seen on row 6), "
            f"found 'USUBJID={subject}'") in out


def test_files_over_the_size_limit_are_refused(db, tmp_path, capsys):
    folder = copy_domains(tmp_path / "src", "dm.xpt", "ae.xpt")
    out = refused_sdtm(db, folder, capsys, "--max-file-mb", "0.5")
    assert "ae.xpt: file is larger than the import size limit; expected at most 0.5 MB" in out
    assert "found '1.4 MB'" in out


def test_links_leading_outside_the_folder_are_refused(db, tmp_path, capsys):
    folder = copy_domains(tmp_path / "src", "dm.xpt")
    os.symlink(PILOT / "ae.xpt", folder / "ae.xpt")
    out = refused_sdtm(db, folder, capsys)
    assert "ae.xpt: path lies outside the chosen folder" in out


def test_a_study_id_of_another_source_is_not_overwritten(db, tmp_path, capsys):
    folder = copy_domains(tmp_path / "src", "dm.xpt")
    out = refused_sdtm(db, folder, capsys, "--study-id", "STX-1")
    assert "a study with this id already exists from another source" in out
    assert "STX-1 (data_source=tables)" in out


def test_a_file_failing_halfway_leaves_the_warehouse_unchanged(db, tmp_path):
    """Validation passes; the database write fails after several tables were written to the copy."""
    folder = copy_domains(tmp_path / "src", "dm.xpt", "ae.xpt", "ds.xpt", "sv.xpt")
    load = prepare_sdtm(folder, db, SdtmOptions(study_id="HALF"))
    assert not load.report.refused
    subjects = load.tables["subjects"]
    # Row 200 breaks the NOT NULL constraint only the database checks at write time.
    load.tables["adverse_events"].loc[load.tables["adverse_events"].index[200], "study_site_id"] = None
    before = sha256(db)
    with pytest.raises(ImportRefused) as refused:
        staging.commit(load, db)
    close_all()
    assert "the warehouse rejected the load; nothing was changed" in str(refused.value)
    assert sha256(db) == before
    assert not list(db.parent.glob("*.building*"))
    with warehouse.inspect(db) as con:
        assert con.execute("SELECT count(*) FROM main.subjects WHERE study_id = 'HALF'").fetchone()[0] == 0
    assert len(subjects) == 306


def test_a_csv_with_a_bad_row_in_the_middle_is_refused_whole(db, tmp_path):
    folder = write_portfolio(tmp_path / "export")
    lines = ["visit_id,subject_id,study_id,study_site_id,visit_number,status"]
    lines += [f"{100 + i},STX-1-01-001,STX-1,STX-1-01,{i},Completed" for i in range(1, 40)]
    lines[20] = "120,STX-1-01-001,STX-1,STX-1-01,20,Postponed"
    (folder / "visits.csv").write_text("\n".join(lines) + "\n")
    before = sha256(db)
    load = prepare_tables(folder, db)
    assert [i.text() for i in load.report.errors] == [
        "visits.csv, row 20, column status: value is not allowed; expected one of Completed, Missed, found 'Postponed'"]
    with pytest.raises(ImportRefused):
        staging.commit(load, db)
    assert sha256(db) == before


