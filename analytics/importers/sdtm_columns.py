"""Reading SDTM variables into warehouse columns: text, numbers, dates and visit numbers, with findings.

Every helper takes a domain frame carrying the source location columns and records what it could
not read (with file, row and column) in the report; a variable a dataset does not have is an
all-missing column ("not collected"), never an error here (key variables are checked on reading).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analytics.importers.dates import parse_iso_dates
from analytics.importers.report import FILE, INFO, ROW, WARNING, ImportReport

VISITNUM_DECIMALS = 6  # enough for 8.1 / 3.5 style numbering, drops 9.299999999999999 noise


@dataclass
class StudyFacts:
    """Facts the domain mappers share."""

    study_id: str
    study_code: str  # STUDYID as in the files
    subjects: pd.DataFrame  # indexed by USUBJID: study_site_id, reference start, first dose, consent, status ...
    visit_ids: pd.Series  # (USUBJID, visit_number) -> visit_id


def col(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column, or an all-missing text column when the dataset does not have it."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def text(frame: pd.DataFrame, name: str) -> pd.Series:
    return col(frame, name).astype("string")


def number(frame: pd.DataFrame, name: str, report: ImportReport) -> pd.Series:
    """A numeric column; text that is not a number becomes missing with a warning naming the row."""
    raw = col(frame, name)
    numbers = pd.to_numeric(raw, errors="coerce").astype("Float64")
    report.add_rows(WARNING, frame, raw.notna() & numbers.isna(), "not a number; left empty", column=name,
                    expected="a number", found=raw)
    return numbers


def dates(frame: pd.DataFrame, name: str, report: ImportReport, *, note_partial: bool = True) -> pd.DataFrame:
    """Parsed ISO 8601 dates of a column; invalid text is warned about with its row.

    Partial dates (year or month only) keep their text and precision and get no day; with
    ``note_partial`` each is listed as a note, so none leaves a date column unnoticed.
    """
    values = text(frame, name)
    parsed = parse_iso_dates(values)
    report.add_rows(WARNING, frame, parsed["invalid"], "not an ISO 8601 date; left empty", column=name,
                    expected="YYYY, YYYY-MM or YYYY-MM-DD[Thh:mm]", found=values)
    if note_partial:
        partial = parsed["precision"].isin(["year", "month"]).fillna(False)
        report.add_rows(INFO, frame, partial, "partial date: no day recorded, so the date is left empty "
                        "(the text and its precision are kept)", column=name, found=values)
    parsed["text"] = values.where(~parsed["invalid"])
    return parsed


def visit_numbers(frame: pd.DataFrame, report: ImportReport) -> pd.Series:
    """VISITNUM rounded to drop binary float noise (9.299999999999999 is visit 9.3)."""
    raw = number(frame, "VISITNUM", report)
    rounded = raw.round(VISITNUM_DECIMALS)
    noisy = (rounded != raw).fillna(False)
    if noisy.any():
        example = raw[noisy].iloc[0]
        report.info(str(frame[FILE].iloc[0]), f"VISITNUM float noise tolerated in {int(noisy.sum())} row(s), "
                    f"e.g. {float(example)!r} read as {round(float(example), VISITNUM_DECIMALS)!r}", column="VISITNUM")
    return rounded


def bool_yn(values: pd.Series) -> pd.Series:
    upper = values.astype("string").str.upper()
    return upper.map({"Y": True, "N": False}, na_action="ignore").astype("boolean")


def of_subjects(frame: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """The rows of subjects DM lists, with their study-site (study membership was checked on reading)."""
    kept = frame.loc[frame["USUBJID"].isin(subjects.index)].copy()
    kept["study_site_id"] = subjects.loc[kept["USUBJID"], "study_site_id"].to_numpy()
    return kept


def located(frame: pd.DataFrame, columns: dict[str, object]) -> pd.DataFrame:
    """A warehouse frame from mapped columns, keeping the source location columns."""
    out = pd.DataFrame(columns, index=frame.index)
    out[FILE] = frame[FILE]
    out[ROW] = frame[ROW]
    return out

