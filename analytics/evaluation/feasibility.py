"""Evaluation of the feasibility model: a split by start year, on generated trials and on real registry exports.

Train on trials that started before ``split`` (older), test on those that started in the
:data:`~analytics.feasibility.selection.WINDOW_YEARS` years from it (newer), ``split`` being the
as-of year minus :data:`SPLIT_YEARS_BEFORE_AS_OF` so most test trials have finished. Which of the
model and the phase median a user gets is chosen inside the training years (fitted on starts
before ``split - 3``, compared on ``split - 3`` to ``split - 1``: :func:`~analytics.feasibility.
selection.fit_predictor`), never on the test window.

Scoring (:func:`~analytics.feasibility.selection.score`): durations over every test trial that
completed or is still running, running ones censored at the as-of date or at their record's last
update when that is earlier (:func:`~analytics.feasibility.trials.observed_until`; Kaplan-Meier on each
interval's scale, :mod:`analytics.feasibility.censoring`), never dropped and never taken at their
anticipated dates; rates over the ended trials, weighted by the inverse chance of having ended,
from the test window's own follow-up. On generated histories the true durations of running trials
are known, so the duration figures are also computed against the truth, and the targets are checked
on those; on the real exports on the censored estimate. The completed-only, unweighted figures are
reported beside them: they over-state coverage (the longest trials, which intervals miss most, are
the ones still running).

* **generated**: the historical trials of freshly generated portfolios (preset ``demo``: 3,000
  trials each; held-out seeds, never used while developing);
* **real**: the ClinicalTrials.gov exports in ``../shared/data/ctgov`` imported into a temporary
  warehouse with ``python -m analytics import ctgov`` (the same code path as a user's import). The
  exports were downloaded on different days and carry no download date, so the import dates each
  by what its records have seen (:func:`~analytics.importers.ctgov.export_as_of`: the latest "Last
  Update Posted", else the latest start of a started trial) and stores it with every record
  (``historical_trials.export_as_of``); each record is known up to its own export's date
  (censoring, follow-up, whether it has started), read as the app reads it
  (:func:`~analytics.feasibility.trials.stored_trial_table`); the split by start year is placed
  from the latest of them.

``--calibrate`` also scores the generated calibration seeds under each rule for running records
past their anticipated completion and not updated since (:data:`~analytics.feasibility.trials.
STALE_RULES`: censored at the last update, excluded, or read as current at the as-of date) and for
records of unknown status (:data:`~analytics.feasibility.trials.UNKNOWN_RULES`: censored at the
last update or excluded), each against the true durations; the rules are chosen there, never on
the test window.

Per data set and target (duration, rate): median absolute error of the log median, 80% interval
coverage and width, for the model and the phase-median baseline, and which one a user gets; the
targets are the model's coverage within 5 points of 80% and its median absolute error of log
duration at least 20% below the baseline's.
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
from analytics.feasibility.censoring import survival_functions
from analytics.feasibility.model import TARGETS, feature_frame, interval_metrics, training_data
from analytics.feasibility.selection import METHOD_LABELS, METHODS, MIN_WINDOW_TRIALS, SETTLED_YEARS, WINDOW_YEARS, \
    duration_population, fit_predictor, score, validation_window
from analytics.feasibility.trials import STALE_RULES, UNKNOWN_RULES, build_trial_table, record_as_of

# Held out. 9401-9403 were measured in several rounds while the model changed, so they are no
# longer held out; these fresh ones are measured once per change, with the settings fixed.
TEST_SEEDS = (9411, 9412, 9413)
CALIBRATION_SEEDS = (9301, 9302, 9303)  # settings are chosen on these (``eval feasibility --calibrate``)
PRESET = "demo"
SPLIT_YEARS_BEFORE_AS_OF = SETTLED_YEARS
COVERAGE_POINTS = 5.0
BOOTSTRAP_RESAMPLES = 200  # resamples of a test window for the 95% intervals
BOOTSTRAP_SEED = 11
MAE_REDUCTION = 0.20
MODEL_SEED = 7
CTGOV_FOLDER = Path(__file__).resolve().parents[3] / "shared" / "data" / "ctgov"
CTGOV_FILES = ("alzheimer_ctg-studies.csv", "pragmatic_aging_ctg-studies.csv", "urology_ctg-studies.json.zip")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


COHORT_MONTHS = (12, 24, 36, 48)  # durations by start cohort are read up to 48 months, which every cohort can reach
COHORTS_BEFORE_WINDOW = 3


def duration_by_start_cohort(trials: pd.DataFrame, split: int) -> list[dict[str, object]]:
    """Kaplan-Meier share of trials still running at 12-48 months, by start cohort of :data:`WINDOW_YEARS` years.

    The test window's cohort (starts from ``split``) and the :data:`COHORTS_BEFORE_WINDOW` before it,
    over the same population the duration is scored on (completed trials as events, running ones
    censored where their records stop), each read only up to the last of :data:`COHORT_MONTHS` so
    cohorts with less follow-up compare on the same span. A diagnostic of drift between the years a
    model is trained on and the years it is tested on; nothing is fitted to it.
    """
    rows = duration_population(trials)
    years = rows["start_year"].astype(float)
    span = COHORT_MONTHS[-1]
    out = []
    for first in range(split - COHORTS_BEFORE_WINDOW * WINDOW_YEARS, split + 1, WINDOW_YEARS):
        cohort = rows[(years >= first) & (years < first + WINDOW_YEARS)]
        if len(cohort) < MIN_WINDOW_TRIALS:
            continue
        months = cohort["duration_months"].to_numpy(float)
        event = cohort["completed"].to_numpy(bool) & (months <= span)
        still_running, _ = survival_functions(np.minimum(months, span), event)
        running = [float(still_running(m)) for m in COHORT_MONTHS]
        times = np.unique(months[event])
        below = times[still_running(times) <= 0.5]
        out.append({"start_years": [first, first + WINDOW_YEARS - 1], "trials": int(len(cohort)),
                    "completed": int(cohort["completed"].sum()), "test_window": first == split,
                    "still_running_at_months": dict(zip((str(m) for m in COHORT_MONTHS), running)),
                    "median_months": float(below[0]) if len(below) else None})
    return out


def split_evaluation(trials: pd.DataFrame, as_of: dt.date, truth: pd.Series | None = None) -> dict[str, object]:
    """Train on older trials, test on newer ones, for both targets (see the module docstring).

    ``truth`` (generated histories only): every trial's true duration in months by NCT number, so
    the duration figures are also computed over the window's running trials at their real durations.
    """
    split, last = validation_window(as_of.year, SPLIT_YEARS_BEFORE_AS_OF)
    years = trials["start_year"].astype(float)
    old, new = trials[years < split], trials[(years >= split) & (years <= last)]
    out: dict[str, object] = {"as_of": as_of.isoformat(), "train_start_before": split, "test_start_years": [split, last],
                              "window_trials": int(len(new)),
                              "window_still_running": int(new["still_running"].sum()),
                              "window_share_still_running": float(new["still_running"].mean()) if len(new) else None,
                              "duration_by_start_cohort": duration_by_start_cohort(trials, split)}
    for target in TARGETS:
        predictor = fit_predictor(old, target, MODEL_SEED, validation_window(split, WINDOW_YEARS))
        test = len(duration_population(new)) if target == "duration" else len(training_data(new, target)[1])
        if predictor is None or test < MIN_WINDOW_TRIALS:
            out[target] = {"skipped": f"{len(training_data(old, target)[1])} training and {test} test trials"}
            continue
        entry: dict[str, object] = {"train": predictor.model.trained_on + predictor.model.calibrated_on,
                                    "test": test, "scoring": "censored" if target == "duration" else "weighted",
                                    "user_gets": predictor.method, "choice": predictor.validation,
                                    "correction": predictor.model.correction}
        for method in METHODS:
            predict = lambda f, m=method: predictor.predict_with(m, f)  # noqa: E731 - one closure per method
            entry[method] = {entry["scoring"]: score(predict, new, target)}
            completed = new[new["completed"].astype(bool)] if target == "duration" else new
            x, y, _, _ = training_data(completed, target)
            entry[method]["completed only, unweighted"] = interval_metrics(predict(x), y)
            if truth is not None and target == "duration":
                rows = duration_population(new)
                y_true = np.log(rows["nct_id"].map(truth).to_numpy(float))
                entry[method]["truth"] = interval_metrics(predict(feature_frame(rows)), y_true)
        if truth is not None and target == "duration":
            entry["scoring"] = "truth"
        entry["intervals"] = bootstrap_intervals(predictor, new, target, entry["scoring"], truth)
        out[target] = entry
    return out


def bootstrap_intervals(predictor, window: pd.DataFrame, target: str, scoring: str,
                        truth: pd.Series | None = None) -> dict[str, object]:
    """95% bootstrap intervals of the headline figures: the window's trials resampled, the scoring rule rerun.

    The fitted predictor is fixed (the intervals are the test window's sampling noise, not the fit's).
    Per method the error and coverage; for duration also the error reduction against the phase
    median, both methods scored on the same resamples.
    """
    features = feature_frame(window)
    full = {m: predictor.predict_with(m, features) for m in METHODS}
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    rows = duration_population(window) if scoring == "truth" else None
    y_true = np.log(rows["nct_id"].map(truth).to_numpy(float)) if rows is not None else None
    draws: dict[str, list[float]] = {}
    for _ in range(BOOTSTRAP_RESAMPLES):
        if rows is not None:
            pick = rng.integers(0, len(rows), len(rows))
            figures = {m: interval_metrics(full[m].loc[rows.index[pick]], y_true[pick]) for m in METHODS}
        else:
            sample = window.iloc[rng.integers(0, len(window), len(window))]
            figures = {m: score(lambda f, m=m: full[m].loc[f.index], sample, target) for m in METHODS}
        for m in METHODS:
            for metric in ("median_abs_log_error", "coverage_80"):
                draws.setdefault(f"{m} {metric}", []).append(figures[m].get(metric, np.nan))
        if target == "duration":
            draws.setdefault("reduction", []).append(
                1 - figures["model"]["median_abs_log_error"] / figures["baseline"]["median_abs_log_error"])
    return {name: [round(float(v), 3) for v in np.nanpercentile(values, [2.5, 97.5])] for name, values in draws.items()}


def _targets(result: dict[str, object]) -> dict[str, dict[str, object]]:
    """The issue's targets for the model on each data set (its headline scoring), with what a user gets."""
    checks: dict[str, dict[str, object]] = {}
    for name, data in result["datasets"].items():
        for target in TARGETS:
            entry = data.get(target, {})
            if "model" not in entry:
                continue
            figures = {m: entry[m][entry["scoring"]] for m in METHODS}
            coverage = figures["model"]["coverage_80"]
            checks[f"{name} {target} 80% coverage within {COVERAGE_POINTS:g} points ({entry['scoring']})"] = {
                "coverage": round(coverage, 3), "interval_95": entry["intervals"]["model coverage_80"],
                "user_gets": entry["user_gets"],
                "user_gets_coverage": round(figures[entry["user_gets"]]["coverage_80"], 3),
                "met": abs(coverage - 0.8) * 100 <= COVERAGE_POINTS}
            if target != "duration":
                continue
            model, baseline = (figures[m]["median_abs_log_error"] for m in METHODS)
            reduction = 1 - model / baseline
            checks[f"{name} duration error {MAE_REDUCTION:.0%} below the phase median ({entry['scoring']})"] = {
                "model": round(model, 3), "baseline": round(baseline, 3), "reduction": round(reduction, 3),
                "interval_95": entry["intervals"]["reduction"],
                "user_gets": entry["user_gets"], "met": reduction >= MAE_REDUCTION}
    return checks


