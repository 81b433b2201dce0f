"""CDISC SDTM (SAS XPORT v5/v8, CSV or Dataset-JSON) to one warehouse study.

Mapping: DM gives the study, its sites and subjects (its arm variables go to the restricted schema
only); SV gives visits; TV the planned schedule (scheduled dates, missed visits); TS the design
(title, phase, blinding, planned enrolment); TA the arms (restricted) DM is checked against; DS
dispositions and subject status; AE, DV, LB, VS and EX (restricted) their tables; SUPP--
qualifiers are joined to their parent records (those that reveal treatment go to the restricted
schema). Split datasets (``LBCH`` + ``LBHE`` ...) are combined by their DOMAIN value.

Nothing is lost silently: records of another study or of subjects DM does not list refuse the
load (or, with ``skip_foreign_rows``, are left out and counted); partial AE onset dates are imputed
by a documented rule and counted; every dataset's rows read, loaded, imputed and rejected are in
the report. A re-import that would remove more than
:data:`~analytics.importers.shrink.MAX_SHRINK_SHARE` of the study's rows in any table needs a
confirmation. For a blinded loader the report hides every treatment-revealing value.

SDTM carries no operational facts (eCRF entry dates, queries, monitoring visits): they stay absent
for the study and the provenance notes say so. Values derived here rather than read (site
activation, randomization date, missed visits, imputed onsets) are described in the provenance notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analytics.core.schema import table as schema_table
from analytics.core.scope import AccessScope
from analytics.importers.blinding import ARM_VARIABLES, arm_revealing_files
from analytics.importers.countries import country_rows
from analytics.importers.dates import parse_iso_dates
from analytics.importers.existing import WarehouseState, check_scope, check_shared_rows
from analytics.importers.report import ERROR, FILE, ROW, DatasetCounts, ImportReport
from analytics.importers.sdtm_columns import StudyFacts, text
from analytics.importers.sdtm_datasets import (
    Domain,
    check_columns,
    check_membership,
    check_record_keys,
    domain_kind,
    read_folder,
)
from analytics.importers.sdtm_design import phase_from_text, planned_visits, study_row, trial_arms
from analytics.importers.sdtm_events import adverse_events, deviations, exposures, measurements, qualifiers
from analytics.importers.sdtm_subjects import assignments, dispositions, subjects_and_sites, visits
from analytics.importers.shrink import find_shrinks, staged_counts
from analytics.importers.sources import Limits
from analytics.importers.staging import APPEND, KEEP_EXISTING, UPSERT, PreparedLoad, Progress, _silent
from analytics.importers.uploads import remove_stale_upload_dirs
from analytics.importers.validation import validate_frame
from analytics.quality.conformance import check_domains, find_define

__all__ = ["SdtmOptions", "domain_kind", "phase_from_text", "prepare_sdtm"]

STUDY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
ABSENT_FACTS_NOTE = (
    "SDTM carries no eCRF data-entry dates, eCRF pages, queries, monitoring visits, quality events, CAPAs or "
    "milestones: those facts are absent for this study (not zero)."
)
# Where each domain's records go (the table a data manager's row count is checked against).
DESTINATION = {
    "DM": "subjects", "SV": "visits", "AE": "adverse_events", "DS": "dispositions", "DV": "protocol_deviations",
    "EX": "exposures", "LB": "measurements", "VS": "measurements", "TV": "planned_visits", "TA": "trial_arms",
}
QUALIFIER_TABLES = ("supplemental_qualifiers", "treatment_qualifiers")


@dataclass(frozen=True)
class SdtmOptions:
    """Choices a user makes for one SDTM load."""

    study_id: str | None = None  # default: DM.STUDYID
    sponsor: str = "Imported"  # existing sponsor id or name, or the name of a new sponsor
    therapeutic_area: str | None = None
    default_country: str | None = None  # used when DM has no COUNTRY
    limits: Limits = field(default_factory=Limits)
    scope: AccessScope | None = None  # the loading user's scope (None: command line, full access)
    skip_foreign_rows: bool = False  # leave out (and count) rows of another study / unknown subjects


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


def _study_code(domains: dict[str, Domain], options: SdtmOptions, report: ImportReport) -> tuple[str, str] | None:
    """(STUDYID in the files, warehouse study id), or None with the reason recorded."""
    dm = domains["DM"]
    codes = sorted(set(text(dm.frame, "STUDYID").dropna()))
    if len(codes) != 1:
        report.error(dm.file, "DM must hold exactly one study", column="STUDYID",
                     expected="one STUDYID", found=", ".join(codes) or "(none)")
        return None
    study_id = options.study_id or codes[0]
    if not STUDY_ID_PATTERN.match(study_id):
        report.error("(option --study-id)", "invalid study id", expected="letters, digits, '-', '_' or '.', at most "
                     "40 characters", found=study_id)
        return None
    return codes[0], study_id


def _check_warehouse(domains: dict[str, Domain], study_id: str, options: SdtmOptions, state: WarehouseState,
                     report: ImportReport) -> tuple[str, pd.DataFrame]:
    """The study's source and its subjects must not clash with the warehouse; returns the sponsor."""
    dm = domains["DM"].frame
    existing = state.studies([study_id])
    if len(existing) and existing["data_source"].iloc[0] != "sdtm":
        report.error("(option --study-id)", "a study with this id already exists from another source",
                     expected="a new study id, or the id of a previously imported SDTM study",
                     found=f"{study_id} (data_source={existing['data_source'].iloc[0]})")
    owners = state.subject_studies(list(dm["USUBJID"].dropna().unique()))
    owner = dm["USUBJID"].map(dict(zip(owners["subject_id"], owners["study_id"])))
    clash = owner.notna() & (owner != study_id)
    report.add_rows(ERROR, dm, clash, "subject already belongs to another study", column="USUBJID",
                    expected="a USUBJID unique in the warehouse",
                    found=dm["USUBJID"].astype("string") + " (" + owner.astype("string") + ")")
    sponsor_id, new_sponsor = _resolve_sponsor(options.sponsor, state)
    if len(existing) and existing["sponsor_id"].iloc[0] != sponsor_id:
        report.info("(option --sponsor)", f"study {study_id} moves from sponsor {existing['sponsor_id'].iloc[0]} "
                                          f"to {sponsor_id}")
    check_scope(report, options.scope, {sponsor_id}, {study_id})
    return sponsor_id, new_sponsor


