"""Last patient in, last patient last visit and database lock: forecast dates with intervals, against plan.

* LPI: the simulated dates the target is reached (Poisson-Gamma), or the actual date once reached.
* LPLV: LPI plus the protocol's treatment period and follow-up (``studies.treatment_duration_days``
  and ``follow_up_days``; the last randomized subject is the last to finish).
* Database lock: LPLV plus the lock lag, drawn from the portfolio's own history (actual lock minus
  actual LPLV of studies in scope that have both) when at least ``MIN_HISTORY`` studies have it,
  otherwise log-normal with median :data:`DEFAULT_LOCK_DAYS` (an assumption: about five weeks is
  the commonly quoted industry average from last patient last visit to lock).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MILESTONES = ("Last patient in", "Last patient last visit", "Database lock")
DEFAULT_LOCK_DAYS = 36.0
DEFAULT_LOCK_SIGMA = 0.4
MIN_HISTORY = 3
TIMELINE_QUANTILES = (0.1, 0.5, 0.8, 0.9)


def lock_lag_sample(milestones: pd.DataFrame, n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """``n`` draws of LPLV-to-lock days and where they come from."""
    wide = milestones.pivot_table(index="study_id", columns="milestone", values="actual_date", aggfunc="first")
    history = np.array([])
    if {"Last patient last visit", "Database lock"} <= set(wide.columns):
        history = (pd.to_datetime(wide["Database lock"]) - pd.to_datetime(wide["Last patient last visit"])).dt.days.dropna()
        history = history[history >= 0].to_numpy(float)
    if len(history) >= MIN_HISTORY:
        return rng.choice(history, n), f"portfolio history ({len(history)} locked studies)"
    return DEFAULT_LOCK_DAYS * np.exp(DEFAULT_LOCK_SIGMA * rng.standard_normal(n)), "default assumption"


def timeline(study: pd.Series, cut: pd.Timestamp, lpi_days: np.ndarray | None, actual_lpi: pd.Timestamp | None,
             milestones: pd.DataFrame, lock_days: np.ndarray, horizon_days: float | None = None) -> pd.DataFrame:
    """The three milestones of one study: planned, actual, forecast quantiles and P(by planned date).

    Args:
        study: a row of :func:`analytics.enrollment.data.read_studies`.
        cut: the as-of date.
        lpi_days: simulated days after the cut to the LPI (None when already reached or unknown).
        actual_lpi: the date the target was reached, if it was.
        milestones: this study's rows of the milestones table.
        lock_days: draws of LPLV-to-lock days (:func:`lock_lag_sample`).
        horizon_days: the last day after the cut the LPI simulation covers; a milestone's empty
            quantile is after its ``horizon_date`` (that day plus treatment and follow-up for LPLV and lock).
    """
    treatment = float(study.get("treatment_duration_days") or 0) if pd.notna(study.get("treatment_duration_days")) else np.nan
    follow_up = float(study.get("follow_up_days")) if pd.notna(study.get("follow_up_days")) else 0.0
    planned = milestones.set_index("milestone")["planned_date"] if len(milestones) else pd.Series(dtype="datetime64[ns]")
    actual = milestones.set_index("milestone")["actual_date"] if len(milestones) else pd.Series(dtype="datetime64[ns]")
    if actual_lpi is not None and pd.notna(actual_lpi):
        lpi = np.full(len(lock_days), float((pd.Timestamp(actual_lpi) - cut).days))
    elif lpi_days is not None:
        lpi = np.resize(lpi_days, len(lock_days))
    else:
        lpi = np.full(len(lock_days), np.inf)
    lplv = lpi + treatment + follow_up
    lock = lplv + lock_days
    lpi_horizon = cut + pd.Timedelta(days=float(horizon_days)) if horizon_days is not None else pd.NaT
    after_lpi = pd.Timedelta(days=float(np.nan_to_num(treatment) + follow_up))
    horizons = (lpi_horizon, lpi_horizon + after_lpi, lpi_horizon + after_lpi)
    rows = []
    for name, days, horizon in zip(MILESTONES, (lpi, lplv, lock), horizons):
        reached = actual.get(name) if name in actual.index else None
        plan = planned.get(name) if name in planned.index else None
        finite = np.where(np.isfinite(days), days, 1e9)
        q = np.quantile(finite, TIMELINE_QUANTILES)
        dates = [cut + pd.Timedelta(days=float(np.ceil(v))) if v < 1e6 else pd.NaT for v in q]
        if reached is not None and pd.notna(reached):
            dates = [pd.Timestamp(reached)] * len(TIMELINE_QUANTILES)
            p_by = float(pd.Timestamp(reached) <= plan) if plan is not None and pd.notna(plan) else np.nan
        else:
            p_by = float(np.mean(days <= (pd.Timestamp(plan) - cut).days)) if plan is not None and pd.notna(plan) else np.nan
        rows.append({"study_id": study["study_id"], "milestone": name,
                     "planned_date": plan if plan is not None else pd.NaT,
                     "actual_date": reached if reached is not None else pd.NaT,
                     **{f"p{round(p * 100)}": d for p, d in zip(TIMELINE_QUANTILES, dates)}, "p_by_planned": p_by,
                     "horizon_date": pd.NaT if reached is not None and pd.notna(reached) else horizon})
    frame = pd.DataFrame(rows)
    for column in ("planned_date", "actual_date", "p10", "p50", "p80", "p90", "horizon_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame
