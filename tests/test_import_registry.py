"""ClinicalTrials.gov in every shape the site has delivered: classic CSV, JSON record, API pages, "Download JSON" zip."""

from __future__ import annotations

import csv
import datetime as dt
import json
import zipfile

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from analytics.core import warehouse
from analytics.cli import main as cli
from analytics.core.warehouse import close_all
from analytics.importers import archives
from analytics.importers.ctgov import prepare_ctgov
from analytics.importers.sources import Limits, sha256_of
from analytics.importers.staging import commit
from tests.import_helpers import CTGOV, sha256

CLASSIC_HEADER = ["Rank", "NCT Number", "Title", "Acronym", "Status", "Study Results", "Conditions", "Interventions",
                  "Outcome Measures", "Sponsor/Collaborators", "Gender", "Age", "Phases", "Enrollment", "Funded Bys",
                  "Study Type", "Study Designs", "Other IDs", "Start Date", "Primary Completion Date", "Completion Date",
                  "First Posted", "Results First Posted", "Last Update Posted", "Locations", "Study Documents", "URL"]
CLASSIC_ROWS = [
    ["1", "NCT01000001", "Drug X in Mild Alzheimer's Disease", "DX-AD", "Completed", "Has Results",
     "Alzheimer Disease|Dementia", "Drug: Drug X|Drug: Placebo", "ADAS-Cog change|Adverse events",
     "Acme Pharma|University of Lyon", "All", "50 Years to 85 Years   (Adult, Older Adult)", "Phase 2|Phase 3", "412",
     "Industry|Other", "Interventional", "Allocation: Randomized", "DX-201", "October 2014", "June 7, 2018",
     "December 2018", "October 20, 2014", "", "May 1, 2019",
     "Clinic A, Boston, Massachusetts, 02115, United States|Clinic B, Lyon, France|Clinic C, Paris, France", "",
     "https://ClinicalTrials.gov/show/NCT01000001"],
    ["2", "NCT01000002", "First-in-human study", "", "Recruiting", "No Results Available", "Healthy Volunteers",
     "Drug: Y-12", "Safety", "Small Bio", "Female", "18 Years and older   (Adult, Older Adult)", "Early Phase 1", "30",
     "NIH", "Interventional", "", "", "January 2020", "", "March 2021", "January 5, 2020", "", "", "", "",
     "https://ClinicalTrials.gov/show/NCT01000002"],
    ["3", "NCT01000003", "Paediatric registry", "", "Active, not recruiting", "No Results Available", "Asthma", "",
     "", "Children's Hospital", "Male", "up to 17 Years   (Child)", "Not Applicable", "1000", "Other",
     "Observational", "", "", "May 3, 2016", "May 3, 2019", "May 3, 2020", "", "", "", "Site D, Oslo, Norway", "",
     "https://ClinicalTrials.gov/show/NCT01000003"],
    ["4", "NCT01000004", "Status unknown", "", "Unknown status", "No Results Available", "Obesity", "",
     "", "Federal Agency", "All", "Child, Adult, Older Adult", "", "50", "U.S. Fed", "Interventional", "", "",
     "September 2015", "", "", "", "", "", "", "", "https://ClinicalTrials.gov/show/NCT01000004"],
]


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def fetch(db, sql, params=None):
    with warehouse.inspect(db) as con:
        return con.execute(sql, params or []).fetchall()


def loaded(path, db, **kwargs):
    load = prepare_ctgov(path, **kwargs)
    assert not load.report.refused, [i.text() for i in load.report.errors]
    commit(load, db)
    close_all()
    return load


