"""What a user gets for each target: the model, or the phase median where the model has not beaten it.

The quantile model is only worth showing where protocol features carry evidence beyond the phase.
Registry exports of mostly single-site academic trials may carry none, and a model fitted to noise
is worse than the phase median on newer trials. So each target's predictor is chosen on a split by
start year *inside the trials it is trained on* (:func:`fit_predictor`): fit both on the trials
started before a validation window, score both on the window's trials (durations censored where
still running, :mod:`analytics.feasibility.censoring`), and keep the model only when its median
absolute log error is lower. The page says which one a user gets and why.

:func:`score` is the one scoring rule, used for that choice and by the evaluation
(``python -m analytics eval feasibility``): for duration, every trial of the window that completed
or is still running (terminated trials never complete; running ones count as censored, at the as-of
date or their record's last update when earlier, never at their anticipated dates); for the rate, the ended trials weighted by the inverse chance of having
ended by the as-of date, computed from the window's own follow-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.feasibility.censoring import censored_coverage, censored_median_abs_error
from analytics.feasibility.model import MIN_TRAINING_TRIALS, PHASES, ConformalQuantileModel, PhaseBaseline, \
    feature_frame, interval_metrics, training_data, weighted_quantile

METHODS = ("model", "baseline")
METHOD_LABELS = {"model": "Model", "baseline": "Phase median"}
SETTLED_YEARS = 8  # trials that started this many years before the as-of date have mostly finished
WINDOW_YEARS = 3  # start years in a validation or test window
MIN_WINDOW_TRIALS = 10  # fewer scored trials in the window: no evidence for the model
EVIDENCE_SHARE = 0.9  # the model is kept when closer than the phase median in this share of resamples
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0


def duration_population(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials whose duration is known or censored by the as-of date only: completed or still running
    (running or unverified, censored where their record stops)."""
    return trials[trials["duration_months"].notna() & (trials["completed"].astype(bool)
                                                       | trials["still_running"].astype(bool))]


def score(predict, trials: pd.DataFrame, target: str) -> dict[str, float]:
    """Error, 80% coverage and width of ``predict(features) -> lo/mid/hi`` (log scale) on ``trials``.

    Duration: Kaplan-Meier figures over completed and running trials; rate: inverse-probability
    weighted figures over ended trials (see the module docstring).
    """
    if target == "duration":
        rows = duration_population(trials)
        if not len(rows):
            return {"n": 0}
        pred = predict(feature_frame(rows))
        lo, mid, hi = (pred[k].to_numpy(float) for k in ("lo", "mid", "hi"))
        log_time = np.log(rows["duration_months"].to_numpy(float))
        event = rows["completed"].to_numpy(bool)
        return {"n": int(len(rows)), "running": int((~event).sum()),
                "median_abs_log_error": censored_median_abs_error(mid, log_time, event),
                "coverage_80": censored_coverage(lo, hi, log_time, event),
                "median_width_ratio": float(np.median(np.exp(hi - lo)))}
    features, y, _, weights = training_data(trials, target)
    if not len(y):
        return {"n": 0}
    return interval_metrics(predict(features), y, weights)


def evidence_share(model_predict, baseline_predict_fn, trials: pd.DataFrame, target: str) -> float:
    """Share of bootstrap resamples of ``trials`` in which the model's median absolute log error is lower."""
    if target == "duration":
        rows = duration_population(trials)
        features = feature_frame(rows)
        log_time = np.log(rows["duration_months"].to_numpy(float))
        event = rows["completed"].to_numpy(bool)
        mids = [p(features)["mid"].to_numpy(float) for p in (model_predict, baseline_predict_fn)]

        def error(mid: np.ndarray, pick: np.ndarray) -> float:
            return censored_median_abs_error(mid[pick], log_time[pick], event[pick])
    else:
        features, y, _, weights = training_data(trials, target)
        mids = [p(features)["mid"].to_numpy(float) for p in (model_predict, baseline_predict_fn)]

        def error(mid: np.ndarray, pick: np.ndarray) -> float:
            return weighted_quantile(np.abs(y[pick] - mid[pick]), weights[pick], 0.5)
    n = len(mids[0])
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    wins = 0
    for _ in range(BOOTSTRAP_RESAMPLES):
        pick = rng.integers(0, n, n)
        wins += error(mids[0], pick) < error(mids[1], pick)
    return wins / BOOTSTRAP_RESAMPLES


