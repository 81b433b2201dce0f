"""CDISC SDTM (SAS XPORT v5/v8, CSV or Dataset-JSON) to one warehouse study.

Mapping: DM gives the study, its sites and subjects (ARM goes to the restricted schema only); SV
gives visits; TV the planned schedule (scheduled dates, missed visits); TS the design (title, phase,
blinding, planned enrolment); TA the arms DM is checked against; DS dispositions and subject status;
AE, DV, LB, VS and EX their tables; SUPP-- qualifiers are joined to their parent records.

SDTM carries no operational facts (eCRF entry dates, queries, monitoring visits): they stay absent
for the study and the provenance notes say so. Values derived here rather than read (site
activation, randomization date, missed visits) are also described in the provenance notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.importers.countries import country_rows, to_alpha2
from analytics.importers.dates import parse_iso_dates
from analytics.importers.existing import WarehouseState, check_scope
from analytics.importers.keys import normalize_number_text, stable_ids
from analytics.importers.report import ImportReport
from analytics.importers.sources import (
    Dataset,
    Limits,
    list_folder,
    read_csv,
    read_dataset_json,
    read_xport,
)
from analytics.importers.staging import APPEND, KEEP_EXISTING, UPSERT, PreparedLoad, Progress, _silent
from analytics.importers.validation import FILE, ROW, validate_frame
from analytics.core.schema import ETHNICITIES, RACES
from analytics.core.schema import table as schema_table
from analytics.core.scope import AccessScope

DATA_EXTENSIONS = {"xpt", "csv", "json"}
MAPPED_DOMAINS = ("DM", "SV", "AE", "DS", "DV", "EX", "LB", "VS", "TS", "TA", "TV")
# Standard SDTM domains this importer recognises but does not load (read for provenance only).
UNUSED_DOMAINS = frozenset(
    "AG BE BS CE CM CO CP CV DA DD EC EG FA FT GF HO IE IS MB MH MI MK ML MO MS NV OE PC PE PP PR QS "
    "RE RELREC RP RS SC SE SM SR SS SU TD TE TI TM TR TU UR".split()
)
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "DM": ("STUDYID", "USUBJID", "SITEID"),
    "SV": ("USUBJID", "VISITNUM"),
    "AE": ("USUBJID", "AESEQ"),
    "DS": ("USUBJID", "DSSEQ", "DSDECOD"),
    "DV": ("USUBJID", "DVSEQ", "DVTERM"),
    "EX": ("USUBJID", "EXSEQ", "EXTRT"),
    "LB": ("USUBJID", "LBSEQ", "LBTESTCD"),
    "VS": ("USUBJID", "VSSEQ", "VSTESTCD"),
    "TS": ("TSPARMCD", "TSVAL"),
    "TA": ("ARMCD",),
    "TV": ("VISITNUM",),
    "SUPP": ("RDOMAIN", "USUBJID", "QNAM", "QVAL"),
}
# Natural record keys: a duplicate refuses the load (it would make ids and joins ambiguous).
RECORD_KEYS: dict[str, tuple[str, ...]] = {
    "DM": ("USUBJID",),
    "SV": ("USUBJID", "VISITNUM", "SVSTDTC"),  # real SV repeats unscheduled VISITNUMs on other dates
    "AE": ("USUBJID", "AESEQ"),
    "DS": ("USUBJID", "DSSEQ"),
    "DV": ("USUBJID", "DVSEQ"),
    "EX": ("USUBJID", "EXSEQ"),
    "LB": ("USUBJID", "LBSEQ"),
    "VS": ("USUBJID", "VSSEQ"),
}
STUDY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
VISITNUM_DECIMALS = 6  # enough for 8.1 / 3.5 style numbering, drops 9.299999999999999 noise
ABSENT_FACTS_NOTE = (
    "SDTM carries no eCRF data-entry dates, eCRF pages, queries, monitoring visits, quality events, CAPAs or "
    "milestones: those facts are absent for this study (not zero)."
)


@dataclass(frozen=True)
class SdtmOptions:
    """Choices a user makes for one SDTM load."""

    study_id: str | None = None  # default: DM.STUDYID
    sponsor: str = "Imported"  # existing sponsor id or name, or the name of a new sponsor
    therapeutic_area: str | None = None
    default_country: str | None = None  # used when DM has no COUNTRY
    limits: Limits = field(default_factory=Limits)
    scope: AccessScope | None = None  # the loading user's scope (None: command line, full access)


def domain_kind(code: str) -> str:
    """'mapped', 'supp', 'unused', 'custom' or 'unknown' for an SDTM dataset name."""
    code = code.upper()
    if code in MAPPED_DOMAINS:
        return "mapped"
    if code.startswith("SUPP") and len(code) in (6, 8):
        return "supp"
    if code in UNUSED_DOMAINS:
        return "unused"
    if re.fullmatch(r"[XYZ][A-Z0-9]", code):
        return "custom"
    return "unknown"


# --- reading -----------------------------------------------------------------------------------


def _read(source, report: ImportReport) -> Dataset | None:
    reader = {"xpt": read_xport, "csv": read_csv, "json": read_dataset_json}[source.extension]
    return reader(source, report)


def _domain_of(dataset: Dataset, report: ImportReport) -> str | None:
    """The SDTM domain a dataset holds, from its file name and its content, which must agree."""
    stem = dataset.source.path.stem.upper()
    declared = (dataset.name or "").upper() or None
    frame = dataset.frame
    if declared is None and "DOMAIN" in frame.columns:
        values = frame["DOMAIN"].dropna().unique()
        declared = str(values[0]).upper() if len(values) == 1 else None
    if domain_kind(stem) != "unknown":
        if declared and declared != stem:
            report.error(dataset.source.name, "file name and content disagree about the domain",
                         expected=f"dataset {stem}", found=f"dataset {declared}")
            return None
        return stem
    if declared and domain_kind(declared) != "unknown":
        report.info(dataset.source.name, f"file name is not a domain code; the file declares domain {declared}")
        return declared
    report.error(dataset.source.name, "unknown SDTM domain",
                 expected="a standard SDTM domain (DM, SV, AE, DS, DV, EX, LB, VS, TS, TA, TV, SUPP--, ...) "
                          "or a custom X-/Y-/Z- domain",
                 found=declared or stem)
    return None


def read_folder(folder: Path, limits: Limits, report: ImportReport, progress: Progress) -> dict[str, Dataset]:
    """Read every dataset in ``folder`` keyed by domain, recording problems in ``report``."""
    datasets: dict[str, Dataset] = {}
    for source in list_folder(Path(folder), DATA_EXTENSIONS, limits, report):
        progress(f"reading {source.name} ({source.size / 1048576:,.1f} MB)")
        dataset = _read(source, report)
        if dataset is None:
            continue
        domain = _domain_of(dataset, report)
        if domain is None:
            continue
        if domain in datasets:
            report.error(source.name, "domain supplied twice", column=None,
                         expected="one file per domain", found=f"{domain} also in {datasets[domain].source.name}")
            continue
        frame = dataset.frame
        frame.columns = [str(c).upper() for c in frame.columns]
        frame[FILE] = source.name
        frame[ROW] = np.arange(1, len(frame) + 1)
        datasets[domain] = dataset
    return datasets


def _check_columns(datasets: dict[str, Dataset], report: ImportReport) -> None:
    for domain, dataset in datasets.items():
        kind = domain_kind(domain)
        needed = KEY_COLUMNS.get("SUPP" if kind == "supp" else domain, ())
        present = set(dataset.frame.columns)
        for column in needed:
            if column not in present:
                report.error(dataset.source.name, "key column is missing", column=column,
                             expected=f"{domain} with column {column}",
                             found="columns " + ", ".join(c for c in dataset.frame.columns if not c.startswith("_")))
        if len(dataset.frame) == 0 and domain == "DM":
            report.error(dataset.source.name, "DM has no records", expected="one record per subject")
    if "DM" not in datasets:
        report.error("(folder)", "no DM dataset", expected="dm.xpt, dm.csv or dm.json (subjects, sites and the "
                                                           "study come from DM)")


def _check_record_keys(datasets: dict[str, Dataset], report: ImportReport) -> None:
    for domain, key in RECORD_KEYS.items():
        dataset = datasets.get(domain)
        if dataset is None or not set(key) <= set(dataset.frame.columns):
            continue
        frame = dataset.frame
        normalized = pd.DataFrame({k: normalize_number_text(frame[k]) for k in key})
        duplicated = normalized.duplicated(keep="first") & normalized.notna().all(axis=1)
        first_rows = frame[ROW].groupby([normalized[k] for k in key], dropna=False).transform("min")
        for index in frame.index[duplicated]:
            value = ", ".join(f"{k}={normalized.at[index, k]}" for k in key)
            report.error(dataset.source.name, "duplicate record key", row=int(frame.at[index, ROW]),
                         column=", ".join(key), expected=f"a unique key (first seen on row {first_rows[index]})",
                         found=value)


# --- small column helpers ------------------------------------------------------------------------


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column, or an all-missing text column when the dataset does not have it."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    return _col(frame, name).astype("string")


def _number(frame: pd.DataFrame, name: str, report: ImportReport) -> pd.Series:
    """A numeric column; text that is not a number becomes missing with a warning naming the row."""
    raw = _col(frame, name)
    numbers = pd.to_numeric(raw, errors="coerce").astype("Float64")
    bad = raw.notna() & numbers.isna()
    for index in frame.index[bad]:
        report.warning(frame.at[index, FILE], "not a number; left empty", row=int(frame.at[index, ROW]),
                       column=name, expected="a number", found=str(raw[index]))
    return numbers


def _dates(frame: pd.DataFrame, name: str, report: ImportReport) -> pd.DataFrame:
    """Parsed ISO 8601 dates of a column; invalid text is warned about with its row (partial is fine)."""
    parsed = parse_iso_dates(_text(frame, name))
    for index in frame.index[parsed["invalid"]]:
        report.warning(frame.at[index, FILE], "not an ISO 8601 date; left empty", row=int(frame.at[index, ROW]),
                       column=name, expected="YYYY, YYYY-MM or YYYY-MM-DD[Thh:mm]", found=str(frame.at[index, name]))
    parsed["text"] = _text(frame, name).where(~parsed["invalid"])
    return parsed


def _visit_numbers(frame: pd.DataFrame, report: ImportReport) -> pd.Series:
    """VISITNUM rounded to drop binary float noise (9.299999999999999 is visit 9.3)."""
    raw = _number(frame, "VISITNUM", report)
    rounded = raw.round(VISITNUM_DECIMALS)
    noisy = (rounded != raw).fillna(False)
    if noisy.any():
        example = raw[noisy].iloc[0]
        report.info(str(frame[FILE].iloc[0]), f"VISITNUM float noise tolerated in {int(noisy.sum())} row(s), "
                    f"e.g. {float(example)!r} read as {round(float(example), VISITNUM_DECIMALS)!r}", column="VISITNUM")
    return rounded


def _bool_yn(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.upper()
    return text.map({"Y": True, "N": False}, na_action="ignore").astype("boolean")


def _keep_subjects(frame: pd.DataFrame, subjects: pd.DataFrame, study_code: str, report: ImportReport,
                   domain: str) -> pd.DataFrame:
    """Rows whose USUBJID is in DM and whose STUDYID matches; others are rejected and listed."""
    known = frame["USUBJID"].isin(subjects.index)
    same_study = _text(frame, "STUDYID").isna() | (_text(frame, "STUDYID") == study_code)
    for index in frame.index[~known]:
        report.reject(frame.at[index, FILE], int(frame.at[index, ROW]), f"{domain} record for a subject not in DM",
                      column="USUBJID", expected="a USUBJID listed in DM", found=str(frame.at[index, "USUBJID"]))
    for index in frame.index[known & ~same_study]:
        report.reject(frame.at[index, FILE], int(frame.at[index, ROW]), f"{domain} record of another study",
                      column="STUDYID", expected=study_code, found=str(frame.at[index, "STUDYID"]))
    kept = frame.loc[known & same_study].copy()
    kept["study_site_id"] = subjects.loc[kept["USUBJID"], "study_site_id"].to_numpy()
    return kept


def _located(frame: pd.DataFrame, columns: dict[str, object]) -> pd.DataFrame:
    """A warehouse frame from mapped columns, keeping the source location columns."""
    out = pd.DataFrame(columns, index=frame.index)
    out[FILE] = frame[FILE]
    out[ROW] = frame[ROW]
    return out


# --- study design (TS, TA, TV) --------------------------------------------------------------------


_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}


def phase_from_text(text: str | None) -> tuple[str | None, bool]:
    """("Phase 3", combined?) from TS TPHASE text such as "Phase II Trial", "PHASE II/III" or "Phase 2"."""
    if not text:
        return None, False
    words = re.sub(r"(?i)phase", " ", text).replace("/", " ").replace("-", " ").upper().split()
    numbers = [_ROMAN.get(w.rstrip("AB"), None) or (int(w[0]) if w[:1] in "1234" and len(w) <= 2 else None)
               for w in words]
    found = [n for n in numbers if n]
    if not found:
        return None, False
    return f"Phase {max(found)}", len(set(found)) > 1


def _ts_values(datasets: dict[str, Dataset]) -> dict[str, list[str]]:
    if "TS" not in datasets:
        return {}
    ts = datasets["TS"].frame
    values: dict[str, list[str]] = {}
    for code, value in zip(_text(ts, "TSPARMCD"), _text(ts, "TSVAL")):
        if pd.notna(code) and pd.notna(value):
            values.setdefault(str(code).upper(), []).append(str(value))
    return values


def _planned_visits(datasets: dict[str, Dataset], study_id: str, report: ImportReport) -> pd.DataFrame:
    if "TV" not in datasets:
        return pd.DataFrame(columns=["study_id", "visit_number", "visit_name", "planned_day", "arm_code"])
    tv = datasets["TV"].frame
    planned = _located(tv, {
        "study_id": study_id,
        "visit_number": _visit_numbers(tv, report),
        "visit_name": _text(tv, "VISIT"),
        "planned_day": _number(tv, "VISITDY", report).round().astype("Int64"),
        "start_rule": _text(tv, "TVSTRL"),
        "end_rule": _text(tv, "TVENRL"),
        "arm_code": _text(tv, "ARMCD"),
    })
    return planned


# --- the mapping -----------------------------------------------------------------------------------


@dataclass
class _Study:
    """Facts shared by the domain mappers."""

    study_id: str
    study_code: str  # STUDYID as in the files
    subjects: pd.DataFrame  # indexed by USUBJID: study_site_id, reference start, status ...
    visit_ids: pd.Series  # (USUBJID, visit_number) -> visit_id


def _dispositions(datasets: dict[str, Dataset], study: _Study, report: ImportReport) -> pd.DataFrame:
    ds = _keep_subjects(datasets["DS"].frame, study.subjects, study.study_code, report, "DS")
    dates = _dates(ds, "DSSTDTC", report)
    return _located(ds, {
        "disposition_id": stable_ids(study.study_id, "DS", ds["USUBJID"], normalize_number_text(ds["DSSEQ"])),
        "study_id": study.study_id,
        "study_site_id": ds["study_site_id"],
        "subject_id": ds["USUBJID"],
        "category": _text(ds, "DSCAT"),
        "decoded_term": _text(ds, "DSDECOD"),
        "reported_term": _text(ds, "DSTERM"),
        "event_date": dates["date"],
        "event_date_text": dates["text"],
        "event_date_precision": dates["precision"],
        "visit_number": _visit_numbers(ds, report) if "VISITNUM" in ds.columns else pd.NA,
    })


def _subject_status(dm: pd.DataFrame, disp: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Status, disposition dates and reasons per subject from DM (RFSTDTC, ARM) and DS."""
    started = _text(dm, "RFSTDTC").notna()
    arm_text = (_text(dm, "ARMCD").fillna("") + " " + _text(dm, "ARM").fillna("")).str.upper()
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
    conflict = started_v & (term == "SCREEN FAILURE")
    for index in np.flatnonzero(conflict):
        report.warning(dm[FILE].iloc[index], "subject has a first-treatment date but a SCREEN FAILURE disposition; "
                       "recorded as a screen failure", row=int(dm[ROW].iloc[index]), column="RFSTDTC",
                       found=str(dm["RFSTDTC"].iloc[index]))
    final["status"] = status
    return final


