"""The feasibility model as a stored, portfolio-level derived result.

Fitting the quantile models and cross-validating them takes seconds to a minute, so it runs when
the historical trials change (build, ``import ctgov``, ``refresh``), not while a feasibility lead
waits. Per data source (generated or ClinicalTrials.gov trials are never mixed) and target
(duration, rate), the result stores the fitted model (pickled; the warehouse is written only by the
workbench's own writers), its cross-validated metrics against the phase-median baseline, and the
out-of-fold prediction of every trial. Each record is known up to its own export's date
(:func:`~analytics.feasibility.trials.stored_trial_table`), and which of the model and the phase
median a user gets is chosen on start years placed from the source's latest record date, as the
evaluation places its split. Its data version is a fingerprint of every column of
``historical_trials`` the model reads (:func:`reference_fingerprint`), the dates that censor a
running trial (last update, export date) included.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import sklearn

from analytics.core.derived import DerivedResult, RefreshRun
from analytics.feasibility.model import MIN_TRAINING_TRIALS, TARGETS, cross_validate, method_metrics, training_data
from analytics.feasibility.selection import FeasibilityPredictor, fit_predictor, validation_window
from analytics.feasibility.trials import TRIAL_SQL, stored_trial_table

MODEL_SEED = 20_260_601
TABLES = ("feasibility_models", "feasibility_model_metrics", "feasibility_cv_predictions")
FINGERPRINT_SQL = """
SELECT count(*) || ':' || coalesce(sum(hash(nct_id, title, status, phase, conditions, enrollment, start_date,
       completion_date, primary_completion_date, n_sites, countries, data_source, study_type, sponsor_class,
       interventions, sex, min_age_years, max_age_years, healthy_volunteers, eligibility_criteria, primary_outcome,
       secondary_outcome, arm_count, last_update_date, export_as_of)), 0) AS fingerprint
FROM {table}
"""


def reference_fingerprint(con) -> str:
    """The fingerprint of ``historical_trials`` through a writer's connection."""
    return str(con.execute(FINGERPRINT_SQL.format(table="main.historical_trials")).fetchone()[0])


def reader_fingerprint(wh) -> str:
    """The same fingerprint through a reader (:meth:`~analytics.core.warehouse.Warehouse.reference`)."""
    return str(wh.reference(FINGERPRINT_SQL.format(table="historical_trials"))["fingerprint"].iloc[0])


def fit_source(trials: pd.DataFrame, source: str, progress=lambda message: None,
               as_of_year: int | None = None) -> dict[str, list[dict]]:
    """Model rows, metric rows and prediction rows for one data source's trials.

    The stored predictor holds the model and the phase median and which of the two a user gets,
    chosen on the start years :data:`~analytics.feasibility.selection.SETTLED_YEARS` before the
    as-of year (``as_of_year``; the latest start when not given).
    """
    out: dict[str, list[dict]] = {t: [] for t in TABLES}
    if as_of_year is None:
        as_of_year = int(trials["start_year"].max())
    window = validation_window(as_of_year)
    for target in TARGETS:
        features, y, rows, weights = training_data(trials, target)
        if len(y) < MIN_TRAINING_TRIALS:
            continue
        progress(f"{source} {target}: cross-validating on {len(y):,} trials")
        predictions = cross_validate(features, y, rows["phase"], weights, seed=MODEL_SEED)
        for method, metrics in method_metrics(predictions).items():
            out["feasibility_model_metrics"].append({"data_source": source, "target": target, "method": method,
                                                     "trials": metrics["n"], **{k: v for k, v in metrics.items() if k != "n"}})
        natural = {c: np.exp(predictions[c].to_numpy()) for c in predictions.columns if c not in ("row", "fold", "weight")}
        out["feasibility_cv_predictions"] += [
            {"data_source": source, "target": target, "nct_id": nct, **{c: float(v[i]) for c, v in natural.items()}}
            for i, nct in enumerate(rows["nct_id"].to_numpy()[predictions["row"].to_numpy()])]
        predictor = fit_predictor(trials, target, MODEL_SEED, window)
        model = predictor.model
        out["feasibility_models"].append({
            "data_source": source, "target": target, "model": pickle.dumps(predictor, protocol=pickle.HIGHEST_PROTOCOL),
            "trained_on": model.trained_on, "calibrated_on": model.calibrated_on, "correction": model.correction,
            "latest_start": rows["start_date"].max(), "sklearn_version": sklearn.__version__})
    return out


def compute_feasibility_model(run: RefreshRun) -> dict[str, pd.DataFrame]:
    """Every data source's models, metrics and out-of-fold predictions (each record as of its export's date)."""
    trials = stored_trial_table(run.warehouse.reference(TRIAL_SQL), run.as_of)
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    for source in sorted(trials["data_source"].dropna().unique()):
        chosen = trials[trials["data_source"] == source]
        # The choice window is placed from the source's latest export date (its records know nothing later).
        for table, found in fit_source(chosen, source, run.progress, int(chosen["as_of_date"].max().year)).items():
            rows[table] += found
    run.inputs["trials"] = int(len(trials))
    return {table: pd.DataFrame(found) for table, found in rows.items()}


FEASIBILITY_MODEL_RESULT = DerivedResult(
    name="feasibility_model",
    description="Duration and rate models from historical trials, cross-validated against the phase median",
    tables=TABLES,
    compute=compute_feasibility_model,
    code=("analytics.feasibility.results", "analytics.feasibility.model", "analytics.feasibility.selection",
          "analytics.feasibility.censoring", "analytics.feasibility.trials",
          "analytics.feasibility.complexity", "analytics.feasibility.conditions", "analytics.feasibility.places"),
    params=(("seed", MODEL_SEED), ("sklearn", sklearn.__version__)),
    reference=reference_fingerprint,
)


def load_model(blob: bytes) -> FeasibilityPredictor:
    """A stored model (only ever written by :func:`fit_source`)."""
    return pickle.loads(blob)  # noqa: S301 - the warehouse's derived tables are written by the workbench only
