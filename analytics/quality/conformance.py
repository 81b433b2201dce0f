"""SDTM conformance of a study's datasets, by public CDISC/Pinnacle 21 rule ID.

The CDISC CORE engine (``cdisc-rules-engine``) cannot run here: every release since 0.10 requires
Python 3.12 exactly (the workbench runs 3.11; 0.9 needs 3.10), its wheel ships no rules, and the rules
come from the CDISC Library API (an account key and network access) or as pickled caches of CDISC
Library content the project may not redistribute. So this module implements a subset of the public
rules under their Pinnacle 21 IDs, each one declarative :class:`ConformanceRule`:

* SD0002 a variable SDTMIG marks Required is null (:data:`REQUIRED`);
* SD0003 a --DTC value is not ISO 8601 (partial dates and times allowed, as SDTMIG allows);
* SD0005 --SEQ repeats within a subject;
* SD0064 a record's subject is not in DM;
* SD0065 a record's VISITNUM is not among the subject's visits in SV;
* CT2001 / CT2002 a value outside the define.xml codelist of its variable (non-extensible CDISC
  codelists, :data:`NON_EXTENSIBLE`, give CT2001 errors; other codelists CT2002 warnings);
* TV-SV (no public rule ID verified offline): a planned SV visit whose VISITNUM is not in TV.

The rules read the raw datasets (the warehouse keeps only what it maps), so they run when a study is
imported (:func:`check_domains`; the issues are stored in ``main.sdtm_conformance``) and, without
importing, from ``python -m analytics quality conformance FOLDER``. Values of treatment-revealing
variables and datasets (arms, exposure) are never kept in an issue.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.importers.blinding import ARM_REVEALING_DOMAINS, ARM_VARIABLES
from analytics.importers.keys import normalize_number_text
from analytics.importers.report import FILE, ROW
from analytics.importers.sdtm_datasets import TRIAL_DESIGN, Domain

ISSUE_COLUMNS = ("rule_id", "severity", "domain", "variable", "file_name", "row_number", "subject_id",
                 "record_key", "value", "message")
HIDDEN_VALUE = "(not shown: reveals treatment)"
MAX_VALUE_CHARS = 200
# SDTMIG "Req" variables of the domains the workbench maps (3.1.2 to 3.4); --SEQ and the identifiers
# STUDYID, DOMAIN, USUBJID are Required in every subject-level domain.
REQUIRED: dict[str, tuple[str, ...]] = {
    "DM": ("STUDYID", "DOMAIN", "USUBJID", "SUBJID", "SITEID", "SEX", "ARMCD", "ARM", "COUNTRY"),
    "AE": ("AETERM", "AEDECOD"),
    "CM": ("CMTRT",),
    "MH": ("MHTERM",),
    "DS": ("DSTERM", "DSDECOD"),
    "DV": ("DVTERM",),
    "EX": ("EXTRT",),
    "LB": ("LBTESTCD", "LBTEST"),
    "VS": ("VSTESTCD", "VSTEST"),
    "SV": ("VISITNUM",),
    "SE": ("ETCD",),
    "TV": ("STUDYID", "DOMAIN", "VISITNUM"),
    "TA": ("STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD"),
    "TE": ("STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL"),
    "TS": ("STUDYID", "DOMAIN", "TSSEQ", "TSPARMCD", "TSPARM"),
    "TI": ("STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT"),
}
SUBJECT_IDENTIFIERS = ("STUDYID", "DOMAIN", "USUBJID")
SUPP_REQUIRED = ("STUDYID", "RDOMAIN", "USUBJID", "QNAM", "QLABEL", "QVAL")
# CDISC codelists that are non-extensible (values outside them are errors), by the names define.xml files
# commonly give them.
NON_EXTENSIBLE = frozenset({"NY", "NYNA", "SEX", "ETHNIC", "RACE", "AESEV", "SEV", "OUT", "ACN", "AGEU", "COUNTRY",
                            "NRIND", "LBNRIND", "DSCAT"})
# ISO 8601 as SDTMIG uses it: a date (parts may be cut from the right, or left out as "-"), an optional
# time, an optional UTC offset, or an interval of two such values.
_ISO_PART = (r"(?:\d{4}|-)(?:-(?:0[1-9]|1[0-2]|-)(?:-(?:0[1-9]|[12]\d|3[01]|-))?)?"
             r"(?:T(?:[01]\d|2[0-3]|-)(?::(?:[0-5]\d|-)(?::[0-5]\d(?:\.\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
ISO_8601 = re.compile(rf"^{_ISO_PART}(?:/{_ISO_PART})?$")


@dataclass
class StudyFiles:
    """What the rules read: the domains and the define.xml codelists (variable -> codelist, allowed values)."""

    domains: dict[str, Domain]
    codelists: dict[tuple[str, str], tuple[str, frozenset[str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ConformanceRule:
    """One public conformance rule: its ID, severity, wording and the function that finds its issues."""

    id: str
    severity: str
    message: str
    description: str
    find: Callable[[StudyFiles], pd.DataFrame]


def _blank(values: pd.Series) -> pd.Series:
    """Null or only spaces."""
    return values.isna() | values.astype("string").str.strip().eq("").fillna(True)


def _issues(domain: Domain, mask: np.ndarray | pd.Series, variable: str, values: pd.Series | None,
            key: pd.Series | None = None) -> pd.DataFrame:
    """Issue rows for the records of ``domain`` selected by ``mask``."""
    frame = domain.frame
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return pd.DataFrame(columns=["domain", "variable", "file_name", "row_number", "subject_id", "record_key",
                                     "value"])
    picked = frame.loc[mask]
    subject = picked["USUBJID"].astype("string") if "USUBJID" in picked.columns else pd.Series(pd.NA, index=picked.index)
    if key is None:
        seq = f"{domain.code}SEQ"
        key = ("USUBJID=" + subject.fillna("")) if "USUBJID" in picked.columns else pd.Series("", index=picked.index)
        if seq in picked.columns:
            key = key + ", " + seq + "=" + pd.to_numeric(picked[seq], errors="coerce").astype("Int64").astype("string")
    else:
        key = key[mask]
    shown = values[mask].astype("string") if values is not None else pd.Series(pd.NA, index=picked.index)
    revealing = domain.code in ARM_REVEALING_DOMAINS or domain.code[4:] in ARM_REVEALING_DOMAINS \
        or variable in ARM_VARIABLES
    if revealing:
        shown = shown.where(shown.isna(), HIDDEN_VALUE)
    return pd.DataFrame({
        "domain": domain.code, "variable": variable, "file_name": picked[FILE].astype("string"),
        "row_number": pd.to_numeric(picked[ROW], errors="coerce").astype("Int64"), "subject_id": subject,
        "record_key": key.astype("string"), "value": shown.str.slice(0, MAX_VALUE_CHARS),
    })


def _subject_level(domain: Domain) -> bool:
    return domain.code not in TRIAL_DESIGN and "USUBJID" in domain.frame.columns


def required_null(files: StudyFiles) -> pd.DataFrame:
    parts = []
    for code, domain in files.domains.items():
        if domain.kind == "supp":
            wanted = SUPP_REQUIRED
        else:
            wanted = REQUIRED.get(code, ())
            if _subject_level(domain) and domain.kind in ("mapped", "unused"):
                wanted = SUBJECT_IDENTIFIERS + ((f"{code}SEQ",) if code != "DM" else ()) + wanted
        for variable in dict.fromkeys(wanted):
            if variable in domain.frame.columns:
                parts.append(_issues(domain, _blank(domain.frame[variable]), variable, None))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def invalid_iso8601(files: StudyFiles) -> pd.DataFrame:
    parts = []
    for domain in files.domains.values():
        for variable in [c for c in domain.frame.columns if c.endswith("DTC")]:
            values = domain.frame[variable].astype("string").str.strip()
            bad = values.notna() & values.ne("") & ~values.str.match(ISO_8601).fillna(False)
            complete = values.str.match(r"^\d{4}-\d{2}-\d{2}").fillna(False) & ~bad
            if complete.any():  # a well-formed complete date must also be a real day
                real = pd.to_datetime(values.where(complete).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
                bad |= complete & real.isna()
            parts.append(_issues(domain, bad, variable, values))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def duplicate_seq(files: StudyFiles) -> pd.DataFrame:
    parts = []
    for code, domain in files.domains.items():
        seq = f"{code}SEQ"
        frame = domain.frame
        if seq not in frame.columns or "USUBJID" not in frame.columns:
            continue
        numbers = pd.to_numeric(frame[seq], errors="coerce")
        repeated = frame["USUBJID"].astype("string").notna() & numbers.notna() & pd.DataFrame(
            {"s": frame["USUBJID"].astype("string"), "n": numbers}).duplicated(keep="first")
        parts.append(_issues(domain, repeated, seq, normalize_number_text(numbers)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def subject_not_in_dm(files: StudyFiles) -> pd.DataFrame:
    if "DM" not in files.domains:
        return pd.DataFrame()
    known = set(files.domains["DM"].frame["USUBJID"].dropna().astype(str))
    parts = []
    for code, domain in files.domains.items():
        if code == "DM" or not _subject_level(domain):
            continue
        subject = domain.frame["USUBJID"].astype("string")
        unknown = subject.notna() & ~subject.isin(known)
        parts.append(_issues(domain, unknown, "USUBJID", subject))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def visit_not_in_sv(files: StudyFiles) -> pd.DataFrame:
    if "SV" not in files.domains:
        return pd.DataFrame()
    sv = files.domains["SV"].frame
    seen = set(zip(sv["USUBJID"].astype(str), pd.to_numeric(sv["VISITNUM"], errors="coerce").round(6)))
    parts = []
    for code, domain in files.domains.items():
        frame = domain.frame
        if code in ("SV", "DM") or "VISITNUM" not in frame.columns or not _subject_level(domain):
            continue
        number = pd.to_numeric(frame["VISITNUM"], errors="coerce").round(6)
        pairs = list(zip(frame["USUBJID"].astype(str), number))
        missing = np.array([n == n and p not in seen for p, n in zip(pairs, number)], dtype=bool)
        parts.append(_issues(domain, missing, "VISITNUM", normalize_number_text(number)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def planned_visit_not_in_tv(files: StudyFiles) -> pd.DataFrame:
    if "SV" not in files.domains or "TV" not in files.domains:
        return pd.DataFrame()
    planned = set(pd.to_numeric(files.domains["TV"].frame["VISITNUM"], errors="coerce").round(6).dropna())
    sv = files.domains["SV"]
    number = pd.to_numeric(sv.frame["VISITNUM"], errors="coerce").round(6)
    unplanned = pd.Series(False, index=sv.frame.index)
    if "SVUPDES" in sv.frame.columns:  # SDTMIG: a description of an unplanned visit marks it unplanned
        unplanned |= ~_blank(sv.frame["SVUPDES"])
    if "SVPRESP" in sv.frame.columns:
        unplanned |= _blank(sv.frame["SVPRESP"])
    if "VISIT" in sv.frame.columns:  # before SVPRESP (SDTMIG 3.1.2) unplanned visits were named so
        unplanned |= sv.frame["VISIT"].astype("string").str.upper().str.contains("UNSCHED").fillna(False)
    missing = number.notna() & ~number.isin(planned) & ~unplanned
    return _issues(sv, missing, "VISITNUM", normalize_number_text(number))


def outside_codelist(files: StudyFiles, extensible: bool) -> pd.DataFrame:
    parts = []
    for (code, variable), (codelist, allowed) in files.codelists.items():
        if (codelist.upper() not in NON_EXTENSIBLE) != extensible:
            continue
        domain = files.domains.get(code)
        if domain is None or variable not in domain.frame.columns or not allowed:
            continue
        values = normalize_number_text(domain.frame[variable])  # 1.0 in the data is "1" in the codelist
        outside = values.notna() & values.ne("") & ~values.isin(allowed)
        found = _issues(domain, outside, variable, values)
        found["codelist"] = codelist
        parts.append(found)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


RULES: tuple[ConformanceRule, ...] = (
    ConformanceRule("SD0002", "Error", "{variable} is null, but SDTMIG marks it Required",
                    "NULL value in variable marked as Required.", required_null),
    ConformanceRule("SD0003", "Error", "{variable} value '{value}' is not a valid ISO 8601 date/time",
                    "Invalid ISO 8601 value for variable.", invalid_iso8601),
    ConformanceRule("SD0005", "Error", "{variable} {value} repeats within the subject",
                    "Duplicate value for --SEQ variable.", duplicate_seq),
    ConformanceRule("SD0064", "Error", "subject {value} is not in DM", "Subject is not present in DM domain.",
                    subject_not_in_dm),
    ConformanceRule("SD0065", "Warning", "VISITNUM {value} is not a visit of this subject in SV",
                    "USUBJID/VISIT/VISITNUM values do not match SV domain data.", visit_not_in_sv),
    ConformanceRule("TV-SV", "Warning", "planned VISITNUM {value} is not in the trial visits (TV)",
                    "A planned visit in SV must be defined in TV (no public rule ID verified).",
                    planned_visit_not_in_tv),
    ConformanceRule("CT2001", "Error", "{variable} value '{value}' is not in the non-extensible codelist {codelist}",
                    "Variable value not found in non-extensible codelist (define.xml).",
                    lambda files: outside_codelist(files, extensible=False)),
    ConformanceRule("CT2002", "Warning", "{variable} value '{value}' is not in the codelist {codelist}",
                    "Variable value not found in extensible codelist (define.xml).",
                    lambda files: outside_codelist(files, extensible=True)),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}


# --- define.xml ----------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_define_codelists(path: Path) -> dict[tuple[str, str], tuple[str, frozenset[str]]]:
    """(domain, variable) -> (codelist name, coded values) from a define.xml (1.0 or 2.x).

    Variables are tied to datasets by ``ItemGroupDef``/``ItemRef``; codelists by ``ItemDef``/``CodeListRef``.
    Value-level metadata (``ValueListDef``) is not applied.
    """
    root = ElementTree.parse(path).getroot()
    codelists: dict[str, tuple[str, frozenset[str]]] = {}
    items: dict[str, tuple[str, str | None]] = {}
    groups: list[tuple[str, list[str]]] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "CodeList":
            values = [child.get("CodedValue") for child in element.iter()
                      if _local(child.tag) in ("CodeListItem", "EnumeratedItem") and child.get("CodedValue") is not None]
            codelists[element.get("OID", "")] = (element.get("Name") or element.get("OID", ""),
                                                 frozenset(v.strip() for v in values))
        elif tag == "ItemDef":
            ref = next((c.get("CodeListOID") for c in element if _local(c.tag) == "CodeListRef"), None)
            items[element.get("OID", "")] = (element.get("Name", ""), ref)
        elif tag == "ItemGroupDef":
            domain = (element.get("Domain") or element.get("Name") or "").upper()
            groups.append((domain, [c.get("ItemOID", "") for c in element if _local(c.tag) == "ItemRef"]))
    out: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
    for domain, refs in groups:
        for oid in refs:
            name, codelist = items.get(oid, ("", None))
            if codelist in codelists and name:
                out[(domain, name.upper())] = codelists[codelist]
    return out


def find_define(folder: Path) -> Path | None:
    """The folder's define.xml, if any (case-insensitive name)."""
    for path in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
        if path.name.lower() == "define.xml":
            return path
    return None


