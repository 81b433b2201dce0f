"""SDTM AE, DV, EX, LB, VS and SUPP-- to their warehouse tables.

AE onset dates: a partial onset ("2013-06", "2012") is imputed by the documented rule of
:func:`analytics.importers.dates.impute_start_dates` (first day of the known period, raised to the
subject's first dose, else consent, when that falls inside it, never after a known end date); the
reported text, its precision and ``onset_date_imputed`` are kept, and the report counts imputed,
unusable and missing onsets per file.

Supplemental qualifiers are joined to their parent records; those that reveal treatment (SUPPEX,
arm variables) go to ``restricted.treatment_qualifiers``, never to ``main``.
"""

from __future__ import annotations

import pandas as pd

from analytics.importers.blinding import arm_revealing_qualifiers
from analytics.importers.dates import impute_start_dates
from analytics.importers.keys import normalize_number_text, stable_ids
from analytics.importers.report import FILE, INFO, WARNING, ImportReport
from analytics.importers.sdtm_columns import StudyFacts, bool_yn, col, dates, located, number, of_subjects, text, \
    visit_numbers
from analytics.importers.sdtm_datasets import Domain

QUALIFIER_COLUMNS = ["study_id", "subject_id", "domain", "record_key", "qualifier", "label", "value"]
IMPUTATION_RULE = ("partial onset date imputed: first day of the known period, raised to first dose (else consent) "
                   "when that falls inside it, never after the AE end date")


