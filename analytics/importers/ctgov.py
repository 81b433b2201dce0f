"""ClinicalTrials.gov exports to ``main.historical_trials`` and ``main.historical_trial_sites`` (feasibility).

Formats, all mapped to the same fields:

* the website's "Download CSV", current (``NCT Number``, ``Study Title``, ``Study Status``,
  ``Phases`` = ``PHASE1|PHASE2``, dates ``2014-10`` / ``2014-10-07``) and classic, before 2024
  (``SearchResults.csv``: ``Title``, ``Status``, ``Phases`` = ``Phase 1|Phase 2``, dates
  ``October 2014`` / ``June 7, 2018``, ``Gender``, ``Age`` = ``18 Years to 65 Years (Adult)``,
  ``Sponsor/Collaborators``, ``Funded Bys``), any subset of columns (only the NCT number is required);
* the API v2 JSON: one study's record, ``{"studies": [...]}`` or a bare list of records;
* the website's "Download JSON": a zip of one JSON record per study, read with the limits of
  :mod:`analytics.importers.archives`.

A column that is present but whose values parse for no row at all (say dates in a form the
site never used) refuses the file, so an export can no longer load "empty in substance". The NCT
number is the key: re-importing updates the trials in place, columns a file does not carry keep
their previous values, and a trial's site list is replaced whenever the file carries locations.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.core.schema import table as schema_table
from analytics.importers.archives import read_members
from analytics.importers.ctgov_records import JSON_FIELDS, flatten, study_records
from analytics.importers.ctgov_values import age_groups, age_in_years, age_ranges, location_sites, phases, sexes, \
    split_locations, statuses
from analytics.importers.dates import registry_dates
from analytics.importers.report import FILE, ROW, WARNING, DatasetCounts, ImportReport
from analytics.importers.sources import Limits, SourceFile, accept_file, read_csv
from analytics.core.scope import AccessScope
from analytics.importers.staging import APPEND, UPSERT, PreparedLoad, Progress, _silent
from analytics.importers.uploads import remove_stale_upload_dirs
from analytics.importers.validation import validate_frame

__all__ = ["CSV_COLUMNS", "prepare_ctgov", "split_locations"]

NCT_PATTERN = re.compile(r"^NCT\d{8}$")
PROVENANCE_KEY = "ctgov"  # data_provenance.study_id for ClinicalTrials.gov batches
EXTENSIONS = (".csv", ".json", ".zip")
# field -> CSV headers that carry it: the current export's name first, then the classic website's.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "nct_id": ("NCT Number",),
    "title": ("Study Title", "Title"),
    "status": ("Study Status", "Status", "Recruitment"),
    "conditions": ("Conditions",),
    "interventions": ("Interventions",),
    "sponsor": ("Sponsor", "Sponsor/Collaborators"),
    "sponsor_class": ("Funder Type", "Funded Bys"),
    "sex": ("Sex", "Gender"),
    "age": ("Age", "Age Groups"),
    "phase": ("Phases", "Phase"),
    "enrollment": ("Enrollment",),
    "study_type": ("Study Type", "Study Types"),
    "start_date": ("Start Date",),
    "primary_completion_date": ("Primary Completion Date",),
    "completion_date": ("Completion Date",),
    "primary_outcome": ("Primary Outcome Measures",),
    "secondary_outcome": ("Secondary Outcome Measures",),
    "locations": ("Locations",),
    "last_update_date": ("Last Update Posted", "Last Updated"),
}
TEXT_FIELDS = ("title", "conditions", "interventions", "sponsor", "primary_outcome", "secondary_outcome",
               "eligibility_criteria")
DATE_FIELDS = ("start_date", "primary_completion_date", "completion_date", "last_update_date")
NOT_PRIMARY = {"Outcome Measures": "the classic export mixes primary and secondary outcomes in one column"}
NOT_STARTED = ("NOT_YET_RECRUITING", "WITHDRAWN")  # statuses whose start date is only planned


# --- reading ---------------------------------------------------------------------------------


def _csv_frame(source: SourceFile, report: ImportReport) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """The CSV's mapped fields (and the header each came from), or None with the reason recorded."""
    dataset = read_csv(source, report)
    if dataset is None:
        return None, {}
    frame = dataset.frame
    by_name = {str(c).strip().lower(): c for c in frame.columns}
    headers: dict[str, str] = {}
    for field, names in CSV_COLUMNS.items():
        for name in names:
            if name.lower() in by_name:
                headers[field] = by_name[name.lower()]
                break
    if "nct_id" not in headers:
        report.error(source.name, "key column is missing", column="NCT Number",
                     expected="a ClinicalTrials.gov 'Download CSV' export with an 'NCT Number' column",
                     found="columns " + ", ".join(map(str, frame.columns[:12])))
        return None, {}
    for header, why in NOT_PRIMARY.items():
        if header.lower() in by_name:
            report.info(source.name, f"column not mapped to the primary outcome: {why}", column=header)
    ignored = [str(c) for c in frame.columns if c not in headers.values() and str(c) not in NOT_PRIMARY]
    if ignored:
        report.info(source.name, f"{len(ignored)} column(s) not used by the benchmarks: " + ", ".join(ignored))
    mapped = pd.DataFrame({field: frame[header] for field, header in headers.items()})
    if str(headers.get("sponsor", "")).strip().lower() == "sponsor/collaborators":  # classic: lead sponsor first
        mapped["sponsor"] = mapped["sponsor"].astype("string").str.split("|").str[0].str.strip()
    return mapped, headers


