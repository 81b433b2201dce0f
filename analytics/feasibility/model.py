"""A duration and rate model that says how sure it is: quantile gradient boosting with conformal calibration.

For each target (log months from start to completion; log participants per site-month) three
scikit-learn ``HistGradientBoostingRegressor`` models with the quantile loss give the 10th, 50th
and 90th percentiles from protocol features (:data:`FEATURES`). Their 10-90% band is then
calibrated by split-conformal quantile regression (CQR, Romano, Patterson and Candès 2019): on a
calibration share the models did not see, the conformity score ``max(lo - y, y - hi)`` is computed,
and its ``ceil((n + 1) * 0.8) / n`` empirical quantile widens (or narrows) the band, so the 80%
interval covers 80% of new trials drawn like the calibration trials.

The baseline is what a feasibility lead does without a model: the median of comparable trials of
the same phase, with their 10th-90th percentiles as the interval.

Trained on trials whose outcome is known: durations of completed trials, rates of ended trials.
Registry records favour short trials: among recent starts only the quick ones have finished, and
the records of long trials are the likelier to stop being updated before they end. The chance that
a trial of duration ``T`` was still observed at ``T`` is estimated by reverse Kaplan-Meier (trials
censored while running, at the as-of date or their record's last update, are its events); every
known outcome is weighted by the inverse of that chance (inverse probability of censoring
weighting, :func:`~analytics.feasibility.censoring.censoring_weights`), in the fits, in the
conformal calibration (weighted conformal prediction) and in the cross-validated metrics, so figures
describe all trials, not only the finished ones. The calibration share is drawn at random from the
training trials: calibrating on the most recent starts instead (closer to the newer trials a split
by start year tests on) narrowed the band, because the recent starts that have finished are the
short ones (generated calibration seeds 9301-9303: true coverage 66-75% against 75-80%). Whether a
user gets this model or the phase median is decided in :mod:`analytics.feasibility.selection`. The start year is not a feature: a model given it learns that recent trials are short, which
is the censoring, not the trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from analytics.feasibility.censoring import censoring_weights
from analytics.feasibility.complexity import COMPLEXITY_FEATURES
from analytics.feasibility.conditions import GROUP_NAMES

QUANTILES = (0.1, 0.5, 0.9)
COVERAGE = 0.8
CALIBRATION_SHARE = 0.25
CV_FOLDS = 5
MIN_TRAINING_TRIALS = 40  # fewer trials with a known outcome: no model (the page says so)
MIN_PHASE_TRIALS = 5  # baseline: phases with fewer training trials use every phase's figures
PHASES = ("EARLY_PHASE1", "PHASE1", "PHASE1|PHASE2", "PHASE2", "PHASE2|PHASE3", "PHASE3", "PHASE4", "NA")
SPONSOR_CLASSES = ("INDUSTRY", "NIH", "FED", "OTHER_GOV", "NETWORK", "INDIV", "OTHER", "UNKNOWN")
CATEGORIES: dict[str, tuple[str, ...]] = {"phase": PHASES, "group": GROUP_NAMES, "sponsor_class": SPONSOR_CLASSES}
NUMERIC = ("log_enrollment", "log_sites", "n_countries", *COMPLEXITY_FEATURES)
FEATURES = (*CATEGORIES, *NUMERIC)
FEATURE_LABELS = {"phase": "Phase", "group": "Condition group", "sponsor_class": "Sponsor class",
                  "log_enrollment": "Target enrollment (log)", "log_sites": "Sites (log)", "n_countries": "Countries",
                  **COMPLEXITY_FEATURES}
TARGETS: dict[str, tuple[str, str, str]] = {  # target -> (trial-table column, label, unit)
    "duration": ("duration_months", "Duration, start to completion", "months"),
    "rate": ("rate", "Enrollment rate", "participants per site-month"),
}
# One thread: on a shared 2-core machine OpenMP threads spinning against each other made a fit 20x slower.
FIT_THREADS = 1
BOOSTING = dict(loss="quantile", max_iter=150, learning_rate=0.06, max_leaf_nodes=15, min_samples_leaf=20,
                l2_regularization=1.0)


def feature_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """The model's features for each trial: categories as codes into :data:`CATEGORIES` (unknown: NaN)."""
    out = pd.DataFrame(index=trials.index)
    for name, values in CATEGORIES.items():
        codes = {v: float(i) for i, v in enumerate(values)}
        out[name] = trials[name].astype(object).map(codes).astype(float)
    out["log_enrollment"] = np.log(pd.to_numeric(trials["enrollment"], errors="coerce").astype(float).clip(lower=1))
    out["log_sites"] = np.log(pd.to_numeric(trials["n_sites"], errors="coerce").astype(float).clip(lower=1))
    out["n_countries"] = pd.to_numeric(trials["n_countries"], errors="coerce").astype(float)
    for name in COMPLEXITY_FEATURES:
        out[name] = pd.to_numeric(trials[name], errors="coerce").astype(float)
    return out[list(FEATURES)]


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile of ``values`` with ``weights`` (the smallest value whose cumulative weight reaches q)."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][min(np.searchsorted(cumulative, q * cumulative[-1]), len(values) - 1)])


