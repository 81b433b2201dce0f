"""Benchmarks: P10/P50/P90 of each measure over the comparable trials, with the trials behind each figure.

Measures are declared once (:data:`MEASURES`). Enrollment, sites, countries and the rate are plain
empirical quantiles over the trials that carry the measure. Duration is Kaplan-Meier (statsmodels'
``SurvfuncRight``): completed trials are events, running and terminated trials are censored (see
:mod:`analytics.feasibility.trials`), so long trials that are still running pull the estimate up
instead of being dropped; a quantile the curve never reaches (too many trials still running) is
reported as "more than" the longest follow-up. The completed-only median is shown beside it, to
show how far dropping running trials would mislead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import SurvfuncRight

QUANTILES = (0.1, 0.5, 0.9)
MIN_TRIALS = 5  # fewer trials than this give no quantiles (the table says why)


@dataclass(frozen=True)
class Measure:
    """One benchmark measure: its trial-table column, label, unit and how it is estimated."""

    key: str
    column: str
    label: str
    unit: str
    basis: str  # which trials carry it
    survival: bool = False  # Kaplan-Meier over events and censored times


MEASURES: tuple[Measure, ...] = (
    Measure("enrollment", "actual_enrollment", "Enrollment", "participants",
            "trials that ended (completed or terminated): actual enrollment"),
    Measure("duration", "duration_months", "Duration, start to completion", "months",
            "Kaplan-Meier: completed trials, with running and terminated trials censored", survival=True),
    Measure("sites", "n_sites", "Sites", "sites", "trials whose record lists its locations"),
    Measure("countries", "n_countries", "Countries", "countries", "trials whose record lists its locations"),
    Measure("rate", "rate", "Enrollment rate", "participants per site-month",
            "ended trials with sites: enrollment / (sites x months from start to primary completion)"),
)
MEASURES_BY_KEY = {m.key: m for m in MEASURES}


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan-Meier curve with its pointwise 95% band and the quantiles it reaches."""

    times: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    events: int
    censored: int
    longest: float  # the longest time observed (event or censored)

    def quantile(self, p: float) -> float:
        """Time by which a share ``p`` of trials completed (NaN when the curve does not reach it)."""
        reached = np.flatnonzero(1 - self.survival >= p - 1e-12)
        return float(self.times[reached[0]]) if len(reached) else float("nan")


def kaplan_meier(durations: pd.Series, completed: pd.Series) -> KaplanMeier | None:
    """The KM estimate of time to completion (None without any completed trial)."""
    known = durations.notna() & (durations > 0)
    time = durations[known].to_numpy(float)
    event = completed[known].to_numpy(bool)
    if event.sum() == 0:
        return None
    sf = SurvfuncRight(time, event.astype(int))
    se = np.nan_to_num(sf.surv_prob_se)
    return KaplanMeier(times=np.asarray(sf.surv_times, float), survival=np.asarray(sf.surv_prob, float),
                       lower=np.clip(sf.surv_prob - 1.96 * se, 0, 1), upper=np.clip(sf.surv_prob + 1.96 * se, 0, 1),
                       events=int(event.sum()), censored=int((~event).sum()), longest=float(time.max()))


def measure_trials(trials: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    """The trials behind ``measure``: those that carry it (for duration, events and censored times)."""
    if measure.survival:
        return trials[trials["completed"] | trials["censored"]]
    return trials[trials[measure.column].notna()]


def benchmark_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per measure: trials behind it, P10/P50/P90 (duration: KM, with "more than" flags) and the basis."""
    rows = []
    for m in MEASURES:
        behind = measure_trials(trials, m)
        row: dict[str, object] = {"measure": m.key, "label": m.label, "unit": m.unit, "trials": len(behind),
                                  "basis": m.basis, "beyond": ""}
        if m.survival:
            km = kaplan_meier(behind["duration_months"], behind["completed"])
            row["completed"] = int(behind["completed"].sum())
            row["censored"] = int(behind["censored"].sum())
            row["completed_only_p50"] = (float(behind.loc[behind["completed"], "duration_months"].median())
                                         if behind["completed"].any() else np.nan)
            values = [km.quantile(q) if km is not None else np.nan for q in QUANTILES]
            if km is not None:
                row["beyond"] = ", ".join(f"P{int(q * 100)}" for q, v in zip(QUANTILES, values) if np.isnan(v))
                row["longest"] = km.longest
        else:
            data = behind[m.column].astype(float)
            values = [float(data.quantile(q)) if len(data) >= MIN_TRIALS else np.nan for q in QUANTILES]
        if len(behind) < MIN_TRIALS:
            values = [np.nan] * len(QUANTILES)
        row.update({f"p{int(q * 100)}": v for q, v in zip(QUANTILES, values)})
        rows.append(row)
    return pd.DataFrame(rows)


def trial_list(trials: pd.DataFrame, measure: Measure | None = None) -> pd.DataFrame:
    """The comparable trials (behind ``measure`` when given) with the values the benchmarks use."""
    behind = measure_trials(trials, measure) if measure is not None else trials
    columns = ["nct_id", "url", "title", "phase", "group", "status", "sponsor_class", "start_date", "last_update_date",
               "as_of_date", "export_file", "actual_enrollment", "enrollment", "duration_months", "completed", "censored",
               "n_sites", "n_countries", "rate"]
    return behind[columns].sort_values(["start_date", "nct_id"], ascending=[False, True]).reset_index(drop=True)
