"""Display tables of the Data Quality page: readable column names, one format per kind of value."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from analytics.display.formats import count, days, p_value
from analytics.quality.specs import CATALOGUE

_MISSING = "—"


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").fillna(_MISSING)


def _num(series: pd.Series) -> pd.Series:
    """Numbers as float64 (missing as NaN, never pd.NA, which the shared formats do not take)."""
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _date(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, errors="coerce").dt.strftime("%d %b %Y").fillna(_MISSING)


def check_catalogue_table() -> pd.DataFrame:
    """Every edit check: id, name, category, severity, what it looks for and the fields it reads."""
    return pd.DataFrame({
        "Check": [c.id for c in CATALOGUE], "Name": [c.name for c in CATALOGUE],
        "Category": [c.category for c in CATALOGUE], "Severity": [c.severity for c in CATALOGUE],
        "Looks for": [c.description for c in CATALOGUE], "Reads": [", ".join(c.reads) for c in CATALOGUE],
    })


def findings_table(rows: pd.DataFrame, dispositions: pd.DataFrame, check_names: Mapping[str, str]) -> pd.DataFrame:
    """One page of findings for the reviewer, with each finding's current disposition."""
    latest = dispositions.set_index("finding_id")["disposition"] if len(dispositions) else pd.Series(dtype="object")
    name, number = rows["site_name"].astype("string"), rows["site_number"].astype("string")
    named = pd.Series([isinstance(n, str) and isinstance(k, str) and k in n for n, k in zip(name, number)],
                      index=rows.index)
    site = name.where(named, name + " (site " + number + ")")
    return pd.DataFrame({
        "Severity": rows["severity"], "Finding": rows["message"],
        "Disposition": rows["finding_id"].map(latest).fillna("Not reviewed"),
        "Check": rows["check_id"].map(lambda c: check_names.get(c, c)), "Study": rows["study_id"],
        "Site": site.fillna(_MISSING), "Subject": _text(rows["subject_id"]), "Record date": _date(rows["record_date"]),
        "Finding id": rows["finding_id"],
    })