def test_classic_search_results_csv_loads_every_shared_column(tmp_path, capsys):
    path = write_csv(tmp_path / "SearchResults.csv", CLASSIC_HEADER, CLASSIC_ROWS)
    db = tmp_path / "w.duckdb"
    assert cli(["import", "ctgov", str(path), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    close_all()
    assert fetch(db, "SELECT nct_id, title, status, phase, enrollment, study_type, sponsor, sponsor_class, sex, "
                     "min_age_years, max_age_years, age_groups FROM main.historical_trials ORDER BY nct_id") == [
        ("NCT01000001", "Drug X in Mild Alzheimer's Disease", "COMPLETED", "PHASE2|PHASE3", 412, "INTERVENTIONAL",
         "Acme Pharma", "INDUSTRY|OTHER", "ALL", 50.0, 85.0, "ADULT|OLDER_ADULT"),
        ("NCT01000002", "First-in-human study", "RECRUITING", "EARLY_PHASE1", 30, "INTERVENTIONAL", "Small Bio", "NIH",
         "FEMALE", 18.0, None, "ADULT|OLDER_ADULT"),
        ("NCT01000003", "Paediatric registry", "ACTIVE_NOT_RECRUITING", "NA", 1000, "OBSERVATIONAL",
         "Children's Hospital", "OTHER", "MALE", None, 17.0, "CHILD"),
        ("NCT01000004", "Status unknown", "UNKNOWN", None, 50, "INTERVENTIONAL", "Federal Agency", "FED", "ALL", None,
         None, "CHILD|ADULT|OLDER_ADULT"),
    ]
    assert fetch(db, "SELECT nct_id, start_date, start_date_precision, primary_completion_date, "
                     "primary_completion_date_precision, completion_date, completion_date_precision "
                     "FROM main.historical_trials ORDER BY nct_id") == [
        ("NCT01000001", dt.date(2014, 10, 1), "month", dt.date(2018, 6, 7), "day", dt.date(2018, 12, 1), "month"),
        ("NCT01000002", dt.date(2020, 1, 1), "month", None, None, dt.date(2021, 3, 1), "month"),
        ("NCT01000003", dt.date(2016, 5, 3), "day", dt.date(2019, 5, 3), "day", dt.date(2020, 5, 3), "day"),
        ("NCT01000004", dt.date(2015, 9, 1), "month", None, None, None, None),
    ]
    assert fetch(db, "SELECT nct_id, n_sites, countries, conditions, interventions, primary_outcome "
                     "FROM main.historical_trials ORDER BY nct_id")[:3] == [
        ("NCT01000001", 3, "United States|France", "Alzheimer Disease|Dementia", "Drug: Drug X|Drug: Placebo", None),
        ("NCT01000002", None, None, "Healthy Volunteers", "Drug: Y-12", None),
        ("NCT01000003", 1, "Norway", "Asthma", None, None)]
    assert fetch(db, "SELECT nct_id, site_number, facility, country FROM main.historical_trial_sites "
                     "ORDER BY nct_id, site_number") == [
        ("NCT01000001", 1, "Clinic A, Boston, Massachusetts, 02115", "United States"),
        ("NCT01000001", 2, "Clinic B, Lyon", "France"), ("NCT01000001", 3, "Clinic C, Paris", "France"),
        ("NCT01000003", 1, "Site D, Oslo", "Norway")]
    assert "column Outcome Measures: column not mapped to the primary outcome" in out
    line = next(l for l in out.splitlines() if l.strip().startswith("SearchResults.csv"))
    assert line.split()[1:4] == ["ClinicalTrials.gov", "4", "4"]


def test_a_column_that_parses_for_no_row_refuses_the_file(tmp_path):
    rows = [r[:] for r in CLASSIC_ROWS]
    for row in rows:
        row[18] = "Octobre 2014"  # a form the site never used
    path = write_csv(tmp_path / "SearchResults.csv", CLASSIC_HEADER, rows)
    load = prepare_ctgov(path)
    assert load.report.refused
    assert [i.text() for i in load.report.errors] == [
        "SearchResults.csv, column Start Date: no value of this column could be read (4 non-empty); the file is refused "
        "rather than loaded empty; expected YYYY-MM, YYYY-MM-DD, 'October 2014' or 'June 7, 2018'"]


def test_one_unreadable_value_is_a_warning_with_its_row(tmp_path):
    rows = [r[:] for r in CLASSIC_ROWS]
    rows[1][12] = "Phase Two"
    path = write_csv(tmp_path / "SearchResults.csv", CLASSIC_HEADER, rows)
    load = prepare_ctgov(path)
    assert not load.report.refused
    assert ("SearchResults.csv, row 2, column Phases: unrecognised phase; kept as written; expected EARLY_PHASE1, "
            "PHASE1..PHASE4 or NA (also 'Phase 1', 'Early Phase 1', 'Not Applicable'), separated by |, "
            "found 'Phase Two'") in [i.text() for i in load.report.warnings]


def study(nct, *, sites=(), minimum="18 Years", maximum=None, healthy=False, sponsor_class="INDUSTRY"):
    """A ClinicalTrials.gov API v2 study record (as each member of the "Download JSON" zip holds)."""
    eligibility = {"eligibilityCriteria": f"Inclusion Criteria:\n\n* adults ({nct})\n\nExclusion Criteria:\n\n* none",
                   "healthyVolunteers": healthy, "sex": "ALL", "minimumAge": minimum, "stdAges": ["ADULT", "OLDER_ADULT"]}
    if maximum:
        eligibility["maximumAge"] = maximum
    return {"protocolSection": {
        "identificationModule": {"nctId": nct, "briefTitle": f"Study {nct}"},
        "statusModule": {"overallStatus": "COMPLETED", "startDateStruct": {"date": "2019-03"},
                         "primaryCompletionDateStruct": {"date": "2020-11-30"},
                         "completionDateStruct": {"date": "2021-07-15"}},
        "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Acme", "class": sponsor_class}},
        "conditionsModule": {"conditions": ["Overactive Bladder"]},
        "designModule": {"studyType": "INTERVENTIONAL", "phases": ["PHASE3"], "enrollmentInfo": {"count": 120}},
        "armsInterventionsModule": {"interventions": [{"type": "DRUG", "name": "Mirabegron"}]},
        "eligibilityModule": eligibility,
        "outcomesModule": {"primaryOutcomes": [{"measure": "Micturitions per day"}, {"measure": "Urgency episodes"}]},
        "contactsLocationsModule": {"locations": [
            {"facility": f, "city": c, "state": s, "zip": z, "country": n, "status": "COMPLETED"}
            for f, c, s, z, n in sites]},
    }, "hasResults": False}