def _controlled(dm: pd.DataFrame, column: str, terms: tuple[str, ...], report: ImportReport) -> pd.Series:
    """A DM column in CDISC controlled terminology (upper-cased); other values are left empty with a warning."""
    if column not in dm.columns:
        return pd.Series(pd.NA, index=dm.index, dtype="string")
    values = _text(dm, column).str.upper().str.strip()
    odd = values.notna() & ~values.isin(terms)
    for index in dm.index[odd]:
        report.warning(dm.at[index, FILE], f"{column} is not a CDISC controlled term; left empty",
                       row=int(dm.at[index, ROW]), column=column, expected=", ".join(terms),
                       found=str(dm.at[index, column]))
    return values.where(~odd)


def _subjects(datasets: dict[str, Dataset], study_id: str, options: SdtmOptions, report: ImportReport,
              disp: pd.DataFrame, first_visit: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(subjects, study_sites, sites) frames from DM, DS and the first SV date of each subject."""
    dm = datasets["DM"].frame
    study_site_id = study_id + "-" + _text(dm, "SITEID")
    reference_start = _dates(dm, "RFSTDTC", report)
    consent = _dates(dm, "RFICDTC", report)
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
    sex = _text(dm, "SEX").str.upper().replace({"UNDIFFERENTIATED": "U", "UNKNOWN": "U"})
    odd_sex = sex.notna() & ~sex.isin(["F", "M", "U"])
    for index in dm.index[odd_sex]:
        report.warning(dm.at[index, FILE], "unknown SEX; left empty", row=int(dm.at[index, ROW]), column="SEX",
                       expected="F, M, U or UNDIFFERENTIATED", found=str(dm.at[index, "SEX"]))
    age = _number(dm, "AGE", report)
    age_unit = _text(dm, "AGEU").str.upper()
    not_years = age.notna() & age_unit.notna() & (age_unit != "YEARS")
    for index in dm.index[not_years]:
        report.warning(dm.at[index, FILE], "AGE is not in years; left empty", row=int(dm.at[index, ROW]),
                       column="AGEU", expected="YEARS", found=str(dm.at[index, "AGEU"]))
    race = _controlled(dm, "RACE", RACES, report)
    ethnicity = _controlled(dm, "ETHNIC", ETHNICITIES, report)
    subjects = _located(dm, {
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

    country_raw = _text(dm, "COUNTRY").fillna(options.default_country or pd.NA)
    alpha2 = pd.Series([to_alpha2(c) if pd.notna(c) else None for c in country_raw], index=dm.index, dtype="string")
    for index in dm.index[alpha2.isna()]:
        report.error(dm.at[index, FILE], "country is missing or not an ISO 3166 code", row=int(dm.at[index, ROW]),
                     column="COUNTRY", expected="an ISO 3166-1 alpha-3 code such as USA (or pass --default-country)",
                     found="" if pd.isna(country_raw[index]) else str(country_raw[index]))
    site_frame = pd.DataFrame({
        "study_site_id": study_site_id, "site_number": _text(dm, "SITEID"), "country_code": alpha2,
        "investigator": _text(dm, "INVNAM"), "status": subjects["status"],
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


def _visits(datasets: dict[str, Dataset], study: _Study, planned: pd.DataFrame, report: ImportReport
            ) -> pd.DataFrame:
    """Visits from SV (Completed, or Missed where SVOCCUR=N) plus TV visits due but never recorded."""
    sv = _keep_subjects(datasets["SV"].frame, study.subjects, study.study_code, report, "SV")
    number = _visit_numbers(sv, report)
    actual = _dates(sv, "SVSTDTC", report)
    occurred = _text(sv, "SVOCCUR").str.upper()
    planned_day = planned.drop_duplicates("visit_number").set_index("visit_number")["planned_day"]
    start = study.subjects["reference_start"]
    day = pd.to_numeric(number.map(planned_day), errors="coerce")
    scheduled = _scheduled(start.reindex(sv["USUBJID"]).to_numpy(), day.to_numpy())
    recorded = _located(sv, {
        "visit_id": _sv_visit_ids(study.study_id, sv, number, report),
        "subject_id": sv["USUBJID"],
        "study_id": study.study_id,
        "study_site_id": sv["study_site_id"],
        "visit_number": number,
        "visit_name": _text(sv, "VISIT"),
        "scheduled_date": scheduled,
        "actual_date": actual["date"].where(occurred != "N"),
        "status": np.where((occurred == "N").fillna(False), "Missed", "Completed"),
    })
    missed = _missed_visits(recorded, planned, study)
    return pd.concat([recorded, missed], ignore_index=True) if len(missed) else recorded.reset_index(drop=True)


def _sv_visit_ids(study_id: str, sv: pd.DataFrame, number: pd.Series, report: ImportReport) -> pd.Series:
    """Visit ids from subject and VISITNUM; a VISITNUM repeated on another date also keys on the date."""
    repeated = pd.DataFrame({"s": sv["USUBJID"], "n": number}).duplicated(keep="first")
    for index in sv.index[repeated]:
        report.info(sv.at[index, FILE], "VISITNUM repeated for the subject on another date; both visits kept",
                    row=int(sv.at[index, ROW]), column="VISITNUM", found=f"{sv.at[index, 'USUBJID']} {number[index]}")
    date_part = _text(sv, "SVSTDTC").where(repeated, "")
    return stable_ids(study_id, "SV", sv["USUBJID"], number.astype("string"), date_part.fillna(""))


def _scheduled(reference_start: np.ndarray, planned_day: np.ndarray) -> pd.Series:
    """Scheduled date = first treatment day + planned study day (SDTM has no day 0)."""
    offset = np.where(planned_day > 0, planned_day - 1, planned_day)
    start = pd.to_datetime(pd.Series(reference_start))
    return start + pd.to_timedelta(pd.Series(offset, dtype="float64"), unit="D")


def _missed_visits(recorded: pd.DataFrame, planned: pd.DataFrame, study: _Study) -> pd.DataFrame:
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


def _qualifiers(datasets: dict[str, Dataset], study: _Study, report: ImportReport) -> pd.DataFrame:
    """All SUPP-- rows whose parent record exists, keyed to it; orphans are rejected and listed."""
    frames = []
    for domain, dataset in datasets.items():
        if domain_kind(domain) != "supp":
            continue
        supp = _keep_subjects(dataset.frame, study.subjects, study.study_code, report, domain)
        parent_domain = _text(supp, "RDOMAIN").str.upper()
        idvar = _text(supp, "IDVAR").str.upper()
        idval = normalize_number_text(_col(supp, "IDVARVAL"))
        has_parent = pd.Series(True, index=supp.index)
        for (rdomain, variable), rows in supp.groupby([parent_domain, idvar.fillna("")]).groups.items():
            if not variable:
                continue
            parent = datasets.get(rdomain)
            if parent is None or variable not in parent.frame.columns:
                continue
            parent_keys = set(zip(parent.frame["USUBJID"], normalize_number_text(parent.frame[variable])))
            has_parent[rows] = [(u, v) in parent_keys for u, v in zip(supp.loc[rows, "USUBJID"], idval[rows])]
        for index in supp.index[~has_parent]:
            report.reject(supp.at[index, FILE], int(supp.at[index, ROW]), "qualifier points at no parent record",
                          column="IDVARVAL", expected=f"an existing {parent_domain[index]} record "
                                                      f"with {idvar[index]}={idval[index]}", found=str(idval[index]))
        keep = has_parent
        frames.append(_located(supp.loc[keep], {
            "study_id": study.study_id,
            "subject_id": supp.loc[keep, "USUBJID"],
            "domain": parent_domain[keep],
            "record_key": (idvar[keep] + "=" + idval[keep]).fillna(""),
            "qualifier": _text(supp, "QNAM")[keep].str.upper(),
            "label": _text(supp, "QLABEL")[keep],
            "value": _text(supp, "QVAL")[keep],
        }))
    if not frames:
        return pd.DataFrame(columns=["study_id", "subject_id", "domain", "record_key", "qualifier", "label", "value"])
    return pd.concat(frames, ignore_index=True)


def _qualifier_values(qualifiers: pd.DataFrame, domain: str, name: str, parent: pd.DataFrame, seq: str
                      ) -> pd.Series:
    """One qualifier's values aligned to a parent frame (via IDVAR=--SEQ)."""
    picked = qualifiers[(qualifiers["domain"] == domain) & (qualifiers["qualifier"] == name)]
    lookup = dict(zip(zip(picked["subject_id"], picked["record_key"]), picked["value"]))
    keys = f"{seq}=" + normalize_number_text(parent[seq])
    return pd.Series([lookup.get(k) for k in zip(parent["USUBJID"], keys)], index=parent.index, dtype="string")


def _adverse_events(datasets: dict[str, Dataset], study: _Study, qualifiers: pd.DataFrame,
                    report: ImportReport) -> pd.DataFrame:
    ae = _keep_subjects(datasets["AE"].frame, study.subjects, study.study_code, report, "AE")
    onset = _dates(ae, "AESTDTC", report)
    end = _dates(ae, "AEENDTC", report)
    grade = _number(ae, "AETOXGR", report) if "AETOXGR" in ae.columns else pd.Series(pd.NA, index=ae.index)
    emergent = _qualifier_values(qualifiers, "AE", "AETRTEM", ae, "AESEQ")
    if "AETRTEMFL" in ae.columns:  # ADaM-style flag carried in the domain itself
        emergent = emergent.fillna(_text(ae, "AETRTEMFL"))
    return _located(ae, {
        "ae_id": stable_ids(study.study_id, "AE", ae["USUBJID"], normalize_number_text(ae["AESEQ"])),
        "study_id": study.study_id,
        "study_site_id": ae["study_site_id"],
        "subject_id": ae["USUBJID"],
        "term": _text(ae, "AEDECOD").fillna(_text(ae, "AETERM")),
        "body_system": _text(ae, "AEBODSYS").fillna(_text(ae, "AESOC")),
        "serious": _bool_yn(_text(ae, "AESER")),
        "grade": grade,
        "onset_date": onset["date"],
        "onset_date_text": onset["text"],
        "onset_date_precision": onset["precision"],
        "end_date": end["date"],
        "end_date_text": end["text"],
        "severity": _text(ae, "AESEV").str.upper(),
        "treatment_emergent": _bool_yn(emergent),
    })


def _deviations(datasets: dict[str, Dataset], study: _Study, report: ImportReport) -> pd.DataFrame:
    dv = _keep_subjects(datasets["DV"].frame, study.subjects, study.study_code, report, "DV")
    occurred = _dates(dv, "DVSTDTC", report)
    category = _text(dv, "DVCAT").fillna(_text(dv, "DVDECOD"))
    classification = (category.fillna("") + " " + _text(dv, "DVSCAT").fillna("")).str.upper()
    important = pd.Series(pd.NA, index=dv.index, dtype="boolean")
    important = important.mask(classification.str.contains("MINOR"), False)
    important = important.mask(classification.str.contains("MAJOR|IMPORTANT|CRITICAL", regex=True), True)
    return _located(dv, {
        "deviation_id": stable_ids(study.study_id, "DV", dv["USUBJID"], normalize_number_text(dv["DVSEQ"])),
        "study_id": study.study_id,
        "study_site_id": dv["study_site_id"],
        "subject_id": dv["USUBJID"],
        "category": category,
        "important": important,
        "description": _text(dv, "DVTERM"),
        "occurred_date": occurred["date"],
    })


def _exposures(datasets: dict[str, Dataset], study: _Study, report: ImportReport) -> pd.DataFrame:
    ex = _keep_subjects(datasets["EX"].frame, study.subjects, study.study_code, report, "EX")
    start = _dates(ex, "EXSTDTC", report)
    end = _dates(ex, "EXENDTC", report)
    return _located(ex, {
        "exposure_id": stable_ids(study.study_id, "EX", ex["USUBJID"], normalize_number_text(ex["EXSEQ"])),
        "study_id": study.study_id,
        "study_site_id": ex["study_site_id"],
        "subject_id": ex["USUBJID"],
        "treatment": _text(ex, "EXTRT"),
        "dose": _number(ex, "EXDOSE", report),
        "dose_unit": _text(ex, "EXDOSU"),
        "route": _text(ex, "EXROUTE"),
        "start_date": start["date"],
        "end_date": end["date"],
        "start_date_text": start["text"],
    })


def _measurements(datasets: dict[str, Dataset], domain: str, study: _Study, report: ImportReport) -> pd.DataFrame:
    frame = _keep_subjects(datasets[domain].frame, study.subjects, study.study_code, report, domain)
    p = domain  # variable prefix: LB or VS
    collected = _dates(frame, f"{p}DTC", report)
    number = _visit_numbers(frame, report) if "VISITNUM" in frame.columns else pd.Series(np.nan, index=frame.index)
    visit_key = pd.MultiIndex.from_arrays([frame["USUBJID"], number])
    visit_id = pd.Series(study.visit_ids.reindex(visit_key).to_numpy(), index=frame.index).astype("Int64")
    grade = _number(frame, f"{p}TOXGR", report) if f"{p}TOXGR" in frame.columns else pd.NA
    return _located(frame, {
        "measurement_id": stable_ids(study.study_id, domain, frame["USUBJID"], normalize_number_text(frame[f"{p}SEQ"])),
        "study_id": study.study_id,
        "study_site_id": frame["study_site_id"],
        "subject_id": frame["USUBJID"],
        "visit_id": visit_id,
        "domain": domain,
        "test_code": _text(frame, f"{p}TESTCD"),
        "test_name": _text(frame, f"{p}TEST"),
        "value": _number(frame, f"{p}STRESN", report),
        "unit": _text(frame, f"{p}STRESU"),
        "ref_low": _number(frame, f"{p}STNRLO", report),
        "ref_high": _number(frame, f"{p}STNRHI", report),
        "normal_range_flag": _text(frame, f"{p}NRIND").str.upper(),
        "grade": grade,
        "collected_date": collected["date"],
    })


def _study_row(datasets: dict[str, Dataset], study_id: str, study_code: str, sponsor_id: str,
               subjects: pd.DataFrame, planned: pd.DataFrame, options: SdtmOptions, report: ImportReport
               ) -> pd.DataFrame:
    ts = _ts_values(datasets)
    ts_file = datasets["TS"].source.name if "TS" in datasets else "(folder)"
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
        "therapeutic_area": options.therapeutic_area,
        "indication": "; ".join(ts["INDIC"]) if ts.get("INDIC") else None,
        "target_enrollment": planned_subjects,
        "status": status,
        "blinded": blinded,
        "visit_interval_days": int(np.median(np.diff(days))) if len(days) > 1 else None,
        "planned_visits": len(schedule) if len(schedule) else None,
        # TV's planned study days: day 1 is the first treatment, so the last scheduled visit is on day N.
        "treatment_duration_days": int(days.iloc[-1]) - 1 if len(days) else None,
        "data_source": "sdtm",
        FILE: datasets["DM"].source.name,
        ROW: None,
    }
    return pd.DataFrame([row])


