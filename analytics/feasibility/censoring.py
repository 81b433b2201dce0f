"""Scoring predictions of durations when some trials are still running (right-censored).

A registry knows a running trial's duration only as "longer than it has run so far". Dropping those
trials keeps the short ones and scores intervals on a set without its longest trials (the ones an
interval misses most); taking their anticipated completion dates scores against the sponsor's
optimism. Two estimators keep them:

* **Kaplan-Meier on the interval's own scale** (:func:`censored_coverage`): each trial's log
  duration is placed on its interval, ``u = (log t - lo) / (hi - lo)`` (0 at the lower end, 1 at the
  upper), running trials censored at the ``u`` they have reached; the Kaplan-Meier estimate of
  ``P(0 <= u <= 1)`` is the coverage. A running trial already past its upper end is a known miss; one
  still inside its interval shares the fate of trials that had reached the same point. The same on
  the residual ``log t - mid`` gives the median absolute error (:func:`censored_median_abs_error`).
* **Inverse probability of censoring weights** (:func:`censoring_weights`) for outcomes that exist
  only once a trial has ended (its enrolment rate, a completed trial's duration): each counts
  ``1 / P(a trial of its duration was still observed then)``, the chance estimated by reverse
  Kaplan-Meier over the trials being scored (censored while running: at the as-of date, or where
  their record stopped being updated), not of every trial in the registry. The potential follow-up
  (as-of date minus start) was used before; it treats every ended record as one that would have
  been kept up to the as-of date, so trials whose records go stale, more often the long ones, were
  under-weighted (generated calibration seeds 9301-9303, pooled, against the true durations: 80%
  coverage 72.4% with it, 76.5% with reverse Kaplan-Meier).

Neither can see past the longest follow-up of the scored trials: a trial longer than that is
estimated from the shorter ones. On generated histories, where the true durations of running trials
are known, the Kaplan-Meier coverage is within about 3 points of the truth
(``python -m analytics eval feasibility`` reports both).
"""

from __future__ import annotations

import numpy as np
from statsmodels.duration.survfunc import SurvfuncRight

MAX_WEIGHT = 10.0  # inverse-probability-of-censoring weights are capped (a few very long trials dominate otherwise)
ERROR_GRID = np.linspace(0.0, 4.0, 4001)  # absolute log errors searched for the censored median (step 0.001)


def censoring_weights(durations: np.ndarray, times: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Inverse of the chance that a trial was still observed at each duration (capped), by reverse Kaplan-Meier.

    ``times`` and ``censored``: every trial of the set, its time observed (to completion, stop, or
    where it is censored) and whether it was censored while running. The censoring distribution is
    the Kaplan-Meier estimate with the roles swapped (censored trials are its events, the others its
    censored times), so records that stop being updated at any time count, not only the as-of date
    (Robins and Rotnitzky 1992; Satten and Datta 2001). A known outcome at ``T`` weighs
    ``1 / P(C >= T)``.
    """
    known = np.isfinite(times)
    if not known.any() or not np.asarray(censored, bool)[known].any():
        return np.ones(len(durations))
    _, still_observed = survival_functions(np.asarray(times, float)[known], np.asarray(censored, bool)[known])
    return np.minimum(1.0 / np.maximum(still_observed(np.asarray(durations, float)), 1.0 / MAX_WEIGHT), MAX_WEIGHT)


def survival_functions(values: np.ndarray, event: np.ndarray):
    """``(S, S_before)``: the Kaplan-Meier ``P(V > x)`` and ``P(V >= x)`` as functions of ``x``."""
    fit = SurvfuncRight(np.asarray(values, float), np.asarray(event, float))
    times, surv = np.asarray(fit.surv_times, float), np.asarray(fit.surv_prob, float)

    def after(x: np.ndarray | float) -> np.ndarray:
        idx = np.searchsorted(times, x, side="right") - 1
        return np.where(idx >= 0, surv[np.clip(idx, 0, None)], 1.0) if len(times) else np.ones_like(np.asarray(x, float))

    def before(x: np.ndarray | float) -> np.ndarray:
        idx = np.searchsorted(times, x, side="left") - 1
        return np.where(idx >= 0, surv[np.clip(idx, 0, None)], 1.0) if len(times) else np.ones_like(np.asarray(x, float))

    return after, before


def censored_coverage(lo: np.ndarray, hi: np.ndarray, log_time: np.ndarray, event: np.ndarray) -> float:
    """Kaplan-Meier share of trials whose log duration falls in ``[lo, hi]`` (running trials censored).

    ``log_time`` is the log duration of completed trials (``event`` true) and the log time run so far
    of running ones.
    """
    width = np.maximum(np.asarray(hi, float) - np.asarray(lo, float), 1e-9)
    position = (np.asarray(log_time, float) - lo) / width
    after, before = survival_functions(position, event)
    return float(before(0.0) - after(1.0))


def censored_median_abs_error(mid: np.ndarray, log_time: np.ndarray, event: np.ndarray) -> float:
    """Kaplan-Meier median of ``|log duration - mid|`` (running trials censored at the time run so far)."""
    after, before = survival_functions(np.asarray(log_time, float) - mid, event)
    within = before(-ERROR_GRID) - after(ERROR_GRID)
    reached = np.flatnonzero(within >= 0.5)
    return float(ERROR_GRID[reached[0]]) if len(reached) else float("nan")