SITES = [("Uro Clinic", "Houston", "Texas", "77030", "United States"), ("Klinik", "Berlin", None, "10117", "Germany")]


def write_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data if isinstance(data, (bytes, str)) else json.dumps(data))
    return path


def test_the_websites_json_zip_loads_eligibility_ages_sites_and_outcomes(tmp_path):
    path = write_zip(tmp_path / "ctg-studies.json.zip", {
        "NCT02000001.json": study("NCT02000001", sites=SITES, minimum="6 Months", maximum="65 Years", healthy=True),
        "NCT02000002.json": study("NCT02000002", sites=SITES[:1], sponsor_class="NIH"),
        "NCT02000003.json": study("NCT02000003"),
        "README.txt": "not a study",
    })
    db = tmp_path / "w.duckdb"
    load = loaded(path, db)
    assert fetch(db, "SELECT nct_id, min_age_years, max_age_years, sex, healthy_volunteers, sponsor_class, "
                     "primary_outcome, n_sites, countries, start_date_precision, primary_completion_date "
                     "FROM main.historical_trials ORDER BY nct_id") == [
        ("NCT02000001", 0.5, 65.0, "ALL", True, "INDUSTRY", "Micturitions per day|Urgency episodes", 2,
         "United States|Germany", "month", dt.date(2020, 11, 30)),
        ("NCT02000002", 18.0, None, "ALL", False, "NIH", "Micturitions per day|Urgency episodes", 1, "United States",
         "month", dt.date(2020, 11, 30)),
        ("NCT02000003", 18.0, None, "ALL", False, "INDUSTRY", "Micturitions per day|Urgency episodes", None, None,
         "month", dt.date(2020, 11, 30)),
    ]
    assert fetch(db, "SELECT eligibility_criteria FROM main.historical_trials WHERE nct_id = 'NCT02000002'")[0][0] == (
        "Inclusion Criteria:\n\n* adults (NCT02000002)\n\nExclusion Criteria:\n\n* none")
    assert fetch(db, "SELECT * FROM main.historical_trial_sites ORDER BY nct_id, site_number") == [
        ("NCT02000001", 1, "Uro Clinic", "Houston", "Texas", "77030", "United States", "COMPLETED"),
        ("NCT02000001", 2, "Klinik", "Berlin", None, "10117", "Germany", "COMPLETED"),
        ("NCT02000002", 1, "Uro Clinic", "Houston", "Texas", "77030", "United States", "COMPLETED")]
    assert any("1 archive member(s) are not .json files; ignored" in i.message for i in load.report.issues)
    assert (load.report.datasets["ctg-studies.json.zip"].read, load.report.datasets["ctg-studies.json.zip"].loaded) == (3, 3)


