"""Importing the real ClinicalTrials.gov exports; facts counted independently with the csv module."""

from __future__ import annotations

import csv
import json
from collections import Counter

import duckdb
import pytest

from analytics.core import warehouse
from analytics.cli import main as cli
from analytics.importers.ctgov import prepare_ctgov, split_locations
from analytics.importers.staging import commit
from analytics.core.warehouse import close_all
from tests.import_helpers import open_page, CTGOV, needs_shared_data

pytestmark = needs_shared_data
EXPORTS = ("alzheimer_ctg-studies.csv", "pragmatic_aging_ctg-studies.csv")


def csv_facts(name: str) -> tuple[int, Counter, set[str]]:
    """(studies, phase split with '' as missing, header) read with the standard csv module."""
    with open(CTGOV / name, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    return len({r["NCT Number"] for r in rows}), Counter(r["Phases"] for r in rows), set(reader.fieldnames)


def rows(db, sql):
    with warehouse.inspect(db) as con:
        return con.execute(sql).fetchall()


def test_the_two_exports_have_different_headers():
    _, _, alzheimer = csv_facts(EXPORTS[0])
    _, _, pragmatic = csv_facts(EXPORTS[1])
    assert alzheimer != pragmatic and "NCT Number" in alzheimer & pragmatic
    assert "Study URL" in alzheimer - pragmatic and "Brief Summary" in pragmatic - alzheimer


@pytest.mark.parametrize("name", EXPORTS)
def test_each_export_loads_every_study_with_its_phase_split(tmp_path, name):
    studies, phases, _ = csv_facts(name)
    db = tmp_path / "w.duckdb"
    assert cli(["import", "ctgov", str(CTGOV / name), "--db", str(db)]) == 0
    close_all()
    assert rows(db, "SELECT count(*) FROM main.historical_trials WHERE data_source = 'ctgov'") == [(studies,)]
    loaded = Counter({(p or ""): n for p, n in rows(db, "SELECT phase, count(*) FROM main.historical_trials GROUP BY 1")})
    assert loaded == phases
    print(name, studies, dict(phases))


def test_alzheimer_export_facts(tmp_path):
    """Spot facts a user would check: 717 studies, 26 PHASE1|PHASE2, month-precision completion dates."""
    db = tmp_path / "w.duckdb"
    commit(prepare_ctgov(CTGOV / EXPORTS[0]), db)
    with open(CTGOV / EXPORTS[0], newline="", encoding="utf-8-sig") as fh:
        source = {r["NCT Number"]: r for r in csv.DictReader(fh)}
    month_precision = sum(1 for r in source.values() if len(r["Completion Date"]) == 7)
    assert rows(db, "SELECT count(*) FROM main.historical_trials") == [(len(source),)] == [(717,)]
    assert rows(db, "SELECT count(*) FROM main.historical_trials WHERE phase = 'PHASE1|PHASE2'") == [(26,)]
    assert rows(db, "SELECT count(*) FROM main.historical_trials WHERE completion_date_precision = 'month'") == [
        (month_precision,)]
    first = source["NCT07251023"]
    n_sites, countries = rows(db, "SELECT n_sites, countries FROM main.historical_trials WHERE nct_id = 'NCT07251023'")[0]
    assert n_sites == len(first["Locations"].split("|")) and countries == "Russia"
    assert rows(db, "SELECT completion_date, completion_date_precision FROM main.historical_trials "
                    "WHERE nct_id = 'NCT07251023'")[0] == (__import__("datetime").date(2027, 5, 1), "month")
    close_all()


def test_reimport_updates_instead_of_duplicating(tmp_path):
    db = tmp_path / "w.duckdb"
    commit(prepare_ctgov(CTGOV / EXPORTS[0]), db)
    commit(prepare_ctgov(CTGOV / EXPORTS[0]), db)
    assert rows(db, "SELECT count(*) FROM main.historical_trials") == [(717,)]
    subset = tmp_path / "subset.csv"
    subset.write_text("NCT Number,Enrollment\nNCT07251023,999\n")
    commit(prepare_ctgov(subset), db)
    assert rows(db, "SELECT enrollment, title IS NOT NULL, phase FROM main.historical_trials "
                    "WHERE nct_id = 'NCT07251023'") == [(999, True, "PHASE3")]
    assert rows(db, "SELECT count(*) FROM main.historical_trials") == [(717,)]
    both = {r[0] for r in rows(db, "SELECT nct_id FROM main.historical_trials")}
    commit(prepare_ctgov(CTGOV / EXPORTS[1]), db)
    with open(CTGOV / EXPORTS[1], newline="", encoding="utf-8-sig") as fh:
        both |= {r["NCT Number"] for r in csv.DictReader(fh)}
    assert rows(db, "SELECT count(*) FROM main.historical_trials") == [(len(both),)]
    assert rows(db, "SELECT count(*) FROM main.data_provenance WHERE source_type = 'ctgov'") == [(3,)]
    close_all()


def test_api_v2_json_records(tmp_path):
    document = {"studies": [{"protocolSection": {
        "identificationModule": {"nctId": "NCT01234567", "briefTitle": "A trial"},
        "statusModule": {"overallStatus": "COMPLETED", "startDateStruct": {"date": "2019-03"},
                         "completionDateStruct": {"date": "2021-07-15"}},
        "conditionsModule": {"conditions": ["Alzheimer Disease", "Dementia"]},
        "designModule": {"phases": ["PHASE2", "PHASE3"], "enrollmentInfo": {"count": 412}},
        "contactsLocationsModule": {"locations": [
            {"facility": "Clinic A", "city": "Lyon", "country": "France"},
            {"facility": "Clinic B", "city": "Boston", "state": "Massachusetts", "country": "United States"},
            {"facility": "Clinic C", "city": "Paris", "country": "France"}]}}}]}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(document))
    db = tmp_path / "w.duckdb"
    commit(prepare_ctgov(path), db)
    assert rows(db, "SELECT phase, enrollment, n_sites, countries, start_date_precision, conditions "
                    "FROM main.historical_trials") == [
        ("PHASE2|PHASE3", 412, 3, "France|United States", "month", "Alzheimer Disease|Dementia")]
    close_all()


