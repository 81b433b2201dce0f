"""Importing a site's pre-screening list: FHIR R4 bundles and CSV, de-identified, replacing the site's pool;
bad input refused with file, entry or row, and column, the warehouse left as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from analytics.core import warehouse
from analytics.importers.prescreen import prepare_prescreen, prescreen_contract_markdown, pseudonym
from analytics.importers.report import ImportRefused
from analytics.importers.staging import commit

SITE = "ST001-1001"
SCREENED = dt.date(2026, 11, 1)
REPO = Path(__file__).resolve().parents[1]


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


PATIENT = {"resourceType": "Patient", "id": "mrn-001", "gender": "female", "birthDate": "1960-11-15",
           "name": [{"family": "Doe", "given": ["Jane"]}], "address": [{"city": "Springfield"}],
           "telecom": [{"system": "phone", "value": "555-0100"}]}
RECORDS = (
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/mrn-001"},
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"},
                         {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
     "onsetDateTime": "2015-03-01", "clinicalStatus": {"coding": [{"code": "active"}]},
     "verificationStatus": {"coding": [{"code": "confirmed"}]}},
    {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/mrn-001"},
     "code": {"coding": [{"system": "http://loinc.org", "code": "59261-8"}], "text": "HbA1c (IFCC)"},
     "valueQuantity": {"value": 64, "unit": "mmol/mol"}, "effectiveDateTime": "2026-10-01T08:30:00Z"},
    {"resourceType": "Observation", "id": "o2", "status": "entered-in-error", "subject": {"reference": "Patient/mrn-001"},
     "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}, "valueQuantity": {"value": 12, "unit": "%"},
     "effectiveDateTime": "2026-10-02"},
    {"resourceType": "MedicationStatement", "id": "m1", "status": "completed", "subject": {"reference": "Patient/mrn-001"},
     "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312615"}],
                                   "text": "prednisone 5 mg oral tablet"},
     "effectivePeriod": {"start": "2026-06-01", "end": "2026-10-10"}},
)


PROBLEM_LIST = {"system": "http://loinc.org", "code": "11450-4"}
MEDICATION_LIST = {"system": "http://loinc.org", "code": "10160-0"}


@pytest.fixture
def db(tiny_db: Path, tmp_path: Path) -> Path:
    return warehouse.copy_warehouse(tiny_db, tmp_path / "warehouse.duckdb")


def _site_rows(db: Path, table: str) -> list[tuple]:
    with warehouse.inspect(db) as con:
        return con.execute(f"SELECT * FROM main.{table} WHERE study_site_id = ? ORDER BY 1", [SITE]).fetchall()


def test_a_fhir_bundle_is_loaded_de_identified_and_replaces_the_sites_pool(db: Path, tmp_path: Path) -> None:
    before = len(_site_rows(db, "prescreen_patients"))
    assert before > 0  # the generated pool
    path = tmp_path / "export.json"
    path.write_text(json.dumps(bundle(PATIENT, {"resourceType": "Patient", "id": "mrn-002", "gender": "male"}, *RECORDS)))
    load = prepare_prescreen(path, db, SITE, SCREENED)
    assert not load.report.refused, load.report.summary_lines()
    commit(load, db)
    patients = _site_rows(db, "prescreen_patients")
    assert len(patients) == 2
    with warehouse.inspect(db) as con:
        jane = con.execute("SELECT patient_id, sex, age, screening_date, source FROM main.prescreen_patients "
                           "WHERE patient_id = ?", [pseudonym(SITE, "mrn-001")]).fetchone()
        everything = json.dumps(con.execute("SELECT * FROM main.prescreen_patients").fetchall(), default=str)
        observations = con.execute("SELECT code, value, unit FROM main.prescreen_observations WHERE study_site_id = ?",
                                   [SITE]).fetchall()
        condition = con.execute("SELECT code, code_system FROM main.prescreen_conditions WHERE study_site_id = ?",
                                [SITE]).fetchone()
    assert jane == (pseudonym(SITE, "mrn-001"), "F", 65, SCREENED, "fhir")  # 65 at screening; born 1960-11-15
    for identifying in ("Doe", "Jane", "Springfield", "555-0100", "1960-11-15", "mrn-001"):
        assert identifying not in everything
    assert observations == [("59261-8", 64.0, "mmol/mol")]  # the entered-in-error result is skipped
    assert condition == ("E11.9", "ICD-10-CM")  # the ICD-10-CM coding is preferred over SNOMED CT


def test_a_csv_export_per_the_contract(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "patients.csv").write_text("patient_id,sex,birth_date,name\nA1,male,1950-01-02,John\nA2,F,,Ann\n")
    (folder / "observations.csv").write_text("patient_id,code,value,unit,effective_date\nA1,2160-0,1.4,mg/dL,2026-09-01\n")
    load = prepare_prescreen(folder, db, SITE, SCREENED)
    assert not load.report.refused
    assert any("not in the contract" in i.message and i.column == "name" for i in load.report.warnings)
    commit(load, db)
    ages = {row[0]: row[4] for row in _site_rows(db, "prescreen_patients")}
    assert ages == {pseudonym(SITE, "A1"): 76, pseudonym(SITE, "A2"): None}


@pytest.mark.parametrize(("files", "expected"), [
    ({"export.json": bundle(PATIENT, {"resourceType": "Observation", "id": "x", "status": "final",
                                      "code": {"text": "HbA1c"}, "valueQuantity": {"value": "high"}})},
     ("export.json", 2, "valueQuantity.value")),
    ({"export.json": bundle(PATIENT, {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/nobody"},
                                      "code": {"text": "asthma"}})}, ("export.json", 2, "patient_id")),
    ({"patients.csv": "patient_id,birth_date\nA1,1950-13-40\n"}, ("patients.csv", 1, "birth_date")),
    ({"patients.csv": "sex\nM\n"}, ("patients.csv", None, "patient_id")),
    ({"patients.csv": "patient_id,conditions_complete\nA1,yes\nA2,maybe\n"}, ("patients.csv", 2, "conditions_complete")),
    ({"export.json": bundle(PATIENT, {"resourceType": "List", "status": "current", "mode": "snapshot",
                                      "subject": {"reference": "Patient/nobody"}, "code": {"coding": [PROBLEM_LIST]},
                                      "emptyReason": {"coding": [{"code": "nilknown"}]}})}, ("export.json", 2, "subject")),
])
def test_bad_input_is_refused_naming_file_row_and_column_and_nothing_changes(db: Path, tmp_path: Path, files,
                                                                             expected) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    load = prepare_prescreen(folder, db, SITE, SCREENED)
    assert load.report.refused
    error = load.report.errors[0]
    assert (error.file, error.row, error.column) == expected
    with pytest.raises(ImportRefused):
        commit(load, db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_an_unknown_study_site_is_refused(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(bundle(PATIENT)))
    load = prepare_prescreen(path, db, "NO-SUCH-SITE", SCREENED)
    assert load.report.refused and load.report.errors[0].found == "NO-SUCH-SITE"


def test_the_published_contract_is_current() -> None:
    assert (REPO / "data" / "PRESCREEN_CONTRACT.md").read_text(encoding="utf-8") == prescreen_contract_markdown()


def _completeness(db: Path) -> dict[str, tuple]:
    with warehouse.inspect(db) as con:
        rows = con.execute("SELECT patient_id, conditions_complete, medications_complete FROM main.prescreen_patients "
                           "WHERE study_site_id = ?", [SITE]).fetchall()
    return {p: (c, m) for p, c, m in rows}


def test_csv_states_whether_each_patients_lists_are_complete(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "patients.csv").write_text("patient_id,sex,age,conditions_complete,medications_complete\n"
                                         "A1,F,50,yes,No\nA2,M,60,,TRUE\n")
    load = prepare_prescreen(folder, db, SITE, SCREENED)
    assert not load.report.refused, load.report.summary_lines()
    # Not stated and "no" are both not complete, and the report counts them.
    warned = {i.column: i.message for i in load.report.warnings if "not stated complete" in i.message}
    assert warned["conditions_complete"].startswith("1 of 2") and warned["medications_complete"].startswith("1 of 2")
    commit(load, db)
    assert _completeness(db) == {pseudonym(SITE, "A1"): (True, False), pseudonym(SITE, "A2"): (None, True)}


def test_fhir_lists_state_completeness_per_patient_and_kind(db: Path, tmp_path: Path) -> None:
    def listed(patient: str, code: dict, **fields) -> dict:
        return {"resourceType": "List", "status": "current", "mode": "working", "code": {"coding": [code]},
                "subject": {"reference": f"Patient/{patient}"}, **fields}

    resources = [PATIENT, {"resourceType": "Patient", "id": "mrn-002", "gender": "male"},
                 {"resourceType": "Patient", "id": "mrn-003", "gender": "male"}, *RECORDS,
                 listed("mrn-001", PROBLEM_LIST, entry=[{"item": {"reference": "Condition/c1"}}]),
                 listed("mrn-001", MEDICATION_LIST, emptyReason={"coding": [{"code": "notasked"}]}),
                 listed("mrn-002", PROBLEM_LIST, mode="snapshot", emptyReason={"coding": [{"code": "nilknown"}]}),
                 listed("mrn-002", MEDICATION_LIST, mode="changes", entry=[{"item": {"reference": "X/1"}}]),
                 listed("mrn-003", MEDICATION_LIST, status="entered-in-error"),
                 {"resourceType": "List", "status": "current", "mode": "working", "code": {"text": "allergies"}}]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(bundle(*resources)))
    load = prepare_prescreen(path, db, SITE, SCREENED)
    assert not load.report.refused, load.report.summary_lines()
    assert any("neither a problem list" in i.message and i.row == len(resources) for i in load.report.warnings)
    commit(load, db)
    assert _completeness(db) == {pseudonym(SITE, "mrn-001"): (True, False),  # entries; not asked
                                 pseudonym(SITE, "mrn-002"): (True, False),  # nil known; only changes
                                 pseudonym(SITE, "mrn-003"): (None, None)}  # no List that says anything


def test_an_imported_list_not_stated_complete_leaves_absence_unknown(db: Path, tmp_path: Path) -> None:
    from analytics.core.scope import AccessScope, PortfolioFilter
    from analytics.core.warehouse import Warehouse
    from analytics.recruitment import service
    from analytics.recruitment.matching import MET, UNKNOWN, match
    from analytics.recruitment.parser import parse_criteria

    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "patients.csv").write_text("patient_id,sex,age,conditions_complete\nA1,F,50,yes\nA2,F,50,\nA3,F,50,no\n")
    (folder / "conditions.csv").write_text("patient_id,code,display,onset_date,clinical_status\n"
                                           "A3,I21.9,Myocardial infarction,2026-09-01,active\n")
    load = prepare_prescreen(folder, db, SITE, SCREENED)
    commit(load, db)
    wh = Warehouse.open(db)
    scope = AccessScope.full_access(blinded=True)
    study = wh.query(scope, "SELECT study_id FROM study_sites WHERE study_site_id = $s", {"s": SITE})["study_id"].iloc[0]
    pool = service.load_pool(wh, scope, PortfolioFilter(), str(study))
    criteria = parse_criteria("Exclusion Criteria:\n* Myocardial infarction within 6 months before screening")
    passes = dict(zip(pool.patients["patient_id"], match(pool, criteria).passes[:, 0]))
    # A1's list is complete: no infarction. A2 (not stated): unknown. A3's incomplete list still shows one: fails.
    assert [passes[pseudonym(SITE, p)] for p in ("A1", "A2", "A3")] == [MET, UNKNOWN, 0]


def test_migration_10_marks_generated_pools_complete_and_leaves_imported_ones_not_stated() -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE main.prescreen_patients (patient_id VARCHAR, source VARCHAR)")  # the version 9 shape, in part
    con.execute("INSERT INTO main.prescreen_patients VALUES ('G1', 'synthetic'), ('F1', 'fhir'), ('C1', 'csv')")
    for _ in range(2):  # idempotent
        warehouse.MIGRATIONS[10][1](con)
    rows = con.execute("SELECT patient_id, conditions_complete, medications_complete FROM main.prescreen_patients "
                       "ORDER BY patient_id").fetchall()
    assert rows == [("C1", None, None), ("F1", None, None), ("G1", True, True)]