def check_domains(domains: dict[str, Domain], define: Path | None = None) -> pd.DataFrame:
    """Every rule's issues over the domains (and define.xml's codelists, when given), with their message."""
    files = StudyFiles(domains, read_define_codelists(define) if define else {})
    parts = []
    for rule in RULES:
        found = rule.find(files)
        if found is None or found.empty:
            continue
        found = found.copy()
        found["rule_id"], found["severity"] = rule.id, rule.severity
        codelist = found["codelist"] if "codelist" in found.columns else pd.Series("", index=found.index)
        found["message"] = [rule.message.format(variable=v, value="" if pd.isna(x) else x, codelist=c)
                            for v, x, c in zip(found["variable"], found["value"], codelist.fillna(""))]
        found["message"] = found["domain"] + ": " + found["message"]
        parts.append(found[list(ISSUE_COLUMNS)])
    if not parts:
        return pd.DataFrame(columns=list(ISSUE_COLUMNS))
    return pd.concat(parts, ignore_index=True)


def summary(issues: pd.DataFrame) -> pd.DataFrame:
    """Issues per rule and domain: count, subjects, an example message."""
    if issues.empty:
        return pd.DataFrame(columns=["rule_id", "severity", "domain", "variable", "issues", "subjects", "example"])
    grouped = issues.groupby(["rule_id", "severity", "domain", "variable"], dropna=False)
    return grouped.agg(issues=("message", "size"), subjects=("subject_id", "nunique"),
                       example=("message", "first")).reset_index().sort_values(["rule_id", "domain", "variable"],
                                                                                ignore_index=True)
