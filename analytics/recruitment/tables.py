"""Display tables for recruitment: readable column names, formatted values, one row per thing a person reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.display import formats
from analytics.recruitment.criteria import KIND_LABELS, Criterion
from analytics.recruitment.matching import MatchResult

SECTION_LABELS = {"inclusion": "Inclusion", "exclusion": "Exclusion"}
STATUS_LABELS = {"structured": "Structured", "administrative": "Confirmed at screening", "needs_review": "Needs review"}
PASS_LABELS = {1: "Passes", 0: "Fails", -1: "Unknown"}
SOURCE_LABELS = {"rules": "Parser", "generator": "Protocol", "registry": "Registry fields", "model": "Model (accepted)",
                 "person": "Person"}


def criteria_table(criteria: list[Criterion]) -> pd.DataFrame:
    return pd.DataFrame({
        "#": [c.number for c in criteria],
        "Section": [SECTION_LABELS[c.section] for c in criteria],
        "Criterion": [c.text for c in criteria],
        "Kind": [KIND_LABELS.get(c.kind, c.kind) for c in criteria],
        "Status": [STATUS_LABELS[c.status] for c in criteria],
        "Reading": [c.describe() for c in criteria],
        "Source": [SOURCE_LABELS.get(c.source, c.source) for c in criteria],
    })


def waterfall_table(steps: pd.DataFrame, total: int) -> pd.DataFrame:
    return pd.DataFrame({
        "#": steps["number"], "Criterion": steps["text"],
        "Section": steps["section"].map(SECTION_LABELS),
        "Patients before": steps["before"], "Removed here": steps["removed"], "Patients left": steps["after"],
        "Fail it at all": steps["fails"], "Fail only this one": steps["only_this"], "Unknown": steps["unknown"],
        "Share of pool it fails": [f"{v / total:.0%}" if total else "" for v in steps["fails"]],
    })


def cost_table(steps: pd.DataFrame, total: int) -> pd.DataFrame:
    """Criteria by what they cost: the patients only they exclude (dropping them gains these), then all they fail."""
    ranked = steps[steps["fails"] > 0].sort_values(["only_this", "fails"], ascending=False)
    return pd.DataFrame({
        "#": ranked["number"], "Criterion": ranked["text"],
        "Patients only this criterion excludes": ranked["only_this"],
        "Patients it fails": ranked["fails"],
        "Share of pool it fails": [f"{v / total:.0%}" if total else "" for v in ranked["fails"]],
    })


def chance_label(chance: float) -> str:
    """An estimated chance as a percentage; never "0%" or "100%" for what is still unknown."""
    if chance is None or np.isnan(chance):
        return ""
    if chance > 0.99:
        return "> 99%"
    if chance < 0.01:
        return "< 1%"
    return formats.share(chance)


NOTHING_UNKNOWN = "nothing unknown"  # an empty cell would read as a missing estimate


def candidates_table(summary: pd.DataFrame, site_labels: dict[str, str], decisions: pd.DataFrame) -> pd.DataFrame:
    decided = {}
    if decisions is not None and not decisions.empty:
        decided = dict(zip(decisions["patient_id"], decisions["decision"] + " (" + decisions["actor"] + ")"))
    return pd.DataFrame({
        "Rank": summary["rank"], "Patient": summary["patient_id"],
        "Pre-screen result": summary["category"],
        "Chance the unknowns pass (estimate)": [chance_label(c) if u else NOTHING_UNKNOWN for c, u in
                                                zip(summary["chance"], summary["unknown_records"])],
        "Criteria failed": summary["failed"], "Unknown from records": summary["unknown_records"],
        "To confirm at the visit": summary["unknown_visit"],
        "Site": summary["study_site_id"].map(lambda s: site_labels.get(s, s)),
        "Sex": summary["sex"].map({"F": "Female", "M": "Male"}).fillna("Not recorded"),
        "Age": summary["age"].astype("Int64"),
        "Coordinator's decision": summary["patient_id"].map(decided).fillna("Not decided yet"),
    })


def _value(value: float, unit: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    shown = f"{value + 0.0:.2f}".rstrip("0").rstrip(".")  # + 0.0: a stored -0.0 reads "0"
    return f"{shown} {unit}" if unit and unit not in ("1", "{score}") else shown


def evidence_table(result: MatchResult, position: int) -> pd.DataFrame:
    """One patient, criterion by criterion: the result and the record, value and date behind it."""
    frame = result.long_frame(np.array([position]))
    return pd.DataFrame({
        "#": frame["number"], "Section": frame["section"].map(SECTION_LABELS), "Criterion": frame["text"],
        "Result": frame["passes"].map(PASS_LABELS),
        "Why": frame["reason"].replace("", "from the record"),
        "Chance it passes (estimate)": [chance_label(c) if p == -1 else ""
                                       for c, p in zip(result.chance[position], frame["passes"])],
        "Value compared": [_value(v, u) for v, u in zip(frame["value"], frame["unit"])],
        "Date": frame["date"].dt.strftime("%Y-%m-%d").fillna(""),
        "Record": frame["record_id"].fillna(""),
    })


def decisions_table(decisions: pd.DataFrame) -> pd.DataFrame:
    if decisions is None or decisions.empty:
        return pd.DataFrame(columns=["Patient", "Decision", "Reason", "By", "When (UTC)", "Version"])
    ordered = decisions.sort_values("recorded_at", ascending=False)
    return pd.DataFrame({
        "Patient": ordered["patient_id"], "Decision": ordered["decision"], "Reason": ordered["reason"],
        "By": ordered["actor"], "When (UTC)": pd.to_datetime(ordered["recorded_at"]).dt.strftime("%Y-%m-%d %H:%M"),
        "Version": ordered["version"].astype(int),
    })
