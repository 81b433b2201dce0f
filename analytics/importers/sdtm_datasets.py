"""Reading an SDTM folder into domains: naming, split datasets, keys and study membership.

SDTMIG lets a sponsor split a large domain into several files named by the dataset (``LBCH``,
``LBHE``, ``LBUR`` for LB; ``QSCG`` for part of QS) whose records carry the domain in ``DOMAIN``;
their supplemental qualifiers are split the same way (``SUPPLBCH`` with ``RDOMAIN = LB``). The
parts are combined here by their ``DOMAIN`` (and ``RDOMAIN``) value, each record keeping its own
file and row, and ``--SEQ`` must be unique per subject across the parts.

Records must belong to the study being loaded: a ``STUDYID`` other than DM's, or a ``USUBJID``
that DM does not list, refuses the load naming the file and the count, unless the user chose to
skip such rows, in which case they are left out and counted as rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.importers.keys import normalize_number_text
from analytics.importers.report import ERROR, FILE, ROW, WARNING, ImportReport
from analytics.importers.sources import Dataset, Limits, SourceFile, list_folder, read_csv, read_dataset_json, \
    read_xport

DATA_EXTENSIONS = {"xpt", "csv", "json"}
MAPPED_DOMAINS = ("DM", "SV", "AE", "DS", "DV", "EX", "LB", "VS", "TS", "TA", "TV")
# Standard SDTM domains this importer recognises but does not load (read for provenance only).
UNUSED_DOMAINS = frozenset(
    "AG BE BS CE CM CO CP CV DA DD EC EG FA FT GF HO IE IS MB MH MI MK ML MO MS NV OE PC PE PP PR QS "
    "RE RELREC RP RS SC SE SM SR SS SU TD TE TI TM TR TU UR".split()
)
# One record per subject or per design element: SDTMIG does not allow these to be split.
UNSPLITTABLE = frozenset({"DM", "TA", "TD", "TE", "TI", "TM", "TS", "TV", "RELREC"})
TRIAL_DESIGN = frozenset({"TA", "TD", "TE", "TI", "TM", "TS", "TV"})
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
# Natural record keys: a duplicate refuses the load (it would make ids and joins ambiguous). Other
# subject-level domains are keyed by (USUBJID, --SEQ) when they carry --SEQ.
RECORD_KEYS: dict[str, tuple[str, ...]] = {
    "DM": ("USUBJID",),
    "SV": ("USUBJID", "VISITNUM", "SVSTDTC"),  # real SV repeats unscheduled VISITNUMs on other dates
}
FOREIGN_ROWS_HINT = "remove them, or load with --skip-foreign-rows to leave them out (they are counted)"


def domain_kind(code: str) -> str:
    """'mapped', 'supp', 'unused', 'custom' or 'unknown' for an SDTM domain or dataset code."""
    code = code.upper()
    if code in MAPPED_DOMAINS:
        return "mapped"
    if code.startswith("SUPP") and 6 <= len(code) <= 8:
        return "supp"
    if code in UNUSED_DOMAINS:
        return "unused"
    if re.fullmatch(r"[XYZ][A-Z0-9]", code):
        return "custom"
    return "unknown"


@dataclass
class Domain:
    """One SDTM domain: its records from one file or from the parts of a split dataset."""

    code: str  # DM, LB, SUPPLB ...
    parts: list[Dataset] = field(default_factory=list)
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def sources(self) -> list[SourceFile]:
        return [p.source for p in self.parts]

    @property
    def file(self) -> str:
        """The file name, or the part names joined by '+' for a split dataset (for messages)."""
        return "+".join(p.source.name for p in self.parts)

    @property
    def kind(self) -> str:
        return domain_kind(self.code)

    def files(self) -> list[str]:
        return [p.source.name for p in self.parts]


def _read(source: SourceFile, report: ImportReport) -> Dataset | None:
    reader = {"xpt": read_xport, "csv": read_csv, "json": read_dataset_json}[source.extension]
    return reader(source, report)


def _single(frame: pd.DataFrame, column: str) -> str | None:
    """The one value of a column (upper case), or None when absent or not unique."""
    if column not in frame.columns:
        return None
    values = frame[column].dropna().astype(str).str.strip().str.upper().unique()
    return str(values[0]) if len(values) == 1 else None


def _domain_of(dataset: Dataset, report: ImportReport) -> str | None:
    """The domain a dataset holds: from its name, its DOMAIN/RDOMAIN values, or both for a split part."""
    name = dataset.source.name
    stem = dataset.source.path.stem.upper()
    member = (dataset.name or "").upper() or None  # XPORT member / Dataset-JSON name
    frame = dataset.frame
    if member and member != stem and domain_kind(stem) != "unknown":
        report.error(name, "file name and content disagree about the domain",
                     expected=f"dataset {stem}", found=f"dataset {member}")
        return None
    if domain_kind(stem) == "supp":
        rdomain = _single(frame, "RDOMAIN")
        parent = stem[4:]
        if rdomain and parent != rdomain and parent.startswith(rdomain):
            report.info(name, f"supplemental qualifiers of split dataset {parent}; combined with those of {rdomain}")
            return "SUPP" + rdomain
        return stem
    declared = _single(frame, "DOMAIN")
    if domain_kind(stem) != "unknown":
        if declared and declared != stem:
            report.error(name, "file name and content disagree about the domain",
                         expected=f"dataset {stem}", found=f"DOMAIN {declared}")
            return None
        return stem
    code = declared or member
    if code and domain_kind(code) not in ("unknown", "supp"):
        if stem.startswith(code) and len(stem) <= 8:
            report.info(name, f"split dataset {stem}: part of domain {code}; combined with its other parts")
        else:
            report.info(name, f"file name is not a domain code; the file declares domain {code}")
        return code
    report.error(name, "unknown SDTM domain",
                 expected="a standard SDTM domain (DM, SV, AE, DS, DV, EX, LB, VS, TS, TA, TV, SUPP--, ...), "
                          "a split dataset such as LBCH with DOMAIN = LB, or a custom X-/Y-/Z- domain",
                 found=code or stem)
    return None


def read_folder(folder: Path, limits: Limits, report: ImportReport, progress: Callable[[str], None]
                ) -> dict[str, Domain]:
    """Read every dataset in ``folder`` into domains (split parts combined), recording problems in ``report``."""
    domains: dict[str, Domain] = {}
    names: dict[str, str] = {}  # dataset name -> file, to refuse dm.xpt next to dm.csv
    for source in list_folder(Path(folder), DATA_EXTENSIONS, limits, report):
        progress(f"reading {source.name} ({source.size / 1048576:,.1f} MB)")
        dataset = _read(source, report)
        if dataset is None:
            continue
        dataset.frame.columns = [str(c).upper() for c in dataset.frame.columns]
        code = _domain_of(dataset, report)
        if code is None:
            continue
        stem = source.path.stem.upper()
        if stem in names:
            report.error(source.name, "dataset supplied twice", expected="one file per dataset",
                         found=f"{stem} also in {names[stem]}")
            continue
        names[stem] = source.name
        frame = dataset.frame
        frame[FILE] = source.name
        frame[ROW] = np.arange(1, len(frame) + 1)
        domain = domains.setdefault(code, Domain(code))
        if domain.parts and code in UNSPLITTABLE:
            report.error(source.name, "this domain may not be split across files",
                         expected=f"one {code} dataset", found=f"{code} also in {domain.file}")
            continue
        domain.parts.append(dataset)
    for domain in domains.values():
        frames = [p.frame for p in domain.parts]
        domain.frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return domains


def check_columns(domains: dict[str, Domain], report: ImportReport) -> None:
    """Key columns each domain needs; a DM with no records; a folder without DM."""
    for code, domain in domains.items():
        needed = KEY_COLUMNS.get("SUPP" if domain.kind == "supp" else code, ())
        for part in domain.parts:
            present = set(part.frame.columns)
            for column in needed:
                if column not in present:
                    report.error(part.source.name, "key column is missing", column=column,
                                 expected=f"{code} with column {column}",
                                 found="columns " + ", ".join(c for c in part.frame.columns if not c.startswith("_")))
        if len(domain.frame) == 0 and code == "DM":
            report.error(domain.file, "DM has no records", expected="one record per subject")
    if "DM" not in domains:
        report.error("(folder)", "no DM dataset", expected="dm.xpt, dm.csv or dm.json (subjects, sites and the "
                                                           "study come from DM)")


def record_key(code: str, frame: pd.DataFrame) -> tuple[str, ...] | None:
    """The columns that identify a record of ``code`` (None when the domain has no record key)."""
    if code in RECORD_KEYS:
        key = RECORD_KEYS[code]
    elif domain_kind(code) in ("supp", "unknown") or code in TRIAL_DESIGN:
        return None
    else:
        key = ("USUBJID", f"{code}SEQ")
    return key if set(key) <= set(frame.columns) else None


def check_record_keys(domains: dict[str, Domain], report: ImportReport) -> None:
    """Refuse repeated record keys (across the parts of a split dataset too), naming both rows."""
    for code, domain in domains.items():
        frame = domain.frame
        key = record_key(code, frame)
        if key is None or not len(frame):
            continue
        normalized = pd.DataFrame({k: normalize_number_text(frame[k]) for k in key})
        complete = normalized.notna().all(axis=1)
        repeated = normalized.duplicated(keep="first") & complete
        if not repeated.any():
            continue
        order = pd.Series(np.arange(len(frame)), index=frame.index)
        first = order.groupby([normalized[k] for k in key], dropna=False).transform("min")
        positions = first.to_numpy()
        where = "row " + pd.Series(frame[ROW].to_numpy()[positions], index=frame.index).astype("string")
        if len(domain.parts) > 1:  # a split dataset: say which part the first record is in
            where = pd.Series(frame[FILE].to_numpy()[positions], index=frame.index).astype("string") + ", " + where
        value = None
        for k in key:
            part = f"{k}=" + normalized[k].astype("string")
            value = part if value is None else value + ", " + part
        report.add_rows(ERROR, frame, repeated, "duplicate record key", column=", ".join(key),
                        expected="a unique key (first seen on " + where + ")", found=value)


def check_membership(domains: dict[str, Domain], study_code: str, subjects: pd.Index, report: ImportReport,
                     skip: bool) -> None:
    """Rows of another study, or of subjects DM does not list: refused per file, or skipped and counted.

    With ``skip`` the rows are removed from their domain's frame and counted as rejected.
    """
    for code, domain in domains.items():
        if code == "DM":
            continue
        frame = domain.frame
        if not len(frame):
            continue
        study = frame["STUDYID"].astype("string").str.strip() if "STUDYID" in frame.columns else None
        foreign = (study.notna() & (study != study_code)).to_numpy(dtype=bool) if study is not None else \
            np.zeros(len(frame), dtype=bool)
        unknown = np.zeros(len(frame), dtype=bool)
        if "USUBJID" in frame.columns and code not in TRIAL_DESIGN:
            subject = frame["USUBJID"].astype("string")
            must_have = domain.kind in ("mapped", "supp")  # keyed by subject; elsewhere USUBJID may be blank
            missing = subject.isna() if must_have else pd.Series(False, index=frame.index)
            unknown = ((subject.notna() & ~subject.isin(subjects)) | missing).to_numpy(dtype=bool) & ~foreign
        checks = (
            (foreign, "STUDYID", "record(s) of another study", f"STUDYID {study_code} (the study being loaded)",
             study),
            (unknown, "USUBJID", "record(s) of a subject not in DM", "a USUBJID listed in DM",
             frame["USUBJID"] if "USUBJID" in frame.columns else None),
        )
        for mask, column, what, expected, values in checks:
            if not mask.any():
                continue
            if skip:
                report.add_rows(WARNING, frame, mask, f"{code} {what}; row left out (--skip-foreign-rows)",
                                column=column, expected=expected, found=values, rejected=True)
                continue
            files = frame[FILE].to_numpy()
            for file in pd.unique(files[mask]):
                in_file = mask & (files == file)
                shown = pd.Series(values.to_numpy()[in_file]).dropna().astype(str).value_counts()
                found = ", ".join(f"{v} ({n:,} row{'' if n == 1 else 's'})" for v, n in shown.head(5).items())
                report.error(str(file), f"{int(in_file.sum()):,} of {int((files == file).sum()):,} {what}; "
                             + FOREIGN_ROWS_HINT, column=column, expected=expected,
                             found=found + (" ..." if len(shown) > 5 else ""))
        if skip and (foreign | unknown).any():
            domain.frame = frame.loc[~(foreign | unknown)].copy()
