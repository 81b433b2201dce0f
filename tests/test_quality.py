"""Data quality as a data manager would check it: checks, conformance, signals, review, paging, exports."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analytics.core import derived, warehouse
from analytics.core.records import RecordsStore
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.importers.report import FILE, ROW
from analytics.importers.sdtm_datasets import Domain
from analytics.quality import conformance, exports, review, service, tables
from analytics.quality.specs import CATALOGUE
from analytics.quality.results import FINDINGS_RESULT

FULL = AccessScope.full_access(blinded=False)


def stored_findings(db: Path, study_id: str | None = None) -> pd.DataFrame:
    with warehouse.inspect(db) as con:
        findings = con.execute("SELECT * FROM derived.quality_findings").df()
    return findings if study_id is None else findings[findings["study_id"] == study_id]


def test_clean_generated_data_give_no_findings(tiny_db: Path) -> None:
    # The tiny preset injects no labelled errors: any finding would be a false one.
    assert stored_findings(tiny_db).empty


def test_every_injected_error_is_found_by_the_check_of_its_kind(demo_db: Path) -> None:
    with warehouse.inspect(demo_db) as con:
        truth = con.execute("SELECT * FROM truth.data_errors").df()
    assert set(truth["check_id"]) == {c.id for c in CATALOGUE}  # every check's kind was injected
    found = set(zip(stored_findings(demo_db)["check_id"], stored_findings(demo_db)["record_id"]))
    missed = truth[[(c, r) not in found for c, r in zip(truth["check_id"], truth["record_id"])]]
    assert missed.empty, missed[["check_id", "record_id", "detail"]].to_string()
    # Findings other than the injected ones concern only the subjects an error touched.
    extra = stored_findings(demo_db)
    assert extra["subject_id"].isin(set(truth["subject_id"])).all()


def test_a_finding_reads_like_a_sentence_with_its_record(demo_db: Path) -> None:
    findings = stored_findings(demo_db).set_index("check_id")
    window = findings.loc["DL06"].iloc[0] if isinstance(findings.loc["DL06"], pd.DataFrame) else findings.loc["DL06"]
    assert "outside its window" in window["message"] and window["table_name"] == "visits"
    assert window["record_date"] is not None and len(window["finding_id"]) == 24


def _domain(code: str, rows: list[dict], file: str) -> Domain:
    frame = pd.DataFrame(rows).astype("string")
    frame[FILE], frame[ROW] = file, range(1, len(rows) + 1)
    return Domain(code, [], frame)


def test_conformance_rules_find_each_broken_record_by_rule_id(tmp_path: Path) -> None:
    dm = _domain("DM", [{"STUDYID": "S", "DOMAIN": "DM", "USUBJID": "S-1", "SUBJID": "1", "SITEID": "01", "SEX": "M",
                         "ARMCD": "A", "ARM": "Drug", "COUNTRY": "USA"},
                        {"STUDYID": "S", "DOMAIN": "DM", "USUBJID": "S-2", "SUBJID": "2", "SITEID": "01", "SEX": "X",
                         "ARMCD": "A", "ARM": "Drug", "COUNTRY": "USA"}], "dm.xpt")
    ae = _domain("AE", [
        {"STUDYID": "S", "DOMAIN": "AE", "USUBJID": "S-1", "AESEQ": "1", "AETERM": "Headache", "AEDECOD": "Headache",
         "AESTDTC": "2013-06", "VISITNUM": "1"},
        {"STUDYID": "S", "DOMAIN": "AE", "USUBJID": "S-1", "AESEQ": "1", "AETERM": None, "AEDECOD": "Nausea",
         "AESTDTC": "2013-13-01", "VISITNUM": "7"},
        {"STUDYID": "S", "DOMAIN": "AE", "USUBJID": "S-9", "AESEQ": "1", "AETERM": "Rash", "AEDECOD": "Rash",
         "AESTDTC": "15JUN2013", "VISITNUM": "1"}], "ae.xpt")
    sv = _domain("SV", [{"STUDYID": "S", "DOMAIN": "SV", "USUBJID": "S-1", "VISITNUM": "1", "VISIT": "WEEK 1"},
                        {"STUDYID": "S", "DOMAIN": "SV", "USUBJID": "S-9", "VISITNUM": "1", "VISIT": "WEEK 1"}], "sv.xpt")
    define = tmp_path / "define.xml"
    define.write_text("""<ODM xmlns="http://www.cdisc.org/ns/odm/v1.2"><Study><MetaDataVersion>
      <ItemGroupDef OID="IG.DM" Name="DM" Domain="DM"><ItemRef ItemOID="IT.DM.SEX"/></ItemGroupDef>
      <ItemDef OID="IT.DM.SEX" Name="SEX"><CodeListRef CodeListOID="CL.SEX"/></ItemDef>
      <CodeList OID="CL.SEX" Name="SEX"><CodeListItem CodedValue="M"/><CodeListItem CodedValue="F"/></CodeList>
      </MetaDataVersion></Study></ODM>""")
    issues = conformance.check_domains({"DM": dm, "AE": ae, "SV": sv}, define)
    where = {(r.rule_id, r.file_name, r.row_number, r.variable) for r in issues.itertuples()}
    assert ("SD0002", "ae.xpt", 2, "AETERM") in where
    assert ("SD0003", "ae.xpt", 2, "AESTDTC") in where and ("SD0003", "ae.xpt", 3, "AESTDTC") in where
    assert not any(r == "SD0003" and row == 1 for r, _, row, _ in where)  # a partial date is valid ISO 8601
    assert ("SD0005", "ae.xpt", 2, "AESEQ") in where
    assert ("SD0064", "ae.xpt", 3, "USUBJID") in where and ("SD0064", "sv.xpt", 2, "USUBJID") in where
    assert ("SD0065", "ae.xpt", 2, "VISITNUM") in where
    assert ("CT2001", "dm.xpt", 2, "SEX") in where  # SEX is a non-extensible codelist
    messages = issues.set_index("rule_id")["message"]
    assert "not in the non-extensible codelist SEX" in messages["CT2001"]


def test_conformance_hides_treatment_revealing_values() -> None:
    dm = _domain("DM", [{"STUDYID": "S", "DOMAIN": "DM", "USUBJID": "S-1", "SUBJID": "1", "SITEID": "01", "SEX": "M",
                         "ARMCD": "A", "ARM": "Drug", "COUNTRY": "USA"}], "dm.xpt")
    ex = _domain("EX", [{"STUDYID": "S", "DOMAIN": "EX", "USUBJID": "S-1", "EXSEQ": "1", "EXTRT": "Drug 50 mg",
                         "EXSTDTC": "2013-02-30"}], "ex.xpt")
    issues = conformance.check_domains({"DM": dm, "EX": ex})
    assert set(issues["rule_id"]) == {"SD0003"}
    assert (issues["value"] == conformance.HIDDEN_VALUE).all() and not issues["message"].str.contains("50 mg").any()


def test_the_pilot_findings_are_listed_by_rule(pilot_db: Path) -> None:
    findings = stored_findings(pilot_db, "CDISCPILOT01")
    by_check = findings.groupby("check_id").size().to_dict()
    # The pilot's three fatal AEs are not marked serious (AESER = N with AEOUT = FATAL, AESDTH = Y).
    assert by_check.get("CF02") == 3
    assert findings.loc[findings["check_id"] == "CF02", "message"].str.contains("fatal outcome, not serious").all()
    assert by_check.get("DL04", 0) >= 1  # visits the day after a death
    # Consent (RFICDTC) is absent from the pilot's DM altogether: not reported per subject.
    assert not ((findings["check_id"] == "MD01") & (findings["field"] == "consent_date")).any()
    with warehouse.inspect(pilot_db) as con:
        assert con.execute("SELECT count(*) FROM main.sdtm_conformance").fetchall()[0][0] == len(
            findings[findings["category"] == "SDTM conformance"])


def test_the_generators_fabricating_sites_rank_first(demo_db: Path) -> None:
    wh = warehouse.Warehouse.open(demo_db)
    ranked = service.ranked_sites(wh, FULL, NO_FILTER)
    with warehouse.inspect(demo_db) as con:
        fabricating = set(con.execute("SELECT study_site_id FROM truth.anomalies WHERE anomaly_type = "
                                      "'fabricated_data'").df()["study_site_id"])
    assert set(ranked["study_site_id"].head(len(fabricating))) == fabricating
    signals = service.site_signals(wh, FULL, NO_FILTER, ranked["study_site_id"].iloc[0])
    assert signals["explanation"].str.contains("against").any()  # explained against the study's other sites


def test_findings_are_paged_in_sql_and_filtered(demo_db: Path) -> None:
    wh = warehouse.Warehouse.open(demo_db)
    first, total = service.findings_page(wh, FULL, NO_FILTER, (), (), (), "open", (), 1, 10)
    assert total == len(stored_findings(demo_db)) and len(first) == 10
    second, _ = service.findings_page(wh, FULL, NO_FILTER, (), (), (), "open", (), 2, 10)
    assert not set(first["finding_id"]) & set(second["finding_id"])
    assert first["severity"].iloc[0] == "Critical"
    critical, n = service.findings_page(wh, FULL, NO_FILTER, ("Critical",), (), (), "open", (), 1, 500)
    assert n == (stored_findings(demo_db)["severity"] == "Critical").sum() and set(critical["severity"]) == {"Critical"}
    one_study = PortfolioFilter(study_ids=("ST001",))
    rows, _ = service.findings_page(wh, FULL, one_study, (), (), (), "all", (), 1, 500)
    assert set(rows["study_id"]) == {"ST001"}


def test_not_an_issue_stays_set_aside_until_the_data_change(demo_db: Path, tmp_path: Path) -> None:
    db = warehouse.copy_warehouse(demo_db, tmp_path / "copy" / "warehouse.duckdb")
    wh = warehouse.Warehouse.open(db)
    finding = stored_findings(db).query("check_id == 'DL02'").iloc[0]
    with RecordsStore(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        with pytest.raises(review.ReviewError, match="reason"):
            review.record_disposition(store, finding.to_dict(), "Not an issue", " ", "dm@cro.example", ["ST001", finding["study_id"]])
        with pytest.raises(review.ReviewError, match="not in a study available"):
            review.record_disposition(store, finding.to_dict(), "Not an issue", "end date confirmed on source",
                                      "dm@cro.example", ["NOPE"])
        review.record_disposition(store, finding.to_dict(), "Query raised", "asked the site to check the dates",
                                  "dm@cro.example", [finding["study_id"]])
        review.record_disposition(store, finding.to_dict(), "Not an issue", "end date confirmed on source",
                                  "dm@cro.example", [finding["study_id"]])
        dispositions = review.current_dispositions(store, [finding["study_id"]])
        history = review.disposition_history(store, finding["finding_id"], [finding["study_id"]])
        assert history["disposition"].tolist() == ["Query raised", "Not an issue"]  # nothing overwritten
        hidden = tuple(review.set_aside_ids(dispositions))
        assert hidden == (finding["finding_id"],)
        rows, _ = service.findings_page(wh, FULL, NO_FILTER, (), (), ("DL02",), "open", hidden, 1, 500)
        assert finding["finding_id"] not in set(rows["finding_id"])

        # The next refresh with the same data keeps the same id: still set aside.
        with warehouse.modify_aside(db) as con:
            derived.refresh(con, (FINDINGS_RESULT,), force=True)  # the findings alone: the rest is not at issue
        assert finding["finding_id"] in set(stored_findings(db)["finding_id"])
        # A data change to the record gives a new id: the finding is back, unreviewed.
        with warehouse.modify_aside(db) as con:
            con.execute("UPDATE main.adverse_events SET end_date = onset_date - 1 WHERE ae_id = $id",
                        {"id": int(finding["record_id"])})
            derived.mark_changed(con, [finding["study_id"]])
            derived.refresh(con, (FINDINGS_RESULT,))
        again = stored_findings(db).query("record_key == @finding.record_key")
        assert len(again) == 1 and again["finding_id"].iloc[0] != finding["finding_id"]
        rows, _ = service.findings_page(warehouse.Warehouse.open(db), FULL, NO_FILTER, (), (), ("DL02",), "open",
                                        hidden, 1, 500)
        assert again["finding_id"].iloc[0] in set(rows["finding_id"])


def test_exports_open_in_excel_with_findings_and_queries(demo_db: Path) -> None:
    wh = warehouse.Warehouse.open(demo_db)
    rows = service.export_findings(wh, FULL, NO_FILTER, (), (), (), "all", ())
    empty = pd.DataFrame(columns=list(review.DISPOSITION_COLUMNS))
    table = tables.export_table(rows, empty, service.check_names())
    workbook = openpyxl.load_workbook(io.BytesIO(exports.excel_bytes({"Findings": table, "Queries": table.iloc[:0]})))
    assert workbook.sheetnames == ["Findings", "Queries"]
    sheet = workbook["Findings"]
    assert sheet.max_row == len(table) + 1 and sheet.cell(1, 1).value == "finding_id"
    assert exports.csv_bytes(table).decode().splitlines()[0].startswith("finding_id,study,site")


def test_a_blinded_scope_never_runs_the_dosing_check(demo_db: Path) -> None:
    from analytics.quality.engine import run_check
    from analytics.quality.specs import CATALOGUE_BY_ID

    wh = warehouse.Warehouse.open(demo_db)
    assert run_check(wh, AccessScope.full_access(blinded=True), NO_FILTER, CATALOGUE_BY_ID["DL03"]).empty
    assert len(run_check(wh, FULL, NO_FILTER, CATALOGUE_BY_ID["DL03"])) > 0


@pytest.mark.parametrize(("user", "sees_subject"), [("data_manager", True), ("local", False)])
def test_the_subject_record_opens_only_for_roles_with_subject_data(user, sees_subject, app_env, monkeypatch,
                                                                     tmp_path) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP

    monkeypatch.setenv("CRO_USER", user)
    monkeypatch.setenv("CRO_RECORDS_URL", f"sqlite:///{tmp_path / 'records.sqlite'}")
    subject = stored_findings(app_env).query("study_id == 'ST001'")["subject_id"].dropna().iloc[0]
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["subject"] = subject
    at.run()
    at.switch_page("pages/data_quality.py")
    at.query_params["subject"] = subject
    at.run()
    assert not at.exception
    headers = [h.value for h in at.subheader]
    assert ("Subject record" in headers) == sees_subject
    if sees_subject:
        assert any(subject in c.value for c in at.caption)