def _resolve_sponsor(sponsor: str, state: WarehouseState) -> tuple[str, pd.DataFrame]:
    """An existing sponsor (by id or name) or a new one; returns (sponsor_id, rows to add)."""
    existing = state.sponsors()
    wanted = sponsor.strip() or "Imported"
    match = existing[(existing["sponsor_id"] == wanted) | (existing["name"].str.lower() == wanted.lower())]
    if len(match):
        return str(match["sponsor_id"].iloc[0]), pd.DataFrame(columns=["sponsor_id", "name"])
    sponsor_id = re.sub(r"[^A-Z0-9]+", "-", wanted.upper()).strip("-")[:40] or "IMPORTED"
    return sponsor_id, pd.DataFrame([{"sponsor_id": sponsor_id, "name": wanted, FILE: "(option --sponsor)",
                                      ROW: None}])


def prepare_sdtm(folder: Path | str, db_path: Path | str | None, options: SdtmOptions = SdtmOptions(),
                 progress: Progress = _silent) -> PreparedLoad:
    """Read and validate an SDTM folder into a :class:`PreparedLoad` for one study (nothing is written)."""
    report = ImportReport("sdtm")
    load = PreparedLoad("sdtm", report)
    datasets = read_folder(Path(folder), options.limits, report, progress)
    load.files = [d.source for d in datasets.values()]
    _check_columns(datasets, report)
    _check_record_keys(datasets, report)
    if report.refused:
        return load

    dm = datasets["DM"].frame
    codes = sorted(set(_text(dm, "STUDYID").dropna()))
    if len(codes) != 1:
        report.error(datasets["DM"].source.name, "DM must hold exactly one study", column="STUDYID",
                     expected="one STUDYID", found=", ".join(codes) or "(none)")
        return load
    study_code = codes[0]
    study_id = options.study_id or study_code
    if not STUDY_ID_PATTERN.match(study_id):
        report.error("(option --study-id)", "invalid study id", expected="letters, digits, '-', '_' or '.', at most "
                     "40 characters", found=study_id)
        return load
    for domain, dataset in datasets.items():
        kind = domain_kind(domain)
        if kind in ("unused", "custom"):
            report.info(dataset.source.name, f"domain {domain} is not mapped to the warehouse; recorded in "
                                             "provenance only")

    state = WarehouseState(db_path)
    existing = state.studies([study_id])
    if len(existing) and existing["data_source"].iloc[0] != "sdtm":
        report.error("(option --study-id)", "a study with this id already exists from another source",
                     expected="a new study id, or the id of a previously imported SDTM study",
                     found=f"{study_id} (data_source={existing['data_source'].iloc[0]})")
    owners = state.subject_studies(list(dm["USUBJID"].dropna()))
    for subject, owner in zip(owners["subject_id"], owners["study_id"]):
        if owner != study_id:
            row = int(dm.loc[dm["USUBJID"] == subject, ROW].iloc[0])
            report.error(datasets["DM"].source.name, "subject already belongs to another study", row=row,
                         column="USUBJID", expected="a USUBJID unique in the warehouse", found=f"{subject} ({owner})")
    sponsor_id, new_sponsor = _resolve_sponsor(options.sponsor, state)
    if len(existing) and existing["sponsor_id"].iloc[0] != sponsor_id:
        report.info("(option --sponsor)", f"study {study_id} moves from sponsor {existing['sponsor_id'].iloc[0]} "
                                          f"to {sponsor_id}")
    check_scope(report, options.scope, {sponsor_id}, {study_id})
    if report.refused:
        return load

    progress("mapping DM, DS and SV to subjects, sites and visits")
    planned = _planned_visits(datasets, study_id, report)
    placeholder = _Study(study_id, study_code, pd.DataFrame(
        {"study_site_id": (study_id + "-" + _text(dm, "SITEID")).to_numpy()}, index=dm["USUBJID"]),
        pd.Series(dtype="int64"))
    disp = _dispositions(datasets, placeholder, report) if "DS" in datasets else pd.DataFrame(
        columns=["subject_id", "category", "decoded_term", "reported_term", "event_date", "event_date_text", ROW])
    first_visit = pd.Series(dtype="datetime64[ns]")
    if "SV" in datasets:
        sv = datasets["SV"].frame
        sv_dates = parse_iso_dates(_text(sv, "SVSTDTC"))["date"]
        first_visit = sv_dates.groupby(sv["USUBJID"]).min()
    subjects, study_sites, sites = _subjects(datasets, study_id, options, report, disp, first_visit)
    reference_start = parse_iso_dates(_text(dm, "RFSTDTC"))["date"]
    # Visits are expected until the subject left: discontinuation, else end of treatment or participation.
    end_of_treatment = parse_iso_dates(_text(dm, "RFENDTC"))["date"].fillna(
        parse_iso_dates(_text(dm, "RFPENDTC"))["date"])
    last_contact = subjects["discontinuation_date"].fillna(end_of_treatment)
    subject_facts = pd.DataFrame({
        "study_site_id": subjects["study_site_id"].to_numpy(),
        "reference_start": reference_start.to_numpy(),
        "last_contact": last_contact.to_numpy(),
        "arm_code": _text(dm, "ARMCD").to_numpy(),
        "status": subjects["status"].to_numpy(),
    }, index=pd.Index(dm["USUBJID"], name="USUBJID"))
    study = _Study(study_id, study_code, subject_facts, pd.Series(dtype="int64"))
    tables: dict[str, pd.DataFrame] = {}
    tables["sponsors"] = new_sponsor
    tables["countries"] = country_rows(list(sites["country_code"].dropna()))
    tables["studies"] = _study_row(datasets, study_id, study_code, sponsor_id, subjects, planned, options, report)
    tables["sites"] = sites
    tables["study_sites"] = study_sites
    tables["subjects"] = subjects
    tables["treatment_assignments"] = _assignments(datasets, subjects, report)
    tables["planned_visits"] = planned.drop_duplicates("visit_number")
    if "SV" in datasets:
        visits = _visits(datasets, study, planned, report)
        tables["visits"] = visits
        recorded = visits.dropna(subset=["visit_number"])
        study.visit_ids = pd.Series(recorded["visit_id"].to_numpy(),
                                    index=pd.MultiIndex.from_arrays([recorded["subject_id"], recorded["visit_number"]]))
        study.visit_ids = study.visit_ids[~study.visit_ids.index.duplicated()]
    if "DS" in datasets:
        tables["dispositions"] = disp
    qualifiers = _qualifiers(datasets, study, report)
    tables["supplemental_qualifiers"] = qualifiers
    if "AE" in datasets:
        progress("mapping AE")
        tables["adverse_events"] = _adverse_events(datasets, study, qualifiers, report)
    if "DV" in datasets:
        tables["protocol_deviations"] = _deviations(datasets, study, report)
    if "EX" in datasets:
        tables["exposures"] = _exposures(datasets, study, report)
    measurement_frames = []
    for domain in ("LB", "VS"):
        if domain in datasets:
            progress(f"mapping {domain}")
            measurement_frames.append(_measurements(datasets, domain, study, report))
    if measurement_frames:
        tables["measurements"] = pd.concat(measurement_frames, ignore_index=True)

    progress("validating against the warehouse schema")
    for name, frame in tables.items():
        if FILE not in frame.columns:
            frame[FILE] = name
            frame[ROW] = None
        tables[name] = validate_frame(frame, schema_table(name), report, convert=False)
        report.rows_staged[schema_table(name).qualified_name] = len(frame)
    load.tables = tables
    load.policies = {name: APPEND for name in tables} | {
        "sponsors": KEEP_EXISTING, "countries": KEEP_EXISTING, "sites": UPSERT}
    load.replace_study_ids = (study_id,)
    load.provenance = _provenance(datasets, study_id, report)
    load.description = (f"study {study_id} ({len(subjects)} subjects, {len(study_sites)} sites) "
                        f"from {len(datasets)} SDTM datasets")
    return load


