"""SDTM as real deliveries shape it: SV without SVOCCUR, split datasets, another study's rows, partial dates,
and treatment-revealing content that must stay restricted (built as small files; exact counts and values)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from analytics.core import warehouse
from analytics.cli import main as cli
from analytics.core.scope import AccessScope
from analytics.core.warehouse import close_all
from analytics.importers.report import REDACTED
from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
from analytics.importers.staging import commit
from tests.import_helpers import MINI, MINI_FIRST_DOSE, MINI_VISIT_DAYS, mini_study, mini_sv, sha256

BLINDED_DATA_MANAGER = AccessScope(blinded=True)  # every sponsor, blinded


def rows(db, sql, params=None):
    with warehouse.inspect(db) as con:
        return con.execute(sql, params or []).fetchall()


def load(folder, db, **options):
    prepared = prepare_sdtm(folder, db, SdtmOptions(**options))
    assert not prepared.report.refused, [i.text() for i in prepared.report.errors]
    commit(prepared, db)
    close_all()
    return prepared


def test_sv_without_svoccur_keeps_every_actual_date_and_scheduled_day(tmp_path):
    folder = mini_study(tmp_path / "src")
    db = tmp_path / "w.duckdb"
    prepared = load(folder, db)
    sv = mini_sv()
    loaded = rows(db, "SELECT subject_id, visit_number, actual_date, scheduled_date, status FROM main.visits "
                      "ORDER BY subject_id, visit_number")
    assert len(loaded) == len(sv) == 13
    assert {(s, n, d.isoformat()) for s, n, d, _, _ in loaded} == set(zip(sv["USUBJID"], sv["VISITNUM"].astype(float),
                                                                           sv["SVSTDTC"]))
    assert {status for *_, status in loaded} == {"Completed"}
    # Scheduled = first dose + planned day - 1 (no day 0); the late week-2 visit is the only one off its day.
    on_day = [(s, n) for s, n, actual, scheduled, _ in loaded if n > 0 and actual == scheduled]
    assert len(on_day) == 3 * len(MINI_VISIT_DAYS) - 1
    counts = prepared.report.datasets["sv.csv"]
    assert (counts.read, counts.loaded, counts.rejected, counts.into) == (13, 13, 0, "main.visits")
    assert any(i.column == "SVOCCUR" and "not collected" in i.message for i in prepared.report.issues)


def test_svoccur_n_still_marks_a_visit_that_did_not_happen(tmp_path):
    sv = mini_sv().assign(SVOCCUR="Y")
    sv.loc[2, "SVOCCUR"] = "N"
    db = tmp_path / "w.duckdb"
    load(mini_study(tmp_path / "src", sv=sv), db)
    assert rows(db, "SELECT status, count(*), count(actual_date) FROM main.visits GROUP BY 1 ORDER BY 1") == [
        ("Completed", 12, 12), ("Missed", 1, 0)]


def _lab(subjects, first_seq, tests, category):
    out = []
    for subject in subjects:
        for k, test in enumerate(tests):
            out.append({"STUDYID": MINI, "DOMAIN": "LB", "USUBJID": subject, "LBSEQ": first_seq + k,
                        "LBTESTCD": test, "LBTEST": test, "LBCAT": category, "LBSTRESN": 1.5 + k, "LBSTRESU": "g/L",
                        "VISITNUM": 2, "LBDTC": MINI_FIRST_DOSE[subject]})
    return pd.DataFrame(out)


def _questionnaire(subjects, first_seq, tests):
    return pd.DataFrame([{"STUDYID": MINI, "DOMAIN": "QS", "USUBJID": s, "QSSEQ": first_seq + k, "QSTESTCD": t,
                          "QSORRES": str(k)} for s in subjects for k, t in enumerate(tests)])


def _supp(rdomain, subject, seq, name, value):
    return {"STUDYID": MINI, "RDOMAIN": rdomain, "USUBJID": subject, "IDVAR": f"{rdomain}SEQ", "IDVARVAL": str(seq),
            "QNAM": name, "QLABEL": name.title(), "QVAL": value}


def split_study(folder, **replaced):
    """The mini study with LB split in three (LBCH, LBHE, LBUR) and QS in two, each with SUPP-- parts."""
    treated = list(MINI_FIRST_DOSE)
    parts = {
        "lbch": _lab(treated, 1, ["ALT", "AST"], "CHEMISTRY"),
        "lbhe": _lab(treated, 3, ["HGB"], "HEMATOLOGY"),
        "lbur": _lab(treated[:1], 4, ["PH"], "URINALYSIS"),
        "supplbch": pd.DataFrame([_supp("LB", treated[0], 1, "LBFAST", "Y"), _supp("LB", treated[1], 2, "LBFAST", "N")]),
        "supplbhe": pd.DataFrame([_supp("LB", treated[2], 3, "LBFAST", "Y")]),
        "qsmm": _questionnaire(treated, 1, ["MMSE01", "MMSE02"]),
        "qscg": _questionnaire(treated, 10, ["CGI01"]),
        "suppqsmm": pd.DataFrame([_supp("QS", treated[0], 2, "QSLANG", "EN")]),
    }
    return mini_study(folder, **(parts | replaced))


def test_split_lb_and_qs_are_combined_by_domain_with_their_supp_datasets(tmp_path):
    db = tmp_path / "w.duckdb"
    prepared = load(split_study(tmp_path / "src"), db)
    assert rows(db, "SELECT domain, count(*), count(DISTINCT measurement_id) FROM main.measurements GROUP BY 1") == [
        ("LB", 3 * 2 + 3 * 1 + 1, 10)]
    assert rows(db, "SELECT test_code, count(*) FROM main.measurements GROUP BY 1 ORDER BY 1") == [
        ("ALT", 3), ("AST", 3), ("HGB", 3), ("PH", 1)]
    # Results find their visit across the parts.
    assert rows(db, "SELECT count(*) FROM main.measurements WHERE visit_id IS NULL") == [(0,)]
    assert rows(db, "SELECT domain, subject_id, record_key, qualifier, value FROM main.supplemental_qualifiers "
                    "ORDER BY domain, subject_id") == [
        ("LB", "MINI01-001-01", "LBSEQ=1", "LBFAST", "Y"), ("LB", "MINI01-001-02", "LBSEQ=2", "LBFAST", "N"),
        ("LB", "MINI01-002-01", "LBSEQ=3", "LBFAST", "Y"), ("QS", "MINI01-001-01", "QSSEQ=2", "QSLANG", "EN")]
    datasets = prepared.report.datasets
    assert {f: (d.domain, d.read, d.loaded) for f, d in datasets.items() if f.startswith(("lb", "supplb", "qs"))} == {
        "lbch.csv": ("LB", 6, 6), "lbhe.csv": ("LB", 3, 3), "lbur.csv": ("LB", 1, 1),
        "supplbch.csv": ("SUPPLB", 2, 2), "supplbhe.csv": ("SUPPLB", 1, 1),
        "qsmm.csv": ("QS", 6, 0), "qscg.csv": ("QS", 3, 0)}
    assert datasets["suppqsmm.csv"].loaded == 1
    files = {r[0] for r in rows(db, "SELECT file_name FROM main.data_provenance WHERE study_id = ?", [MINI])}
    assert {"lbch.csv", "lbhe.csv", "lbur.csv", "supplbch.csv", "qsmm.csv", "qscg.csv"} <= files


def test_a_seq_repeated_across_split_parts_is_refused_naming_both_files(tmp_path, capsys):
    treated = list(MINI_FIRST_DOSE)
    folder = split_study(tmp_path / "src", lbhe=_lab(treated, 2, ["HGB"], "HEMATOLOGY"))  # LBSEQ 2 is in LBCH
    code = cli(["import", "sdtm", str(folder), "--db", str(tmp_path / "w.duckdb")])
    out = capsys.readouterr().out
    assert code == 1
    assert ("lbhe.csv, row 1, column USUBJID, LBSEQ: duplicate record key; expected a unique key (first seen on "
            "lbch.csv, row 2), found 'USUBJID=MINI01-001-01, LBSEQ=2'") in out


def test_an_unsplittable_domain_in_two_files_is_refused(tmp_path):
    folder = mini_study(tmp_path / "src")
    pd.read_csv(folder / "dm.csv").to_csv(folder / "dmx.csv", index=False)
    prepared = prepare_sdtm(folder, tmp_path / "w.duckdb")
    assert "dmx.csv: this domain may not be split across files; expected one DM dataset, found 'DM also in dm.csv'" in [
        i.text() for i in prepared.report.errors]


def _foreign(name, n_foreign, n_own):
    """An RS/TR/TU-like dataset with ``n_foreign`` records of another trial (810 in the real case)."""
    domain = name.upper()
    own = [{"STUDYID": MINI, "DOMAIN": domain, "USUBJID": "MINI01-001-01", f"{domain}SEQ": k + 1} for k in range(n_own)]
    other = [{"STUDYID": "OTHER-99", "DOMAIN": domain, "USUBJID": f"OTHER-99-{k:04d}", f"{domain}SEQ": 1}
             for k in range(n_foreign)]
    return pd.DataFrame(own + other)


def test_rows_of_another_study_refuse_the_load_with_file_and_count(tmp_path, capsys):
    folder = mini_study(tmp_path / "src", rs=_foreign("rs", 5, 3), tu=_foreign("tu", 2, 0))
    db = tmp_path / "w.duckdb"
    load(mini_study(tmp_path / "before"), db)
    before = sha256(db)
    assert cli(["import", "sdtm", str(folder), "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert ("rs.csv, column STUDYID: 5 of 8 record(s) of another study; remove them, or load with --skip-foreign-rows "
            "to leave them out (they are counted); expected STUDYID MINI01 (the study being loaded), "
            "found 'OTHER-99 (5 rows)'") in out
    assert "tu.csv, column STUDYID: 2 of 2 record(s) of another study" in out
    assert sha256(db) == before


def test_rows_of_another_study_can_be_skipped_and_are_counted(tmp_path, capsys):
    folder = mini_study(tmp_path / "src", rs=_foreign("rs", 5, 3))
    db = tmp_path / "w.duckdb"
    assert cli(["import", "sdtm", str(folder), "--db", str(db), "--skip-foreign-rows"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.strip().startswith("rs.csv "))
    assert line.split()[:6] == ["rs.csv", "RS", "8", "0", "0", "5"]  # read, loaded (RS is unmapped), imputed, rejected
    assert "5 rejected row(s)" in out
    assert ("rs.csv, row 4, column STUDYID: RS record(s) of another study; row left out (--skip-foreign-rows); expected "
            "STUDYID MINI01 (the study being loaded), found 'OTHER-99'") in out


def _ae(onsets_and_ends):
    subjects = ["MINI01-001-01", "MINI01-001-01", "MINI01-001-02", "MINI01-002-01", "MINI01-002-01", "MINI01-001-02",
                "MINI01-002-01"]
    return pd.DataFrame([{"STUDYID": MINI, "DOMAIN": "AE", "USUBJID": s, "AESEQ": k + 1, "AETERM": f"Event {k + 1}",
                          "AEDECOD": f"Event {k + 1}", "AESTDTC": onset, "AEENDTC": end}
                         for k, (s, (onset, end)) in enumerate(zip(subjects, onsets_and_ends))])


def test_partial_onset_dates_are_imputed_by_the_documented_rule_and_counted(tmp_path):
    ae = _ae([
        ("2023-01", ""),            # first dose 2023-01-10 lies in January: imputed to the first dose
        ("2023-01", "2023-01-05"),  # ... but never after the AE's own end date
        ("2023-03", ""),            # first dose 2023-02-06 is before March: the first of the month
        ("2022", ""),               # the whole year is before consent: first day of the year
        ("2023-03-04", ""),         # complete: kept
        ("UNK", ""),                # unusable
        ("", ""),                   # missing
    ])
    db = tmp_path / "w.duckdb"
    prepared = load(mini_study(tmp_path / "src", ae=ae), db)
    got = {r[0]: r[1:] for r in rows(db, "SELECT term, onset_date_text, onset_date, onset_date_precision, "
                                         "onset_date_imputed FROM main.adverse_events")}
    assert got == {
        "Event 1": ("2023-01", dt.date(2023, 1, 10), "month", True),
        "Event 2": ("2023-01", dt.date(2023, 1, 5), "month", True),
        "Event 3": ("2023-03", dt.date(2023, 3, 1), "month", True),
        "Event 4": ("2022", dt.date(2022, 1, 1), "year", True),
        "Event 5": ("2023-03-04", dt.date(2023, 3, 4), "day", False),
        "Event 6": (None, None, None, False),
        "Event 7": (None, None, None, False),
    }
    counts = prepared.report.datasets["ae.csv"]
    assert (counts.read, counts.loaded, counts.imputed, counts.rejected) == (7, 7, 4, 0)
    assert ("ae.csv, column AESTDTC: AESTDTC of 7 AE(s): 1 complete, 4 partial and imputed (3 month-, 1 year-precise), "
            "1 unusable (not a date), 1 missing") in [i.text() for i in prepared.report.issues]
    assert any(i.text().startswith("ae.csv, row 6, column AESTDTC: not an ISO 8601 date") for i in prepared.report.warnings)


def _all_text(report) -> str:
    return "\n".join(report.summary_lines(examples_per_rule=1000, max_rules=1000)) + "\n" + report.to_frame().to_csv()


def test_treatment_revealing_content_goes_only_to_restricted_tables(tmp_path):
    db = tmp_path / "w.duckdb"
    load(mini_study(tmp_path / "src"), db)
    assert rows(db, "SELECT subject_id, value FROM restricted.treatment_qualifiers ORDER BY 1") == [
        ("MINI01-001-01", "DRUG A LOT 7"), ("MINI01-001-02", "PLACEBO LOT 3")]
    assert rows(db, "SELECT count(*) FROM main.supplemental_qualifiers WHERE domain = 'EX'") == [(0,)]
    assert rows(db, "SELECT subject_id, arm, arm_code, actual_arm_code FROM restricted.treatment_assignments "
                    "ORDER BY 1") == [("MINI01-001-01", "Drug A 10 mg", "A", "A"),
                                      ("MINI01-001-02", "Placebo", "PBO", "PBO"),
                                      ("MINI01-002-01", "Drug A 10 mg", "A", "A")]
    assert rows(db, "SELECT arm_code, arm FROM restricted.trial_arms ORDER BY 1") == [("A", "Drug A 10 mg"),
                                                                                     ("PBO", "Placebo")]
    # No table in main holds an arm or treatment value anywhere.
    with warehouse.inspect(db) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_catalog = 'wh' AND table_schema = 'main'").fetchall()]
        for table in tables:
            text = con.execute(f"SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), '|') FROM main.{table}").fetchone()
            joined = "|".join(t for t in text if t)
            for secret in ("Placebo", "PLACEBO", "Drug A", "DRUG A LOT"):
                assert secret not in joined, (table, secret)


def test_a_blinded_loaders_report_hides_arm_values_an_unblinded_one_shows_them(tmp_path):
    dm = pd.read_csv(mini_study(tmp_path / "probe") / "dm.csv", dtype=str, keep_default_na=False)
    dm.loc[1, ["ARMCD", "ACTARMCD"]] = "PBO2"  # not in TA: a warning that names the arm code
    ex = pd.read_csv(tmp_path / "probe" / "ex.csv", dtype=str, keep_default_na=False)
    ex.loc[1, "EXDOSE"] = "zero mg of placebo"  # a bad value in EX: a warning that would show it
    suppex = pd.read_csv(tmp_path / "probe" / "suppex.csv", dtype=str, keep_default_na=False)
    suppex.loc[1, "IDVARVAL"] = "9"  # an orphan SUPPEX record: rejected with its values
    folder = mini_study(tmp_path / "src", dm=dm, ex=ex, suppex=suppex)
    blinded = prepare_sdtm(folder, tmp_path / "w.duckdb", SdtmOptions(scope=BLINDED_DATA_MANAGER))
    unblinded = prepare_sdtm(folder, tmp_path / "w.duckdb", SdtmOptions(scope=AccessScope.full_access()))
    shown, hidden = _all_text(unblinded.report), _all_text(blinded.report)
    for secret in ("PBO2", "zero mg of placebo", "one of A, PBO", "EXSEQ=9"):
        assert secret in shown
        assert secret not in hidden, secret
    assert "PBO" not in hidden and "placebo" not in hidden.lower()
    arm_issue = next(i for i in blinded.report.warnings if i.column == "ARMCD")
    assert (arm_issue.file, arm_issue.row, arm_issue.found, arm_issue.expected) == ("dm.csv", 2, REDACTED, REDACTED)
    assert blinded.report.count("warning") == unblinded.report.count("warning") >= 3


@pytest.mark.parametrize("mode", ["half", "records"])
def test_a_truncated_xport_is_refused_naming_the_file(shared_data, tmp_path, capsys, mode):
    pilot = shared_data / "sdtm" / "cdiscpilot01"
    folder = tmp_path / "src"
    folder.mkdir()
    for name in ("dm.xpt", "lb.xpt"):
        data = (pilot / name).read_bytes()
        if name == "lb.xpt":
            data = data[: len(data) // 2] if mode == "half" else data[: len(data) // 2 // 80 * 80]
        (folder / name).write_bytes(data)
    db = tmp_path / "w.duckdb"
    assert cli(["import", "sdtm", str(folder), "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "lb.xpt: file is not a complete SAS XPORT file; refused" in out
    assert ("ends mid-observation" in out) if mode == "records" else ("ends mid-record" in out or
                                                                      "ends mid-observation" in out)
    assert not db.exists()


def test_a_halved_dm_is_refused_not_loaded_with_half_the_subjects(shared_data, tmp_path, capsys):
    folder = tmp_path / "src"
    folder.mkdir()
    data = (shared_data / "sdtm" / "cdiscpilot01" / "dm.xpt").read_bytes()
    (folder / "dm.xpt").write_bytes(data[: len(data) // 2 // 80 * 80])
    assert cli(["import", "sdtm", str(folder), "--db", str(tmp_path / "w.duckdb")]) == 1
    out = capsys.readouterr().out
    assert ("dm.xpt: file is not a complete SAS XPORT file; refused; expected a transport file whose size and records "
            "match its headers, found 'the file ends mid-observation: the data section holds 146 whole observations "
            "of 348 bytes and 312 bytes of a further one; it was probably cut short'") in out