def test_single_study_json_and_both_api_shapes_give_the_same_rows(tmp_path):
    record = study("NCT03000001", sites=SITES)
    results = []
    for name, document in (("one.json", record), ("page.json", {"studies": [record]}), ("list.json", [record])):
        path = tmp_path / name
        path.write_text(json.dumps(document))
        db = tmp_path / f"{name}.duckdb"
        loaded(path, db)
        # The same trial in each shape; only the export each row names differs (its file and checksum).
        results.append((fetch(db, "SELECT * EXCLUDE (data_source, export_file, export_sha256) "
                                  "FROM main.historical_trials"),
                        fetch(db, "SELECT * FROM main.historical_trial_sites")))
        assert fetch(db, "SELECT export_file, export_sha256 FROM main.historical_trials") == [(name, sha256_of(path))]
    assert results[0] == results[1] == results[2]
    assert results[0][0][0][0] == "NCT03000001" and len(results[0][1]) == 2


def test_a_reimport_replaces_a_trials_site_list(tmp_path):
    db = tmp_path / "w.duckdb"
    first = tmp_path / "first.json"
    first.write_text(json.dumps(study("NCT03000002", sites=SITES)))
    loaded(first, db)
    second = tmp_path / "second.json"
    second.write_text(json.dumps(study("NCT03000002", sites=SITES[1:])))
    loaded(second, db)
    assert fetch(db, "SELECT site_number, city FROM main.historical_trial_sites") == [(1, "Berlin")]
    assert fetch(db, "SELECT n_sites, countries FROM main.historical_trials") == [(1, "Germany")]


def test_the_shared_urology_download_loads_all_300_studies(shared_data, tmp_path):
    path = shared_data / "ctgov" / "urology_ctg-studies.json.zip"
    with zipfile.ZipFile(path) as archive:
        records = [json.loads(archive.read(n))["protocolSection"] for n in archive.namelist()]
    eligibility = sum(1 for r in records if (r.get("eligibilityModule") or {}).get("eligibilityCriteria"))
    minimum = sum(1 for r in records if (r.get("eligibilityModule") or {}).get("minimumAge"))
    sites = sum(len((r.get("contactsLocationsModule") or {}).get("locations") or []) for r in records)
    db = tmp_path / "w.duckdb"
    assert cli(["import", "ctgov", str(path), "--db", str(db)]) == 0
    close_all()
    assert fetch(db, "SELECT count(*), count(eligibility_criteria), count(min_age_years), count(sex), "
                     "count(sponsor_class) FROM main.historical_trials") == [(300, eligibility, minimum, 300, 300)]
    assert fetch(db, "SELECT count(*) FROM main.historical_trial_sites") == [(sites,)]
    assert len(records) == 300 and eligibility == 300 and minimum == 289
    # Feasibility's complexity features: arms and secondary outcomes, counted here from the raw records.
    arms = {r["identificationModule"]["nctId"]: len(r["armsInterventionsModule"]["armGroups"]) for r in records
            if isinstance((r.get("armsInterventionsModule") or {}).get("armGroups"), list)}
    secondary = sum(1 for r in records if (r.get("outcomesModule") or {}).get("secondaryOutcomes"))
    stored = dict(fetch(db, "SELECT nct_id, arm_count FROM main.historical_trials WHERE arm_count IS NOT NULL"))
    assert stored == arms and len(arms) > 200
    assert fetch(db, "SELECT count(secondary_outcome) FROM main.historical_trials") == [(secondary,)]


@pytest.mark.parametrize("name", ["../evil.json", "/etc/passwd.json", "a/../../b.json"])
def test_a_zip_member_that_climbs_out_is_refused(tmp_path, name):
    path = write_zip(tmp_path / "x.zip", {"NCT04000001.json": study("NCT04000001"), name: study("NCT04000002")})
    db = tmp_path / "w.duckdb"
    load = prepare_ctgov(path)
    assert load.report.refused and not db.exists()
    assert (f"x.zip: archive member name leaves the archive (absolute path or '..'); refused; expected relative "
            f"member names, found '{name}'") in [i.text() for i in load.report.errors]


