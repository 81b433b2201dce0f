"""One number format per kind of value, used by every table and chart.

Counts are whole numbers with thousands separators; rates carry their unit; shares are
percentages; durations are whole days; p-values read "< 0.001" below a thousandth.
"""

from __future__ import annotations

import datetime as dt
import math

P_FLOOR = 0.001


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_of_label(as_of: dt.date) -> str:
    """The data's as-of date as every page states it."""
    return f"Data as of {as_of:%d %b %Y}"


def count(value: object) -> str:
    return "—" if _missing(value) else f"{float(value):,.0f}"  # type: ignore[arg-type]


def share(value: object, digits: int = 0) -> str:
    """A fraction (0-1) as a percentage."""
    return "—" if _missing(value) else f"{float(value):.{digits}%}"  # type: ignore[arg-type]


def rate(value: object, unit: str, digits: int = 2) -> str:
    return "—" if _missing(value) else f"{float(value):,.{digits}f} {unit}"  # type: ignore[arg-type]


def days(value: object) -> str:
    return "—" if _missing(value) else f"{float(value):,.0f} d"  # type: ignore[arg-type]


def ratio(value: object) -> str:
    """Observed over expected and similar multiples: two decimals."""
    return "—" if _missing(value) else f"{float(value):.2f}"  # type: ignore[arg-type]


def p_value(value: object) -> str:
    """A p-value: three significant figures, or "< 0.001"."""
    if _missing(value):
        return "—"
    p = float(value)  # type: ignore[arg-type]
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.3f}"


def forecast_date(value: object, horizon: object = None) -> str:
    """A forecast date; one beyond the simulated horizon (missing, with the horizon known) reads "after <horizon>"."""
    import pandas as pd

    if value is not None and not pd.isna(value):
        return f"{pd.Timestamp(value):%d %b %Y}"
    if horizon is not None and not pd.isna(horizon):
        return f"after {pd.Timestamp(horizon):%d %b %Y}"
    return "—"
