"""A site's pre-screening list: FHIR R4 bundles (the common EHR export) or CSV files per the contract,
de-identified on the way in and loaded as that site's pool for one study.

* **FHIR**: one or more ``.json`` files, each a Bundle (or a single resource) holding ``Patient``,
  ``Condition``, ``Observation``, ``MedicationStatement`` and ``MedicationRequest`` resources. Every
  resource is validated with ``fhir.resources`` (R4B models, which read R4 content); a resource that
  does not validate refuses the load, naming the file, the entry and the field.
* **CSV**: ``patients.csv``, ``conditions.csv``, ``observations.csv``, ``medications.csv`` with the
  columns of :data:`CSV_CONTRACT` (published in ``data/PRESCREEN_CONTRACT.md`` by
  ``python -m analytics contract``).

Completeness: whether a patient's condition and medication lists are complete decides what an absent
record means (not present, or unknown). CSV states it in ``patients.csv`` (``conditions_complete``,
``medications_complete``: yes / no, empty for not stated); FHIR with a ``List`` resource per patient and
kind (:func:`list_statement`). Not stated is not complete: the matcher then leaves an absent condition
or medication unknown, and the load's report counts the patients concerned.

De-identification: names, addresses, telecoms and identifiers other than the site's own patient id
are never read; the site's id becomes a pseudonym (a SHA-256 of the study-site and the id, so the
site can find its patient again from its own list and nobody else can); the date of birth becomes
the age in whole years at the screening date and is not kept. A new load for a site replaces that
site's previous pool for the study. Bad input refuses the whole load with the file, row (or entry)
and column, and leaves the warehouse as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.core.scope import AccessScope
from analytics.core.warehouse import Warehouse
from analytics.importers.report import ImportReport
from analytics.importers.sources import Limits, list_folder, read_csv
from analytics.importers.staging import PreparedLoad, Progress, _silent

PRESCREEN_TABLES = ("prescreen_patients", "prescreen_conditions", "prescreen_observations", "prescreen_medications")
SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM", "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://snomed.info/sct": "SNOMED CT", "http://loinc.org": "LOINC", "http://www.whocc.no/atc": "ATC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm", "http://unitsofmeasure.org": "UCUM",
}
PREFERRED = {"Condition": ("ICD-10-CM", "ICD-10", "SNOMED CT"), "Observation": ("LOINC",),
             "Medication": ("ATC", "RxNorm")}
SKIPPED_STATUSES = {"entered-in-error", "cancelled"}


@dataclass(frozen=True)
class ContractColumn:
    """A column of a pre-screening CSV file."""

    name: str
    kind: str  # text, date, number
    description: str
    required: bool = False


CSV_CONTRACT: dict[str, tuple[ContractColumn, ...]] = {
    "patients": (
        ContractColumn("patient_id", "text", "The site's own patient id (replaced by a pseudonym on import).", True),
        ContractColumn("sex", "text", "F, M or U (also female, male, unknown)."),
        ContractColumn("birth_date", "date", "Date of birth, turned into the age at the screening date and not kept."),
        ContractColumn("age", "number", "Age in years at the screening date, when no date of birth is given."),
        ContractColumn("conditions_complete", "yes/no",
                       "yes: conditions.csv holds all of the patient's conditions (an absent one is not present); "
                       "no or empty (not stated): an absent condition is unknown."),
        ContractColumn("medications_complete", "yes/no",
                       "yes: medications.csv holds all of the patient's medications (an absent one was not taken); "
                       "no or empty (not stated): an absent medication is unknown."),
    ),
    "conditions": (
        ContractColumn("patient_id", "text", "The site's patient id, as in patients.csv.", True),
        ContractColumn("code", "text", "Condition code (ICD-10-CM preferred)."),
        ContractColumn("code_system", "text", "ICD-10-CM, SNOMED CT, ... (default ICD-10-CM)."),
        ContractColumn("display", "text", "The condition as named in the record."),
        ContractColumn("onset_date", "date", "Onset or diagnosis date."),
        ContractColumn("abatement_date", "date", "Resolution date."),
        ContractColumn("clinical_status", "text", "active, recurrence, relapse, inactive, remission, resolved."),
        ContractColumn("verification_status", "text", "confirmed, provisional, unconfirmed, refuted, entered-in-error."),
    ),
    "observations": (
        ContractColumn("patient_id", "text", "The site's patient id.", True),
        ContractColumn("code", "text", "LOINC code where there is one."),
        ContractColumn("display", "text", "The test as named in the record."),
        ContractColumn("value", "number", "Numeric result."),
        ContractColumn("unit", "text", "Unit of the result (UCUM or as the lab writes it)."),
        ContractColumn("value_text", "text", "Coded or text result (e.g. Pregnant / Not pregnant)."),
        ContractColumn("ref_high", "number", "Upper limit of normal, in the result's unit."),
        ContractColumn("effective_date", "date", "Collection date.", True),
    ),
    "medications": (
        ContractColumn("patient_id", "text", "The site's patient id.", True),
        ContractColumn("code", "text", "WHO ATC code, or another system's code."),
        ContractColumn("code_system", "text", "ATC, RxNorm, ... (default ATC)."),
        ContractColumn("display", "text", "The medication as named in the record."),
        ContractColumn("start_date", "date", "Start of use."),
        ContractColumn("end_date", "date", "End of use; empty while ongoing."),
        ContractColumn("status", "text", "active, completed, stopped, on-hold, intended, not-taken."),
    ),
}


YES_NO = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}
# FHIR List codes of a patient's problem list and medication list (LOINC; and FHIR's example list-use codes).
LIST_KINDS = {("http://loinc.org", "11450-4"): "conditions", ("http://loinc.org", "10160-0"): "medications",
              ("http://terminology.hl7.org/CodeSystem/list-example-use-codes", "problems"): "conditions",
              ("http://terminology.hl7.org/CodeSystem/list-example-use-codes", "medications"): "medications"}
NIL_KNOWN = "nilknown"  # list-empty-reason: a clinician's positive statement that there are no items


def list_statement(resource: dict) -> tuple[str | None, bool | None]:
    """What a FHIR ``List`` says: (``conditions`` / ``medications`` / None for another list, complete or not;
    None when it says nothing: retired or entered in error).

    Complete: status ``current``, mode ``working`` or ``snapshot`` (a whole list, not ``changes``), and
    entries or an ``emptyReason`` of ``nilknown`` (no known items after reasonable investigation). Not
    complete: mode ``changes``, any other ``emptyReason`` (notasked, withheld, unavailable, notstarted,
    closed), or empty with no reason.
    """
    codings = (resource.get("code") or {}).get("coding") or []
    kind = next((LIST_KINDS[(c.get("system"), c.get("code"))] for c in codings
                 if (c.get("system"), c.get("code")) in LIST_KINDS), None)
    if kind is None or resource.get("status") != "current":
        return kind, None
    empty_reason = _status(resource.get("emptyReason"))
    if resource.get("mode") not in ("working", "snapshot") or (empty_reason and empty_reason != NIL_KNOWN):
        return kind, False
    return kind, bool(resource.get("entry")) or empty_reason == NIL_KNOWN


def pseudonym(study_site_id: str, source_id: str) -> str:
    """The warehouse's key for a site's patient: ``P-`` and 16 hex digits of SHA-256(study-site, id)."""
    return "P-" + hashlib.sha256(f"{study_site_id}|{source_id}".encode()).hexdigest()[:16]


def age_at(birth: pd.Series, on: dt.date) -> pd.Series:
    """Whole years from each date of birth to ``on`` (missing where the date is missing)."""
    stamps = pd.to_datetime(birth, errors="coerce")
    years = on.year - stamps.dt.year
    before_birthday = (stamps.dt.month > on.month) | ((stamps.dt.month == on.month) & (stamps.dt.day > on.day))
    return (years - before_birthday.astype("Int64")).astype("Int64")


# --- FHIR ------------------------------------------------------------------------------------------


def _coding(concept: dict | None, resource_type: str) -> tuple[str | None, str | None, str | None]:
    """(code, system, display) of a CodeableConcept, preferring the systems the matcher reads."""
    if not concept:
        return None, None, None
    codings = concept.get("coding") or []
    ranked = sorted(codings, key=lambda c: (PREFERRED[resource_type].index(SYSTEMS.get(c.get("system"), ""))
                                            if SYSTEMS.get(c.get("system")) in PREFERRED[resource_type] else 99))
    first = ranked[0] if ranked else {}
    display = concept.get("text") or first.get("display")
    return first.get("code"), SYSTEMS.get(first.get("system"), first.get("system")), display


def _status(concept: dict | None) -> str | None:
    codings = (concept or {}).get("coding") or []
    return codings[0].get("code") if codings else (concept or {}).get("text")


def _subject(resource: dict) -> str | None:
    reference = ((resource.get("subject") or resource.get("patient") or {}).get("reference") or "")
    return reference.split("/", 1)[1] if reference.startswith("Patient/") else (reference or None)


def _date(value: object) -> str | None:
    return str(value)[:10] if value else None


def _resources(document: dict) -> list[dict]:
    if document.get("resourceType") == "Bundle":
        return [entry.get("resource") or {} for entry in document.get("entry") or []]
    return [document]


def _read_fhir(paths: list[Path], report: ImportReport) -> dict[str, list[dict]]:
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    rows: dict[str, list[dict]] = {name: [] for name in (*CSV_CONTRACT, "lists")}
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            report.error(path.name, "not a FHIR JSON file", found=str(exc)[:200])
            continue
        for index, resource in enumerate(_resources(document), start=1):
            kind = resource.get("resourceType")
            if kind not in ("Patient", "Condition", "Observation", "MedicationStatement", "MedicationRequest", "List"):
                continue
            try:
                get_fhir_model_class(kind).model_validate(resource)
            except ValidationError as exc:
                first = exc.errors()[0]
                report.error(path.name, f"{kind} does not validate as FHIR", row=index,
                             column=".".join(str(p) for p in first.get("loc", ())), found=first.get("msg", "")[:200])
                continue
            if kind == "Patient":
                rows["patients"].append({"patient_id": resource.get("id"), "sex": resource.get("gender"),
                                         "birth_date": _date(resource.get("birthDate")), "_row": index,
                                         "_file": path.name})
                continue
            subject = _subject(resource)
            if kind == "List":
                list_kind, complete = list_statement(resource)
                if list_kind is None:
                    report.warning(path.name, "List that is neither a problem list nor a medication list; ignored",
                                   row=index, column="code")
                elif complete is not None:
                    rows["lists"].append({"patient_id": subject, "kind": list_kind, "complete": complete, "_row": index,
                                          "_file": path.name})
                continue
            if kind == "Condition":
                code, system, display = _coding(resource.get("code"), "Condition")
                rows["conditions"].append({
                    "patient_id": subject, "code": code, "code_system": system, "display": display,
                    "onset_date": _date(resource.get("onsetDateTime") or (resource.get("onsetPeriod") or {}).get("start")),
                    "abatement_date": _date(resource.get("abatementDateTime")),
                    "clinical_status": _status(resource.get("clinicalStatus")),
                    "verification_status": _status(resource.get("verificationStatus")), "_row": index, "_file": path.name})
            elif kind == "Observation":
                if resource.get("status") in SKIPPED_STATUSES:
                    continue
                code, system, display = _coding(resource.get("code"), "Observation")
                quantity = resource.get("valueQuantity") or {}
                concept = resource.get("valueCodeableConcept")
                ranges = resource.get("referenceRange") or [{}]
                rows["observations"].append({
                    "patient_id": subject, "code": code, "code_system": system, "display": display,
                    "value": quantity.get("value"), "unit": quantity.get("unit") or quantity.get("code"),
                    "value_text": (concept or {}).get("text") or _coding(concept, "Observation")[2] if concept
                    else resource.get("valueString"),
                    "ref_high": ((ranges[0] or {}).get("high") or {}).get("value"),
                    "effective_date": _date(resource.get("effectiveDateTime")
                                            or (resource.get("effectivePeriod") or {}).get("start")),
                    "_row": index, "_file": path.name})
            else:
                if resource.get("status") in SKIPPED_STATUSES:
                    continue
                code, system, display = _coding(resource.get("medicationCodeableConcept"), "Medication")
                period = resource.get("effectivePeriod") or ((resource.get("dispenseRequest") or {})
                                                             .get("validityPeriod") or {})
                start = period.get("start") or resource.get("effectiveDateTime") or resource.get("authoredOn")
                rows["medications"].append({
                    "patient_id": subject, "code": code, "code_system": system, "display": display,
                    "start_date": _date(start), "end_date": _date(period.get("end")), "status": resource.get("status"),
                    "_row": index, "_file": path.name})
    return rows


# --- CSV -------------------------------------------------------------------------------------------


def _read_csv(folder: Path, limits: Limits, report: ImportReport) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {name: [] for name in CSV_CONTRACT}
    for source in list_folder(folder, {"csv"}, limits, report):
        name = source.path.stem.lower()
        if name not in CSV_CONTRACT:
            report.error(source.name, "unknown pre-screening file",
                         expected=", ".join(f"{n}.csv" for n in CSV_CONTRACT), found=source.name)
            continue
        dataset = read_csv(source, report)
        if dataset is None:
            continue
        frame = dataset.frame.rename(columns=lambda c: str(c).strip().lower())
        contract = CSV_CONTRACT[name]
        known = {c.name for c in contract}
        for column in contract:
            if column.required and column.name not in frame.columns:
                report.error(source.name, "required column missing", column=column.name)
        for column in frame.columns:
            if column not in known:
                report.warning(source.name, "column not in the contract; ignored", column=column)
        if any(c.required and c.name not in frame.columns for c in contract):
            continue
        frame = frame[[c for c in frame.columns if c in known]].astype(object).where(frame.notna(), None)
        for position, record in enumerate(frame.to_dict("records"), start=1):
            rows[name].append({**record, "_row": position, "_file": source.name})
    return rows


# --- shaping -------------------------------------------------------------------------------------


def _check_dates(frame: pd.DataFrame, column: str, file_of: pd.Series, report: ImportReport) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index)
    raw = frame[column]
    parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601")
    bad = raw.notna() & (raw.astype(str).str.strip() != "") & parsed.isna()
    for index in np.flatnonzero(bad.to_numpy())[:20]:
        report.error(str(file_of.iloc[index]), "not a date like 2026-01-31", row=int(frame["_row"].iloc[index]),
                     column=column, found=str(raw.iloc[index])[:60])
    if bad.sum() > 20:
        report.error(str(file_of.iloc[0]), f"{int(bad.sum()) - 20} more values are not dates", column=column)
    return parsed.dt.date


def _check_numbers(frame: pd.DataFrame, column: str, report: ImportReport) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    raw = frame[column]
    parsed = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & (raw.astype(str).str.strip() != "") & parsed.isna()
    for index in np.flatnonzero(bad.to_numpy())[:20]:
        report.error(str(frame["_file"].iloc[index]), "not a number", row=int(frame["_row"].iloc[index]), column=column,
                     found=str(raw.iloc[index])[:60])
    return parsed


def _completeness(patients: pd.DataFrame, lists: list[dict], known: set[str],
                  report: ImportReport) -> dict[str, pd.Series]:
    """Per patient, whether each list is stated complete (True / False / NA not stated), from the CSV columns or
    the FHIR Lists (a patient is complete for a kind only when every List of that kind says so)."""
    out = {}
    statements = pd.DataFrame(lists, columns=["patient_id", "kind", "complete", "_row", "_file"])
    orphan = ~statements["patient_id"].astype(str).isin(known)
    for index in np.flatnonzero(orphan.to_numpy())[:20]:
        report.error(str(statements["_file"].iloc[index]), "List of a patient the export does not list",
                     row=int(statements["_row"].iloc[index]), column="subject",
                     found=str(statements["patient_id"].iloc[index]))
    ids = patients["patient_id"].astype(str)
    for kind in ("conditions", "medications"):
        column = f"{kind}_complete"
        if column in patients.columns:
            raw = patients[column]
            text = raw.astype("string").str.strip().str.lower()
            stated = text.map(YES_NO)
            bad = text.notna() & (text != "") & stated.isna()
            for index in np.flatnonzero(bad.to_numpy())[:20]:
                report.error(str(patients["_file"].iloc[index]), "not yes or no (empty: not stated)",
                             row=int(patients["_row"].iloc[index]), column=column, found=str(raw.iloc[index])[:60])
            values = stated.astype("boolean")
        else:
            of_kind = statements[statements["kind"] == kind]
            every = of_kind.groupby(of_kind["patient_id"].astype(str))["complete"].all()
            values = ids.map(every).astype("boolean")
        out[column] = values.reset_index(drop=True)
        not_stated = int((~values.fillna(False)).sum())
        if not_stated:
            report.warning("(load)", f"{not_stated:,} of {len(values):,} patients' {kind} lists are not stated complete: "
                           f"a {kind[:-1]} absent from them is unknown, not 'not present'", column=column)
    return out


SEX_WORDS = {"f": "F", "female": "F", "m": "M", "male": "M", "u": "U", "unknown": "U", "other": "U"}


def prepare_prescreen(source: Path, db_path: Path, study_site_id: str, screening_date: dt.date,
                      limits: Limits = Limits(), progress: Progress = _silent,
                      scope: AccessScope | None = None) -> PreparedLoad:
    """Validate and de-identify a site's pre-screening export; the load replaces that site's pool."""
    source = Path(source)
    source_type = "fhir" if source.suffix.lower() == ".json" or any(source.glob("*.json")) else "csv"
    report = ImportReport(f"prescreen-{source_type}")
    load = PreparedLoad(f"prescreen-{source_type}", report, description=f"pre-screening pool of {study_site_id}")
    site = None
    if Path(db_path).exists():
        site = Warehouse.open(db_path).query(AccessScope.full_access(blinded=True),
                                             "SELECT study_site_id, study_id FROM study_sites WHERE study_site_id = $s",
                                             {"s": study_site_id})
    if site is None or site.empty:
        report.error("(load)", "unknown study-site", column="--study-site-id", found=study_site_id)
        return load
    study_id = str(site["study_id"].iloc[0])
    if scope is not None and scope.study_ids is not None and study_id not in scope.study_ids:
        report.error("(load)", "the study-site belongs to a study you may not load", column="--study-site-id",
                     found=study_site_id)
        return load
    progress(f"reading {source.name}")
    paths = [source] if source.is_file() else sorted(source.glob("*.json"))
    raw = _read_fhir(paths, report) if source_type == "fhir" else _read_csv(source, limits, report)
    if report.refused:
        return load
    stated = ["conditions_complete", "medications_complete"] if source_type == "csv" else []  # FHIR: from Lists
    patients = pd.DataFrame(raw["patients"], columns=["patient_id", "sex", "birth_date", "age", *stated, "_row", "_file"])
    if patients.empty:
        report.error(source.name, "no patients in the export")
        return load
    duplicated = patients["patient_id"].duplicated(keep="first")
    for index in np.flatnonzero(duplicated.to_numpy())[:20]:
        report.error(str(patients["_file"].iloc[index]), "patient listed twice", row=int(patients["_row"].iloc[index]),
                     column="patient_id", found=str(patients["patient_id"].iloc[index]))
    missing_id = patients["patient_id"].isna()
    for index in np.flatnonzero(missing_id.to_numpy())[:20]:
        report.error(str(patients["_file"].iloc[index]), "patient without an id", row=int(patients["_row"].iloc[index]),
                     column="patient_id")
    birth = _check_dates(patients, "birth_date", patients["_file"], report)
    stated_age = _check_numbers(patients, "age", report)
    age = age_at(pd.Series(birth), screening_date).astype("Float64").fillna(stated_age.astype("Float64"))
    known = set(patients["patient_id"].astype(str))
    completeness = _completeness(patients, raw.get("lists", []), known, report)
    out = {"prescreen_patients": pd.DataFrame({
        "patient_id": [pseudonym(study_site_id, str(p)) for p in patients["patient_id"]],
        "study_id": study_id, "study_site_id": study_site_id,
        "sex": patients["sex"].astype("string").str.strip().str.lower().map(SEX_WORDS).fillna("U"),
        "age": age.round().astype("Int64"), "screening_date": screening_date, "source": source_type,
        **{column: values.to_numpy() for column, values in completeness.items()},
    })}
    columns = {"conditions": ("code", "code_system", "display", "onset_date", "abatement_date", "clinical_status",
                              "verification_status"),
               "observations": ("code", "code_system", "display", "value", "unit", "value_text", "ref_high",
                                "effective_date"),
               "medications": ("code", "code_system", "display", "start_date", "end_date", "status")}
    defaults = {"conditions": "ICD-10-CM", "observations": "LOINC", "medications": "ATC"}
    for name, wanted in columns.items():
        frame = pd.DataFrame(raw[name], columns=["patient_id", *wanted, "_row", "_file"])
        orphan = ~frame["patient_id"].astype(str).isin(known)
        for index in np.flatnonzero(orphan.to_numpy())[:20]:
            report.error(str(frame["_file"].iloc[index]), "record of a patient the export does not list",
                         row=int(frame["_row"].iloc[index]), column="patient_id",
                         found=str(frame["patient_id"].iloc[index]))
        for column in wanted:
            if column.endswith("_date"):
                frame[column] = _check_dates(frame, column, frame["_file"], report)
            elif column in ("value", "ref_high"):
                frame[column] = _check_numbers(frame, column, report)
        frame["code_system"] = frame["code_system"].fillna(defaults[name]) if "code_system" in frame else defaults[name]
        frame["record_id"] = [f"{pseudonym(study_site_id, str(p))}-{name[0].upper()}{i + 1}"
                              for i, p in enumerate(frame["patient_id"])]
        frame["patient_id"] = [pseudonym(study_site_id, str(p)) for p in frame["patient_id"]]
        out[f"prescreen_{name}"] = frame.drop(columns=["_row", "_file"]).assign(study_id=study_id,
                                                                               study_site_id=study_site_id)
    for name, frame in out.items():
        report.info("(load)", f"{len(frame):,} rows for {name}")
        load.tables[name] = frame
        load.policies[name] = "append"
        load.replace_keys[name] = ("study_site_id", [study_site_id])
    load.provenance = [{"study_id": study_id, "file_name": p.name, "source_type": f"prescreen-{source_type}",
                        "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "row_count": None, "rejected_rows": 0,
                        "notes": f"pre-screening pool of {study_site_id}, screened {screening_date.isoformat()}"}
                       for p in (paths if source_type == "fhir" else sorted(source.glob("*.csv")))]
    return load


PRESCREEN_CONTRACT_PATH = "data/PRESCREEN_CONTRACT.md"


def prescreen_contract_markdown() -> str:
    """The pre-screening import contract (CSV columns and the FHIR resources read), from :data:`CSV_CONTRACT`."""
    lines = [
        "# Pre-screening pool import contract",
        "",
        "Generated from `analytics/importers/prescreen.py` by `python -m analytics contract`. Do not edit by hand.",
        "",
        "Load with `python -m analytics import prescreen SOURCE --study-site-id ID --screening-date YYYY-MM-DD "
        "--db PATH`. The load replaces that study-site's previous pool; nothing is written when any check fails "
        "(the report names the file, the row or FHIR entry, and the column).",
        "",
        "## De-identification",
        "",
        "- Names, addresses, telecoms and other identifiers are never read.",
        "- The site's patient id becomes `P-` and 16 hex digits of SHA-256(study-site id, patient id): the site can "
        "find its patient from its own list; the warehouse holds no id the site uses.",
        "- The date of birth becomes the age in whole years at the screening date and is not kept.",
        "",
        "## FHIR R4 (`.json`: a Bundle, or a folder of them)",
        "",
        "Each resource is validated with `fhir.resources` (R4B models, which read R4 content). Read: `Patient` "
        "(id, gender, birthDate), `Condition` (subject, code, onset, abatement, clinicalStatus, verificationStatus), "
        "`Observation` (subject, code, valueQuantity or valueCodeableConcept, referenceRange.high, effective; "
        "entered-in-error and cancelled skipped), `MedicationStatement` / `MedicationRequest` (subject, "
        "medicationCodeableConcept, effective or validity period, status). Codings are taken in this order of systems: "
        "conditions ICD-10-CM, ICD-10, SNOMED CT; observations LOINC; medications ATC, RxNorm (a medication or condition "
        "without a code the matcher reads is still matched by its name).",
        "",
        "### Complete lists (`List`)",
        "",
        "Whether a patient's conditions and medications are all in the export decides what an absent one means. State "
        "it with one `List` per patient and kind: `subject` the patient; `code` LOINC `11450-4` (problem list) or "
        "`10160-0` (history of medication use), or `problems` / `medications` from "
        "`http://terminology.hl7.org/CodeSystem/list-example-use-codes`.",
        "",
        "| the List | means |",
        "|---|---|",
        "| `status` current, `mode` working or snapshot, with entries | complete: a condition or medication not in the "
        "export is not present |",
        "| the same, empty, `emptyReason` `nilknown` | complete and empty (nil known, a clinician's statement) |",
        "| `mode` changes; or `emptyReason` notasked, withheld, unavailable, notstarted or closed; or empty with no "
        "reason | not complete: an absent one is unknown |",
        "| `status` retired or entered-in-error | says nothing |",
        "| no List of that kind for the patient | not stated: an absent one is unknown |",
        "",
        "A patient is complete for a kind only when every List of that kind says so. A List of a patient the export "
        "does not list refuses the load (file, entry, `subject`); a List of another kind is ignored with a warning. "
        "The report counts the patients whose lists are not stated complete.",
        "",
        "## CSV (a folder with any of these files)",
        "",
        "UTF-8 with a header row; dates `YYYY-MM-DD`; yes/no columns take yes, no, true, false, y, n, 1, 0 (any case; "
        "empty: not stated, which is not complete); column names case-insensitive; other columns are ignored with a "
        "warning.",
        "",
    ]
    for name, columns in CSV_CONTRACT.items():
        lines += [f"### `{name}.csv`", "", "| column | kind | required | meaning |", "|---|---|---|---|"]
        lines += [f"| `{c.name}` | {c.kind} | {'yes' if c.required else ''} | {c.description} |" for c in columns]
        lines.append("")
    return "\n".join(lines)
