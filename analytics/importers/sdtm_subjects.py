"""SDTM DM, DS and SV to subjects, study-sites, sites, dispositions, visits and (restricted) arms.

Visits: an SV record is a visit that took place unless ``SVOCCUR = N``. Most SV datasets carry no
SVOCCUR (it is permissible); a missing variable means "not collected", so every SV record keeps its
actual date. Visits planned in TV after day 1 that fell due before the subject left but are absent
from SV are added as Missed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.core.schema import ETHNICITIES, RACES
from analytics.importers.countries import to_alpha2
from analytics.importers.keys import normalize_number_text, stable_ids
from analytics.importers.report import ERROR, FILE, INFO, ROW, WARNING, ImportReport
from analytics.importers.sdtm_columns import StudyFacts, dates, located, number, of_subjects, text, visit_numbers
from analytics.importers.sdtm_datasets import Domain

NOT_ASSIGNED_ARMS = ("SCRNFAIL", "NOTASSGN", "NOTTRT")
DISPOSITION_COLUMNS = ["subject_id", "category", "decoded_term", "reported_term", "event_date", "event_date_text", ROW]


def dispositions(domains: dict[str, Domain], study: StudyFacts, report: ImportReport) -> pd.DataFrame:
    if "DS" not in domains:
        return pd.DataFrame(columns=DISPOSITION_COLUMNS)
    ds = of_subjects(domains["DS"].frame, study.subjects)
    when = dates(ds, "DSSTDTC", report)
    return located(ds, {
        "disposition_id": stable_ids(study.study_id, "DS", ds["USUBJID"], normalize_number_text(ds["DSSEQ"])),
        "study_id": study.study_id,
        "study_site_id": ds["study_site_id"],
        "subject_id": ds["USUBJID"],
        "category": text(ds, "DSCAT"),
        "decoded_term": text(ds, "DSDECOD"),
        "reported_term": text(ds, "DSTERM"),
        "event_date": when["date"],
        "event_date_text": when["text"],
        "event_date_precision": when["precision"],
        "visit_number": visit_numbers(ds, report) if "VISITNUM" in ds.columns else pd.NA,
    })


def _subject_status(dm: pd.DataFrame, disp: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Status, disposition dates and reasons per subject from DM (RFSTDTC, ARM) and DS."""
    started = text(dm, "RFSTDTC").notna()
    arm_text = (text(dm, "ARMCD").fillna("") + " " + text(dm, "ARM").fillna("")).str.upper()
    arm_says_failure = arm_text.str.contains("SCRNFAIL|SCREEN FAIL", regex=True)
    final = pd.DataFrame(index=dm["USUBJID"])
    if len(disp):
        category = disp["category"].fillna("DISPOSITION EVENT").str.upper()
        events = disp[(category == "DISPOSITION EVENT")].sort_values(["subject_id", "event_date_text", ROW])
        last = events.groupby("subject_id").tail(1).set_index("subject_id")
        final = final.join(last[["decoded_term", "reported_term", "event_date"]])
        milestones = disp.assign(term=disp["decoded_term"].str.upper())
        randomized = milestones[milestones["term"] == "RANDOMIZED"].groupby("subject_id")["event_date"].min()
        consent = milestones[milestones["term"] == "INFORMED CONSENT OBTAINED"].groupby("subject_id")["event_date"].min()
        final["randomized_ds"] = randomized
        final["consent_ds"] = consent
    for name in ("decoded_term", "reported_term", "event_date", "randomized_ds", "consent_ds"):
        if name not in final.columns:
            final[name] = pd.NA
    term = final["decoded_term"].astype("string").str.upper().fillna("").to_numpy(dtype=object)
    has_disposition = term != ""
    started_v = started.to_numpy(dtype=bool)
    failure_v = arm_says_failure.fillna(False).to_numpy(dtype=bool) | (term == "SCREEN FAILURE")
    status = np.select(
        [
            ~started_v & (failure_v | has_disposition),
            ~started_v,
            term == "SCREEN FAILURE",
            term == "COMPLETED",
            has_disposition,
        ],
        ["Screen failure", "Screening", "Screen failure", "Completed", "Discontinued"],
        default="On study",
    )
    report.add_rows(WARNING, dm, started_v & (term == "SCREEN FAILURE"), "subject has a first-treatment date but a "
                    "SCREEN FAILURE disposition; recorded as a screen failure", column="RFSTDTC",
                    found=text(dm, "RFSTDTC"))
    final["status"] = status
    return final



