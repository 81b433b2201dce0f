"""Operational exports following the generated import contract (CSV and Parquet)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics.core import warehouse
from analytics.core import schema
from analytics.cli import main as cli
from analytics.importers.contract import CONTRACT_PATH, contract_markdown
from analytics.importers.staging import commit
from analytics.importers.tables import CONTRACT_TABLES, prepare_tables
from analytics.core.scope import AccessScope
from analytics.core.warehouse import close_all
from tests.import_helpers import open_page, sha256

REPO = Path(__file__).resolve().parents[1]


def write_portfolio(folder: Path) -> Path:
    """A small but complete operational export: one sponsor, study, two sites, subjects, visits, queries."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "sponsors.csv": "sponsor_id,name\nSPX,Example Pharma\n",
        "studies.csv": "study_id,protocol_id,sponsor_id,title,phase,blinded,target_enrollment,status\n"
                       "STX-1,EX-001,SPX,Example study,Phase 2,yes,120,Enrolling\n",
        "sites.csv": "site_id,name,country_code,city\nS1,Charite,DE,Berlin\nS2,Hopital Nord,fr,Marseille\n",
        "study_sites.csv": "study_site_id,study_id,site_id,site_number,status,activation_date\n"
                           "STX-1-01,STX-1,S1,01,Active,2024-01-03\nSTX-1-02,STX-1,S2,02,Planned,\n",
        "subjects.csv": "subject_id,study_id,study_site_id,sex,age,screening_date,randomization_date,status\n"
                        "STX-1-01-001,STX-1,STX-1-01,F,54,2024-01-20,2024-02-01,On study\n"
                        "STX-1-01-002,STX-1,STX-1-01,M,61,2024-02-02,,Screen failure\n",
        "visits.csv": "visit_id,subject_id,study_id,study_site_id,visit_number,visit_name,actual_date,entry_date,status\n"
                      "1,STX-1-01-001,STX-1,STX-1-01,1,Screening,2024-01-20,2024-01-22,Completed\n"
                      "2,STX-1-01-001,STX-1,STX-1-01,2,Week 2,2024-02-15,2024-02-28,completed\n",
        "queries.csv": "query_id,study_id,study_site_id,subject_id,origin,opened_date,closed_date,status\n"
                       "10,STX-1,STX-1-01,STX-1-01-001,Edit check,2024-02-16,2024-02-20,Closed\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def count(db, sql):
    with warehouse.inspect(db) as con:
        return con.execute(sql).fetchone()[0]


def test_committed_contract_is_generated_from_the_schema():
    assert (REPO / CONTRACT_PATH).read_text(encoding="utf-8") == contract_markdown(), (
        "data/IMPORT_CONTRACT.md is stale: run `python -m analytics contract`")


def test_contract_lists_every_importable_table_and_its_required_columns():
    text = contract_markdown()
    importable = {t.name for t in schema.TABLES if t.importable}
    assert {t.name for t in CONTRACT_TABLES} == importable
    for table in CONTRACT_TABLES:
        assert f"## `{table.name}.csv`" in text
        for column in table.columns:
            if column.required and not (table.name == "studies" and column.name == "data_source"):
                assert f"| `{column.name}` |" in text
    assert "Completed, Missed" in text  # allowed values of visits.status