def _json_documents(source: SourceFile, limits: Limits, report: ImportReport) -> list[tuple[str, bytes]] | None:
    if source.extension == "zip":
        return read_members(source, ".json", limits, report)
    return [(source.name, source.path.read_bytes())]


def _json_frame(source: SourceFile, limits: Limits, report: ImportReport) -> pd.DataFrame | None:
    """Study records of a JSON file or a "Download JSON" zip, flattened (rows in member order)."""
    documents = _json_documents(source, limits, report)
    if documents is None:
        return None
    rows = []
    for name, data in documents:
        where = source.name if name == source.name else f"{source.name}: {name}"
        try:
            document = json.loads(data.decode("utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            report.error(where, "invalid JSON", expected="a ClinicalTrials.gov study record or API v2 response",
                         found=str(exc))
            continue
        records = study_records(document)
        if records is None:
            report.error(where, "not a ClinicalTrials.gov study document",
                         expected="a study record ('protocolSection'), an object with a 'studies' list, or a list "
                                  "of study records",
                         found=f"keys {sorted(document)[:8]}" if isinstance(document, dict) else type(document).__name__)
            continue
        rows += [flatten(record) for record in records]
    if report.refused:
        return None
    return pd.DataFrame(rows, columns=list(JSON_FIELDS))


# --- parsing ------------------------------------------------------------------------------------


def _require_some(report: ImportReport, raw: pd.DataFrame, present: pd.Series, parsed: pd.Series, column: str,
                  expected: str) -> None:
    """Refuse the file when a column has values but not one of them could be read."""
    if present.any() and not (present & parsed).any():
        report.error(str(raw[FILE].iloc[0]), f"no value of this column could be read ({int(present.sum()):,} "
                     "non-empty); the file is refused rather than loaded empty", column=column, expected=expected)


def _warn_unread(report: ImportReport, raw: pd.DataFrame, bad: pd.Series, message: str, column: str,
                 expected: str, found: pd.Series) -> None:
    report.add_rows(WARNING, raw, bad.fillna(False).to_numpy(dtype=bool), message, column=column, expected=expected,
                    found=found)


def _parse(raw: pd.DataFrame, shown: dict[str, str], json_format: bool, therapeutic_area: str | None,
           report: ImportReport) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(trials, sites) from the flat fields of any format; every unreadable value is reported."""
    trials = pd.DataFrame({"nct_id": raw["nct_id"], FILE: raw[FILE], ROW: raw[ROW]}, index=raw.index)

    def name(field: str) -> str:
        """The column a user sees in messages (the CSV header, or the field for JSON)."""
        return shown.get(field, field)

    for field in TEXT_FIELDS:
        if field in raw.columns:
            trials[field] = raw[field].astype("string").str.strip().replace("", pd.NA)
    if "sponsor_class" in raw.columns:
        trials["sponsor_class"] = (raw["sponsor_class"].astype("string").str.upper().str.replace("U.S. FED", "FED")
                                   .str.replace(r"\s*\|\s*", "|", regex=True).str.replace(" ", "_"))
    if "study_type" in raw.columns:
        trials["study_type"] = raw["study_type"].astype("string").str.strip().str.upper().str.replace(
            r"[^A-Z]+", "_", regex=True)
    for field, parse, expected in (("status", statuses, "a ClinicalTrials.gov overall status"),
                                   ("phase", phases, "EARLY_PHASE1, PHASE1..PHASE4 or NA (also 'Phase 1', "
                                                     "'Early Phase 1', 'Not Applicable'), separated by |")):
        if field not in raw.columns:
            continue
        text = raw[field].astype("string").str.strip().replace("", pd.NA)
        value = parse(text)
        _require_some(report, raw, text.notna(), value.notna(), name(field), expected)
        _warn_unread(report, raw, text.notna() & value.isna(), f"unrecognised {field}; kept as written",
                     name(field), expected, text)
        trials[field] = value.fillna(text.str.upper())
    if "sex" in raw.columns:
        text = raw["sex"].astype("string").str.strip().replace("", pd.NA)
        value = sexes(text)
        _require_some(report, raw, text.notna(), value.notna(), name("sex"), "ALL, FEMALE or MALE")
        _warn_unread(report, raw, text.notna() & value.isna(), "unrecognised sex; left empty", name("sex"),
                     "ALL, FEMALE or MALE", text)
        trials["sex"] = value
    _ages(raw, trials, json_format, name("age"), report)
    if "healthy_volunteers" in raw.columns:
        trials["healthy_volunteers"] = raw["healthy_volunteers"].map(
            lambda v: v if isinstance(v, bool) else None).astype("boolean")
    if "arm_count" in raw.columns:
        trials["arm_count"] = pd.to_numeric(raw["arm_count"], errors="coerce").astype("Int64")
    if "enrollment" in raw.columns:
        enrollment = pd.to_numeric(raw["enrollment"], errors="coerce").astype("Float64")
        bad = raw["enrollment"].notna() & (enrollment.isna() | (enrollment % 1 != 0).fillna(False))
        _require_some(report, raw, raw["enrollment"].notna(), ~bad, name("enrollment"), "a whole number")
        _warn_unread(report, raw, bad, "enrollment is not a whole number; left empty", name("enrollment"),
                     "a whole number", raw["enrollment"])
        trials["enrollment"] = enrollment.mask(bad).round().astype("Int64")
    for field in DATE_FIELDS:
        if field not in raw.columns:
            continue
        text = raw[field].astype("string")
        parsed = registry_dates(text)
        expected = "YYYY-MM, YYYY-MM-DD, 'October 2014' or 'June 7, 2018'"
        _require_some(report, raw, text.str.strip().replace("", pd.NA).notna(), parsed["date"].notna(), name(field),
                      expected)
        _warn_unread(report, raw, parsed["invalid"], "date not understood; left empty", name(field), expected, text)
        trials[field] = parsed["date"]
        trials[f"{field}_precision"] = parsed["precision"]
    sites = _sites(raw, trials)
    if therapeutic_area:
        trials["therapeutic_area"] = therapeutic_area
    trials["data_source"] = "ctgov"
    return trials, sites


def _ages(raw: pd.DataFrame, trials: pd.DataFrame, json_format: bool, shown: str, report: ImportReport) -> None:
    """Minimum and maximum age in years and age groups, from JSON fields or the CSV's "Age" text."""
    if json_format:
        trials["min_age_years"] = pd.to_numeric(raw["min_age"].map(age_in_years, na_action="ignore"),
                                                errors="coerce").astype("Float64")
        trials["max_age_years"] = pd.to_numeric(raw["max_age"].map(age_in_years, na_action="ignore"),
                                                errors="coerce").astype("Float64")
        trials["age_groups"] = age_groups(raw["age_groups"])
        return
    if "age" not in raw.columns:
        return
    text = raw["age"].astype("string").str.strip().replace("", pd.NA)
    low, high = age_ranges(text)
    groups = age_groups(text)
    read = low.notna() | high.notna() | groups.notna()
    _require_some(report, raw, text.notna(), read, shown, "'18 Years to 65 Years (Adult, Older Adult)' or "
                                                          "'ADULT, OLDER_ADULT'")
    _warn_unread(report, raw, text.notna() & ~read, "age not understood; left empty", shown,
                 "an age range or age groups", text)
    trials["min_age_years"], trials["max_age_years"], trials["age_groups"] = low, high, groups


def _sites(raw: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame | None:
    """One row per site of every trial whose record carries locations (None when the file has none)."""
    if "sites" in raw.columns:
        lists = raw["sites"]
    elif "locations" in raw.columns:
        lists = raw["locations"].map(location_sites)
    else:
        return None
    rows = []
    for nct, file, row, sites in zip(raw["nct_id"], raw[FILE], raw[ROW], lists):
        for number, site in enumerate(sites or [], start=1):
            rows.append({"nct_id": nct, "site_number": number, **site, FILE: file, ROW: row})
    frame = pd.DataFrame(rows, columns=["nct_id", "site_number", "facility", "city", "state", "zip", "country",
                                        "recruitment_status", FILE, ROW])
    counts = frame.groupby("nct_id").size()
    countries = frame.dropna(subset=["country"]).groupby("nct_id")["country"].agg(lambda c: "|".join(dict.fromkeys(c)))
    trials["n_sites"] = raw["nct_id"].map(counts).astype("Int64")  # empty where a trial lists no site
    trials["countries"] = raw["nct_id"].map(countries).astype("string")
    return frame


# --- the export's date ---------------------------------------------------------------------------


def export_as_of(trials: pd.DataFrame) -> pd.Timestamp:
    """When an export was downloaded, as far as its records show (NaT when they show nothing).

    Exports carry no download date. Records are updated every day, so the latest "Last Update
    Posted" is within days of the download; an export without that column is dated by the latest
    start of a trial that has started (a later start would be a plan, not an observation).
    """
    updates = (pd.to_datetime(trials["last_update_date"]) if "last_update_date" in trials
               else pd.Series(dtype="datetime64[ns]"))
    if updates.notna().any():
        return updates.max()
    if "start_date" not in trials or "status" not in trials:
        return pd.NaT
    started = ~trials["status"].isin(NOT_STARTED)
    return pd.to_datetime(trials.loc[started, "start_date"]).max()


def _date_the_export(trials: pd.DataFrame, source: SourceFile, report: ImportReport) -> None:
    """Every record names its export and is known up to that export's date (a later import of another
    export dates only its own records, so two exports read side by side keep their own dates)."""
    date = export_as_of(trials)
    trials["export_file"] = source.name
    trials["export_sha256"] = source.sha256
    trials["export_as_of"] = date
    if pd.isna(date):
        report.warning(source.name, "the export shows no date it was downloaded (no 'Last Update Posted', no "
                       "started trial's start date); its records are read as of the warehouse's as-of date",
                       column="Last Update Posted", expected="a last-update or start date")
    else:
        basis = "latest last update" if "last_update_date" in trials and trials["last_update_date"].notna().any() \
            else "latest start of a started trial (the export has no 'Last Update Posted')"
        report.info(source.name, f"records known as of {date.date().isoformat()}, the export's {basis}; running "
                    "trials are censored no later than that")


# --- the load ------------------------------------------------------------------------------------


def prepare_ctgov(path: Path | str, therapeutic_area: str | None = None, limits: Limits = Limits(),
                  progress: Progress = _silent, scope: AccessScope | None = None) -> PreparedLoad:
    """Read and validate one ClinicalTrials.gov export into a :class:`PreparedLoad` (nothing is written).

    ``scope`` is the loading user's (None: the command line): the benchmark trials are shared by every
    sponsor's views, so only a loader who sees every sponsor may change them.
    """
    path = Path(path)
    remove_stale_upload_dirs(keep=path)
    report = ImportReport("ctgov")
    load = PreparedLoad("ctgov", report)
    if scope is not None and not scope.is_full:
        report.error("(load)", "ClinicalTrials.gov benchmark trials are shared by every sponsor's views; only a "
                     "loader with access to every sponsor may load them", expected="access to every sponsor",
                     found="access limited to some sponsors, studies or sites")
        return load
    if path.suffix.lower() not in EXTENSIONS:
        report.error(path.name, "unsupported file type", expected="a .csv (Download CSV), .json (a study record or "
                     "API v2 response) or .zip (Download JSON) file", found=path.suffix or "(no extension)")
        return load
    progress(f"reading {path.name}")
    source = accept_file(path.parent, path, limits, report)
    if source is None:
        return load
    load.files = [source]
    json_format = source.extension in ("json", "zip")
    raw, headers = (_json_frame(source, limits, report), {}) if json_format else _csv_frame(source, report)
    if raw is None:
        return load
    report.rows_read[source.name] = len(raw)
    raw = raw.reset_index(drop=True)
    raw[FILE] = source.name
    raw[ROW] = np.arange(1, len(raw) + 1)

    nct = raw["nct_id"].astype("string").str.strip().str.upper()
    bad_key = (nct.isna() | ~nct.str.match(NCT_PATTERN.pattern).fillna(False)).to_numpy(dtype=bool)
    report.add_rows(WARNING, raw, bad_key, "not an NCT number; trial left out", column=headers.get("nct_id", "nct_id"),
                    expected="NCT followed by 8 digits", found=raw["nct_id"], rejected=True)
    if len(raw) and bad_key.all():
        report.error(source.name, "no row has an NCT number; the file is refused", column=headers.get("nct_id", "nct_id"),
                     expected="NCT followed by 8 digits")
    raw = raw.loc[~bad_key].copy()
    raw["nct_id"] = nct[~bad_key]

    progress(f"parsing {len(raw):,} trials")
    trials, sites = _parse(raw, headers, json_format, therapeutic_area, report)
    _date_the_export(trials, source, report)
    trials = validate_frame(trials, schema_table("historical_trials"), report, convert=False,
                            source_columns=headers)
    load.tables = {"historical_trials": trials}
    load.policies = {"historical_trials": UPSERT}
    report.rows_staged["main.historical_trials"] = len(trials)
    if sites is not None:
        shown_sites = {"nct_id": headers.get("nct_id", "nct_id")}
        load.tables["historical_trial_sites"] = validate_frame(sites, schema_table("historical_trial_sites"), report,
                                                               convert=False, source_columns=shown_sites)
        load.policies["historical_trial_sites"] = APPEND
        load.replace_keys["historical_trial_sites"] = ("nct_id", sorted(trials["nct_id"].dropna().unique()))
        report.rows_staged["main.historical_trial_sites"] = len(sites)
    report.datasets[source.name] = DatasetCounts(
        source.name, "ClinicalTrials.gov", report.rows_read[source.name], 0 if report.refused else len(trials), 0,
        report.rejected_rows(source.name), "main.historical_trials (upserted by NCT number)"
        + (f", {len(sites):,} sites to main.historical_trial_sites" if sites is not None else ""))
    form = "JSON records" if json_format else ("classic CSV" if "title" in headers and headers["title"] == "Title"
                                               else "CSV")
    dated = trials["export_as_of"].dropna()
    known = dated.iloc[0].date().isoformat() if len(dated) else "the warehouse's as-of date (the export shows none)"
    load.provenance = [{
        "study_id": PROVENANCE_KEY,
        "file_name": source.name,
        "source_type": "ctgov",
        "sha256": source.sha256,
        "row_count": report.rows_read[source.name],
        "rejected_rows": report.rejected_rows(source.name),
        "notes": f"{len(trials):,} trials keyed by NCT number from {form}; month-precision dates stored as the first "
                 "of the month with precision 'month'; phases and statuses in the API's vocabulary; records known as "
                 f"of {known} (historical_trials.export_as_of).",
    }]
    load.description = f"{len(trials):,} ClinicalTrials.gov trials from {source.name}"
    return load