def qualifiers(domains: dict[str, Domain], study: StudyFacts, report: ImportReport
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(main qualifiers, treatment-revealing qualifiers): SUPP-- rows whose parent record exists."""
    frames = []
    for code, domain in domains.items():
        if domain.kind != "supp":
            continue
        supp = of_subjects(domain.frame, study.subjects)
        parent_domain = text(supp, "RDOMAIN").str.upper()
        idvar = text(supp, "IDVAR").str.upper()
        idval = normalize_number_text(col(supp, "IDVARVAL"))
        has_parent = pd.Series(True, index=supp.index)
        for (rdomain, variable), rows in supp.groupby([parent_domain, idvar.fillna("")]).groups.items():
            if not variable:
                continue
            parent = domains.get(rdomain)
            if parent is None or variable not in parent.frame.columns:
                continue
            parent_keys = pd.MultiIndex.from_arrays([parent.frame["USUBJID"].astype("string"),
                                                     normalize_number_text(parent.frame[variable])])
            wanted = pd.MultiIndex.from_arrays([supp.loc[rows, "USUBJID"].astype("string"), idval[rows]])
            has_parent[rows] = wanted.isin(parent_keys)
        report.add_rows(WARNING, supp, ~has_parent, "qualifier points at no parent record; row left out",
                        column="IDVARVAL", expected="an existing " + parent_domain.fillna("") + " record with "
                        + idvar.fillna("") + "=" + idval.fillna(""), found=idval, rejected=True)
        keep = has_parent
        frames.append(located(supp.loc[keep], {
            "study_id": study.study_id,
            "subject_id": supp.loc[keep, "USUBJID"],
            "domain": parent_domain[keep],
            "record_key": (idvar[keep] + "=" + idval[keep]).fillna(""),
            "qualifier": text(supp, "QNAM")[keep].str.upper(),
            "label": text(supp, "QLABEL")[keep],
            "value": text(supp, "QVAL")[keep],
        }))
    if not frames:
        empty = pd.DataFrame(columns=QUALIFIER_COLUMNS)
        return empty, empty.copy()
    combined = pd.concat(frames, ignore_index=True)
    restricted = arm_revealing_qualifiers(combined["domain"], combined["qualifier"])
    return combined.loc[~restricted].reset_index(drop=True), combined.loc[restricted].reset_index(drop=True)


def _qualifier_values(qualifiers_: pd.DataFrame, domain: str, name: str, parent: pd.DataFrame, seq: str
                      ) -> pd.Series:
    """One qualifier's values aligned to a parent frame (via IDVAR=--SEQ)."""
    picked = qualifiers_[(qualifiers_["domain"] == domain) & (qualifiers_["qualifier"] == name)]
    lookup = pd.Series(picked["value"].to_numpy(), index=pd.MultiIndex.from_arrays(
        [picked["subject_id"].astype("string"), picked["record_key"].astype("string")]))
    lookup = lookup[~lookup.index.duplicated()]
    keys = pd.MultiIndex.from_arrays([parent["USUBJID"].astype("string"),
                                      f"{seq}=" + normalize_number_text(parent[seq])])
    return pd.Series(lookup.reindex(keys).to_numpy(), index=parent.index, dtype="string")


def adverse_events(domains: dict[str, Domain], study: StudyFacts, qualifiers_: pd.DataFrame,
                   report: ImportReport) -> pd.DataFrame:
    ae = of_subjects(domains["AE"].frame, study.subjects)
    onset = dates(ae, "AESTDTC", report, note_partial=False)
    end = dates(ae, "AEENDTC", report)
    facts = study.subjects.reindex(ae["USUBJID"])
    floors = [pd.Series(facts[name].to_numpy(), index=ae.index) for name in ("consent", "first_dose")]
    completed = impute_start_dates(onset, floors, end["date"])
    imputed = completed["imputed"].to_numpy(dtype=bool)
    report.count_imputed(ae, imputed)
    shown = onset["text"].fillna("") + " -> " + completed["date"].dt.strftime("%Y-%m-%d").fillna("")
    report.add_rows(INFO, ae, imputed, IMPUTATION_RULE, column="AESTDTC", found=shown)
    _count_onsets(domains["AE"], ae, onset, imputed, report)
    grade = number(ae, "AETOXGR", report) if "AETOXGR" in ae.columns else pd.Series(pd.NA, index=ae.index)
    emergent = _qualifier_values(qualifiers_, "AE", "AETRTEM", ae, "AESEQ")
    if "AETRTEMFL" in ae.columns:  # ADaM-style flag carried in the domain itself
        emergent = emergent.fillna(text(ae, "AETRTEMFL"))
    return located(ae, {
        "ae_id": stable_ids(study.study_id, "AE", ae["USUBJID"], normalize_number_text(ae["AESEQ"])),
        "study_id": study.study_id,
        "study_site_id": ae["study_site_id"],
        "subject_id": ae["USUBJID"],
        "term": text(ae, "AEDECOD").fillna(text(ae, "AETERM")),
        "body_system": text(ae, "AEBODSYS").fillna(text(ae, "AESOC")),
        "serious": bool_yn(text(ae, "AESER")),
        "grade": grade,
        "onset_date": completed["date"],
        "onset_date_text": onset["text"],
        "onset_date_precision": onset["precision"],
        "onset_date_imputed": pd.array(imputed, dtype="boolean"),
        "end_date": end["date"],
        "end_date_text": end["text"],
        "severity": text(ae, "AESEV").str.upper(),
        "treatment_emergent": bool_yn(emergent),
        "outcome": text(ae, "AEOUT").str.upper(),
        "serious_criteria": _seriousness_criteria(ae),
    })


# SDTM seriousness flags (Y/N) and the criterion each stands for.
SERIOUSNESS_FLAGS = (("AESDTH", "death"), ("AESLIFE", "life-threatening"), ("AESHOSP", "hospitalization"),
                     ("AESDISAB", "disability"), ("AESCONG", "congenital anomaly"), ("AESMIE", "medically important"))


def _seriousness_criteria(ae: pd.DataFrame) -> pd.Series:
    """The criteria flagged Y, comma separated; empty where the domain records the flags but none is Y;
    missing where it records none of them."""
    present = [(column, name) for column, name in SERIOUSNESS_FLAGS if column in ae.columns]
    if not present:
        return pd.Series(pd.NA, index=ae.index, dtype="string")
    met = pd.Series("", index=ae.index, dtype="string")
    for column, name in present:
        flagged = (text(ae, column).str.upper() == "Y").fillna(False)
        met = met.where(~flagged, met.where(met == "", met + ", ") + name)
    return met


def _count_onsets(domain: Domain, ae: pd.DataFrame, onset: pd.DataFrame, imputed, report: ImportReport) -> None:
    """One note per AE file: complete, imputed (month / year precise), unusable and missing onsets."""
    for file in domain.files():
        mine = (ae[FILE] == file).to_numpy()
        precision = onset["precision"][mine]
        report.info(file, f"AESTDTC of {int(mine.sum()):,} AE(s): {int((precision == 'day').sum()):,} complete, "
                    f"{int(imputed[mine].sum()):,} partial and imputed ({int((precision == 'month').sum()):,} "
                    f"month-, {int((precision == 'year').sum()):,} year-precise), "
                    f"{int(onset['invalid'][mine].sum()):,} unusable (not a date), "
                    f"{int((onset['text'][mine].isna() & ~onset['invalid'][mine]).sum()):,} missing",
                    column="AESTDTC")


def deviations(domains: dict[str, Domain], study: StudyFacts, report: ImportReport) -> pd.DataFrame:
    dv = of_subjects(domains["DV"].frame, study.subjects)
    occurred = dates(dv, "DVSTDTC", report)
    category = text(dv, "DVCAT").fillna(text(dv, "DVDECOD"))
    classification = (category.fillna("") + " " + text(dv, "DVSCAT").fillna("")).str.upper()
    important = pd.Series(pd.NA, index=dv.index, dtype="boolean")
    important = important.mask(classification.str.contains("MINOR"), False)
    important = important.mask(classification.str.contains("MAJOR|IMPORTANT|CRITICAL", regex=True), True)
    return located(dv, {
        "deviation_id": stable_ids(study.study_id, "DV", dv["USUBJID"], normalize_number_text(dv["DVSEQ"])),
        "study_id": study.study_id,
        "study_site_id": dv["study_site_id"],
        "subject_id": dv["USUBJID"],
        "category": category,
        "important": important,
        "description": text(dv, "DVTERM"),
        "occurred_date": occurred["date"],
    })


def exposures(domains: dict[str, Domain], study: StudyFacts, report: ImportReport) -> pd.DataFrame:
    ex = of_subjects(domains["EX"].frame, study.subjects)
    start = dates(ex, "EXSTDTC", report)
    end = dates(ex, "EXENDTC", report)
    return located(ex, {
        "exposure_id": stable_ids(study.study_id, "EX", ex["USUBJID"], normalize_number_text(ex["EXSEQ"])),
        "study_id": study.study_id,
        "study_site_id": ex["study_site_id"],
        "subject_id": ex["USUBJID"],
        "treatment": text(ex, "EXTRT"),
        "dose": number(ex, "EXDOSE", report),
        "dose_unit": text(ex, "EXDOSU"),
        "route": text(ex, "EXROUTE"),
        "start_date": start["date"],
        "end_date": end["date"],
        "start_date_text": start["text"],
    })


def measurements(domains: dict[str, Domain], code: str, study: StudyFacts, report: ImportReport) -> pd.DataFrame:
    """LB or VS results (from one file or the parts of a split dataset) with their visit."""
    frame = of_subjects(domains[code].frame, study.subjects)
    p = code  # variable prefix: LB or VS
    collected = dates(frame, f"{p}DTC", report)
    numbers = visit_numbers(frame, report) if "VISITNUM" in frame.columns else pd.Series(float("nan"),
                                                                                          index=frame.index)
    visit_key = pd.MultiIndex.from_arrays([frame["USUBJID"], numbers])
    visit_id = pd.Series(study.visit_ids.reindex(visit_key).to_numpy(), index=frame.index).astype("Int64")
    grade = number(frame, f"{p}TOXGR", report) if f"{p}TOXGR" in frame.columns else pd.NA
    return located(frame, {
        "measurement_id": stable_ids(study.study_id, code, frame["USUBJID"], normalize_number_text(frame[f"{p}SEQ"])),
        "study_id": study.study_id,
        "study_site_id": frame["study_site_id"],
        "subject_id": frame["USUBJID"],
        "visit_id": visit_id,
        "domain": code,
        "test_code": text(frame, f"{p}TESTCD"),
        "test_name": text(frame, f"{p}TEST"),
        "value": number(frame, f"{p}STRESN", report),
        "unit": text(frame, f"{p}STRESU"),
        "ref_low": number(frame, f"{p}STNRLO", report),
        "ref_high": number(frame, f"{p}STNRHI", report),
        "normal_range_flag": text(frame, f"{p}NRIND").str.upper(),
        "grade": grade,
        "collected_date": collected["date"],
        "time_point": _time_point(frame, p),
    })


def _time_point(frame: pd.DataFrame, prefix: str) -> pd.Series:
    """Position and planned time point (--POS / --TPT), joined by ' / '; missing when neither is given."""
    parts = [text(frame, f"{prefix}{name}") for name in ("POS", "TPT") if f"{prefix}{name}" in frame.columns]
    if not parts:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    joined = parts[0]
    for part in parts[1:]:
        joined = (joined.fillna("") + " / " + part.fillna("")).str.strip(" /").replace("", pd.NA)
    return joined.replace("", pd.NA)
