"""CAPA cycle time: median and 90th percentile, and Kaplan-Meier curves with open CAPAs censored.

Closed CAPAs alone make cycle times look short (the slow ones are still open), so the curves are
Kaplan-Meier estimates of the share still open by days since opening, each open CAPA censored at its
age on the as-of date (statsmodels ``SurvfuncRight``, pointwise 95% band from Greenwood's variance). The median and P90
are read from the curve (empty when the curve has not fallen that far); the log-rank test says
whether processes differ. The medians of closed CAPAs only are shown beside them for comparison.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from analytics.capa.metrics import with_status

MIN_CAPAS = 5  # fewer CAPAs in a group: no curve


def durations(capas: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Per CAPA: ``days`` (to closure, or to the as-of date when open) and ``closed`` (the event flag)."""
    frame = with_status(capas, as_of)
    days = np.where(frame["is_open"], frame["age_days"], frame["cycle_days"])
    out = frame.assign(days=np.maximum(days.astype("float64"), 0.5), closed=~frame["is_open"])
    return out[np.isfinite(out["days"])]


def _quantile_time(fit: SurvfuncRight, share_closed: float) -> float:
    """Days by which ``share_closed`` of CAPAs are closed (NaN when the curve never gets there)."""
    reached = np.flatnonzero(1 - fit.surv_prob >= share_closed - 1e-12)
    return float(fit.surv_times[reached[0]]) if len(reached) else float("nan")


def _median_interval(fit: SurvfuncRight) -> tuple[float, float]:
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # the log-log transform at survival 0 or 1
            low, high = fit.quantile_ci(0.5, alpha=0.05)
    except (ValueError, IndexError, ZeroDivisionError):
        return float("nan"), float("nan")
    return (float("nan") if low is None else float(low)), (float("nan") if high is None else float(high))


def kaplan_meier(capas: pd.DataFrame, as_of: dt.date, by: str = "process") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Curves and summary per group (``by`` a column of the CAPA table, or ``""`` for all together).

    Returns (curves: ``group``, ``days``, ``share_open``, ``low``, ``high`` with a point at day 0;
    summary: ``group``, ``capas``, ``open``, ``median_days`` with its 95% interval, ``p90_days``,
    ``median_closed_only``, ``p90_closed_only``).
    """
    frame = durations(capas, as_of)
    groups = [("All CAPAs", frame)] if not by else [(str(g), part) for g, part in frame.groupby(by)]
    curves, summary = [], []
    for name, part in groups:
        if len(part) < MIN_CAPAS:
            continue
        fit = SurvfuncRight(part["days"].to_numpy(), part["closed"].astype(int).to_numpy())
        se = np.nan_to_num(fit.surv_prob_se)  # Greenwood
        low, high = np.clip(fit.surv_prob - 1.96 * se, 0, 1), np.clip(fit.surv_prob + 1.96 * se, 0, 1)
        curves.append(pd.DataFrame({"group": name, "days": np.r_[0.0, fit.surv_times],
                                    "share_open": np.r_[1.0, fit.surv_prob],
                                    "low": np.r_[1.0, np.asarray(low)], "high": np.r_[1.0, np.asarray(high)]}))
        median_low, median_high = _median_interval(fit)
        closed_days = part.loc[part["closed"], "days"]
        summary.append({
            "group": name, "capas": len(part), "open": int((~part["closed"]).sum()),
            "median_days": _quantile_time(fit, 0.5), "median_low": median_low, "median_high": median_high,
            "p90_days": _quantile_time(fit, 0.9),
            "median_closed_only": float(closed_days.median()) if len(closed_days) else float("nan"),
            "p90_closed_only": float(closed_days.quantile(0.9)) if len(closed_days) else float("nan"),
        })
    columns = ["group", "days", "share_open", "low", "high"]
    return (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=columns),
            pd.DataFrame(summary))


def log_rank_p(capas: pd.DataFrame, as_of: dt.date, by: str = "process") -> float:
    """Log-rank test that cycle time is the same in every group with enough CAPAs (NaN if fewer than two)."""
    frame = durations(capas, as_of)
    counts = frame[by].value_counts()
    frame = frame[frame[by].isin(counts[counts >= MIN_CAPAS].index)]
    if frame[by].nunique() < 2 or not frame["closed"].any():
        return float("nan")
    _, p = survdiff(frame["days"].to_numpy(), frame["closed"].astype(int).to_numpy(), frame[by].astype(str).to_numpy())
    return float(p)
