"""Importing the real CDISC pilot (SDTM XPORT v5 + CSV) and other SDTM shapes into a warehouse."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import shutil
import time

import duckdb
import pandas as pd
import pyreadstat
import pytest

from analytics.core import warehouse
from analytics.cli import main as cli
from analytics.importers.report import ImportRefused, ImportReport
from analytics.importers.sdtm import SdtmOptions, phase_from_text, prepare_sdtm
from analytics.importers.sources import SourceFile, read_xport, sha256_of
from analytics.importers.staging import commit
from analytics.core.warehouse import close_all
from tests.import_helpers import PILOT, SHARED_DATA, copy_domains, needs_shared_data, sha256

pytestmark = needs_shared_data


@pytest.fixture(scope="module")
def pilot_db(tmp_path_factory):
    """The pilot imported once through the command line; yields (db path, seconds taken)."""
    db = tmp_path_factory.mktemp("pilot") / "warehouse.duckdb"
    started = time.perf_counter()
    code = cli(["import", "sdtm", str(PILOT), "--db", str(db), "--study-id", "PILOT01", "--sponsor", "CDISC"])
    seconds = time.perf_counter() - started
    assert code == 0
    close_all()
    yield db, seconds
    close_all()


def scalar(db, sql, params=None):
    with warehouse.inspect(db) as con:
        return con.execute(sql, params or []).fetchone()[0]


def test_pilot_imports_whole_with_the_published_counts(pilot_db):
    db, seconds = pilot_db
    assert scalar(db, "SELECT count(*) FROM main.subjects WHERE study_id = 'PILOT01'") == 306
    assert scalar(db, "SELECT count(*) FROM main.study_sites WHERE study_id = 'PILOT01'") == 17
    assert scalar(db, "SELECT count(*) FROM main.subjects WHERE randomization_date IS NOT NULL") == 254
    assert scalar(db, "SELECT count(*) FROM main.subjects WHERE status = 'Screen failure'") == 52
    assert scalar(db, "SELECT count(*) FROM restricted.treatment_assignments") == 254
    assert scalar(db, "SELECT count(*) FROM main.measurements WHERE domain = 'LB'") == 59_580
    assert scalar(db, "SELECT count(*) FROM main.measurements WHERE domain = 'VS'") == 29_643
    assert scalar(db, "SELECT count(*) FROM main.adverse_events") == 1_191
    print(f"pilot import took {seconds:.1f} s")
    assert seconds < 60


def test_screen_failures_are_those_without_a_first_treatment_date(pilot_db):
    db, _ = pilot_db
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"))
    no_start = set(dm.loc[dm["RFSTDTC"].fillna("").str.strip() == "", "USUBJID"])
    with warehouse.inspect(db) as con:
        failures = {r[0] for r in con.execute("SELECT subject_id FROM main.subjects WHERE status = 'Screen failure'").fetchall()}
        arms = con.execute("SELECT count(*) FROM main.subjects s JOIN restricted.treatment_assignments USING (subject_id) "
                           "WHERE s.status = 'Screen failure'").fetchone()[0]
    assert failures == no_start
    assert arms == 0
    # ARM never reaches the main schema
    assert scalar(db, "SELECT count(*) FROM information_schema.columns WHERE table_catalog = 'wh' AND table_schema = 'main' "
                      "AND column_name IN ('arm', 'armcd')") == 0


def _imputed_by_hand(onset: str, floors: list[str], end: str) -> dt.date:
    """The documented rule, written out independently: first day of the known period, raised to the
    latest first-dose/consent date inside it, never after a complete end date on or after that day."""
    year, month = int(onset[:4]), int(onset[5:7]) if len(onset) == 7 else None
    first = dt.date(year, month or 1, 1)
    last = dt.date(year, month, calendar.monthrange(year, month)[1]) if month else dt.date(year, 12, 31)
    chosen = first
    for text in floors:
        if len(text) >= 10 and first <= dt.date.fromisoformat(text[:10]) <= last:
            chosen = max(chosen, dt.date.fromisoformat(text[:10]))
    if len(end) >= 10 and first <= dt.date.fromisoformat(end[:10]) < chosen:
        chosen = dt.date.fromisoformat(end[:10])
    return chosen


def test_partial_onset_dates_are_imputed_by_the_rule_flagged_and_kept_as_reported(pilot_db):
    db, _ = pilot_db
    ae, _ = pyreadstat.read_xport(str(PILOT / "ae.xpt"))
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"))
    reference = dm.set_index("USUBJID")
    ae["AESTDTC"] = ae["AESTDTC"].fillna("").str.strip()
    partial = ae[ae["AESTDTC"].str.len().isin([4, 7])]
    expected = sorted(
        (r.USUBJID, r.AESTDTC, _imputed_by_hand(r.AESTDTC, [reference.at[r.USUBJID, "RFICDTC"],
                                                            reference.at[r.USUBJID, "RFXSTDTC"]
                                                            or reference.at[r.USUBJID, "RFSTDTC"]], r.AEENDTC))
        for r in partial.itertuples())
    with warehouse.inspect(db) as con:
        loaded = sorted(con.execute("SELECT subject_id, onset_date_text, onset_date FROM main.adverse_events "
                                    "WHERE onset_date_imputed").fetchall())
        precision = dict(con.execute("SELECT onset_date_precision, count(*) FROM main.adverse_events "
                                     "WHERE onset_date_imputed GROUP BY 1").fetchall())
        complete = con.execute("SELECT count(*) FROM main.adverse_events WHERE NOT onset_date_imputed "
                               "AND onset_date IS NOT NULL").fetchone()[0]
    assert len(partial) == 26 and loaded == expected
    assert precision == {"year": int((partial["AESTDTC"].str.len() == 4).sum()),
                         "month": int((partial["AESTDTC"].str.len() == 7).sum())} == {"year": 11, "month": 15}
    assert complete == 1_191 - 26  # every AE now counts in the AE rate


def test_windows_1252_trial_summary_is_decoded(pilot_db):
    db, _ = pilot_db
    title = scalar(db, "SELECT title FROM main.studies WHERE study_id = 'PILOT01'")
    assert "Alzheimer\u2019s Disease" in title
    assert scalar(db, "SELECT phase FROM main.studies WHERE study_id = 'PILOT01'") == "Phase 2"
    assert scalar(db, "SELECT target_enrollment FROM main.studies WHERE study_id = 'PILOT01'") == 300
    assert scalar(db, "SELECT blinded FROM main.studies WHERE study_id = 'PILOT01'") is True


def test_visitnum_float_noise_is_tolerated_and_lab_results_find_their_visit(pilot_db):
    db, _ = pilot_db
    assert scalar(db, "SELECT count(*) FROM main.visits WHERE visit_number <> round(visit_number, 6)") == 0
    linked = scalar(db, "SELECT count(*) FROM main.measurements m JOIN main.visits v USING (visit_id) "
                        "WHERE m.domain = 'LB' AND v.visit_number = 9.3")
    lb, _ = pyreadstat.read_xport(str(PILOT / "lb.xpt"), usecols=["VISITNUM"])
    assert linked == int((lb["VISITNUM"].round(6) == 9.3).sum()) > 0


def test_supplemental_qualifiers_are_joined(pilot_db):
    db, _ = pilot_db
    supp, _ = pyreadstat.read_xport(str(PILOT / "suppae.xpt"))
    emergent = int(((supp["QNAM"] == "AETRTEM") & (supp["QVAL"] == "Y")).sum())
    assert scalar(db, "SELECT count(*) FROM main.adverse_events WHERE treatment_emergent") == emergent
    suppdm, _ = pyreadstat.read_xport(str(PILOT / "suppdm.xpt"))
    assert scalar(db, "SELECT count(*) FROM main.supplemental_qualifiers WHERE domain = 'DM'") == len(suppdm)


def test_lab_results_carry_units_ranges_and_flags(pilot_db):
    db, _ = pilot_db
    lb, _ = pyreadstat.read_xport(str(PILOT / "lb.xpt"), usecols=["LBNRIND", "LBSTNRHI"])
    assert scalar(db, "SELECT count(*) FROM main.measurements WHERE normal_range_flag = 'HIGH'") == int(
        (lb["LBNRIND"] == "HIGH").sum())
    assert scalar(db, "SELECT count(ref_high) FROM main.measurements WHERE domain = 'LB'") == int(
        lb["LBSTNRHI"].notna().sum())
    assert scalar(db, "SELECT unit FROM main.measurements WHERE domain = 'VS' AND test_code = 'SYSBP' LIMIT 1") == "mmHg"


def test_dispositions_and_discontinuations(pilot_db):
    db, _ = pilot_db
    ds, _ = pyreadstat.read_xport(str(PILOT / "ds.xpt"))
    disposition = ds[ds["DSCAT"] == "DISPOSITION EVENT"]
    completed = int((disposition["DSDECOD"] == "COMPLETED").sum())
    discontinued = int((~disposition["DSDECOD"].isin(["COMPLETED", "SCREEN FAILURE"])).sum())
    assert scalar(db, "SELECT count(*) FROM main.dispositions") == len(ds)
    assert scalar(db, "SELECT count(*) FROM main.subjects WHERE status = 'Completed'") == completed
    assert scalar(db, "SELECT count(*) FROM main.subjects WHERE status = 'Discontinued' "
                      "AND discontinuation_date IS NOT NULL") == discontinued


def test_provenance_records_files_checksums_and_notes(pilot_db):
    db, _ = pilot_db
    with warehouse.inspect(db) as con:
        rows = con.execute("SELECT file_name, sha256, row_count, importer_version, imported_at, notes "
                           "FROM main.data_provenance WHERE study_id = 'PILOT01'").df()
    by_file = rows.set_index("file_name")
    assert by_file.at["dm.xpt", "sha256"] == sha256(PILOT / "dm.xpt")
    assert by_file.at["vs.csv", "row_count"] == 29_643
    assert "ESTIMATED" in by_file.at["dm.xpt", "notes"] and "absent" in by_file.at["dm.xpt", "notes"]
    assert rows["importer_version"].notna().all() and rows["imported_at"].notna().all()
    assert "define.xml" not in set(rows["file_name"])
    assert scalar(db, "SELECT data_source FROM main.studies WHERE study_id = 'PILOT01'") == "sdtm"
    assert scalar(db, "SELECT name FROM main.sponsors s JOIN main.studies st USING (sponsor_id) "
                      "WHERE st.study_id = 'PILOT01'") == "CDISC"
    assert scalar(db, "SELECT count(*) FROM main.queries WHERE study_id = 'PILOT01'") == 0


def test_site_activation_is_the_first_screening_at_the_site(pilot_db):
    db, _ = pilot_db
    sv, _ = pyreadstat.read_xport(str(PILOT / "sv.xpt"))
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"))
    first = pd.to_datetime(sv.merge(dm[["USUBJID", "SITEID"]], on="USUBJID").groupby("SITEID")["SVSTDTC"].min())
    activation = scalar(db, "SELECT activation_date FROM main.study_sites WHERE study_site_id = 'PILOT01-701'")
    assert pd.Timestamp(activation) == first["701"]
    assert scalar(db, "SELECT country_code FROM main.sites WHERE site_id = 'PILOT01-701'") == "US"


def test_reimport_is_idempotent(tmp_path):
    folder = copy_domains(tmp_path / "src", "dm.xpt", "ds.xpt", "sv.xpt", "ae.xpt", "suppae.xpt", "ts.xpt", "tv.xpt")
    db = tmp_path / "w.duckdb"
    first = commit(prepare_sdtm(folder, db), db)
    snapshot = _table_fingerprint(db)
    second = commit(prepare_sdtm(folder, db), db)
    assert first.rows["subjects"] == second.rows["subjects"] == 306
    assert second.rows["sponsors"] == 0  # the sponsor created by the first load is reused
    assert _table_fingerprint(db) == snapshot
    close_all()


def _table_fingerprint(db) -> dict[str, object]:
    with warehouse.inspect(db) as con:
        return {t: con.execute(f"SELECT count(*), sum(hash(x)) FROM (SELECT * EXCLUDE (imported_at) FROM {t}) x"
                               if t == "main.data_provenance" else f"SELECT count(*), sum(hash(x)) FROM {t} x").fetchone()
                for t in ("main.subjects", "main.visits", "main.adverse_events", "main.study_sites",
                          "main.data_provenance")}


def test_dataset_json_and_csv_domains_load(tmp_path):
    """DM as Dataset-JSON 1.1 and SV as CSV: the same subjects as the XPORT originals."""
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"))
    folder = tmp_path / "json"
    folder.mkdir()
    document = {
        "datasetJSONVersion": "1.1.0", "name": "DM", "records": len(dm),
        "columns": [{"itemOID": f"IT.DM.{c}", "name": c, "label": c, "dataType": "string"} for c in dm.columns],
        "rows": dm.astype(object).where(dm.notna(), None).values.tolist(),
    }
    (folder / "dm.json").write_text(json.dumps(document))
    sv, _ = pyreadstat.read_xport(str(PILOT / "sv.xpt"))
    sv.to_csv(folder / "sv.csv", index=False)
    db = tmp_path / "w.duckdb"
    load = prepare_sdtm(folder, db, SdtmOptions(study_id="JSON01"))
    assert not load.report.refused, [i.text() for i in load.report.errors]
    commit(load, db)
    assert scalar(db, "SELECT count(*) FROM main.subjects") == 306
    assert scalar(db, "SELECT count(*) FROM main.visits WHERE status = 'Completed'") == len(sv)
    close_all()


def test_deviations_map_and_records_of_unknown_subjects_refuse_or_are_skipped_and_counted(tmp_path):
    folder = copy_domains(tmp_path / "dv", "dm.xpt")
    pd.DataFrame({
        "STUDYID": ["CDISCPILOT01"] * 3, "DOMAIN": ["DV"] * 3,
        "USUBJID": ["01-701-1015", "01-701-1023", "99-999-9999"], "DVSEQ": [1, 1, 1],
        "DVTERM": ["Visit out of window", "Wrong dose taken", "Consent missing"],
        "DVCAT": ["MINOR", "MAJOR", "MAJOR"], "DVSTDTC": ["2014-02-01", "2012-08", "2013-01-01"],
    }).to_csv(folder / "dv.csv", index=False)
    db = tmp_path / "w.duckdb"
    refused = prepare_sdtm(folder, db)
    assert [i.text() for i in refused.report.errors] == [
        "dv.csv, column USUBJID: 1 of 3 record(s) of a subject not in DM; remove them, or load with "
        "--skip-foreign-rows to leave them out (they are counted); expected a USUBJID listed in DM, "
        "found '99-999-9999 (1 row)'"]
    load = prepare_sdtm(folder, db, SdtmOptions(skip_foreign_rows=True))
    rejected = [i for i in load.report.issues if i.rejected]
    assert [(i.file, i.row, i.column, i.found) for i in rejected] == [("dv.csv", 3, "USUBJID", "99-999-9999")]
    counts = load.report.datasets["dv.csv"]
    assert (counts.read, counts.loaded, counts.rejected) == (3, 2, 1)
    commit(load, db)
    with warehouse.inspect(db) as con:
        rows = con.execute("SELECT subject_id, important, occurred_date FROM main.protocol_deviations "
                           "ORDER BY subject_id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("01-701-1015", False), ("01-701-1023", True)]
    assert rows[1][2] is None  # "2012-08" is month-precise: no day invented
    close_all()


def test_xport_version_8_is_read_with_long_names():
    source = SHARED_DATA / "sdtm" / "xport_v8_sample.xpt"
    report = ImportReport("sdtm")
    dataset = read_xport(SourceFile(source, source.name, source.stat().st_size, sha256_of(source)), report)
    assert dataset is not None and dataset.name == "AE"
    assert len(dataset.frame) == 74 and "AEENRTPT" in dataset.frame.columns
    assert not report.refused


def test_a_folder_without_dm_is_refused(tmp_path):
    folder = tmp_path / "v8"
    folder.mkdir()
    (folder / "xport_v8_sample.xpt").write_bytes((SHARED_DATA / "sdtm" / "xport_v8_sample.xpt").read_bytes())
    load = prepare_sdtm(folder, tmp_path / "w.duckdb")
    assert load.report.refused
    assert any("no DM dataset" in i.message for i in load.report.errors)


@pytest.mark.parametrize("text, phase", [("Phase II Trial", "Phase 2"), ("PHASE II/III", "Phase 3"),
                                         ("Phase 1", "Phase 1"), ("PHASE IV TRIAL", "Phase 4"), ("pilot", None)])
def test_trial_phase_text(text, phase):
    assert phase_from_text(text)[0] == phase


def test_pilot_keeps_every_actual_visit_date(pilot_db):
    db, _ = pilot_db
    sv, _ = pyreadstat.read_xport(str(PILOT / "sv.xpt"))
    dated = sv[sv["SVSTDTC"].fillna("").str.strip() != ""]
    assert len(dated) == 3_559
    assert scalar(db, "SELECT count(actual_date) FROM main.visits WHERE study_id = 'PILOT01'") == len(dated)
    with warehouse.inspect(db) as con:
        loaded = set(con.execute("SELECT subject_id, visit_number, CAST(actual_date AS VARCHAR) FROM main.visits "
                                 "WHERE actual_date IS NOT NULL").fetchall())
    assert loaded == set(zip(dated["USUBJID"], dated["VISITNUM"].round(6), dated["SVSTDTC"].str[:10]))


def test_visit_regularity_is_scored_at_every_pilot_site_with_scheduled_visits(pilot_db):
    db, _ = pilot_db
    sv, _ = pyreadstat.read_xport(str(PILOT / "sv.xpt"))
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"))
    tv, _ = pyreadstat.read_xport(str(PILOT / "tv.xpt"))
    scheduled = set(tv.loc[tv["VISITDY"].notna(), "VISITNUM"].round(6))
    treated = dm[dm["RFSTDTC"].fillna("").str.strip() != ""]
    visits = sv.merge(treated[["USUBJID", "SITEID"]], on="USUBJID")
    eligible = visits[(visits["VISITNUM"] > 0) & visits["VISITNUM"].round(6).isin(scheduled)
                      & (visits["SVSTDTC"].fillna("") != "")]
    vs = pd.read_csv(PILOT / "vs.csv", usecols=["USUBJID"]).merge(dm[["USUBJID", "SITEID"]], on="USUBJID")
    with_vitals = vs.groupby("SITEID")["USUBJID"].nunique()
    measured = {f"PILOT01-{s}" for s in eligible["SITEID"]}
    # The engine scores a site's tests once it has at least two subjects with vital signs (MIN_SUBJECTS).
    expected = {f"PILOT01-{s}" for s in eligible["SITEID"] if with_vitals.get(s, 0) >= 2}
    with warehouse.inspect(db) as con:
        share = {r[0] for r in con.execute("SELECT study_site_id FROM derived.atypical_sites WHERE study_id = "
                                           "'PILOT01' AND on_day_share IS NOT NULL").fetchall()}
        scored = {r[0] for r in con.execute("SELECT study_site_id FROM derived.atypical_sites WHERE study_id = "
                                            "'PILOT01' AND regular_visits IS NOT NULL").fetchall()}
    assert share == measured and len(measured) == 17
    assert scored == expected and len(scored) == 16


def test_pilot_summary_lists_rows_read_loaded_imputed_and_rejected_per_dataset(tmp_path, capsys):
    code = cli(["import", "sdtm", str(PILOT), "--db", str(tmp_path / "w.duckdb"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    table = {line.split()[0]: line.split()[1:6] for line in out.splitlines()
             if line.startswith("  ") and line.split()[0].endswith((".xpt", ".csv"))}
    assert table["sv.xpt"] == ["SV", "3,559", "3,559", "0", "0"]
    assert table["ae.xpt"] == ["AE", "1,191", "1,191", "26", "0"]
    assert table["lb.xpt"] == ["LB", "59,580", "59,580", "0", "0"]
    assert table["dm.xpt"] == ["DM", "306", "306", "0", "0"]
    assert table["cm.xpt"][:3] == ["CM", "7,510", "0"]  # read, not mapped
    assert "ae.xpt, column AESTDTC: AESTDTC of 1,191 AE(s): 1,165 complete, 26 partial and imputed" in out


def test_a_reimport_that_cuts_a_domain_needs_confirmation(pilot_db, tmp_path, capsys):
    source, _ = pilot_db
    db = tmp_path / "w.duckdb"
    warehouse.copy_warehouse(source, db)
    folder = tmp_path / "partial"
    folder.mkdir()
    for path in PILOT.iterdir():
        if path.name != "lb.xpt":
            shutil.copyfile(path, folder / path.name)
    lb, _ = pyreadstat.read_xport(str(PILOT / "lb.xpt"))
    lb.head(17_384).to_csv(folder / "lb.csv", index=False)  # a valid file that holds only part of the lab data
    before = sha256(db)
    args = ["import", "sdtm", str(folder), "--db", str(db), "--study-id", "PILOT01", "--sponsor", "CDISC"]
    assert cli(args) == 1
    out = capsys.readouterr().out
    close_all()
    assert "main.measurements (domain LB): 59,580 rows now, 17,384 after the load (42,196 removed, 70.8%)" in out
    assert "Re-run with --allow-shrink to confirm." in out
    assert "domain VS" not in out and "main.adverse_events" not in out.split("REFUSED")[-1]
    assert sha256(db) == before
    prepared = prepare_sdtm(folder, db, SdtmOptions(study_id="PILOT01", sponsor="CDISC"))
    assert [s.text() for s in prepared.shrinks] == [
        "main.measurements (domain LB): 59,580 rows now, 17,384 after the load (42,196 removed, 70.8%)"]
    with pytest.raises(ImportRefused, match="not confirmed"):
        commit(prepared, db)  # the app's first click: refused, nothing changed
    assert sha256(db) == before
    prepared.confirm_shrink()  # the app's second click
    commit(prepared, db)
    close_all()
    assert scalar(db, "SELECT count(*) FROM main.measurements WHERE study_id = 'PILOT01' AND domain = 'LB'") == 17_384


def test_race_ethnicity_and_treatment_length_come_from_dm_and_tv(pilot_db):
    db, _ = pilot_db
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"))
    with warehouse.inspect(db) as con:
        race = dict(con.execute("SELECT race, count(*) FROM main.subjects GROUP BY 1").fetchall())
        ethnicity = dict(con.execute("SELECT ethnicity, count(*) FROM main.subjects GROUP BY 1").fetchall())
        days = con.execute("SELECT treatment_duration_days FROM main.studies WHERE study_id = 'PILOT01'").fetchone()[0]
    assert race == dm["RACE"].value_counts().to_dict()
    assert ethnicity == dm["ETHNIC"].value_counts().to_dict()
    assert days == 181  # TV: the last scheduled visit (week 26) is on study day 182, day 1 the first dose


def test_the_data_page_holds_a_shrinking_reimport_until_a_second_click(pilot_db, tmp_path, monkeypatch):
    from tests.import_helpers import open_page

    source, _ = pilot_db
    db = warehouse.copy_warehouse(source, tmp_path / "w.duckdb")
    folder = tmp_path / "incoming" / "partial"
    folder.mkdir(parents=True)
    for path in PILOT.iterdir():
        if path.name != "lb.xpt":
            shutil.copyfile(path, folder / path.name)
    lb, _ = pyreadstat.read_xport(str(PILOT / "lb.xpt"))
    lb.head(17_384).to_csv(folder / "lb.csv", index=False)
    monkeypatch.setenv("CRO_WAREHOUSE", str(db))
    monkeypatch.setenv("CRO_IMPORT_ROOT", str(tmp_path / "incoming"))
    monkeypatch.setenv("CRO_USER", "data_manager")
    at = open_page("pages/data.py")
    at.radio(key="import_how").set_value("Folder on the server").run()
    at.text_input(key="import_folder").input("partial").run()
    at.text_input(key="import_study").input("PILOT01").run()
    at.text_input(key="import_sponsor").input("CDISC").run()
    at.button(key="import_validate").click().run()
    assert not at.exception
    before = sha256(db)
    assert any("42,196 removed" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "import_confirm"]  # the first click cannot load it
    at.button(key="import_confirm_shrink").click().run()
    at.button(key="import_confirm").click().run()
    assert any("Loaded" in s.value for s in at.success), [e.value for e in at.error]
    close_all()
    assert sha256(db) != before
    assert scalar(db, "SELECT count(*) FROM main.measurements WHERE study_id = 'PILOT01' AND domain = 'LB'") == 17_384