def _subject_facts(dm: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """Per USUBJID: study-site, first treatment, first dose, consent, last contact, planned arm, status."""
    reference_start = parse_iso_dates(text(dm, "RFSTDTC"))["date"]
    first_dose = parse_iso_dates(text(dm, "RFXSTDTC"))["date"].fillna(reference_start)
    # Visits are expected until the subject left: discontinuation, else end of treatment or participation.
    end_of_treatment = parse_iso_dates(text(dm, "RFENDTC"))["date"].fillna(parse_iso_dates(text(dm, "RFPENDTC"))["date"])
    last_contact = subjects["discontinuation_date"].fillna(end_of_treatment)
    return pd.DataFrame({
        "study_site_id": subjects["study_site_id"].to_numpy(),
        "reference_start": reference_start.to_numpy(),
        "first_dose": first_dose.to_numpy(),
        "consent": pd.to_datetime(subjects["consent_date"]).to_numpy(),
        "last_contact": last_contact.to_numpy(),
        "arm_code": text(dm, "ARMCD").to_numpy(),
        "status": subjects["status"].to_numpy(),
    }, index=pd.Index(dm["USUBJID"], name="USUBJID"))


def _map(domains: dict[str, Domain], study_id: str, study_code: str, sponsor_id: str, new_sponsor: pd.DataFrame,
         options: SdtmOptions, report: ImportReport, progress: Progress) -> dict[str, pd.DataFrame]:
    """Every warehouse table this study's domains fill, in load order."""
    progress("mapping DM, DS and SV to subjects, sites and visits")
    dm = domains["DM"].frame
    planned = planned_visits(domains, study_id, report)
    by_site = pd.DataFrame({"study_site_id": (study_id + "-" + text(dm, "SITEID")).to_numpy()}, index=dm["USUBJID"])
    disp = dispositions(domains, StudyFacts(study_id, study_code, by_site, pd.Series(dtype="int64")), report)
    first_visit = pd.Series(dtype="datetime64[ns]")
    if "SV" in domains:
        sv = domains["SV"].frame
        first_visit = parse_iso_dates(text(sv, "SVSTDTC"))["date"].groupby(sv["USUBJID"]).min()
    subjects, study_sites, sites = subjects_and_sites(domains, study_id, options.default_country, report, disp,
                                                      first_visit)
    study = StudyFacts(study_id, study_code, _subject_facts(dm, subjects), pd.Series(dtype="int64"))
    tables: dict[str, pd.DataFrame] = {
        "sponsors": new_sponsor,
        "countries": country_rows(list(sites["country_code"].dropna())),
        "studies": study_row(domains, study_id, study_code, sponsor_id, subjects, planned, options.therapeutic_area,
                             report),
        "sites": sites,
        "study_sites": study_sites,
        "subjects": subjects,
        "treatment_assignments": assignments(domains, subjects, report),
        "trial_arms": trial_arms(domains, study_id, report),
        "planned_visits": planned.drop_duplicates("visit_number"),
    }
    if "SV" in domains:
        recorded = visits(domains, study, planned, report)
        tables["visits"] = recorded
        known = recorded.dropna(subset=["visit_number"])
        visit_ids = pd.Series(known["visit_id"].to_numpy(),
                              index=pd.MultiIndex.from_arrays([known["subject_id"], known["visit_number"]]))
        study.visit_ids = visit_ids[~visit_ids.index.duplicated()]
    if "DS" in domains:
        tables["dispositions"] = disp
    main_qualifiers, treatment_qualifiers = qualifiers(domains, study, report)
    tables["supplemental_qualifiers"] = main_qualifiers
    tables["treatment_qualifiers"] = treatment_qualifiers
    if "AE" in domains:
        progress("mapping AE")
        tables["adverse_events"] = adverse_events(domains, study, main_qualifiers, report)
    if "DV" in domains:
        tables["protocol_deviations"] = deviations(domains, study, report)
    if "EX" in domains:
        tables["exposures"] = exposures(domains, study, report)
    found = []
    for code in ("LB", "VS"):
        if code in domains:
            progress(f"mapping {code}")
            found.append(measurements(domains, code, study, report))
    if found:
        tables["measurements"] = pd.concat(found, ignore_index=True)
    return tables


def prepare_sdtm(folder: Path | str, db_path: Path | str | None, options: SdtmOptions = SdtmOptions(),
                 progress: Progress = _silent) -> PreparedLoad:
    """Read and validate an SDTM folder into a :class:`PreparedLoad` for one study (nothing is written)."""
    remove_stale_upload_dirs(keep=Path(folder))
    report = ImportReport("sdtm")
    load = PreparedLoad("sdtm", report)
    domains = read_folder(Path(folder), options.limits, report, progress)
    blinded = options.scope is not None and options.scope.blinded
    if blinded:
        report.redact(files=arm_revealing_files(domains), columns=ARM_VARIABLES)
    load.files = [s for d in domains.values() for s in d.sources]
    check_columns(domains, report)
    check_record_keys(domains, report)
    identity = None if report.refused else _study_code(domains, options, report)
    if identity is None:
        _count_datasets(domains, {}, report)
        return load
    study_code, study_id = identity
    # Conformance reads the files as they are (before rows of unknown subjects may be left out).
    progress("checking SDTM conformance")
    conformance = check_domains(domains, find_define(Path(folder)))
    check_membership(domains, study_code, pd.Index(domains["DM"].frame["USUBJID"].dropna().astype("string")), report,
                     options.skip_foreign_rows)
    for code, domain in domains.items():
        if domain.kind in ("unused", "custom"):
            report.info(domain.file, f"domain {code} is not mapped to the warehouse; recorded in provenance only")
    state = WarehouseState(db_path)
    sponsor_id, new_sponsor = _check_warehouse(domains, study_id, options, state, report)
    if report.refused:
        _count_datasets(domains, {}, report)
        return load

    tables = _map(domains, study_id, study_code, sponsor_id, new_sponsor, options, report, progress)
    tables["sdtm_conformance"] = _conformance(conformance, study_id, domains["DM"].frame, report)
    progress("validating against the warehouse schema")
    for name, frame in tables.items():
        if FILE not in frame.columns:
            frame[FILE] = name
            frame[ROW] = None
        spec = schema_table(name)
        with report.redacting(blinded and spec.schema == "restricted"):
            tables[name] = validate_frame(frame, spec, report, convert=False)
        report.rows_staged[spec.qualified_name] = len(frame)
    check_shared_rows(report, options.scope, tables, state)
    _count_datasets(domains, {} if report.refused else tables, report)
    load.tables = tables
    load.policies = {name: APPEND for name in tables} | {
        "sponsors": KEEP_EXISTING, "countries": KEEP_EXISTING, "sites": UPSERT}
    load.replace_study_ids = (study_id,)
    load.provenance = _provenance(domains, study_id, report)
    load.note_shrinks(find_shrinks(study_id, state.study_row_counts([study_id]), staged_counts(tables, study_id)))
    subjects = tables["subjects"]
    load.description = (f"study {study_id} ({len(subjects)} subjects, {len(tables['study_sites'])} sites) "
                        f"from {len(load.files)} SDTM datasets")
    return load


def _conformance(issues: pd.DataFrame, study_id: str, dm: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """The conformance issues as ``main.sdtm_conformance`` rows (each with its subject's study-site)."""
    site = pd.Series((study_id + "-" + text(dm, "SITEID")).to_numpy(), index=dm["USUBJID"].astype("string"))
    site = site[~site.index.duplicated()]
    rows = issues.assign(study_id=study_id, study_site_id=issues["subject_id"].map(site))
    rows[FILE] = "sdtm_conformance"
    rows[ROW] = None
    for rule, count in rows.groupby("rule_id").size().items():
        report.info("(conformance)", f"{rule}: {count:,} issue(s), listed on the Data Quality page",
                    column=", ".join(sorted(rows.loc[rows["rule_id"] == rule, "domain"].unique())))
    return rows


def _destination(domain: Domain) -> tuple[tuple[str, ...], str]:
    """(tables the domain's rows are loaded into, how to say where they went)."""
    if domain.kind == "supp":
        return QUALIFIER_TABLES, "qualifiers of their parent records"
    if domain.code == "TS":
        return (), "study attributes (title, phase, blinding, planned enrolment)"
    if domain.code in DESTINATION:
        name = DESTINATION[domain.code]
        note = " (one per VISITNUM)" if domain.code == "TV" else ""
        return (name,), schema_table(name).qualified_name + note
    return (), "not mapped (provenance only)"


def _count_datasets(domains: dict[str, Domain], tables: dict[str, pd.DataFrame], report: ImportReport) -> None:
    """Rows read, loaded, imputed and rejected per source file (nothing is loaded from a refused load)."""
    for domain in domains.values():
        names, into = _destination(domain)
        loaded_rows: dict[str, set] = {}
        reached: dict[str, list[str]] = {}  # file -> tables its rows went to
        for name in names:
            frame = tables.get(name)
            if frame is None or not len(frame):
                continue
            for file, rows in frame.groupby(FILE)[ROW]:
                loaded_rows.setdefault(str(file), set()).update(rows.dropna().astype(int))
                reached.setdefault(str(file), []).append(schema_table(name).qualified_name)
        for file in domain.files():
            loaded = None if domain.code == "TS" else len(loaded_rows.get(file, ()))
            where = ", ".join(reached.get(file, [])) if domain.kind == "supp" and file in reached else into
            report.datasets[file] = DatasetCounts(file, domain.code, report.rows_read.get(file, 0),
                                                  loaded, report.imputed[file], report.rejected_rows(file), where)


_NOTES = {
    "DM": "Sites are named 'Site <SITEID>' (SDTM has no institution names). Site activation_date is ESTIMATED as "
          "the first screening (first SV) date at the site; planned enrollment is unknown. randomization_date is "
          "the DS RANDOMIZED date, else RFSTDTC (first study treatment). ARM, ARMCD, ACTARM and ACTARMCD are "
          "loaded to the restricted schema only. " + ABSENT_FACTS_NOTE,
    "SV": "Each SV record is a visit that took place unless SVOCCUR = N (no SVOCCUR: not collected). Scheduled "
          "dates come from TV planned study days and RFSTDTC. Visits planned in TV after day 1 that fell due "
          "before the subject left (DS discontinuation date, else RFENDTC/RFPENDTC) but are absent from SV are "
          "recorded as Missed. SDTM has no eCRF entry dates.",
    "TS": "Title, phase, indication, planned enrollment (PLANSUB) and blinding (TBLIND) come from TS.",
    "TV": "Planned visit schedule.",
    "TA": "Trial arms, loaded to the restricted schema (arm names unblind) and used to check DM.ARMCD.",
    "EX": "Loaded to the restricted schema (treatment names and doses unblind).",
    "AE": "Partial onset dates are IMPUTED: first day of the known month or year, raised to the first dose date "
          "(RFXSTDTC, else RFSTDTC), else consent (RFICDTC), when that falls inside the known period, never after "
          "the AE end date; onset_date_text keeps the reported value and onset_date_imputed flags it. Partial end "
          "dates are kept as text only.",
}


def _provenance(domains: dict[str, Domain], study_id: str, report: ImportReport) -> list[dict[str, object]]:
    rows = []
    for code, domain in domains.items():
        note = _NOTES.get(code)
        if domain.kind == "supp":
            note = ("Supplemental qualifiers joined to their parent records; those revealing treatment are loaded "
                    "to the restricted schema.")
        elif domain.kind in ("unused", "custom"):
            note = f"Domain {code} read for provenance only; not mapped to the warehouse."
        if len(domain.parts) > 1:
            note = f"Part of split domain {code} ({domain.file}). " + (note or "")
        for part in domain.parts:
            rows.append({
                "study_id": study_id,
                "file_name": part.source.name,
                "source_type": "sdtm",
                "sha256": part.source.sha256,
                "row_count": report.rows_read.get(part.source.name, len(part.frame)),
                "rejected_rows": report.rejected_rows(part.source.name),
                "notes": note,
            })
    return rows
