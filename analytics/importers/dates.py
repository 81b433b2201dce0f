"""ISO 8601 dates as clinical data carry them: complete, partial ("2012", "2013-06") or broken.

A partial date keeps its precision and is never completed with an invented day: the DATE column
gets a value only when the day is known, the text column keeps what was reported, and the
precision column says how much of it is known.
"""

from __future__ import annotations

import pandas as pd

# YYYY, YYYY-MM, YYYY-MM-DD, optionally followed by a time; SDTM also allows "2003---15" (month
# missing, day known), which is still only year-precise for our purposes.
_ISO = r"^(?P<year>\d{4})(?:-(?P<month>\d{2}|-)(?:-(?P<day>\d{2}|-))?)?(?:T[0-9:.+\-Z]*)?$"


def parse_iso_dates(text: pd.Series) -> pd.DataFrame:
    """Parse ISO 8601 (possibly partial) date strings, vectorized.

    Returns a frame aligned with ``text`` with columns ``date`` (datetime64, only when the day is
    known), ``precision`` ("year", "month", "day" or missing) and ``invalid`` (True where text is
    present but is not a valid ISO 8601 date, e.g. "2013-13-01" or "UNK").
    """
    values = text.astype("string").str.strip()
    present = values.notna() & (values != "")
    parts = values.str.extract(_ISO)
    year = pd.to_numeric(parts["year"], errors="coerce").astype("float64")
    month = pd.to_numeric(parts["month"].where(parts["month"] != "-"), errors="coerce").astype("float64")
    day = pd.to_numeric(parts["day"].where(parts["day"] != "-"), errors="coerce").astype("float64")
    precision = pd.Series(pd.NA, index=text.index, dtype="string")
    precision = precision.mask(year.notna(), "year")
    precision = precision.mask(year.notna() & month.notna(), "month")
    precision = precision.mask(year.notna() & month.notna() & day.notna(), "day")
    full = pd.to_datetime(values.str.slice(0, 10).where(precision == "day"), format="%Y-%m-%d", errors="coerce")
    month_valid = month.isna() | month.between(1, 12)
    invalid = present & (year.isna() | ~month_valid | ((precision == "day") & full.isna()))
    precision = precision.mask(invalid)
    return pd.DataFrame(
        {"date": full.where(~invalid), "precision": precision, "invalid": invalid.fillna(False).astype(bool)},
        index=text.index,
    )


def month_or_day(text: pd.Series) -> pd.DataFrame:
    """ClinicalTrials.gov dates: ``YYYY-MM`` (first day of the month, precision "month") or a full day.

    Returns ``date``, ``precision`` and ``invalid`` like :func:`parse_iso_dates`; a year alone is
    reported as invalid because the warehouse records month or day precision only.
    """
    parsed = parse_iso_dates(text)
    values = text.astype("string").str.strip()
    month_only = parsed["precision"] == "month"
    first_of_month = pd.to_datetime(values.where(month_only) + "-01", errors="coerce", format="%Y-%m-%d")
    date = parsed["date"].where(~month_only, first_of_month)
    year_only = parsed["precision"] == "year"
    return pd.DataFrame(
        {
            "date": date.where(~year_only),
            "precision": parsed["precision"].mask(year_only),
            "invalid": parsed["invalid"] | year_only.fillna(False).astype(bool),
        },
        index=text.index,
    )