def _assignments(datasets: dict[str, Dataset], subjects: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Randomized arms (DM.ARM) for the restricted schema, checked against the TA design."""
    dm = datasets["DM"].frame
    arm = _text(dm, "ARM")
    arm_code = _text(dm, "ARMCD")
    assigned = subjects["randomization_date"].notna().to_numpy() & arm.notna().to_numpy()
    assigned &= ~arm_code.str.upper().isin(["SCRNFAIL", "NOTASSGN", "NOTTRT"]).fillna(False).to_numpy()
    if "TA" in datasets:
        design_arms = set(_text(datasets["TA"].frame, "ARMCD").dropna())
        unknown = assigned & ~arm_code.isin(design_arms).fillna(False).to_numpy()
        for index in dm.index[unknown]:
            report.warning(dm.at[index, FILE], "arm is not in the trial design (TA)", row=int(dm.at[index, ROW]),
                           column="ARMCD", expected="one of " + ", ".join(sorted(design_arms)),
                           found=str(arm_code[index]))
    picked = dm.loc[assigned]
    return _located(picked, {
        "subject_id": picked["USUBJID"],
        "study_id": subjects.loc[assigned, "study_id"],
        "arm": arm[assigned],
    })


_NOTES = {
    "DM": "Sites are named 'Site <SITEID>' (SDTM has no institution names). Site activation_date is ESTIMATED as "
          "the first screening (first SV) date at the site; planned enrollment is unknown. randomization_date is "
          "the DS RANDOMIZED date, else RFSTDTC (first study treatment). " + ABSENT_FACTS_NOTE,
    "SV": "Scheduled dates come from TV planned study days and RFSTDTC. Visits planned in TV after day 1 that fell "
          "due before the subject left (DS discontinuation date, else RFENDTC/RFPENDTC) but are absent from SV are recorded as "
          "Missed. SDTM has no eCRF entry dates.",
    "TS": "Title, phase, indication, planned enrollment (PLANSUB) and blinding (TBLIND) come from TS.",
    "TV": "Planned visit schedule.",
    "TA": "Trial arms, used to check DM.ARMCD.",
    "EX": "Loaded to the restricted schema (treatment names and doses unblind).",
    "AE": "Partial onset/end dates are kept as text with their precision; no day is invented.",
}


def _provenance(datasets: dict[str, Dataset], study_id: str, report: ImportReport) -> list[dict[str, object]]:
    rows = []
    for domain, dataset in datasets.items():
        kind = domain_kind(domain)
        note = _NOTES.get(domain)
        if kind == "supp":
            note = "Supplemental qualifiers joined to their parent records."
        elif kind in ("unused", "custom"):
            note = f"Domain {domain} read for provenance only; not mapped to the warehouse."
        rows.append({
            "study_id": study_id,
            "file_name": dataset.source.name,
            "source_type": "sdtm",
            "sha256": dataset.source.sha256,
            "row_count": report.rows_read.get(dataset.source.name, len(dataset.frame)),
            "rejected_rows": report.problem_rows(dataset.source.name),
            "notes": note,
        })
    return rows