def _controlled(dm: pd.DataFrame, column: str, terms: tuple[str, ...], report: ImportReport) -> pd.Series:
    """A DM column in CDISC controlled terminology (upper-cased); other values are left empty with a warning."""
    values = text(dm, column).str.upper().str.strip()
    odd = (values.notna() & ~values.isin(terms)).fillna(False)
    report.add_rows(WARNING, dm, odd, f"{column} is not a CDISC controlled term; left empty", column=column,
                    expected=", ".join(terms), found=dm[column] if column in dm.columns else None)
    return values.where(~odd)

def subjects_and_sites(domains: dict[str, Domain], study_id: str, default_country: str | None,
                       report: ImportReport, disp: pd.DataFrame, first_visit: pd.Series
                       ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(subjects, study_sites, sites) frames from DM, DS and the first SV date of each subject."""
    dm = domains["DM"].frame
    study_site_id = study_id + "-" + text(dm, "SITEID")
    reference_start = dates(dm, "RFSTDTC", report)
    consent = dates(dm, "RFICDTC", report)
    status = _subject_status(dm, disp, report)
    usubjid = dm["USUBJID"]
    by_subject = status.reindex(usubjid)
    randomized = by_subject["randomized_ds"].to_numpy()
    randomization = pd.Series(np.where(pd.notna(randomized), randomized, reference_start["date"].to_numpy()),
                              index=dm.index)
    randomization = pd.to_datetime(randomization).where(~by_subject["status"].isin(["Screen failure", "Screening"])
                                                        .to_numpy())
    consent_date = consent["date"].fillna(pd.to_datetime(pd.Series(by_subject["consent_ds"].to_numpy(),
                                                                   index=dm.index)))
    discontinued = (by_subject["status"] == "Discontinued").to_numpy()
    failed = (by_subject["status"] == "Screen failure").to_numpy()
    sex = text(dm, "SEX").str.upper().replace({"UNDIFFERENTIATED": "U", "UNKNOWN": "U"})
    odd_sex = sex.notna() & ~sex.isin(["F", "M", "U"])
    report.add_rows(WARNING, dm, odd_sex, "unknown SEX; left empty", column="SEX",
                    expected="F, M, U or UNDIFFERENTIATED", found=dm["SEX"] if "SEX" in dm.columns else None)
    age = number(dm, "AGE", report)
    age_unit = text(dm, "AGEU").str.upper()
    not_years = (age.notna() & age_unit.notna() & (age_unit != "YEARS")).fillna(False)
    report.add_rows(WARNING, dm, not_years, "AGE is not in years; left empty", column="AGEU", expected="YEARS",
                    found=age_unit)
    race = _controlled(dm, "RACE", RACES, report)
    ethnicity = _controlled(dm, "ETHNIC", ETHNICITIES, report)
    subjects = located(dm, {
        "subject_id": usubjid,
        "study_id": study_id,
        "study_site_id": study_site_id,
        "sex": sex.where(~odd_sex),
        "age": age.where(~not_years).round().astype("Int64"),
        "race": race,
        "ethnicity": ethnicity,
        "screening_date": first_visit.reindex(usubjid).to_numpy(),
        "consent_date": consent_date,
        "randomization_date": randomization,
        "screen_failure_reason": pd.Series(np.where(failed, by_subject["reported_term"].to_numpy(), None),
                                           index=dm.index, dtype="string"),
        "discontinuation_date": pd.Series(np.where(discontinued, by_subject["event_date"].to_numpy(), None),
                                          index=dm.index),
        "discontinuation_reason": pd.Series(np.where(discontinued, by_subject["decoded_term"].to_numpy(), None),
                                            index=dm.index, dtype="string"),
        "status": by_subject["status"].to_numpy(),
    })
    subjects["discontinuation_date"] = pd.to_datetime(subjects["discontinuation_date"])
    subjects["screening_date"] = pd.to_datetime(subjects["screening_date"])

    country_raw = text(dm, "COUNTRY").fillna(default_country or pd.NA)
    lookup = {c: to_alpha2(c) for c in country_raw.dropna().unique()}
    alpha2 = country_raw.map(lookup, na_action="ignore").astype("string")
    report.add_rows(ERROR, dm, alpha2.isna(), "country is missing or not an ISO 3166 code", column="COUNTRY",
                    expected="an ISO 3166-1 alpha-3 code such as USA (or pass --default-country)",
                    found=country_raw)
    site_frame = pd.DataFrame({
        "study_site_id": study_site_id, "site_number": text(dm, "SITEID"), "country_code": alpha2,
        "investigator": text(dm, "INVNAM"), "status": subjects["status"],
        "screening_date": subjects["screening_date"], FILE: dm[FILE], ROW: dm[ROW],
    })
    grouped = site_frame.groupby("study_site_id", sort=True)
    open_subjects = site_frame["status"].isin(["Screening", "On study"]).groupby(site_frame["study_site_id"]).any()
    first = grouped.first()
    study_sites = pd.DataFrame({
        "study_site_id": first.index,
        "study_id": study_id,
        "site_id": first.index,
        "site_number": first["site_number"].to_numpy(),
        "investigator": grouped["investigator"].first().to_numpy(),
        "status": np.where(open_subjects.reindex(first.index).to_numpy(), "Active", "Closed"),
        "activation_date": grouped["screening_date"].min().to_numpy(),
        FILE: first[FILE].to_numpy(),
        ROW: grouped[ROW].min().to_numpy(),
    })
    countries = site_frame.dropna(subset=["country_code"]).groupby("study_site_id")["country_code"]
    sites = pd.DataFrame({
        "site_id": first.index,
        "name": "Site " + first["site_number"].astype("string") + " (" + study_id + ")",
        "country_code": countries.agg(lambda s: s.mode().iloc[0]).reindex(first.index).to_numpy(),
        "city": pd.Series(pd.NA, index=first.index, dtype="string").to_numpy(),
        FILE: first[FILE].to_numpy(),
        ROW: study_sites[ROW].to_numpy(),
    })
    return subjects, study_sites, sites


def visits(domains: dict[str, Domain], study: StudyFacts, planned: pd.DataFrame, report: ImportReport
           ) -> pd.DataFrame:
    """Visits from SV (Completed, or Missed where SVOCCUR = N) plus TV visits due but never recorded."""
    sv = of_subjects(domains["SV"].frame, study.subjects)
    number_ = visit_numbers(sv, report)
    actual = dates(sv, "SVSTDTC", report)
    if "SVOCCUR" not in sv.columns and len(sv):
        report.info(domains["SV"].file, "SV has no SVOCCUR (not collected): every SV record is a visit that took "
                    "place, with its SVSTDTC as the actual date", column="SVOCCUR")
    not_done = (text(sv, "SVOCCUR").str.upper() == "N").fillna(False).to_numpy(dtype=bool)
    planned_day = planned.drop_duplicates("visit_number").set_index("visit_number")["planned_day"]
    start = study.subjects["reference_start"]
    day = pd.to_numeric(number_.map(planned_day), errors="coerce")
    scheduled = _scheduled(start.reindex(sv["USUBJID"]).to_numpy(), day.to_numpy())
    recorded = located(sv, {
        "visit_id": _sv_visit_ids(study.study_id, sv, number_, report),
        "subject_id": sv["USUBJID"],
        "study_id": study.study_id,
        "study_site_id": sv["study_site_id"],
        "visit_number": number_,
        "visit_name": text(sv, "VISIT"),
        "scheduled_date": scheduled.to_numpy(),
        "actual_date": actual["date"].where(~not_done),
        "status": np.where(not_done, "Missed", "Completed"),
    })
    missed = _missed_visits(recorded, planned, study)
    return pd.concat([recorded, missed], ignore_index=True) if len(missed) else recorded.reset_index(drop=True)


def _sv_visit_ids(study_id: str, sv: pd.DataFrame, number_: pd.Series, report: ImportReport) -> pd.Series:
    """Visit ids from subject and VISITNUM; a VISITNUM repeated on another date also keys on the date."""
    repeated = pd.DataFrame({"s": sv["USUBJID"], "n": number_}).duplicated(keep="first")
    report.add_rows(INFO, sv, repeated, "VISITNUM repeated for the subject on another date; both visits kept",
                    column="VISITNUM", found=sv["USUBJID"].astype("string") + " " + number_.astype("string"))
    date_part = text(sv, "SVSTDTC").where(repeated, "")
    return stable_ids(study_id, "SV", sv["USUBJID"], number_.astype("string"), date_part.fillna(""))


def _scheduled(reference_start: np.ndarray, planned_day: np.ndarray) -> pd.Series:
    """Scheduled date = first treatment day + planned study day (SDTM has no day 0)."""
    offset = np.where(planned_day > 0, planned_day - 1, planned_day)
    start = pd.to_datetime(pd.Series(reference_start))
    return start + pd.to_timedelta(pd.Series(offset, dtype="float64"), unit="D")


def _missed_visits(recorded: pd.DataFrame, planned: pd.DataFrame, study: StudyFacts) -> pd.DataFrame:
    """TV visits after day 1 that fell due before a randomized subject's last contact and are absent from SV."""
    if planned.empty:
        return recorded.iloc[0:0]
    subjects = study.subjects
    started = subjects[subjects["reference_start"].notna() & subjects["last_contact"].notna()]
    schedule = planned[(planned["planned_day"] > 1) & (planned["visit_number"] < 100)]
    due = started[["study_site_id", "reference_start", "last_contact", "arm_code"]].reset_index().merge(
        schedule[["visit_number", "visit_name", "planned_day", "arm_code", FILE, ROW]].rename(
            columns={"arm_code": "tv_arm"}), how="cross")
    due = due[due["tv_arm"].isna() | (due["tv_arm"] == due["arm_code"])]
    due["scheduled_date"] = _scheduled(due["reference_start"].to_numpy(), due["planned_day"].to_numpy()).to_numpy()
    due = due[due["scheduled_date"] <= due["last_contact"]]
    seen = pd.MultiIndex.from_frame(recorded[["subject_id", "visit_number"]])
    key = pd.MultiIndex.from_arrays([due["USUBJID"], due["visit_number"]])
    due = due[~key.isin(seen)].drop_duplicates(["USUBJID", "visit_number"])
    return pd.DataFrame({
        "visit_id": stable_ids(study.study_id, "SV", due["USUBJID"], due["visit_number"].astype("string")).to_numpy(),
        "subject_id": due["USUBJID"].to_numpy(),
        "study_id": study.study_id,
        "study_site_id": due["study_site_id"].to_numpy(),
        "visit_number": due["visit_number"].to_numpy(),
        "visit_name": due["visit_name"].to_numpy(),
        "scheduled_date": due["scheduled_date"].to_numpy(),
        "actual_date": pd.NaT,
        "status": "Missed",
        FILE: due[FILE].to_numpy(),
        ROW: due[ROW].to_numpy(),
    })


def assignments(domains: dict[str, Domain], subjects: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Randomized arms (DM ARM/ARMCD/ACTARM/ACTARMCD) for the restricted schema, checked against TA."""
    dm = domains["DM"].frame
    arm = text(dm, "ARM")
    arm_code = text(dm, "ARMCD")
    assigned = subjects["randomization_date"].notna().to_numpy() & arm.notna().to_numpy()
    assigned &= ~arm_code.str.upper().isin(list(NOT_ASSIGNED_ARMS)).fillna(False).to_numpy()
    if "TA" in domains:
        design_arms = set(text(domains["TA"].frame, "ARMCD").dropna())
        unknown = assigned & ~arm_code.isin(design_arms).fillna(False).to_numpy()
        report.add_rows(WARNING, dm, unknown, "arm is not in the trial design (TA)", column="ARMCD",
                        expected="one of " + ", ".join(sorted(design_arms)), found=arm_code)
    picked = dm.loc[assigned]
    return located(picked, {
        "subject_id": picked["USUBJID"],
        "study_id": subjects.loc[assigned, "study_id"],
        "arm": arm[assigned],
        "arm_code": arm_code[assigned],
        "actual_arm": text(dm, "ACTARM")[assigned],
        "actual_arm_code": text(dm, "ACTARMCD")[assigned],
    })
