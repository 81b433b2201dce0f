"""Dates as clinical and registry data carry them: complete, partial ("2012", "2013-06"), worded or broken.

ISO 8601 (SDTM): a partial date keeps its precision; the DATE column gets a value only when the
day is known, unless a documented imputation is applied (:func:`impute_start_dates`, used for AE
onset), in which case the original text and an imputation flag are kept beside it.

ClinicalTrials.gov (:func:`registry_dates`): ``YYYY-MM-DD`` and ``YYYY-MM`` (current exports and
the API) and the classic website's ``October 2014`` and ``June 7, 2018``; month precision is kept
as such (the first of the month, precision "month").
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# YYYY, YYYY-MM, YYYY-MM-DD, optionally followed by a time; SDTM also allows "2003---15" (month
# missing, day known), which is still only year-precise for our purposes.
_ISO = r"^(?P<year>\d{4})(?:-(?P<month>\d{2}|-)(?:-(?P<day>\d{2}|-))?)?(?:T[0-9:.+\-Z]*)?$"
# Worded dates of the classic ClinicalTrials.gov website, with the precision each one gives.
REGISTRY_FORMATS: tuple[tuple[str, str], ...] = (
    ("%B %Y", "month"),  # October 2014
    ("%B %d, %Y", "day"),  # June 7, 2018
    ("%b %Y", "month"),  # Oct 2014
    ("%b %d, %Y", "day"),  # Jun 7, 2018
)


def parse_iso_dates(text: pd.Series) -> pd.DataFrame:
    """Parse ISO 8601 (possibly partial) date strings, vectorized.

    Returns a frame aligned with ``text`` with columns ``date`` (datetime64, only when the day is
    known), ``precision`` ("year", "month", "day" or missing), ``invalid`` (True where text is
    present but is not a valid ISO 8601 date, e.g. "2013-13-01" or "UNK") and ``start`` / ``end``,
    the first and last day of the period the text names (equal to ``date`` when the day is known).
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
    first_month = month.where(precision.isin(["month", "day"]).fillna(False), 1.0)
    start_text = (year.astype("Int64").astype("string") + "-" + first_month.astype("Int64").astype("string")
                  .str.zfill(2) + "-01").where(precision.isin(["year", "month"]).fillna(False))
    period_start = pd.to_datetime(start_text, format="%Y-%m-%d", errors="coerce")
    period_end = period_start.where(precision != "month") + pd.offsets.YearEnd(0)
    period_end = period_end.where(precision != "month", period_start + pd.offsets.MonthEnd(0))
    date = full.where(~invalid)
    return pd.DataFrame(
        {
            "date": date,
            "precision": precision,
            "invalid": invalid.fillna(False).astype(bool),
            "start": period_start.where(precision != "day", date),
            "end": period_end.where(precision != "day", date),
        },
        index=text.index,
    )


def impute_start_dates(parsed: pd.DataFrame, floors: Sequence[pd.Series], end: pd.Series | None = None
                       ) -> pd.DataFrame:
    """Complete partial start dates (e.g. AE onset) by the documented rule; returns ``date`` and ``imputed``.

    A month- or year-precise date becomes the first day of its known period, raised to the latest
    of ``floors`` (the subject's first dose, consent) that falls inside that period, and never
    later than a complete ``end`` date (the event's end) on or after the period's first day. The
    imputed date therefore always agrees with what was recorded, and is never before first dose
    or consent when the recorded period allows it. Complete dates are kept; invalid ones stay empty.
    """
    partial = parsed["precision"].isin(["year", "month"]).fillna(False).astype(bool)
    imputed = parsed["start"].where(partial)
    for floor in floors:
        floor = pd.to_datetime(floor)
        inside = partial & floor.notna() & (floor >= parsed["start"]) & (floor <= parsed["end"]) & (floor > imputed)
        imputed = imputed.mask(inside.fillna(False), floor)
    if end is not None:
        end = pd.to_datetime(end)
        capped = partial & end.notna() & (end >= parsed["start"]) & (imputed > end)
        imputed = imputed.mask(capped.fillna(False), end)
    return pd.DataFrame({"date": parsed["date"].where(~partial, imputed), "imputed": partial}, index=parsed.index)


def registry_dates(text: pd.Series) -> pd.DataFrame:
    """ClinicalTrials.gov dates in every form the site has used; ``date``, ``precision``, ``invalid``.

    Month-precise dates are the first of the month with precision "month". A year alone is
    reported as invalid because the warehouse records month or day precision only.
    """
    values = text.astype("string").str.strip()
    parsed = parse_iso_dates(values)
    month_only = parsed["precision"] == "month"
    date = parsed["date"].where(~month_only, parsed["start"])
    precision = parsed["precision"]
    worded = values.notna() & (values != "") & parsed["invalid"]
    for fmt, level in REGISTRY_FORMATS:
        if not worded.any():
            break
        found = pd.to_datetime(values.where(worded), format=fmt, errors="coerce")
        hit = worded & found.notna()
        date = date.mask(hit, found)
        precision = precision.mask(hit, level)
        worded &= ~hit
    year_only = (precision == "year").fillna(False)
    invalid = (parsed["invalid"] & worded) | year_only
    return pd.DataFrame(
        {"date": date.where(~invalid), "precision": precision.mask(invalid), "invalid": invalid.astype(bool)},
        index=text.index,
    )
