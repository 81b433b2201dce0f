"""ClinicalTrials.gov exports to ``main.historical_trials`` (feasibility benchmarks).

Two formats: the website's "Download CSV" file (any subset of its columns; only "NCT Number" is
required) and the API v2 JSON (``{"studies": [...]}``, or a bare list of study records). The NCT
number is the key: re-importing updates the trials in place, and columns a file does not carry
keep their previous values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.importers.dates import month_or_day
from analytics.importers.report import ImportReport
from analytics.importers.sources import Limits, accept_file, read_csv
from analytics.importers.staging import UPSERT, PreparedLoad, Progress, _silent
from analytics.importers.validation import FILE, ROW, validate_frame
from analytics.core.schema import table as schema_table

NCT_PATTERN = re.compile(r"^NCT\d{8}$")
PHASE_TOKENS = frozenset({"EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA"})
PROVENANCE_KEY = "ctgov"  # data_provenance.study_id for ClinicalTrials.gov batches

# Download-CSV header -> warehouse column (the only required one is the NCT number).
CSV_COLUMNS = {
    "NCT Number": "nct_id",
    "Study Title": "title",
    "Study Status": "status",
    "Phases": "phase",
    "Conditions": "conditions",
    "Enrollment": "enrollment",
    "Start Date": "start_date",
    "Completion Date": "completion_date",
    "Locations": "locations",
}


def split_locations(text: str | None) -> tuple[int | None, str | None]:
    """(number of sites, countries joined by '|') from a "Locations" cell.

    Locations are separated by "|"; each is "Facility, City, [State,] [Zip,] Country", so the
    country is the part after the last comma. Countries keep their first-seen order.
    """
    if text is None or pd.isna(text) or not str(text).strip():
        return None, None
    sites = [s.strip() for s in str(text).split("|") if s.strip()]
    countries: list[str] = []
    for site in sites:
        country = site.rsplit(",", 1)[-1].strip()
        if country and country not in countries:
            countries.append(country)
    return len(sites), "|".join(countries) or None


def _records_from_api(document: object) -> list[dict[str, object]] | None:
    studies = document.get("studies") if isinstance(document, dict) else document
    if not isinstance(studies, list):
        return None
    rows = []
    for study in studies:
        protocol = (study or {}).get("protocolSection", {}) if isinstance(study, dict) else {}
        ident = protocol.get("identificationModule", {})
        status = protocol.get("statusModule", {})
        design = protocol.get("designModule", {})
        locations = protocol.get("contactsLocationsModule", {}).get("locations")
        phases = design.get("phases")
        row = {
            "nct_id": ident.get("nctId"),
            "title": ident.get("briefTitle"),
            "status": status.get("overallStatus"),
            "phase": "|".join(phases) if phases else None,
            "conditions": "|".join(protocol.get("conditionsModule", {}).get("conditions") or []) or None,
            "enrollment": (design.get("enrollmentInfo") or {}).get("count"),
            "start_date": (status.get("startDateStruct") or {}).get("date"),
            "completion_date": (status.get("completionDateStruct") or {}).get("date"),
        }
        if locations is not None:
            row["locations"] = "|".join(
                ", ".join(str(loc[k]) for k in ("facility", "city", "state", "zip", "country") if loc.get(k))
                for loc in locations
            )
        rows.append(row)
    return rows


def _read(path: Path, limits: Limits, report: ImportReport) -> tuple[object, pd.DataFrame | None]:
    source = accept_file(path.parent, path, limits, report)
    if source is None:
        return None, None
    if source.extension == "json":
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            report.error(source.name, "invalid JSON", expected="a ClinicalTrials.gov API v2 response",
                         found=str(exc))
            return source, None
        records = _records_from_api(document)
        if records is None:
            report.error(source.name, "not a ClinicalTrials.gov API v2 document",
                         expected="an object with a 'studies' list (or a list of study records)",
                         found=f"keys {sorted(document)[:8]}" if isinstance(document, dict) else type(document).__name__)
            return source, None
        frame = pd.DataFrame(records)
        report.rows_read[source.name] = len(frame)
        return source, frame
    dataset = read_csv(source, report)
    if dataset is None:
        return source, None
    frame = dataset.frame
    if "NCT Number" not in frame.columns:
        report.error(source.name, "key column is missing", column="NCT Number",
                     expected="a ClinicalTrials.gov 'Download CSV' export with an 'NCT Number' column",
                     found="columns " + ", ".join(frame.columns[:12]))
        return source, None
    ignored = [c for c in frame.columns if c not in CSV_COLUMNS]
    if ignored:
        report.info(source.name, f"{len(ignored)} column(s) not used by the benchmarks: " + ", ".join(ignored))
    return source, frame[[c for c in frame.columns if c in CSV_COLUMNS]].rename(columns=CSV_COLUMNS)


def prepare_ctgov(path: Path | str, therapeutic_area: str | None = None, limits: Limits = Limits(),
                  progress: Progress = _silent) -> PreparedLoad:
    """Read and validate one ClinicalTrials.gov export into a :class:`PreparedLoad` (nothing is written)."""
    path = Path(path)
    report = ImportReport("ctgov")
    load = PreparedLoad("ctgov", report)
    if path.suffix.lower() not in (".csv", ".json"):
        report.error(path.name, "unsupported file type", expected="a .csv (Download CSV) or .json (API v2) file",
                     found=path.suffix or "(no extension)")
        return load
    progress(f"reading {path.name}")
    source, raw = _read(path, limits, report)
    if source is None or raw is None:
        return load
    load.files = [source]
    raw = raw.reset_index(drop=True)
    raw[FILE] = source.name
    raw[ROW] = np.arange(1, len(raw) + 1)
    shown = {v: k for k, v in CSV_COLUMNS.items()} if source.extension == "csv" else {}

    nct = raw["nct_id"].astype("string").str.strip().str.upper()
    bad_key = nct.isna() | ~nct.str.match(NCT_PATTERN.pattern).fillna(False)
    for index in raw.index[bad_key]:
        report.reject(source.name, int(raw.at[index, ROW]), "not an NCT number; trial left out",
                      column=shown.get("nct_id", "nct_id"), expected="NCT followed by 8 digits",
                      found="" if pd.isna(raw.at[index, "nct_id"]) else str(raw.at[index, "nct_id"]))
    raw = raw.loc[~bad_key].copy()
    raw["nct_id"] = nct[~bad_key]

    progress(f"parsing {len(raw):,} trials")
    trials = pd.DataFrame({"nct_id": raw["nct_id"], FILE: raw[FILE], ROW: raw[ROW]}, index=raw.index)
    for column in ("title", "status", "conditions"):
        if column in raw.columns:
            trials[column] = raw[column].astype("string")
    if "phase" in raw.columns:
        phase = raw["phase"].astype("string").str.upper().str.replace(r"\s*[|,]\s*", "|", regex=True)
        tokens_ok = phase.map(lambda p: set(str(p).split("|")) <= PHASE_TOKENS, na_action="ignore")
        for index in raw.index[phase.notna() & ~tokens_ok.fillna(True).astype(bool)]:
            report.warning(source.name, "unrecognised phase; kept as written", row=int(raw.at[index, ROW]),
                           column=shown.get("phase", "phase"),
                           expected="PHASE1..PHASE4, EARLY_PHASE1 or NA, separated by |", found=str(phase[index]))
        trials["phase"] = phase
    if "enrollment" in raw.columns:
        enrollment = pd.to_numeric(raw["enrollment"], errors="coerce").astype("Float64")
        bad = raw["enrollment"].notna() & (enrollment.isna() | (enrollment % 1 != 0).fillna(False))
        for index in raw.index[bad]:
            report.warning(source.name, "enrollment is not a whole number; left empty", row=int(raw.at[index, ROW]),
                           column=shown.get("enrollment", "enrollment"), expected="a whole number",
                           found=str(raw.at[index, "enrollment"]))
        trials["enrollment"] = enrollment.mask(bad).round().astype("Int64")
    for column in ("start_date", "completion_date"):
        if column not in raw.columns:
            continue
        parsed = month_or_day(raw[column].astype("string"))
        for index in raw.index[parsed["invalid"]]:
            report.warning(source.name, "date not understood; left empty", row=int(raw.at[index, ROW]),
                           column=shown.get(column, column), expected="YYYY-MM or YYYY-MM-DD",
                           found=str(raw.at[index, column]))
        trials[column] = parsed["date"]
        trials[f"{column}_precision"] = parsed["precision"]
    if "locations" in raw.columns:
        split = raw["locations"].map(split_locations)
        trials["n_sites"] = pd.array([s[0] for s in split], dtype="Int64")
        trials["countries"] = pd.array([s[1] for s in split], dtype="string")
    if therapeutic_area:
        trials["therapeutic_area"] = therapeutic_area
    trials["data_source"] = "ctgov"

    trials = validate_frame(trials, schema_table("historical_trials"), report, convert=False, source_columns=shown)
    load.tables = {"historical_trials": trials}
    load.policies = {"historical_trials": UPSERT}
    report.rows_staged["main.historical_trials"] = len(trials)
    load.provenance = [{
        "study_id": PROVENANCE_KEY,
        "file_name": source.name,
        "source_type": "ctgov",
        "sha256": source.sha256,
        "row_count": report.rows_read.get(source.name, len(raw)),
        "rejected_rows": report.problem_rows(source.name),
        "notes": f"{len(trials):,} trials keyed by NCT number; month-precision dates stored as the first of the "
                 "month with precision 'month'.",
    }]
    load.description = f"{len(trials):,} ClinicalTrials.gov trials from {source.name}"
    return load