def generated_trials(seed: int, stale_rule: str = STALE_RULES[0],
                     unknown_rule: str = UNKNOWN_RULES[0]) -> tuple[pd.DataFrame, dt.date, pd.Series]:
    """The trial table of one generated history (what ``build`` writes for the demo preset), the as-of
    date, and every trial's true duration in months by NCT number (running trials' too)."""
    from analytics.generator.history import historical_trials
    from analytics.generator.presets import PRESETS

    preset = PRESETS[PRESET]
    truth: dict[str, np.ndarray] = {}
    columns, _ = historical_trials(preset, seed, truth=truth)
    raw = pd.DataFrame({k: v.to_pandas() for k, v in columns.items()})
    return (build_trial_table(raw, preset.as_of, stale_rule, unknown_rule), preset.as_of,
            pd.Series(truth["duration_months"], index=truth["nct_id"]))


def shared_exports(folder: Path = CTGOV_FOLDER) -> tuple[Path, ...]:
    """The shared ClinicalTrials.gov exports that are present (none when the shared folder is absent)."""
    return tuple(folder / name for name in CTGOV_FILES if (folder / name).exists())


def export_nct_ids(files: tuple[Path, ...]) -> frozenset[str]:
    """The NCT numbers of the trials in these exports, read by the importer (nothing is written)."""
    from analytics.importers.ctgov import prepare_ctgov

    ids: set[str] = set()
    for path in files:
        load = prepare_ctgov(path)
        if load.report.refused:
            raise RuntimeError(f"{path} could not be read: " + "; ".join(e.text() for e in load.report.errors[:3]))
        ids |= set(load.tables["historical_trials"]["nct_id"].dropna())
    return frozenset(ids)