def test_zip_limits_on_members_size_and_compression(tmp_path, monkeypatch):
    bomb = write_zip(tmp_path / "bomb.zip", {"NCT04000003.json": b" " * (30 * 1024 * 1024)})
    assert "larger than the import size limit once decompressed" in prepare_ctgov(
        bomb, limits=Limits.from_megabytes(1)).report.errors[0].message
    assert "compressed suspiciously well" in prepare_ctgov(bomb).report.errors[0].message
    many = write_zip(tmp_path / "many.zip", {f"NCT0500000{k}.json": study(f"NCT0500000{k}") for k in range(3)})
    monkeypatch.setattr(archives, "MAX_MEMBERS", 2)
    assert prepare_ctgov(many).report.errors[0].text() == (
        "many.zip: the archive holds too many files; expected at most 2, found '3 files'")


def test_a_refused_registry_file_leaves_the_warehouse_byte_identical(tmp_path):
    db = tmp_path / "w.duckdb"
    loaded(write_csv(tmp_path / "ok.csv", CLASSIC_HEADER, CLASSIC_ROWS), db)
    before = sha256(db)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert cli(["import", "ctgov", str(broken), "--db", str(db)]) == 1
    assert sha256(db) == before
    assert prepare_ctgov(broken).report.errors[0].message == "not a readable zip archive"


def test_current_exports_still_load_with_their_new_columns(tmp_path):
    db = tmp_path / "w.duckdb"
    loaded(CTGOV / "pragmatic_aging_ctg-studies.csv", db)
    with open(CTGOV / "pragmatic_aging_ctg-studies.csv", newline="", encoding="utf-8-sig") as fh:
        source = list(csv.DictReader(fh))
    assert fetch(db, "SELECT sex, count(*) FROM main.historical_trials GROUP BY 1 ORDER BY 1") == sorted(
        {(s, sum(1 for r in source if r["Sex"] == s)) for s in {r["Sex"] for r in source}})
    assert fetch(db, "SELECT count(primary_outcome) FROM main.historical_trials") == [
        (sum(1 for r in source if r["Primary Outcome Measures"].strip()),)]
    assert fetch(db, "SELECT count(*) FROM main.historical_trial_sites") == [
        (sum(len([s for s in r["Locations"].split("|") if s.strip()]) for r in source),)]


CLASSIC_STATUS = {"ACTIVE_NOT_RECRUITING": "Active, not recruiting", "UNKNOWN": "Unknown status"}


def classic_rendering(current: Path, target: Path) -> Path:
    """Write a current "Download CSV" export the way the classic website worded it (headers, dates, phases)."""
    frame = pd.read_csv(current, dtype=str, keep_default_na=False)

    def worded(value: str) -> str:
        if len(value) == 7:
            return dt.date.fromisoformat(value + "-01").strftime("%B %Y")
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return f"{day.strftime('%B')} {day.day}, {day.year}"
        return value

    def phase(value: str) -> str:
        words = {"EARLY_PHASE1": "Early Phase 1", "NA": "Not Applicable"}
        return "|".join(words.get(p, p.replace("PHASE", "Phase ")) for p in value.split("|")) if value else ""

    frame["Study Status"] = frame["Study Status"].map(
        lambda s: CLASSIC_STATUS.get(s, s.replace("_", " ").capitalize()))
    frame["Phases"] = frame["Phases"].map(phase)
    frame["Sex"] = frame["Sex"].str.capitalize()
    for column in ("Start Date", "Primary Completion Date", "Completion Date"):
        frame[column] = frame[column].map(worded)
    frame = frame.rename(columns={"Study Title": "Title", "Study Status": "Status", "Sex": "Gender",
                                  "Funder Type": "Funded Bys", "Study Type": "Study Types"})
    frame.to_csv(target, index=False)
    return target


def test_a_classic_rendering_of_a_real_export_loads_the_same_trials(shared_data, tmp_path):
    current = shared_data / "ctgov" / "pragmatic_aging_ctg-studies.csv"
    classic = classic_rendering(current, tmp_path / "SearchResults.csv")
    compared = ["nct_id", "title", "status", "phase", "enrollment", "start_date", "start_date_precision",
                "primary_completion_date", "completion_date", "completion_date_precision", "sex", "sponsor_class",
                "n_sites", "countries"]
    # The validated tables a load would write (the write itself, and its derived refresh, are tested elsewhere).
    results = []
    for path in (current, classic):
        load = prepare_ctgov(path)
        assert not load.report.refused, [i.text() for i in load.report.errors]
        trials = load.tables["historical_trials"][compared].sort_values("nct_id").reset_index(drop=True)
        # Dates are days (stored as DATE); the two readers may hold them at other resolutions before the write.
        for column in trials.select_dtypes("datetime").columns:
            trials[column] = trials[column].astype("datetime64[s]")
        results.append(trials)
    assert len(results[0]) == 1_605
    pd.testing.assert_frame_equal(results[0], results[1])