def test_duplicate_nct_numbers_refuse_the_load(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("NCT Number,Phases\nNCT00000001,PHASE1\nNCT00000002,PHASE2\nNCT00000001,PHASE3\n")
    load = prepare_ctgov(path)
    assert load.report.refused
    assert [i.text() for i in load.report.errors] == [
        "dup.csv, row 3, column NCT Number: duplicate key; expected a unique key (first seen on row 1), "
        "found 'NCT Number=NCT00000001'"]


def test_bad_rows_are_counted_and_listed_not_dropped_silently(tmp_path):
    path = tmp_path / "messy.csv"
    path.write_text("NCT Number,Enrollment,Start Date\nNCT00000001,12,2020-01\nnot-an-id,5,2020-02\n"
                    "NCT00000003,lots,2020-13\n")
    load = prepare_ctgov(path)
    assert not load.report.refused
    assert load.report.rejected_rows() == 1
    texts = [i.text() for i in load.report.warnings]
    assert "messy.csv, row 2, column NCT Number: not an NCT number; trial left out; expected NCT followed by " \
           "8 digits, found 'not-an-id'" in texts
    assert any(t.startswith("messy.csv, row 3, column Enrollment") for t in texts)
    assert any(t.startswith("messy.csv, row 3, column Start Date") for t in texts)
    assert load.row_counts() == {"historical_trials": 2}


def test_a_file_without_nct_numbers_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("Title,Phase\nx,PHASE1\n")
    load = prepare_ctgov(path)
    assert load.report.refused
    assert "key column is missing" in load.report.errors[0].text()
    assert "NCT Number" in load.report.errors[0].text()


def test_locations_split():
    assert split_locations("A, Kazan', 420101, Russia|B, Moscow, 115516, Russia|C, Oslo, Norway") == (3, "Russia|Norway")
    assert split_locations("") == (None, None)


@needs_shared_data
def test_data_page_uploads_validates_and_loads_an_export(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("CRO_WAREHOUSE", str(db))
    monkeypatch.setenv("CRO_USER", "data_manager")
    commit(prepare_ctgov(CTGOV / "pragmatic_aging_ctg-studies.csv"), db)  # a warehouse to load into
    close_all()
    at = open_page("pages/data.py")
    at.radio(key="import_kind").set_value("ctgov").run()
    export = CTGOV / "alzheimer_ctg-studies.csv"
    at.file_uploader(key="import_upload_ctgov").upload(export.name, export.read_bytes(), "text/csv").run()
    at.button(key="import_validate").click().run()
    assert not at.exception
    assert [m.value for m in at.metric if m.label == "Errors"] == ["0"]
    at.button(key="import_confirm").click().run()
    assert not at.exception
    assert any("Loaded" in s.value for s in at.success)
    def nct_numbers(name: str) -> set[str]:
        with open(CTGOV / name, newline="", encoding="utf-8-sig") as fh:
            return {r["NCT Number"] for r in csv.DictReader(fh)}

    uploaded, existing = nct_numbers("alzheimer_ctg-studies.csv"), nct_numbers("pragmatic_aging_ctg-studies.csv")
    # NCT numbers present in both exports are updated, not duplicated.
    assert rows(db, "SELECT count(*) FROM main.historical_trials")[0][0] == len(uploaded | existing)