def export_table(rows: pd.DataFrame, dispositions: pd.DataFrame, check_names: Mapping[str, str]) -> pd.DataFrame:
    """Findings for the EDC team: every field, plain values (dates ISO), the current disposition and reason."""
    latest = dispositions.set_index("finding_id") if len(dispositions) else pd.DataFrame(
        columns=["disposition", "reason", "actor", "recorded_at"])
    out = pd.DataFrame({
        "finding_id": rows["finding_id"], "study": rows["study_id"], "site": rows["study_site_id"],
        "site_number": rows["site_number"], "subject": rows["subject_id"], "check": rows["check_id"],
        "check_name": rows["check_id"].map(lambda c: check_names.get(c, c)), "category": rows["category"],
        "severity": rows["severity"], "table": rows["table_name"], "record": rows["record_id"],
        "visit": rows["visit"], "field": rows["field"], "value": rows["value"], "expected": rows["expected"],
        "finding": rows["message"], "record_date": pd.to_datetime(rows["record_date"]).dt.date,
    })
    for column, name in (("disposition", "disposition"), ("reason", "disposition_reason"), ("actor", "reviewer"),
                         ("recorded_at", "reviewed_at_utc")):
        out[name] = rows["finding_id"].map(latest[column]) if column in latest else None
    out["reviewed_at_utc"] = pd.to_datetime(out["reviewed_at_utc"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    return out


def history_table(history: pd.DataFrame) -> pd.DataFrame:
    """Every disposition of one finding, oldest first."""
    return pd.DataFrame({
        "Version": history["version"].astype("int64"), "Disposition": history["disposition"],
        "Reason": history["reason"], "By": history["actor"],
        "When (UTC)": pd.to_datetime(history["recorded_at"], utc=True).dt.strftime("%d %b %Y %H:%M"),
    })


def site_ranking_table(sites: pd.DataFrame) -> pd.DataFrame:
    """Sites by combined evidence of unusual patterns, with the strongest signal in words."""
    return pd.DataFrame({
        "Site": sites["site_name"] + " (" + sites["study_id"] + " site " + sites["site_number"].astype(str) + ")",
        "Country": sites["country_code"], "Signals (p < 0.01)": sites["signals"].astype("int64"),
        "Combined p": sites["combined_p"].map(p_value), "Strongest signal": _text(sites["top_explanation"]),
    })


def signals_table(signals: pd.DataFrame) -> pd.DataFrame:
    """One site's signals: the pattern, its p against the study's other sites, the explanation."""
    names = {"robust_z": "Robust z", "isolation_forest": "IsolationForest", "identical_vectors": "Identical vectors",
             "entry_burst": "Entry bursts", "digit_preference": "Digit preference", "low_variance": "Low variance",
             "inliers": "Too-typical subjects", "regular_visits": "Too-regular visits"}
    return pd.DataFrame({
        "Pattern": signals["signal"].map(names), "p (against the study's other sites)": signals["p"].map(p_value),
        "In words": signals["explanation"],
    })


def site_metrics_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per site: query and timeliness figures next to the median of the study's sites."""
    def pair(value: pd.Series, peer: pd.Series, fmt) -> pd.Series:
        return value.map(fmt) + " (study " + peer.map(fmt) + ")"

    per_100 = lambda v: "—" if pd.isna(v) else f"{v:.1f}"  # noqa: E731
    return pd.DataFrame({
        "Site": metrics["site_name"] + " (" + metrics["study_id"] + " site " + metrics["site_number"].astype(str) + ")",
        "Queries per 100 data points": pair(metrics["queries_per_100"], metrics["queries_per_100_study"], per_100),
        "Open > 30 days": pair(metrics["open_over_30"], metrics["open_over_30_study"], count),
        "Median days to resolve": pair(metrics["resolution_median"], metrics["resolution_median_study"], days),
        "Median entry lag": pair(metrics["entry_lag_median"], metrics["entry_lag_median_study"], days),
        "Overdue pages": pair(metrics["overdue_pages"], metrics["overdue_pages_study"], count),
        "SDV backlog (data points)": pair(metrics["sdv_backlog"], metrics["sdv_backlog_study"], count),
    })


def subject_tables(record: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A subject's record, readable: visits, adverse events, results."""
    visits, aes, results = record["visits"], record["adverse_events"], record["results"]
    return {
        "Visits": pd.DataFrame({
            "Visit": _text(visits["visit_name"]), "Status": visits["status"], "Scheduled": _date(visits["scheduled_date"]),
            "Window (days)": _num(visits["window_days"]).map(count), "Took place": _date(visits["actual_date"]),
            "Entered": _date(visits["entry_date"])}),
        "Adverse events": pd.DataFrame({
            "Term": _text(aes["term"]), "Serious": aes["serious"].map({True: "Yes", False: "No"}).fillna(_MISSING),
            "Seriousness criteria": _text(aes["serious_criteria"]), "Grade": _num(aes["grade"]).map(count),
            "Outcome": _text(aes["outcome"]), "Onset": _date(aes["onset_date"]), "End": _date(aes["end_date"])}),
        "Results": pd.DataFrame({
            "Visit": _text(results["visit_name"]), "Collected": _date(results["collected_date"]),
            "Test": results["test_code"], "Time point": _text(results["time_point"]),
            "Value": _num(results["value"]).map(lambda v: _MISSING if pd.isna(v) else f"{v:g}"),
            "Unit": _text(results["unit"]),
            "Normal range": _num(results["ref_low"]).map(lambda v: "" if pd.isna(v) else f"{v:g}") + " – "
            + _num(results["ref_high"]).map(lambda v: "" if pd.isna(v) else f"{v:g}")}),
    }


def value_text(value: object) -> str:
    """One value of a subject's record: dates as 01 Jan 2026, numbers without decimals, missing as a dash."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value) or value is pd.NaT:
        return _MISSING
    if isinstance(value, pd.Timestamp) or hasattr(value, "strftime"):
        return f"{pd.Timestamp(value):%d %b %Y}"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return str(value)
