"""Evaluation of the feasibility model: a split by start year, on generated trials and on real registry exports.

Train on trials that started before ``split`` (older), test on those that started in the
:data:`TEST_WINDOW_YEARS` years from it (newer), ``split`` being the as-of year minus
:data:`SPLIT_YEARS_BEFORE_AS_OF` so most test trials have finished. Only finished trials have an
outcome, so test figures are weighted by the inverse chance of having finished by the as-of date
(as the model's training is; unweighted figures are reported beside them) and the share of the
window's trials still running is reported: those are the long ones, and no weighting fully
restores them.

* **generated**: the historical trials of freshly generated portfolios (preset ``demo``: 3,000
  trials each; held-out seeds, never used while developing);
* **real**: the ClinicalTrials.gov exports in ``../shared/data/ctgov`` imported into a temporary
  warehouse with ``python -m analytics import ctgov`` (the same code path as a user's import). Their
  as-of date is taken as the latest start date of a trial that has started (the exports carry no
  download date).

Per data set and target (duration, rate): median absolute error of the log median, 80% interval
coverage and width, pinball loss, for the model and the phase-median baseline; the targets are
coverage within 5 points of 80% and a median absolute error of log duration at least 20% below the
baseline's.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.evaluation import target_lines
from analytics.feasibility.model import TARGETS, ConformalQuantileModel, PhaseBaseline, censoring_weights, \
    interval_metrics, training_data
from analytics.feasibility.trials import RUNNING, build_trial_table

TEST_SEEDS = (9401, 9402, 9403)  # held out: never run while developing
PRESET = "demo"
SPLIT_YEARS_BEFORE_AS_OF = 8
TEST_WINDOW_YEARS = 3
COVERAGE_POINTS = 5.0
MAE_REDUCTION = 0.20
MODEL_SEED = 7
CTGOV_FOLDER = Path(__file__).resolve().parents[3] / "shared" / "data" / "ctgov"
CTGOV_FILES = ("alzheimer_ctg-studies.csv", "pragmatic_aging_ctg-studies.csv", "urology_ctg-studies.json.zip")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def split_evaluation(trials: pd.DataFrame, as_of: dt.date) -> dict[str, object]:
    """Train on older trials, test on newer ones, for both targets (see the module docstring)."""
    split = as_of.year - SPLIT_YEARS_BEFORE_AS_OF
    window = (split, split + TEST_WINDOW_YEARS - 1)
    years = trials["start_year"].astype(float)
    old, new = trials[years < split], trials[(years >= window[0]) & (years <= window[1])]
    follow_up = trials["follow_up_months"].to_numpy(float)  # censoring times of every started trial
    out: dict[str, object] = {"as_of": as_of.isoformat(), "train_start_before": split, "test_start_years": list(window),
                              "window_trials": int(len(new)),
                              "window_still_running": int(new["status"].isin(RUNNING).sum()),
                              "window_share_still_running": float(new["status"].isin(RUNNING).mean()) if len(new) else None}
    for target in TARGETS:
        x_train, y_train, rows_train, w_train = training_data(old, target)
        x_test, y_test, rows_test, _ = training_data(new, target)
        if len(y_train) < 40 or len(y_test) < 10:
            out[target] = {"skipped": f"{len(y_train)} training and {len(y_test)} test trials with a known outcome"}
            continue
        duration = rows_test["duration_months"].to_numpy(float)
        w_test = censoring_weights(np.where(np.isfinite(duration), duration, 0.0), follow_up)
        model = ConformalQuantileModel(seed=MODEL_SEED).fit(x_train, y_train, w_train)
        base = PhaseBaseline().fit(rows_train["phase"], y_train, w_train)
        predicted = {"model": model.predict(x_test), "baseline": base.predict(rows_test["phase"])}
        entry: dict[str, object] = {"train": int(len(y_train)), "test": int(len(y_test))}
        for method, pred in predicted.items():
            entry[method] = {"weighted": interval_metrics(pred, y_test, w_test),
                             "unweighted": interval_metrics(pred, y_test)}
        out[target] = entry
    return out


def _targets(result: dict[str, object]) -> dict[str, dict[str, object]]:
    checks: dict[str, dict[str, object]] = {}
    for name, data in result["datasets"].items():
        for target in TARGETS:
            entry = data.get(target, {})
            if "model" not in entry:
                continue
            coverage = entry["model"]["weighted"]["coverage_80"]
            checks[f"{name} {target} 80% coverage within {COVERAGE_POINTS:g} points"] = {
                "coverage": round(coverage, 3), "met": abs(coverage - 0.8) * 100 <= COVERAGE_POINTS}
        duration = data.get("duration", {})
        if "model" in duration:
            model = duration["model"]["weighted"]["median_abs_log_error"]
            baseline = duration["baseline"]["weighted"]["median_abs_log_error"]
            reduction = 1 - model / baseline
            checks[f"{name} duration error {MAE_REDUCTION:.0%} below the phase median"] = {
                "model": round(model, 3), "baseline": round(baseline, 3), "reduction": round(reduction, 3),
                "met": reduction >= MAE_REDUCTION}
    return checks


def generated_trials(seed: int) -> tuple[pd.DataFrame, dt.date]:
    """The trial table of one generated history (what ``build`` writes for the demo preset)."""
    from analytics.generator.history import historical_trials
    from analytics.generator.presets import PRESETS

    preset = PRESETS[PRESET]
    columns, _ = historical_trials(preset, seed)
    raw = pd.DataFrame({k: v.to_pandas() for k, v in columns.items()})
    return build_trial_table(raw, preset.as_of), preset.as_of


def real_trials(folder: Path = CTGOV_FOLDER) -> tuple[pd.DataFrame, dt.date] | None:
    """The shared exports imported into a temporary warehouse by the import command; None when absent."""
    from analytics.cli import main
    from analytics.core import warehouse

    files = [folder / name for name in CTGOV_FILES if (folder / name).exists()]
    if not files:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ctgov.duckdb"
        warehouse.create_empty(db)
        for path in files:
            _log(f"importing {path.name}")
            if main(["import", "ctgov", str(path), "--db", str(db)]) != 0:
                raise RuntimeError(f"the import of {path} failed")
        with warehouse.inspect(db) as con:
            from analytics.feasibility.trials import TRIAL_SQL

            raw = con.execute(TRIAL_SQL.replace("FROM historical_trials", "FROM main.historical_trials")).df()
        warehouse.close_all()
    started = raw[~raw["status"].isin(["NOT_YET_RECRUITING", "WITHDRAWN"])]
    as_of = pd.to_datetime(started["start_date"]).max().date()
    return build_trial_table(raw, as_of), as_of


def evaluate_feasibility(seeds: tuple[int, ...] = TEST_SEEDS, include_real: bool = True) -> dict[str, object]:
    """The split-by-start-year evaluation on each generated seed (pooled and per seed) and the real exports."""
    started = time.perf_counter()
    datasets: dict[str, object] = {}
    pooled = []
    for seed in seeds:
        _log(f"generated history, seed {seed}")
        trials, as_of = generated_trials(seed)
        datasets[f"generated seed {seed}"] = split_evaluation(trials, as_of)
        pooled.append(trials.assign(nct_id=trials["nct_id"] + f"-{seed}"))
    if len(pooled) > 1:
        datasets["generated pooled"] = split_evaluation(pd.concat(pooled, ignore_index=True), as_of)
    if include_real:
        real = real_trials()
        if real is not None:
            datasets["ClinicalTrials.gov exports"] = split_evaluation(*real)
    result: dict[str, object] = {"preset": PRESET, "seeds": list(seeds), "datasets": datasets}
    result["targets"] = _targets(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def summary_lines(result: dict[str, object]) -> list[str]:
    lines = [f"Feasibility model, split by start year: generated ({result['preset']} preset, seeds {result['seeds']}) "
             "and the ClinicalTrials.gov exports"]
    for name, data in result["datasets"].items():
        lines.append(f"  {name}: train start < {data['train_start_before']}, test {data['test_start_years']} "
                     f"({data['window_trials']} trials in the window, {data['window_still_running']} still running)")
        for target in TARGETS:
            entry = data.get(target, {})
            if "model" not in entry:
                lines.append(f"    {target}: {entry.get('skipped', 'no figures')}")
                continue
            for method in ("model", "baseline"):
                w, u = entry[method]["weighted"], entry[method]["unweighted"]
                lines.append(f"    {target} {method:8} (train {entry['train']}, test {entry['test']}): median |log error| "
                             f"{w['median_abs_log_error']:.3f} (unweighted {u['median_abs_log_error']:.3f}), "
                             f"80% coverage {w['coverage_80']:.1%} (unweighted {u['coverage_80']:.1%}), "
                             f"width x{w['median_width_ratio']:.1f}, pinball {w['pinball']:.3f}")
    lines += target_lines(result["targets"])
    lines.append(f"  ran in {result['seconds']} s")
    return lines