def training_data(trials: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """(features, log outcome, the trials, censoring weights) of the trials with a known ``target`` outcome."""
    column = TARGETS[target][0]
    known = trials[column].notna() & (trials[column] > 0)
    if target == "duration":
        known &= trials["completed"].astype(bool)
    rows = trials[known]
    # A trial's outcome is known once it has ended: weight by the chance it had, given its duration.
    duration = rows["duration_months"].to_numpy(float)
    duration = np.where(np.isfinite(duration), duration, 0.0)
    weights = censoring_weights(duration, trials["duration_months"].to_numpy(float),
                                trials["still_running"].to_numpy(bool))
    return feature_frame(rows), np.log(rows[column].to_numpy(float)), rows, weights


def _booster(quantile: float, seed: int, columns: tuple[str, ...]) -> HistGradientBoostingRegressor:
    categorical = [columns.index(name) for name in CATEGORIES if name in columns] or None
    return HistGradientBoostingRegressor(quantile=quantile, categorical_features=categorical, random_state=seed,
                                         **BOOSTING)


@dataclass
class ConformalQuantileModel:
    """10th/50th/90th percentile boosting models and the conformal correction of their band (log scale)."""

    seed: int = 0
    models: dict[float, HistGradientBoostingRegressor] = field(default_factory=dict)
    correction: float = 0.0  # added to each side of the 10-90% band
    trained_on: int = 0
    calibrated_on: int = 0
    columns: tuple[str, ...] = ()  # features the trials carry (CSV exports have no eligibility text, ...)

    def fit(self, features: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None = None) -> "ConformalQuantileModel":
        """Fit on a random 75% and calibrate the band on the other 25% (weighted, when weights are given)."""
        weights = np.ones(len(y)) if weights is None else np.asarray(weights, float)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(y))
        n_cal = max(int(round(CALIBRATION_SHARE * len(y))), 1)
        cal, train = order[:n_cal], order[n_cal:]
        # A feature no training trial carries says nothing (and cannot be binned): left out.
        self.columns = tuple(c for c in FEATURES if features[c].iloc[train].nunique(dropna=True) >= 1)
        x = features[list(self.columns)].to_numpy(float)
        with threadpool_limits(FIT_THREADS):
            self.models = {q: _booster(q, self.seed, self.columns).fit(x[train], y[train], sample_weight=weights[train])
                           for q in QUANTILES}
            lo, _, hi = self._raw(x[cal])
        scores = np.maximum(lo - y[cal], y[cal] - hi)
        # Weighted split conformal: the score quantile with the calibration weights and one more at +inf.
        w = weights[cal]
        level = COVERAGE * (w.sum() + w.mean()) / w.sum()
        self.correction = float(np.max(scores)) if level >= 1 else weighted_quantile(scores, w, level)
        self.trained_on, self.calibrated_on = len(train), n_cal
        return self

    def _raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, mid, hi = (self.models[q].predict(x) for q in QUANTILES)
        # Separately fitted quantiles can cross; sorting restores their order.
        stacked = np.sort(np.vstack([lo, mid, hi]), axis=0)
        return stacked[0], stacked[1], stacked[2]

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Calibrated ``lo``, ``mid``, ``hi`` on the log scale (the 80% interval and the median)."""
        with threadpool_limits(FIT_THREADS):
            lo, mid, hi = self._raw(features[list(self.columns)].to_numpy(float))
        return pd.DataFrame({"lo": np.minimum(lo - self.correction, mid), "mid": mid,
                             "hi": np.maximum(hi + self.correction, mid)}, index=features.index)


@dataclass
class PhaseBaseline:
    """The phase median with the phase's 10th-90th percentiles (log scale)."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    overall: tuple[float, float, float] = (np.nan, np.nan, np.nan)

    def fit(self, phases: pd.Series, y: np.ndarray, weights: np.ndarray | None = None) -> "PhaseBaseline":
        weights = np.ones(len(y)) if weights is None else np.asarray(weights, float)
        frame = pd.DataFrame({"phase": phases.to_numpy(), "y": y, "w": weights})
        rows = []
        for phase, group in frame.groupby("phase"):
            if len(group) >= MIN_PHASE_TRIALS:
                v, w = group["y"].to_numpy(), group["w"].to_numpy()
                rows.append({"phase": phase, **{k: weighted_quantile(v, w, q) for k, q in zip(("lo", "mid", "hi"),
                                                                                          QUANTILES)}})
        self.table = pd.DataFrame(rows, columns=["phase", "lo", "mid", "hi"]).set_index("phase")
        self.overall = tuple(weighted_quantile(y, weights, q) for q in QUANTILES)
        return self

    def predict(self, phases: pd.Series) -> pd.DataFrame:
        rows = self.table.reindex(phases.to_numpy())
        out = pd.DataFrame({k: rows[k].to_numpy() for k in ("lo", "mid", "hi")}, index=phases.index)
        for k, v in zip(("lo", "mid", "hi"), self.overall):
            out[k] = out[k].fillna(v)
        return out


