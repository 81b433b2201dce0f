"""The one edit-check engine: runs every :class:`~analytics.quality.specs.EditCheck` through the scope.

Each check's SELECT runs through :meth:`Warehouse.query_with` (so it reads only the scope's rows);
its rows become *findings*: the check's category and severity, the record (table, id, visit, field,
value, expected), a sentence built from the check's message template, and two keys:

* ``record_key``: the check, table, record and field; the same finding keeps it when its data change;
* ``finding_id``: a SHA-256 of the record key and every value the check read (``evidence``). A reviewer's
  "not an issue" is kept against this id, so the finding stays set aside until its data change.

SDTM conformance issues found at import (``sdtm_conformance``) become findings of the category
"SDTM conformance" with their rule ID as the check (:func:`conformance_findings`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

import pandas as pd

from analytics.core import schema
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.quality.specs import CATALOGUE, OUTPUT_COLUMNS, EditCheck, check_parameters

FINDING_COLUMNS: tuple[str, ...] = tuple(c.name for c in schema.table("quality_findings").columns)
CONFORMANCE_SEVERITY = {"Error": "Major", "Warning": "Minor"}
MISSING_TEXT = "—"


def _digest(parts: Iterable[object]) -> str:
    return hashlib.sha256("\x1f".join("" if p is None or p is pd.NA else str(p) for p in parts).encode()).hexdigest()[:24]


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return MISSING_TEXT
    return str(value)


def empty_findings() -> pd.DataFrame:
    """A findings frame with no rows and the stored columns."""
    return pd.DataFrame({name: pd.Series(dtype="object") for name in FINDING_COLUMNS}).astype(
        {"record_date": "datetime64[us]"})


def findings_from_rows(check_id: str, category: str, severity: str, table: str, message: str,
                       rows: pd.DataFrame) -> pd.DataFrame:
    """Check output rows (:data:`OUTPUT_COLUMNS`) as findings: keys, hash, sentence."""
    if rows.empty:
        return empty_findings()
    out = pd.DataFrame({name: rows[name] for name in OUTPUT_COLUMNS if name != "evidence"})
    label = out.pop("label")
    out["record_id"] = out["record_id"].astype("string")
    record_key = [f"{check_id}:{table}:{r}:{f}" for r, f in zip(out["record_id"], out["field"])]
    out["record_key"] = record_key
    out["finding_id"] = [_digest((key, evidence)) for key, evidence in zip(record_key, rows["evidence"])]
    out["check_id"], out["category"], out["severity"], out["table_name"] = check_id, category, severity, table
    columns = {name: [_text(v) for v in out[name]] for name in
               ("subject_id", "visit", "field", "value", "expected", "record_id", "study_site_id")}
    columns["label"] = [_text(v) for v in label]
    out["message"] = [message.format(**{name: columns[name][i] for name in columns}) for i in range(len(out))]
    out["record_date"] = pd.to_datetime(out["record_date"], errors="coerce")
    # One finding per record and field: a check may reach a record twice (e.g. two death sources).
    return out.drop_duplicates("finding_id")[list(FINDING_COLUMNS)].reset_index(drop=True)


def run_check(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, check: EditCheck) -> pd.DataFrame:
    """The findings of one check for the scope and filters (empty for a restricted check and a blinded scope)."""
    if check.restricted and scope.blinded:
        return empty_findings()
    rows = wh.query_with(scope, check.ctes, check.sql, check_parameters(), filters)
    return findings_from_rows(check.id, check.category, check.severity, check.table, check.message, rows)


def conformance_findings(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """The SDTM conformance issues stored at import, as findings."""
    rows = wh.query(scope, """
        SELECT study_id, study_site_id, subject_id, rule_id, severity, domain, variable, file_name, row_number,
               record_key, value, message
        FROM sdtm_conformance""", None, filters)
    if rows.empty:
        return empty_findings()
    parts = []
    for (rule_id, severity), group in rows.groupby(["rule_id", "severity"], sort=True):
        record = group["record_key"].fillna("row " + group["row_number"].astype("string")).fillna("dataset")
        frame = pd.DataFrame({
            "study_id": group["study_id"], "study_site_id": group["study_site_id"],
            "subject_id": group["subject_id"], "record_id": record, "label": record,
            "visit": None, "field": group["variable"], "value": group["value"], "expected": None,
            "record_date": pd.NaT,
            "evidence": group["file_name"].fillna("") + "|" + group["row_number"].astype("string").fillna("")
                        + "|" + group["value"].fillna(""),
        })
        found = findings_from_rows(str(rule_id), "SDTM conformance", CONFORMANCE_SEVERITY.get(severity, "Minor"),
                                   "", "{value}", frame)
        found["table_name"] = group["domain"].to_numpy()
        found["message"] = group["message"].to_numpy()
        parts.append(found)
    return pd.concat(parts, ignore_index=True).drop_duplicates("finding_id")


def run_checks(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter,
               checks: tuple[EditCheck, ...] = CATALOGUE, timings: dict[str, float] | None = None,
               include_conformance: bool = True) -> pd.DataFrame:
    """Every check's findings (and the stored conformance issues) for the scope and filters.

    ``timings``, when given, receives each check's wall time in seconds (for the benchmark).
    """
    parts = []
    for check in checks:
        started = time.perf_counter()
        parts.append(run_check(wh, scope, filters, check))
        if timings is not None:
            timings[check.id] = time.perf_counter() - started
    if include_conformance:
        started = time.perf_counter()
        parts.append(conformance_findings(wh, scope, filters))
        if timings is not None:
            timings["SDTM conformance"] = time.perf_counter() - started
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_findings()
    return pd.concat(parts, ignore_index=True).drop_duplicates("finding_id").reset_index(drop=True)
