"""What the Data page shows: where each study's data came from, and a load's report, as readable tables."""

from __future__ import annotations

import pandas as pd

from analytics.core.caching import cached
from analytics.core.scope import AccessScope
from analytics.core.warehouse import Warehouse
from analytics.importers.report import ImportReport

SOURCE_NAMES = {"synthetic": "Generated (demo)", "sdtm": "CDISC SDTM", "ctgov": "ClinicalTrials.gov",
                "tables": "Operational tables"}


@cached
def study_provenance(wh: Warehouse, scope: AccessScope) -> pd.DataFrame:
    """One row per visible study: its source, how many files fed it, when and by which importer."""
    studies = wh.query(scope, """
        SELECT st.study_id, st.protocol_id, sp.name AS sponsor, st.title, st.data_source,
               count(p.file_name) AS files, max(p.imported_at) AS imported_at,
               any_value(p.importer_version) AS importer_version
        FROM scoped_studies st
        JOIN sponsors sp USING (sponsor_id)
        LEFT JOIN data_provenance p ON p.study_id = st.study_id
        GROUP BY ALL
        ORDER BY imported_at DESC NULLS LAST, st.study_id
    """)
    return pd.DataFrame({
        "Study": studies["study_id"],
        "Protocol": studies["protocol_id"],
        "Sponsor": studies["sponsor"],
        "Title": studies["title"].fillna("—"),
        "Source": studies["data_source"].map(lambda s: SOURCE_NAMES.get(s, s or "—")),
        "Files": studies["files"].astype("int64"),
        "Loaded (UTC)": pd.to_datetime(studies["imported_at"]).dt.strftime("%d %b %Y %H:%M").fillna("—"),
        "Importer": studies["importer_version"].fillna("—"),
    })


@cached
def source_files(wh: Warehouse, scope: AccessScope, study_id: str) -> pd.DataFrame:
    """The files that fed one study, with their checksums and counts."""
    files = wh.query(scope, """
        SELECT p.file_name, p.source_type, p.row_count, p.rejected_rows, p.sha256, p.imported_at, p.notes
        FROM data_provenance p WHERE p.study_id = $study ORDER BY p.file_name
    """, {"study": study_id})
    return _file_table(files)


@cached
def benchmark_files(wh: Warehouse, scope: AccessScope) -> pd.DataFrame:
    """ClinicalTrials.gov exports loaded as benchmarks (not trial data of any sponsor)."""
    files = wh.query(scope, """
        SELECT file_name, source_type, row_count, rejected_rows, sha256, imported_at, notes
        FROM data_provenance WHERE source_type = 'ctgov' ORDER BY imported_at DESC
    """)
    return _file_table(files)


def _file_table(files: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "File": files["file_name"],
        "Source": files["source_type"].map(lambda s: SOURCE_NAMES.get(s, s or "—")),
        "Rows read": files["row_count"].map(lambda n: "—" if pd.isna(n) else f"{int(n):,}"),
        "Rows left out": files["rejected_rows"].map(lambda n: "—" if pd.isna(n) else f"{int(n):,}"),
        "SHA-256": files["sha256"].fillna("—"),
        "Loaded (UTC)": pd.to_datetime(files["imported_at"]).dt.strftime("%d %b %Y %H:%M").fillna("—"),
        "Notes": files["notes"].fillna(""),
    })


def dataset_table(report: ImportReport) -> pd.DataFrame:
    """Rows read, loaded, imputed and left out per source dataset: what a data manager checks."""
    frame = report.dataset_frame()
    return pd.DataFrame({
        "File": frame["file"],
        "Dataset": frame["domain"].fillna("—"),
        "Rows read": frame["read"].map(lambda n: f"{int(n):,}"),
        "Rows loaded": frame["loaded"].map(lambda n: "not loaded" if pd.isna(n) else f"{int(n):,}"),
        "Dates imputed": frame["imputed"].map(lambda n: f"{int(n):,}"),
        "Rows left out": frame["rejected"].map(lambda n: f"{int(n):,}"),
        "Loaded into": frame["into"].fillna("—"),
    })


def findings_table(report: ImportReport) -> pd.DataFrame:
    """The report's findings (the first examples of each rule, with the rule's total)."""
    issues = report.to_frame()
    return pd.DataFrame({
        "Severity": issues["severity"].astype("string").str.capitalize(),
        "File": issues["file"].astype("string").fillna("—"),
        "Row": issues["row"].map(lambda r: "—" if pd.isna(r) else f"{int(r):,}"),
        "Column": issues["column"].astype("string").fillna("—"),
        "Finding": issues["message"].astype("string"),
        "Expected": issues["expected"].astype("string").fillna("—"),
        "Found": issues["found"].astype("string").fillna("—"),
        "Row left out": issues["rejected"].fillna(False).astype(bool),
        "Times this rule was found": issues["rule_total"].map(lambda n: "—" if pd.isna(n) else f"{int(n):,}"),
    })


def staged_table(report: ImportReport) -> pd.DataFrame:
    """Rows the load writes per warehouse table."""
    return pd.DataFrame({"Table": list(report.rows_staged),
                         "Rows to load": [f"{n:,}" for n in report.rows_staged.values()]})