def test_operational_export_loads_and_reloads_idempotently(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    db = tmp_path / "w.duckdb"
    assert cli(["import", "tables", str(folder), "--db", str(db)]) == 0
    close_all()
    assert count(db, "SELECT count(*) FROM main.subjects") == 2
    assert count(db, "SELECT status FROM main.visits WHERE visit_id = 2") == "Completed"  # case normalised
    assert count(db, "SELECT country_code FROM main.sites WHERE site_id = 'S2'") == "FR"
    assert count(db, "SELECT data_source FROM main.studies") == "tables"
    assert count(db, "SELECT count(*) FROM main.countries") == 2
    snapshot = _contents(db)
    assert cli(["import", "tables", str(folder), "--db", str(db)]) == 0
    close_all()
    assert _contents(db) == snapshot
    assert count(db, "SELECT count(*) FROM main.data_provenance WHERE study_id = 'STX-1'") == 5


def _contents(db):
    with warehouse.inspect(db) as con:
        return {t: con.execute(f"SELECT * FROM main.{t} ORDER BY ALL").fetchall()
                for t in ("sponsors", "studies", "sites", "study_sites", "subjects", "visits", "queries")}


def test_parquet_files_follow_the_same_contract(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    subjects = pd.read_csv(folder / "subjects.csv", dtype=str)
    subjects["age"] = subjects["age"].astype(int)
    subjects.to_parquet(folder / "subjects.parquet")
    (folder / "subjects.csv").unlink()
    db = tmp_path / "w.duckdb"
    commit(prepare_tables(folder, db), db)
    assert count(db, "SELECT sum(age) FROM main.subjects") == 115
    close_all()


def test_contract_violations_are_all_reported_with_file_row_and_column(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    (folder / "subjects.csv").write_text(
        "subject_id,study_id,study_site_id,sex,age,status\n"
        "STX-1-01-001,STX-1,STX-1-01,F,54,On study\n"
        "STX-1-01-002,STX-1,STX-9-99,X,old,Sleeping\n"
        "STX-1-01-001,STX-1,STX-1-01,F,54,On study\n"
        ",STX-1,STX-1-01,M,40,Screening\n")
    db = tmp_path / "w.duckdb"
    load = prepare_tables(folder, db)
    texts = [i.text() for i in load.report.issues]
    assert load.report.refused
    expected = [
        "subjects.csv, row 2, column sex: value is not allowed; expected one of F, M, U, found 'X'",
        "subjects.csv, row 2, column status: value is not allowed; expected one of Screening, Screen failure, "
        "On study, Completed, Discontinued, found 'Sleeping'",
        "subjects.csv, row 2, column age: value has the wrong type; left empty; expected a whole number, found 'old'",
        "subjects.csv, row 4, column subject_id: required value is missing; expected text, found ''",
        "subjects.csv, row 3, column subject_id: duplicate key; expected a unique key (first seen on row 1), "
        "found 'subject_id=STX-1-01-001'",
        "subjects.csv, row 2, column study_site_id: refers to a study site that does not exist; expected a "
        "study_site_id in study_sites (this load or the warehouse), found 'STX-9-99'",
    ]
    for line in expected:
        assert line in texts
    assert not db.exists()  # a refused first load creates no warehouse


def test_unknown_columns_and_importer_set_columns_are_warned(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    (folder / "studies.csv").write_text(
        "study_id,protocol_id,sponsor_id,blinded,data_source,colour\nSTX-1,EX-001,SPX,no,synthetic,blue\n")
    load = prepare_tables(folder, tmp_path / "w.duckdb")
    assert not load.report.refused
    warnings = [i.text() for i in load.report.warnings]
    assert any("column colour: column is not in the import contract; ignored" in w for w in warnings)
    assert any("column data_source: column is set by the importer" in w for w in warnings)
    assert load.tables["studies"]["data_source"].tolist() == ["tables"]


def test_subject_of_another_study_site_is_refused(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    db = tmp_path / "w.duckdb"
    commit(prepare_tables(folder, db), db)
    close_all()
    other = tmp_path / "other"
    other.mkdir()
    (other / "studies.csv").write_text("study_id,protocol_id,sponsor_id,blinded\nSTX-2,EX-002,SPX,true\n")
    (other / "subjects.csv").write_text("subject_id,study_id,study_site_id\nSTX-2-001,STX-2,STX-1-01\n")
    before = sha256(db)
    load = prepare_tables(other, db)
    assert "subjects.csv, row 1, column study_site_id: study_site_id belongs to another study; expected a " \
           "study_site_id of study STX-2, found 'STX-1-01 (study STX-1)'" in [i.text() for i in load.report.errors]
    assert sha256(db) == before
    close_all()


def test_a_user_cannot_load_another_sponsors_study(tmp_path):
    folder = write_portfolio(tmp_path / "export")
    scope = AccessScope(sponsor_ids=frozenset({"SP01"}))
    load = prepare_tables(folder, tmp_path / "w.duckdb", scope=scope)
    assert "(load): you may not load data for this sponsor; expected one of SP01, found 'SPX'" in [
        i.text() for i in load.report.errors]


@pytest.mark.parametrize("name", ["patients.csv", "subjects.txt.csv"])
def test_unknown_table_files_are_refused(tmp_path, name):
    folder = write_portfolio(tmp_path / "export")
    (folder / name).write_text("a,b\n1,2\n")
    load = prepare_tables(folder, tmp_path / "w.duckdb")
    assert any(i.file == name and i.message == "unknown table file" for i in load.report.errors)


def _data_page(monkeypatch, db, root, user="data_manager"):
    monkeypatch.setenv("CRO_WAREHOUSE", str(db))
    monkeypatch.setenv("CRO_IMPORT_ROOT", str(root))
    monkeypatch.setenv("CRO_USER", user)
    return open_page("pages/data.py")


def _frame_with(at, column):
    """The first data frame shown on the page that has ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_data_page_validates_then_loads_a_folder(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    commit(prepare_tables(write_portfolio(tmp_path / "seed"), db), db)
    close_all()
    folder = write_portfolio(tmp_path / "incoming" / "export2")
    (folder / "studies.csv").write_text("study_id,protocol_id,sponsor_id,blinded\nSTX-1,EX-001,SPX,true\n"
                                        "STX-9,EX-009,SPX,true\n")
    at = _data_page(monkeypatch, db, tmp_path / "incoming")
    assert not at.exception
    at.radio(key="import_kind").set_value("tables").run()
    at.radio(key="import_how").set_value("Folder on the server").run()
    at.text_input(key="import_folder").input("export2").run()
    at.button(key="import_validate").click().run()
    assert not at.exception
    assert [m.value for m in at.metric][:3] == ["0", "0", "0"]
    before = sha256(db)
    at.button(key="import_confirm").click().run()
    assert not at.exception
    assert sha256(db) != before
    assert any("Loaded" in s.value for s in at.success)
    close_all()
    assert count(db, "SELECT count(*) FROM main.studies") == 2


def test_data_page_shows_the_errors_of_a_refused_load_and_refuses_folders_outside_the_root(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    commit(prepare_tables(write_portfolio(tmp_path / "seed"), db), db)
    close_all()
    folder = write_portfolio(tmp_path / "incoming" / "bad")
    (folder / "sites.csv").write_text("site_id,name,country_code\nS9,Nowhere clinic,XX\n")
    at = _data_page(monkeypatch, db, tmp_path / "incoming")
    at.radio(key="import_kind").set_value("tables").run()
    at.radio(key="import_how").set_value("Folder on the server").run()
    at.text_input(key="import_folder").input("bad").run()
    at.button(key="import_validate").click().run()
    assert any("This load is refused" in e.value for e in at.error)
    issues = _frame_with(at, "Severity")
    row = issues[issues["Severity"] == "Error"].iloc[0]
    assert (row["File"], row["Row"], row["Column"], row["Found"]) == ("sites.csv", "1", "country_code", "XX")
    assert not [b for b in at.button if b.key == "import_confirm"]
    at.text_input(key="import_folder").input(str(tmp_path / "seed")).run()
    at.button(key="import_validate").click().run()
    assert any("outside the import folder" in e.value for e in at.error)


def test_data_page_lists_provenance_for_roles_that_cannot_load(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    commit(prepare_tables(write_portfolio(tmp_path / "seed"), db), db)
    close_all()
    at = _data_page(monkeypatch, db, tmp_path, user="local")
    assert not at.exception
    assert any("may not load data" in w.value for w in at.warning)
    assert not [r for r in at.radio if r.key == "import_kind"]
    studies = _frame_with(at, "Source")
    assert studies.set_index("Study").at["STX-1", "Source"] == "Operational tables"