def real_records(files: tuple[Path, ...] | None = None) -> tuple[pd.DataFrame, pd.Series, dict[str, str]] | None:
    """Exports (default: the shared ones) imported into a temporary warehouse by the import command;
    None when there are none.

    Returns the ``historical_trials`` rows, each row's export date as the import stored it (a record
    in two exports as the later import left it) and each export's date by file name.
    """
    from analytics.cli import main
    from analytics.core import warehouse
    from analytics.feasibility.trials import TRIAL_SQL

    files = shared_exports() if files is None else files
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
            raw = con.execute(TRIAL_SQL.replace("FROM historical_trials", "FROM main.historical_trials")).df()
        warehouse.close_all()
    if raw["export_as_of"].isna().any():
        raise RuntimeError("an export shows no date it was downloaded; the evaluation needs every record dated")
    exports = {str(f): pd.Timestamp(d).date().isoformat()
               for f, d in raw.groupby("export_file")["export_as_of"].max().items()}
    return raw, record_as_of(raw, raw["export_as_of"].max().date()), exports


def real_trials(files: tuple[Path, ...] | None = None, exclude: frozenset[str] = frozenset()
                ) -> tuple[pd.DataFrame, dt.date, dict[str, str], int] | None:
    """The trial table of the exports (default: the shared ones), each record known up to its own
    export's date; the split by start year is placed from the latest export date. Also each export's
    date by file name and how many trials were left out because their NCT number is in ``exclude``
    (trials already measured in another data set)."""
    records = real_records(files)
    if records is None:
        return None
    raw, as_of, exports = records
    kept = ~raw["nct_id"].isin(exclude).to_numpy()
    if not kept.any():
        raise RuntimeError(f"every one of the {len(raw):,} trials of these exports is in the excluded exports; "
                           "nothing is left to score")
    raw, as_of = raw[kept].reset_index(drop=True), as_of[kept].reset_index(drop=True)
    return build_trial_table(raw, as_of), as_of.max().date(), exports, int((~kept).sum())


