"""SDTM trial design (TS, TA, TV) to the study row, its planned visits and (restricted) its arms."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analytics.importers.report import FILE, ROW, ImportReport
from analytics.importers.sdtm_columns import located, number, text, visit_numbers
from analytics.importers.sdtm_datasets import Domain

_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}
SCHEDULE_COLUMNS = ["study_id", "visit_number", "visit_name", "planned_day", "arm_code"]


def phase_from_text(value: str | None) -> tuple[str | None, bool]:
    """("Phase 3", combined?) from TS TPHASE text such as "Phase II Trial", "PHASE II/III" or "Phase 2"."""
    if not value:
        return None, False
    words = re.sub(r"(?i)phase", " ", value).replace("/", " ").replace("-", " ").upper().split()
    numbers = [_ROMAN.get(w.rstrip("AB"), None) or (int(w[0]) if w[:1] in "1234" and len(w) <= 2 else None)
               for w in words]
    found = [n for n in numbers if n]
    if not found:
        return None, False
    return f"Phase {max(found)}", len(set(found)) > 1


def ts_values(domains: dict[str, Domain]) -> dict[str, list[str]]:
    """TSVAL values per TSPARMCD (in file order)."""
    if "TS" not in domains:
        return {}
    ts = domains["TS"].frame
    values: dict[str, list[str]] = {}
    for code, value in zip(text(ts, "TSPARMCD"), text(ts, "TSVAL")):
        if pd.notna(code) and pd.notna(value):
            values.setdefault(str(code).upper(), []).append(str(value))
    return values


def planned_visits(domains: dict[str, Domain], study_id: str, report: ImportReport) -> pd.DataFrame:
    """The TV schedule (one row per TV record; arm-specific rows keep their ARMCD for missed-visit logic)."""
    if "TV" not in domains:
        return pd.DataFrame(columns=SCHEDULE_COLUMNS)
    tv = domains["TV"].frame
    return located(tv, {
        "study_id": study_id,
        "visit_number": visit_numbers(tv, report),
        "visit_name": text(tv, "VISIT"),
        "planned_day": number(tv, "VISITDY", report).round().astype("Int64"),
        "start_rule": text(tv, "TVSTRL"),
        "end_rule": text(tv, "TVENRL"),
        "arm_code": text(tv, "ARMCD"),
    })


def trial_arms(domains: dict[str, Domain], study_id: str, report: ImportReport) -> pd.DataFrame:
    """TA rows for ``restricted.trial_arms`` (arm names unblind, so they never reach ``main``)."""
    if "TA" not in domains:
        return pd.DataFrame(columns=["study_id", "arm_code", "element_order"])
    ta = domains["TA"].frame
    return located(ta, {
        "study_id": study_id,
        "arm_code": text(ta, "ARMCD"),
        "element_order": number(ta, "TAETORD", report).round().astype("Int64"),
        "arm": text(ta, "ARM"),
        "element_code": text(ta, "ETCD"),
        "element": text(ta, "ELEMENT"),
        "epoch": text(ta, "EPOCH"),
    })


def study_row(domains: dict[str, Domain], study_id: str, study_code: str, sponsor_id: str, subjects: pd.DataFrame,
              planned: pd.DataFrame, therapeutic_area: str | None, report: ImportReport) -> pd.DataFrame:
    """The ``main.studies`` row from TS parameters, the TV schedule and the subjects' statuses."""
    ts = ts_values(domains)
    ts_file = domains["TS"].file if "TS" in domains else "(folder)"
    phase, combined = phase_from_text((ts.get("TPHASE") or [None])[0])
    if ts.get("TPHASE") and phase is None:
        report.warning(ts_file, "trial phase not recognised; left empty", column="TSVAL (TPHASE)",
                       expected="Phase 1-4 (roman or arabic)", found=ts["TPHASE"][0])
    if combined:
        report.info(ts_file, f"combined phase {ts['TPHASE'][0]!r} recorded as {phase} (the later phase)")
    blind_text = " ".join(ts.get("TBLIND", [])).upper()
    if not blind_text:
        report.info(ts_file, "no TBLIND in TS; the study is treated as blinded (the safe default)")
    blinded = not ("OPEN" in blind_text and "BLIND" not in blind_text.replace("OPEN", ""))
    planned_subjects = None
    if ts.get("PLANSUB"):
        try:
            planned_subjects = int(float(ts["PLANSUB"][0]))
        except ValueError:
            report.warning(ts_file, "planned number of subjects is not a number; left empty",
                           column="TSVAL (PLANSUB)", expected="a whole number", found=ts["PLANSUB"][0])
    schedule = planned[(planned["planned_day"] > 1) & (planned["visit_number"] < 100)].drop_duplicates("visit_number")
    days = schedule["planned_day"].dropna().astype(int).sort_values()
    statuses = set(subjects["status"])
    status = "Enrolling" if "Screening" in statuses else ("Follow-up" if "On study" in statuses else "Closed")
    row = {
        "study_id": study_id,
        "protocol_id": study_code,
        "sponsor_id": sponsor_id,
        "title": (ts.get("TITLE") or [None])[0],
        "phase": phase,
        "therapeutic_area": therapeutic_area,
        "indication": "; ".join(ts["INDIC"]) if ts.get("INDIC") else None,
        "target_enrollment": planned_subjects,
        "status": status,
        "blinded": blinded,
        "visit_interval_days": int(np.median(np.diff(days))) if len(days) > 1 else None,
        "planned_visits": len(schedule) if len(schedule) else None,
        # TV's planned study days: day 1 is the first treatment, so the last scheduled visit is on day N.
        "treatment_duration_days": int(days.iloc[-1]) - 1 if len(days) else None,
        "data_source": "sdtm",
        FILE: domains["DM"].file,
        ROW: None,
    }
    return pd.DataFrame([row])