def test_the_records_last_update_is_read_from_every_format_and_optional(tmp_path):
    # Current CSV: "Last Update Posted" as the API writes it, a month-precise value, an unreadable one.
    path = tmp_path / "ctg-studies.csv"
    path.write_text("NCT Number,Study Status,Start Date,Last Update Posted\n"
                    "NCT00000001,RECRUITING,2018-03,2020-11-19\nNCT00000002,RECRUITING,2018-04,2019-03\n"
                    "NCT00000003,COMPLETED,2018-05,2019-02-30\nNCT00000004,COMPLETED,2018-06,\n")
    load = prepare_ctgov(path)
    assert not load.report.refused
    trials = load.tables["historical_trials"].set_index("nct_id")
    assert trials.at["NCT00000001", "last_update_date"] == pd.Timestamp("2020-11-19")
    assert trials.at["NCT00000001", "last_update_date_precision"] == "day"
    # A month-precise date (ISO 8601 allows it) is the first of the month: the record was current at least then.
    assert trials.at["NCT00000002", "last_update_date"] == pd.Timestamp("2019-03-01")
    assert trials.at["NCT00000002", "last_update_date_precision"] == "month"
    assert pd.isna(trials.at["NCT00000003", "last_update_date"]) and pd.isna(trials.at["NCT00000004", "last_update_date"])
    assert any(t.startswith("ctg-studies.csv, row 3, column Last Update Posted: date not understood; left empty")
               and "found '2019-02-30'" in t for t in (i.text() for i in load.report.warnings))
    # Classic CSV ("May 1, 2019") and JSON records (statusModule.lastUpdatePostDateStruct.date).
    classic = prepare_ctgov(write_csv(tmp_path / "SearchResults.csv", CLASSIC_HEADER, CLASSIC_ROWS))
    assert classic.tables["historical_trials"].set_index("nct_id").at["NCT01000001", "last_update_date"] == \
        pd.Timestamp("2019-05-01")
    record = study("NCT02000001")
    record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2024-02-07", "type": "ACTUAL"}
    (tmp_path / "one.json").write_text(json.dumps(record))
    from_json = prepare_ctgov(tmp_path / "one.json").tables["historical_trials"]
    assert from_json["last_update_date"].tolist() == [pd.Timestamp("2024-02-07")]
    # An export without the column loads as before, and a re-import keeps the stored value.
    db = tmp_path / "w.duckdb"
    loaded(path, db)
    bare = tmp_path / "bare.csv"
    bare.write_text("NCT Number,Study Status,Start Date\nNCT00000001,ACTIVE_NOT_RECRUITING,2018-03\n")
    loaded(bare, db)
    assert fetch(db, "SELECT status, last_update_date FROM main.historical_trials WHERE nct_id = 'NCT00000001'") == [
        ("ACTIVE_NOT_RECRUITING", dt.date(2020, 11, 19))]


def test_the_shared_exports_last_updates_are_read_where_they_carry_them(shared_data):
    folder = shared_data / "ctgov"
    with open(folder / "pragmatic_aging_ctg-studies.csv", newline="", encoding="utf-8-sig") as fh:
        posted = {r["NCT Number"]: r["Last Update Posted"] for r in csv.DictReader(fh)}
    with zipfile.ZipFile(folder / "urology_ctg-studies.json.zip") as archive:
        for name in archive.namelist():
            status = json.loads(archive.read(name))["protocolSection"]
            posted[status["identificationModule"]["nctId"]] = status["statusModule"]["lastUpdatePostDateStruct"]["date"]
    read = {}
    for name in ("pragmatic_aging_ctg-studies.csv", "urology_ctg-studies.json.zip"):
        load = prepare_ctgov(folder / name)
        assert not load.report.refused
        trials = load.tables["historical_trials"]
        assert trials["last_update_date_precision"].eq("day").all()
        read.update({n: d.date().isoformat() for n, d in zip(trials["nct_id"], trials["last_update_date"])})
    assert read == posted and len(posted) == 1605 + 300
    # The Alzheimer export was downloaded without the column: it loads, its trials without a last update.
    alzheimer = prepare_ctgov(folder / "alzheimer_ctg-studies.csv")
    assert not alzheimer.report.refused and len(alzheimer.tables["historical_trials"]) == 717
    assert "last_update_date" not in alzheimer.tables["historical_trials"]