# (stale_rule, unknown_rule) of :func:`~analytics.feasibility.trials.build_trial_table`: the default
# first, then each alternative compared on the calibration seeds (one rule changed at a time).
RECORD_RULES = ((STALE_RULES[0], UNKNOWN_RULES[0]), *((rule, UNKNOWN_RULES[0]) for rule in STALE_RULES[1:]),
                *((STALE_RULES[0], rule) for rule in UNKNOWN_RULES[1:]))


def _rule_suffix(stale_rule: str, unknown_rule: str) -> str:
    """The data set name's suffix for a non-default rule pair ("" for the default)."""
    return "".join(f", {label}: {rule}" for label, rule, default in
                   (("stale records", stale_rule, STALE_RULES[0]), ("unknown status", unknown_rule, UNKNOWN_RULES[0]))
                   if rule != default)


def evaluate_feasibility(seeds: tuple[int, ...] = TEST_SEEDS, include_real: bool = True,
                         record_rules: tuple[tuple[str, str], ...] = RECORD_RULES[:1],
                         real_files: tuple[Path, ...] | None = None,
                         exclude_files: tuple[Path, ...] = ()) -> dict[str, object]:
    """The split-by-start-year evaluation on each generated seed (pooled and per seed) and the real exports.

    ``record_rules`` beyond the default (calibration runs): the generated data sets again under each
    other rule for running records past their anticipated completion and for records of unknown
    status (:func:`~analytics.feasibility.trials.build_trial_table`), each scored also against the
    true durations. ``real_files``: other exports instead of the shared ones (an empty ``seeds``
    scores only them); trials also in ``exclude_files`` (e.g. the shared exports, already measured)
    are left out, and the data set says how many.
    """
    started = time.perf_counter()
    datasets: dict[str, object] = {}
    for stale_rule, unknown_rule in record_rules:
        suffix = _rule_suffix(stale_rule, unknown_rule)
        pooled, truths = [], []
        for seed in seeds:
            _log(f"generated history, seed {seed}{suffix}")
            trials, as_of, truth = generated_trials(seed, stale_rule, unknown_rule)
            datasets[f"generated seed {seed}{suffix}"] = split_evaluation(trials, as_of, truth)
            pooled.append(trials.assign(nct_id=trials["nct_id"] + f"-{seed}"))
            truths.append(truth.rename(index=lambda nct, s=seed: f"{nct}-{s}"))
        if len(pooled) > 1:
            datasets[f"generated pooled{suffix}"] = split_evaluation(pd.concat(pooled, ignore_index=True), as_of,
                                                                     pd.concat(truths))
    if include_real:
        real = real_trials(real_files, export_nct_ids(exclude_files))
        if real is not None:
            trials, as_of, exports, excluded = real
            name = "ClinicalTrials.gov exports" + ("" if real_files is None else " (given files)")
            datasets[name] = {**split_evaluation(trials, as_of), "export_dates": exports,
                              "trials_left_out_as_already_measured": excluded}
    result: dict[str, object] = {"preset": PRESET, "seeds": list(seeds), "datasets": datasets}
    result["targets"] = _targets(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _cohort_text(cohort: dict[str, object]) -> str:
    first, last = cohort["start_years"]
    median = cohort["median_months"]
    return (f"{first}-{last}{' (test)' if cohort['test_window'] else ''} "
            + "/".join(f"{v:.0%}" for v in cohort["still_running_at_months"].values())
            + (f", median {median:.0f} mo" if median is not None else f", median over {COHORT_MONTHS[-1]} mo"))


def summary_lines(result: dict[str, object]) -> list[str]:
    lines = [f"Feasibility model, split by start year: generated ({result['preset']} preset, seeds {result['seeds']}) "
             "and the ClinicalTrials.gov exports"]
    for name, data in result["datasets"].items():
        lines.append(f"  {name}: train start < {data['train_start_before']}, test {data['test_start_years']} "
                     f"({data['window_trials']} trials in the window, {data['window_still_running']} still running)"
                     + (f"; {data['trials_left_out_as_already_measured']} trials left out as already measured"
                        if data.get("trials_left_out_as_already_measured") else ""))
        cohorts = data.get("duration_by_start_cohort") or []
        if cohorts:
            lines.append("    still running at " + "/".join(str(m) for m in COHORT_MONTHS) + " months (Kaplan-Meier), "
                         "by start cohort: " + "; ".join(_cohort_text(c) for c in cohorts))
        for target in TARGETS:
            entry = data.get(target, {})
            if "model" not in entry:
                lines.append(f"    {target}: {entry.get('skipped', 'no figures')}")
                continue
            choice = entry["choice"]
            chosen = (f"model {choice['model']['median_abs_log_error']:.3f} vs phase median "
                      f"{choice['baseline']['median_abs_log_error']:.3f}" if "model" in choice else choice.get("note"))
            lines.append(f"    {target}: the user gets the {METHOD_LABELS[entry['user_gets']].lower()} (chosen on starts "
                         f"{choice['window'][0]}-{choice['window'][1]}: {chosen}); conformal correction "
                         f"{entry['correction']:+.3f}")
            for method in METHODS:
                parts = [f"{kind}: |log error| {m['median_abs_log_error']:.3f}, 80% coverage {m['coverage_80']:.1%}"
                         for kind, m in entry[method].items()]
                width = entry[method][entry["scoring"]]["median_width_ratio"]
                ci = entry["intervals"]
                parts.append(f"95% intervals ({entry['scoring']}): |log error| "
                             f"{ci[f'{method} median_abs_log_error'][0]:.3f}-{ci[f'{method} median_abs_log_error'][1]:.3f}, "
                             f"coverage {ci[f'{method} coverage_80'][0]:.1%}-{ci[f'{method} coverage_80'][1]:.1%}")
                lines.append(f"    {target} {method:8} (train {entry['train']}, test {entry['test']}, width x{width:.1f}): "
                             + "; ".join(parts))
    lines += target_lines(result["targets"])
    lines.append(f"  ran in {result['seconds']} s")
    return lines