def baseline_predict(baseline: PhaseBaseline):
    """``predict(features)`` of the phase median (features carry the phase as a code into :data:`PHASES`)."""
    def predict(features: pd.DataFrame) -> pd.DataFrame:
        codes = features["phase"].to_numpy(float)
        phases = pd.Series([PHASES[int(c)] if np.isfinite(c) else "NA" for c in codes], index=features.index)
        return baseline.predict(phases)
    return predict


@dataclass
class FeasibilityPredictor:
    """One target's model and phase median, and which of the two a user gets (chosen on a time split)."""

    model: ConformalQuantileModel
    baseline: PhaseBaseline
    method: str = "model"
    validation: dict[str, object] = field(default_factory=dict)  # the window, its trials, each method's figures

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """The chosen method's ``lo``, ``mid``, ``hi`` (log scale)."""
        return self.predict_with(self.method, features)

    def predict_with(self, method: str, features: pd.DataFrame) -> pd.DataFrame:
        return self.model.predict(features) if method == "model" else baseline_predict(self.baseline)(features)

    def reason(self) -> str:
        """Why this method, in a sentence for the page."""
        v = self.validation
        if "model" not in v:
            return f"Phase median: {v.get('note', 'no validation window')}."
        m, b = v["model"]["median_abs_log_error"], v["baseline"]["median_abs_log_error"]
        verdict = "the model was reliably closer" if self.method == "model" else "the model was not reliably closer"
        return (f"{METHOD_LABELS[self.method]}: on the {v['trials']:,} trials started {v['window'][0]}-{v['window'][1]} "
                f"(fitted on earlier starts) {verdict} than the phase median: median absolute log error {m:.3f} "
                f"against {b:.3f}, lower in {v['evidence']:.0%} of bootstrap resamples "
                f"(the model is kept from {EVIDENCE_SHARE:.0%}).")


def _fit_both(trials: pd.DataFrame, target: str, seed: int) -> tuple[ConformalQuantileModel, PhaseBaseline] | None:
    features, y, rows, weights = training_data(trials, target)
    if len(y) < MIN_TRAINING_TRIALS:
        return None
    return (ConformalQuantileModel(seed=seed).fit(features, y, weights),
            PhaseBaseline().fit(rows["phase"], y, weights))


def fit_predictor(trials: pd.DataFrame, target: str, seed: int, window: tuple[int, int]) -> FeasibilityPredictor | None:
    """Fit on ``trials`` and choose the method on the start-year ``window`` (fitted on earlier starts).

    None when too few trials have a known outcome to fit anything.
    """
    fitted = _fit_both(trials, target, seed)
    if fitted is None:
        return None
    years = trials["start_year"].astype(float)
    earlier, inside = trials[years < window[0]], trials[(years >= window[0]) & (years <= window[1])]
    validation: dict[str, object] = {"window": [int(window[0]), int(window[1])]}
    inner = _fit_both(earlier, target, seed)
    scored = {} if inner is None else {
        "model": score(inner[0].predict, inside, target), "baseline": score(baseline_predict(inner[1]), inside, target)}
    if inner is None or scored["model"]["n"] < MIN_WINDOW_TRIALS:
        validation["note"] = (f"too few trials to test the model on a split by start year (before {window[0]}, "
                              f"then {window[0]}-{window[1]})")
        return FeasibilityPredictor(*fitted, method="baseline", validation=validation)
    evidence = evidence_share(inner[0].predict, baseline_predict(inner[1]), inside, target)
    validation.update(trials=scored["model"]["n"], evidence=evidence, **scored)
    return FeasibilityPredictor(*fitted, method="model" if evidence >= EVIDENCE_SHARE else "baseline",
                                validation=validation)


def validation_window(as_of_year: int, years_before: int = SETTLED_YEARS) -> tuple[int, int]:
    """The :data:`WINDOW_YEARS` start years from ``as_of_year - years_before`` (by default: mostly finished)."""
    first = as_of_year - years_before
    return first, first + WINDOW_YEARS - 1