# Two exports downloaded on different days, built here: the older one carries "Last Update Posted" (one running
# trial's value is blank), the newer one lacks the column (dated by its latest start of a started trial).
OLDER_EXPORT = ("NCT Number,Study Status,Start Date,Completion Date,Last Update Posted\n"
                "NCT03000041,COMPLETED,2016-01-10,2019-05-20,2020-06-30\n"
                "NCT03000042,RECRUITING,2018-06-01,2027-01,\n")
NEWER_EXPORT = ("NCT Number,Study Status,Start Date,Completion Date\n"
                "NCT03000043,RECRUITING,2021-01-15,2027-01\n"
                "NCT03000044,ACTIVE_NOT_RECRUITING,2024-01-15,2028-01\n"
                "NCT03000045,NOT_YET_RECRUITING,2025-06,2029-01\n")
OLDER_AS_OF, NEWER_AS_OF = dt.date(2020, 6, 30), dt.date(2024, 1, 15)


def two_exports(tmp_path):
    """The two exports imported one after the other into one warehouse (older first)."""
    older = tmp_path / "older_ctg-studies.csv"
    older.write_text(OLDER_EXPORT)
    newer = tmp_path / "newer_ctg-studies.csv"
    newer.write_text(NEWER_EXPORT)
    db = tmp_path / "w.duckdb"
    loaded(older, db)
    loaded(newer, db)
    return db, older, newer


def test_two_exports_imported_into_one_warehouse_each_keep_their_own_date(tmp_path):
    from analytics.core.warehouse import Warehouse
    from analytics.feasibility import MONTH_DAYS, service
    from analytics.feasibility.trials import trial_table

    db, older, newer = two_exports(tmp_path)
    stored = fetch(db, "SELECT nct_id, export_file, export_sha256, export_as_of FROM main.historical_trials "
                       "ORDER BY nct_id")
    assert stored == [(f"NCT0300004{k}", path.name, sha256_of(path), date) for k, path, date in
                      ((1, older, OLDER_AS_OF), (2, older, OLDER_AS_OF), (3, newer, NEWER_AS_OF),
                       (4, newer, NEWER_AS_OF), (5, newer, NEWER_AS_OF))]
    # The app reads each record as of its own export: the older export's running trial (no last update) is
    # censored at the older export's date, not at the newer export's, nor at the warehouse's.
    wh = Warehouse.open(db)
    trials = trial_table(wh).set_index("nct_id")
    running = trials.loc["NCT03000042"]
    assert running["still_running"] and running["censored"]
    assert running["duration_months"] == pytest.approx((pd.Timestamp(OLDER_AS_OF) - pd.Timestamp("2018-06-01")).days
                                                       / MONTH_DAYS)
    assert trials.at["NCT03000043", "duration_months"] == pytest.approx(
        (pd.Timestamp(NEWER_AS_OF) - pd.Timestamp("2021-01-15")).days / MONTH_DAYS)
    # An ended trial could have been seen to run until its own export's date (the censoring weights read it).
    assert trials.at["NCT03000041", "follow_up_months"] == pytest.approx(
        (pd.Timestamp(OLDER_AS_OF) - pd.Timestamp("2016-01-10")).days / MONTH_DAYS)
    # The benchmarks and the Kaplan-Meier curve read the same table.
    from analytics.feasibility.trials import TrialSelection
    selection = TrialSelection(source="ctgov")
    behind = service.comparable(wh, selection).set_index("nct_id")
    assert behind.at["NCT03000042", "duration_months"] == running["duration_months"]
    curve = service.duration_curve(wh, selection)
    assert curve is not None and curve.quantile(0.5) == pytest.approx(trials.at["NCT03000041", "duration_months"])
    assert service.source_as_of(wh, "ctgov") == ("as of each record's export (30 Jun 2020 to 15 Jan 2024)", 0)
    close_all()


