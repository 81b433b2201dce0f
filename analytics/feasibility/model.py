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

Trained on trials whose outcome is known: durations of completed trials (running trials are
censored and cannot be a regression target; this leans the model to shorter trials for recent start
years, which the evaluation's split by start year exposes), rates of ended trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

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
NUMERIC = ("log_enrollment", "log_sites", "n_countries", "start_year", *COMPLEXITY_FEATURES)
FEATURES = (*CATEGORIES, *NUMERIC)
FEATURE_LABELS = {"phase": "Phase", "group": "Condition group", "sponsor_class": "Sponsor class",
                  "log_enrollment": "Target enrollment (log)", "log_sites": "Sites (log)", "n_countries": "Countries",
                  "start_year": "Start year", **COMPLEXITY_FEATURES}
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
    out["start_year"] = pd.to_numeric(trials["start_year"], errors="coerce").astype(float)
    for name in COMPLEXITY_FEATURES:
        out[name] = pd.to_numeric(trials[name], errors="coerce").astype(float)
    return out[list(FEATURES)]


def training_data(trials: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(features, log outcome, the trials) of the trials with a known ``target`` outcome."""
    column = TARGETS[target][0]
    known = trials[column].notna() & (trials[column] > 0)
    if target == "duration":
        known &= trials["completed"].astype(bool)
    rows = trials[known]
    return feature_frame(rows), np.log(rows[column].to_numpy(float)), rows


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

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> "ConformalQuantileModel":
        """Fit on a random 75% and calibrate the band on the other 25%."""
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(y))
        n_cal = max(int(round(CALIBRATION_SHARE * len(y))), 1)
        cal, train = order[:n_cal], order[n_cal:]
        # A feature no training trial carries says nothing (and cannot be binned): left out.
        self.columns = tuple(c for c in FEATURES if features[c].iloc[train].nunique(dropna=True) >= 1)
        x = features[list(self.columns)].to_numpy(float)
        with threadpool_limits(FIT_THREADS):
            self.models = {q: _booster(q, self.seed, self.columns).fit(x[train], y[train]) for q in QUANTILES}
            lo, _, hi = self._raw(x[cal])
        scores = np.maximum(lo - y[cal], y[cal] - hi)
        level = min(np.ceil((n_cal + 1) * COVERAGE) / n_cal, 1.0)
        self.correction = float(np.quantile(scores, level, method="higher"))
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

    def fit(self, phases: pd.Series, y: np.ndarray) -> "PhaseBaseline":
        frame = pd.DataFrame({"phase": phases.to_numpy(), "y": y})
        stats = frame.groupby("phase")["y"].agg(n="size", lo=lambda v: v.quantile(0.1), mid="median",
                                                hi=lambda v: v.quantile(0.9))
        self.table = stats[stats["n"] >= MIN_PHASE_TRIALS]
        self.overall = (float(np.quantile(y, 0.1)), float(np.median(y)), float(np.quantile(y, 0.9)))
        return self

    def predict(self, phases: pd.Series) -> pd.DataFrame:
        rows = self.table.reindex(phases.to_numpy())
        out = pd.DataFrame({k: rows[k].to_numpy() for k in ("lo", "mid", "hi")}, index=phases.index)
        for k, v in zip(("lo", "mid", "hi"), self.overall):
            out[k] = out[k].fillna(v)
        return out


def interval_metrics(pred: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Median absolute error of the log median, 80% coverage, median width (hi / lo), mean pinball loss."""
    lo, mid, hi = (pred[k].to_numpy(float) for k in ("lo", "mid", "hi"))
    pinball = np.mean([np.mean(np.maximum(q * (y - p), (q - 1) * (y - p))) for q, p in zip(QUANTILES, (lo, mid, hi))])
    return {"n": int(len(y)), "median_abs_log_error": float(np.median(np.abs(y - mid))),
            "coverage_80": float(np.mean((y >= lo) & (y <= hi))), "median_width_ratio": float(np.median(np.exp(hi - lo))),
            "pinball": float(pinball)}


def cross_validate(features: pd.DataFrame, y: np.ndarray, phases: pd.Series, seed: int = 0,
                   folds: int = CV_FOLDS) -> pd.DataFrame:
    """Out-of-fold predictions of the model and the baseline for every trial (log scale)."""
    out = []
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(features)):
        model = ConformalQuantileModel(seed=seed + fold).fit(features.iloc[train], y[train])
        base = PhaseBaseline().fit(phases.iloc[train], y[train])
        pm, pb = model.predict(features.iloc[test]), base.predict(phases.iloc[test])
        out.append(pd.DataFrame({"row": test, "fold": fold, "observed": y[test],
                                 "model_lo": pm["lo"].to_numpy(), "model_mid": pm["mid"].to_numpy(),
                                 "model_hi": pm["hi"].to_numpy(), "baseline_lo": pb["lo"].to_numpy(),
                                 "baseline_mid": pb["mid"].to_numpy(), "baseline_hi": pb["hi"].to_numpy()}))
    return pd.concat(out).sort_values("row").reset_index(drop=True)


def method_metrics(predictions: pd.DataFrame) -> dict[str, dict[str, float]]:
    """:func:`interval_metrics` of the model and the baseline from out-of-sample predictions."""
    y = predictions["observed"].to_numpy(float)
    return {method: interval_metrics(predictions.rename(columns={f"{method}_{k}": k for k in ("lo", "mid", "hi")}), y)
            for method in ("model", "baseline")}