def interval_metrics(pred: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Median absolute error of the log median, 80% coverage, median width (hi / lo), mean pinball loss (weighted)."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    lo, mid, hi = (pred[k].to_numpy(float) for k in ("lo", "mid", "hi"))
    pinball = np.mean([np.average(np.maximum(q * (y - p), (q - 1) * (y - p)), weights=w)
                       for q, p in zip(QUANTILES, (lo, mid, hi))])
    return {"n": int(len(y)), "median_abs_log_error": weighted_quantile(np.abs(y - mid), w, 0.5),
            "coverage_80": float(np.average((y >= lo) & (y <= hi), weights=w)),
            "median_width_ratio": weighted_quantile(np.exp(hi - lo), w, 0.5), "pinball": float(pinball)}


def cross_validate(features: pd.DataFrame, y: np.ndarray, phases: pd.Series, weights: np.ndarray | None = None,
                   seed: int = 0, folds: int = CV_FOLDS) -> pd.DataFrame:
    """Out-of-fold predictions of the model and the baseline for every trial (log scale), with each trial's weight."""
    weights = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    out = []
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(features)):
        model = ConformalQuantileModel(seed=seed + fold).fit(features.iloc[train], y[train], weights[train])
        base = PhaseBaseline().fit(phases.iloc[train], y[train], weights[train])
        pm, pb = model.predict(features.iloc[test]), base.predict(phases.iloc[test])
        out.append(pd.DataFrame({"row": test, "fold": fold, "observed": y[test], "weight": weights[test],
                                 "model_lo": pm["lo"].to_numpy(), "model_mid": pm["mid"].to_numpy(),
                                 "model_hi": pm["hi"].to_numpy(), "baseline_lo": pb["lo"].to_numpy(),
                                 "baseline_mid": pb["mid"].to_numpy(), "baseline_hi": pb["hi"].to_numpy()}))
    return pd.concat(out).sort_values("row").reset_index(drop=True)


def method_metrics(predictions: pd.DataFrame) -> dict[str, dict[str, float]]:
    """:func:`interval_metrics` of the model and the baseline from out-of-sample predictions (weighted)."""
    y = predictions["observed"].to_numpy(float)
    w = predictions["weight"].to_numpy(float) if "weight" in predictions else None
    return {method: interval_metrics(predictions.rename(columns={f"{method}_{k}": k for k in ("lo", "mid", "hi")}), y, w)
            for method in ("model", "baseline")}