def test_reimporting_an_export_is_idempotent_and_a_bad_export_changes_nothing(tmp_path):
    db, older, newer = two_exports(tmp_path)
    table = "SELECT * EXCLUDE (therapeutic_area) FROM main.historical_trials ORDER BY nct_id"
    before = fetch(db, table)
    loaded(older, db)  # the older export again, after the newer one: its records keep their own date
    assert fetch(db, table) == before
    loaded(newer, db)
    assert fetch(db, table) == before
    # A bad export (its dates parse for no row) is refused: the warehouse is byte-for-byte as it was.
    digest = sha256(db)
    bad = tmp_path / "bad_ctg-studies.csv"
    bad.write_text("NCT Number,Study Status,Start Date,Last Update Posted\nNCT03000042,COMPLETED,2018-06-01,soon\n")
    assert cli(["import", "ctgov", str(bad), "--db", str(db)]) == 1
    assert sha256(db) == digest and fetch(db, table) == before


def test_an_export_showing_no_date_is_read_as_of_the_warehouse_with_a_warning(tmp_path):
    path = tmp_path / "planned.csv"
    path.write_text("NCT Number,Study Status,Start Date\nNCT03000051,NOT_YET_RECRUITING,2027-01\n")
    load = prepare_ctgov(path)
    assert not load.report.refused and load.tables["historical_trials"]["export_as_of"].isna().all()
    assert any("shows no date it was downloaded" in i.message for i in load.report.warnings)


def test_the_shared_exports_keep_their_own_dates_in_one_warehouse(shared_data, tmp_path):
    from analytics.core.warehouse import Warehouse
    from analytics.feasibility import MONTH_DAYS
    from analytics.feasibility.trials import trial_table

    folder = shared_data / "ctgov"
    db = tmp_path / "w.duckdb"
    # The Alzheimer export (downloaded 2026, no "Last Update Posted") first, then pragmatic aging (2024).
    alzheimer, aging = (prepare_ctgov(folder / name).tables["historical_trials"]
                        for name in ("alzheimer_ctg-studies.csv", "pragmatic_aging_ctg-studies.csv"))
    for name in ("alzheimer_ctg-studies.csv", "pragmatic_aging_ctg-studies.csv"):
        assert cli(["import", "ctgov", str(folder / name), "--db", str(db)]) == 0
    dates = dict(fetch(db, "SELECT export_file, max(export_as_of) FROM main.historical_trials GROUP BY 1"))
    assert dates == {"alzheimer_ctg-studies.csv": dt.date(2026, 2, 9),
                     "pragmatic_aging_ctg-studies.csv": dt.date(2024, 3, 26)}
    trials = trial_table(Warehouse.open(db)).set_index("nct_id")
    only_aging = trials.loc[sorted(set(aging["nct_id"]) - set(alzheimer["nct_id"]))]
    only_alzheimer = trials.loc[sorted(set(alzheimer["nct_id"]) - set(aging["nct_id"]))]
    # A record in both exports is as the later import left it: the pragmatic aging export's date.
    assert (trials.loc[sorted(set(aging["nct_id"]) & set(alzheimer["nct_id"])), "as_of_date"]
            == pd.Timestamp("2024-03-26")).all()
    # Running trials of the older export are censored no later than its date, though the newer one knows 2026.
    running = only_aging[only_aging["still_running"]]
    assert len(running) > 50
    assert ((running["start_date"] + pd.to_timedelta(running["duration_months"] * MONTH_DAYS, unit="D"))
            <= pd.Timestamp("2024-03-26") + pd.Timedelta(days=1)).all()
    ended = only_aging[only_aging["status"].isin(["COMPLETED", "TERMINATED"]) & only_aging["follow_up_months"].notna()]
    expected = (pd.Timestamp("2024-03-26") - ended["start_date"]).dt.days / MONTH_DAYS
    assert len(ended) > 100 and np.allclose(ended["follow_up_months"], expected)
    # The Alzheimer export has no last updates: its running trials are censored at its own date.
    late = only_alzheimer[only_alzheimer["still_running"]]
    assert len(late) > 50 and np.allclose(late["duration_months"],
                                          (pd.Timestamp("2026-02-09") - late["start_date"]).dt.days / MONTH_DAYS)
    close_all()
