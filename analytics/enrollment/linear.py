"""Linear extrapolation: the recent randomization rate carried forward (the usual spreadsheet forecast).

The rate is the count in the last ``WINDOW_DAYS`` days before the cut (or since the first
randomization, if later) over that time; its uncertainty is the Gamma posterior of a Poisson rate
(Jeffreys prior), so the completion date's quantiles are ``cut + R / rate`` at the rate's opposite
quantiles. It knows nothing of sites still to activate or of drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

WINDOW_DAYS = 90


def recent_rate(randomization_dates: pd.Series, cut_date: pd.Timestamp, window_days: int = WINDOW_DAYS) -> tuple[float, float]:
    """(count, days) in the window before the cut that the rate is computed from."""
    cut = pd.Timestamp(cut_date)
    dates = pd.to_datetime(pd.Series(randomization_dates)).dropna()
    dates = dates[dates <= cut]
    if dates.empty:
        return 0.0, float(window_days)
    start = max(cut - pd.Timedelta(days=window_days), dates.min())
    days = max((cut - start).days, 1)
    return float((dates > start).sum() + (dates == start).sum()), float(days)


def linear_forecast(randomization_dates: pd.Series, cut_date: pd.Timestamp, target: int,
                    probabilities=(0.05, 0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95)) -> dict[float, pd.Timestamp | None]:
    """Completion date quantiles by linear extrapolation (None when the rate is zero)."""
    cut = pd.Timestamp(cut_date)
    dates = pd.to_datetime(pd.Series(randomization_dates)).dropna()
    remaining = target - int((dates <= cut).sum())
    if remaining <= 0:
        return {p: cut for p in probabilities}
    count, days = recent_rate(dates, cut)
    if count == 0:
        return {p: None for p in probabilities}
    rate = stats.gamma(count + 0.5, scale=1 / days)
    return {p: cut + pd.Timedelta(days=float(np.ceil(remaining / rate.ppf(1 - p)))) for p in probabilities}


def linear_p_by(randomization_dates: pd.Series, cut_date: pd.Timestamp, target: int, date: pd.Timestamp) -> float:
    """P(target by ``date``) under linear extrapolation: P(rate >= R / days left)."""
    cut = pd.Timestamp(cut_date)
    dates = pd.to_datetime(pd.Series(randomization_dates)).dropna()
    remaining = target - int((dates <= cut).sum())
    if remaining <= 0:
        return 1.0
    left = (pd.Timestamp(date) - cut).days
    count, days = recent_rate(dates, cut)
    if left <= 0 or count == 0:
        return 0.0
    return float(stats.gamma(count + 0.5, scale=1 / days).sf(remaining / left))


def linear_fan(randomization_dates: pd.Series, cut_date: pd.Timestamp, target: int, dates: pd.DatetimeIndex,
               quantiles=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)) -> pd.DataFrame:
    """Cumulative randomized at ``dates`` by linear extrapolation, at the rate's quantiles (capped at target)."""
    cut = pd.Timestamp(cut_date)
    known = pd.to_datetime(pd.Series(randomization_dates)).dropna()
    randomized = int((known <= cut).sum())
    count, days = recent_rate(known, cut)
    ahead = np.maximum((pd.DatetimeIndex(dates) - cut).days.to_numpy(float), 0)
    rates = stats.gamma(count + 0.5, scale=1 / days).ppf(quantiles) if count > 0 else np.zeros(len(quantiles))
    values = np.minimum(randomized + np.outer(ahead, rates), target)
    frame = pd.DataFrame(values, columns=[f"q{round(q * 100):02d}" for q in quantiles])
    frame.insert(0, "date", pd.DatetimeIndex(dates))
    return frame
