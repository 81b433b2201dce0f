"""Back-test of the enrollment forecasts: generated studies cut at 10-70% of target, and the CDISC pilot.

Every study of the ``enrollment`` preset finishes enrolling before the as-of date, so its whole
history is known. Each study is cut when it has randomized 10/20/30/50/70% of its target; each
method sees only what was known at the cut (sites activated by then, randomizations by then, sites
written off by then) and forecasts the date the target is reached. Methods, in one run on the same
cuts:

* ``poisson_gamma``: the default model (plan prior, activation of pending sites, drift, random walk);
* ``pg_constant``: the classic constant-rate model (no drift, no random walk);
* ``pg_no_activation``: the default model ignoring sites not yet active;
* ``prophet``: Prophet on the study's weekly randomizations;
* ``linear``: the last 90 days' rate carried forward;
* ``plan``: the planned LPI, with P(on time) 1 when the study is at or ahead of its planned
  (linear) accrual at the cut and 0 otherwise.

Metrics per method and cut: completion-date error of the median (absolute in days, relative to the
remaining duration, signed), coverage and width of the 80% (10-90%) and 90% (5-95%) intervals,
pinball loss over the 5-95% quantiles (days), and the Brier score of P(target by the planned LPI)
on cuts before the planned LPI. 95% intervals are from a bootstrap over studies, stratified by seed.
The test seeds are never used in development; choices (the prior's certainty, the drift and the
random walk) were made on the calibration seeds (``--seeds`` runs any other set).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.enrollment.linear import linear_forecast, linear_p_by
from analytics.enrollment.poisson_gamma import PoissonGammaModel
from analytics.enrollment.prophet_baseline import prophet_forecast
from analytics.enrollment.site_table import build_site_table, screening_lag_days
from analytics.evaluation import target_lines
from analytics.generator.histories import EnrollmentHistory, enrollment_histories

# Held out: never run while developing, measured once after the settings are fixed. Retired: 8301-8303
# (held out until round 4, then used to compare model variants) and 8401-8403 (measured once in round 5,
# so used). Round 6 uses six fresh seeds (about 220 studies) to halve the variance of the coverage figures;
# 8501-8506, measured once after the ramp change, are retired in round 9 (the walk changed) for 8601-8606.
TEST_SEEDS = (8601, 8602, 8603, 8604, 8605, 8606)
# Every setting was chosen on these (8209-8216 added in round 5: 8 seeds, about 300 studies, left a
# gap of about 10 points of coverage at the early cuts between calibration and held-out seeds).
CALIBRATION_SEEDS = tuple(range(8201, 8217))
CUTS = (0.1, 0.2, 0.3, 0.5, 0.7)
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
METHODS = ("poisson_gamma", "pg_constant", "pg_no_activation", "prophet", "linear", "plan")
INTERVAL_METHODS = ("poisson_gamma", "pg_constant", "pg_no_activation", "prophet", "linear")
EVAL_SIMS = 2_000
BOOTSTRAP = 500
BEYOND_DAYS = 3653.0  # a forecast that never reaches the target counts as this many days after the cut
TARGETS = {
    "coverage_within_points": 5.0,
    "mae_at_30pct_reduction_vs_best_baseline": 0.30,
    "brier_better_than_plan": True,
}
PILOT_FOLDER = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdtm" / "cdiscpilot01"
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _days(cut: pd.Timestamp, date: pd.Timestamp | None) -> float:
    return BEYOND_DAYS if date is None or pd.isna(date) else float((pd.Timestamp(date) - cut).days)


def _pg_quantiles(model: PoissonGammaModel, cut: pd.Timestamp, planned_lpi, seed: int) -> tuple[dict, float]:
    forecast = model.predict(n_sims=EVAL_SIMS, seed=seed)
    dates = forecast.completion_dates(QUANTILES)
    return {q: _days(cut, d) for q, d in dates.items()}, forecast.p_target_by(planned_lpi)


PG_VARIANTS: dict[str, dict[str, object]] = {
    "poisson_gamma": {},
    "pg_constant": {"time_varying": False, "rate_walk": False},
    "pg_no_activation": {"include_pending": False},
}
# The choices tried on the calibration seeds (``--calibrate``). Rounds 1-4, on 8201-8208: the prior's
# certainty (0, 1%, 5%), the drift's prior SD (0.2, 0.5) and the random walk's prior (0, 0.06, 0.1);
# then the start-up ramp's share (0, 0.3, 0.5) with the drift's prior mean (0, -0.1, -0.2): ramp 0.3,
# mean 0. Round 5, on 8201-8216 (605 studies), against that model ("round 4": shift 120, drift SD 0.2):
# the drift's between-study SD (0.15, 0.1), a negative drift mean (-0.15, site rates do decline) with
# ramp 0.3 or 0.5, the latter also drawing the activation parameters from their uncertainty, and the
# activation delay's shift (EARLIEST_DAYS) 240 with drift mean 0 or -0.15: about 1% of sites activate
# more than 120 days before plan, and each such delay, scored at the shift's limit, inflated the fitted
# spread of delays and pushed pending sites' activations late.
# Chosen: shift 240 with drift SD 0.15. Round 6, on 8201-8213 (493 studies; the run was stopped by the
# clock at 8213), the grid below: with a ramp of 0.3 the drift's estimate on a nearly flat prior is +0.03
# to +0.12 a year against the generator's -0.15 (part of the real start-up shortfall read as rates rising
# with open time); a ramp of 0.5 brings it to -0.08 to +0.02 (means by cut, seeds 8201-8202). So the ramp was
# tried with the drift's prior as it is, wider, and with the rates' known decline as its mean (added
# after the first four seeds, when the ramp alone had moved forecasts earlier). Four variants had a median
# absolute error of 61 d at the 30% cut; ramp 0.5 had the smallest largest coverage deviation (4.6
# points; ramp 0.3: 5.8), so the rule below chose it. With the decline as the drift's mean the signed
# error was -6 to +7 d at every cut (ramp 0.5 alone: -9 to -36 d), but its intervals were wider and
# over-covered (80%: 86.8% at the 20% cut), so the rule did not pick it.
CALIBRATION_VARIANTS: dict[str, dict[str, object]] = {
    "round 5 (ramp=0.3)": {"ramp_share": 0.3},
    "ramp=0.3,drift_sd=0.3": {"ramp_share": 0.3, "drift_prior_sd": 0.3},
    "ramp=0.5 (the default)": {},
    "ramp=0.5,drift_sd=0.3": {"drift_prior_sd": 0.3},
    "ramp=0.5,drift_mean=-0.15": {"drift_prior_mean": -0.15},
    # Round 9 (the rows above now run with the round-9 walk): the walk's SD and where it starts. On
    # 8201-8213, largest coverage deviation / median absolute error at the 30% cut: per-study walk from the
    # average level (round 8's default) 4.6 / 61 d; per-study walk from its filtered level (a local-level
    # Kalman filter over the last 24 months) 4.8 / 61 d; the walk at its prior from the average level
    # 11.0 / 61 d; the walk at its prior from its filtered level 3.7 / 59 d, chosen by the rule below.
    "round 8: walk estimated per study, from the average level": {"walk_prior_months": 24.0,
                                                                  "walk_from_level": False},
    "walk estimated per study, from its filtered level": {"walk_prior_months": 24.0},
    "walk at its prior, from the average level": {"walk_from_level": False},
    "walk at its prior, from its filtered level (the default)": {},
}
# Chosen by a rule fixed before the held-out run: the smallest largest coverage deviation (80% and 90%,
# every cut) among variants whose median absolute error at the 30% cut is within 2% of the best.


def forecast_at_cut(sites: pd.DataFrame, subjects: pd.DataFrame, target: int, cut: pd.Timestamp,
                    planned_fpi, planned_lpi, dropped: pd.Series | None, seed: int,
                    methods: tuple[str, ...] = METHODS, variants: dict[str, dict[str, object]] | None = None
                    ) -> dict[str, dict[str, object]]:
    """Every method's completion quantiles (days after ``cut``) and P(on time) from data known at ``cut``."""
    randomized = subjects.dropna(subset=["randomization_date"])
    known = randomized[randomized["randomization_date"] <= cut]
    lag = screening_lag_days(subjects, cut)
    table = build_site_table(sites, known, cut, dropped, lag)
    out: dict[str, dict[str, object]] = {}
    for name, options in (variants or PG_VARIANTS).items():
        if name in methods or variants is not None:
            model = PoissonGammaModel(**options).fit(table, cut, target, planned_lpi, known["randomization_date"])
            quantiles, p = _pg_quantiles(model, cut, planned_lpi, seed)
            out[name] = {"quantiles": quantiles, "p_on_time": p}
    dates = known["randomization_date"]
    if "linear" in methods:
        lin = linear_forecast(dates, cut, target, QUANTILES)
        p = linear_p_by(dates, cut, target, planned_lpi) if planned_lpi is not None and pd.notna(planned_lpi) else np.nan
        out["linear"] = {"quantiles": {q: _days(cut, d) for q, d in lin.items()}, "p_on_time": p}
    if "prophet" in methods:
        horizon_weeks = int(BEYOND_DAYS // 7)
        result = prophet_forecast(dates, cut, target, horizon_weeks, QUANTILES, planned_lpi, seed=seed)
        if result is not None:
            out["prophet"] = {"quantiles": {q: _days(cut, d) for q, d in result["completion"].items()},
                              "p_on_time": result["p_on_time"]}
    if "plan" in methods and planned_lpi is not None and pd.notna(planned_lpi) and pd.notna(planned_fpi):
        span = max((planned_lpi - planned_fpi).days, 1)
        planned_now = target * np.clip((cut - planned_fpi).days / span, 0, 1)
        point = _days(cut, planned_lpi)
        out["plan"] = {"quantiles": {0.5: point}, "p_on_time": float(len(known) >= planned_now)}
    return out


def _cut_dates(randomized: pd.Series, target: int) -> dict[float, pd.Timestamp]:
    ordered = randomized.sort_values().reset_index(drop=True)
    return {f: ordered.iloc[int(np.ceil(f * target)) - 1] for f in CUTS}


def backtest_history(history: EnrollmentHistory, seed: int, methods: tuple[str, ...] = METHODS,
                     variants: dict[str, dict[str, object]] | None = None) -> list[dict[str, object]]:
    """Rows (one per cut and method) for one generated study; empty if it never reached its target."""
    facts = history.study
    target = int(facts["target_enrollment"])
    randomized = history.subjects["randomization_date"].dropna()
    if len(randomized) < target:
        return []
    true_lpi = randomized.sort_values().iloc[target - 1]
    sites = history.sites
    rows = []
    for fraction, cut in _cut_dates(randomized, target).items():
        dropped = sites["never_activates"] & (sites["selection_date"] + pd.Timedelta(days=365) < cut)
        results = forecast_at_cut(sites, history.subjects, target, cut, facts["planned_fpi"], facts["planned_lpi"],
                                  dropped, seed, methods, variants)
        truth = float((true_lpi - cut).days)
        on_time = bool(true_lpi <= facts["planned_lpi"])
        before_plan = bool(cut < facts["planned_lpi"])
        for method, result in results.items():
            rows.append({"seed": seed, "study_id": facts["study_id"], "cut": fraction, "method": method,
                         "truth_days": truth, "on_time": on_time, "before_planned_lpi": before_plan,
                         "p_on_time": result["p_on_time"], **{f"q{q}": v for q, v in result["quantiles"].items()}})
    return rows


def _pinball(row: pd.Series) -> float:
    losses = []
    for q in QUANTILES:
        value = row.get(f"q{q}")
        if value is None or pd.isna(value):
            return float("nan")
        diff = row["truth_days"] - value
        losses.append(max(q * diff, (q - 1) * diff))
    return float(np.mean(losses))


def _per_row_metrics(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["error"] = out["q0.5"] - out["truth_days"]
    out["abs_error"] = out["error"].abs()
    out["rel_error"] = out["abs_error"] / out["truth_days"].clip(lower=7)
    for name, lo, hi in (("80", "q0.1", "q0.9"), ("90", "q0.05", "q0.95")):
        if lo in out and hi in out:
            out[f"covered_{name}"] = ((out[lo] <= out["truth_days"]) & (out["truth_days"] <= out[hi])).astype(float)
            out[f"width_{name}"] = out[hi] - out[lo]
            out.loc[out[lo].isna(), [f"covered_{name}", f"width_{name}"]] = np.nan
    out["pinball"] = out.apply(_pinball, axis=1)
    out["brier"] = np.where(out["before_planned_lpi"], (out["p_on_time"] - out["on_time"].astype(float)) ** 2, np.nan)
    return out


SUMMARY_STATISTICS: dict[str, tuple[str, str]] = {
    # name: (column, how)
    "median_abs_error_days": ("abs_error", "median"),
    "median_rel_error": ("rel_error", "median"),
    "median_signed_error_days": ("error", "median"),
    "coverage_80": ("covered_80", "mean"),
    "coverage_90": ("covered_90", "mean"),
    "median_width_80_days": ("width_80", "median"),
    "median_width_90_days": ("width_90", "median"),
    "pinball_days": ("pinball", "mean"),
    "brier_on_time": ("brier", "mean"),
}


def _statistic(frame: pd.DataFrame, column: str, how: str) -> float:
    if column not in frame:
        return float("nan")
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    if values.empty:
        return float("nan")
    return float(values.median() if how == "median" else values.mean())


def summarize(metrics: pd.DataFrame, rng: np.random.Generator, bootstrap: int = BOOTSTRAP) -> dict[str, object]:
    """Per method and cut: each statistic with a 95% bootstrap interval over studies (stratified by seed)."""
    result: dict[str, object] = {}
    for (method, cut), group in metrics.groupby(["method", "cut"]):
        entry: dict[str, object] = {"n": int(len(group))}
        strata = [g.index.to_numpy() for _, g in group.groupby("seed")]
        resamples = [group.loc[np.concatenate([rng.choice(s, len(s)) for s in strata])] for _ in range(bootstrap)]
        for name, (column, how) in SUMMARY_STATISTICS.items():
            value = _statistic(group, column, how)
            if np.isnan(value):
                continue
            boot = np.array([_statistic(r, column, how) for r in resamples])
            boot = boot[np.isfinite(boot)]
            entry[name] = {"value": round(value, 4),
                           "ci95": [round(float(np.quantile(boot, 0.025)), 4), round(float(np.quantile(boot, 0.975)), 4)]}
        result.setdefault(method, {})[f"{cut:.0%}"] = entry
    return result


def target_checks(summary: dict[str, object]) -> dict[str, object]:
    """The issue's three targets, each with the measured figures behind it."""
    pg = summary.get("poisson_gamma", {})
    coverage = {cut: {level: pg[cut].get(f"coverage_{level}", {}).get("value") for level in ("80", "90")} for cut in pg}
    within = all(v is not None and abs(v * 100 - int(level)) <= TARGETS["coverage_within_points"]
                 for levels in coverage.values() for level, v in levels.items())
    at30 = {m: summary.get(m, {}).get("30%", {}).get("median_abs_error_days", {}).get("value")
            for m in ("poisson_gamma", "prophet", "linear")}
    baselines = [v for m, v in at30.items() if m != "poisson_gamma" and v is not None]
    reduction = 1 - at30["poisson_gamma"] / min(baselines) if baselines and at30["poisson_gamma"] is not None else None
    brier = {}
    for m in ("poisson_gamma", "plan"):
        values = [summary.get(m, {}).get(cut, {}).get("brier_on_time", {}).get("value") for cut in summary.get(m, {})]
        brier[m] = [v for v in values if v is not None]
    brier_mean = {m: float(np.mean(v)) if v else None for m, v in brier.items()}
    better = (brier_mean["poisson_gamma"] is not None and brier_mean["plan"] is not None
              and brier_mean["poisson_gamma"] < brier_mean["plan"])
    return {
        "coverage_within_5_points_at_every_cut": {"met": bool(within), "coverage": coverage},
        "mae_at_30pct_at_least_30pct_below_best_baseline": {
            "met": bool(reduction is not None and reduction >= TARGETS["mae_at_30pct_reduction_vs_best_baseline"]),
            "median_abs_error_days": at30, "reduction": None if reduction is None else round(reduction, 4)},
        "brier_better_than_plan": {"met": bool(better), "mean_over_cuts": brier_mean},
    }


def backtest_pilot(folder: Path = PILOT_FOLDER, workdir: Path | None = None, seed: int = 0) -> dict[str, object] | None:
    """Forecast the CDISC pilot's last randomization from each cut (the real history, via the SDTM importer).

    The pilot planned 300 subjects (TS PLANSUB) and randomized 254; the back-test forecasts when the
    254th was randomized, from cuts at 10-70% of 254, with the sites active by each cut (the SDTM has
    no planned activation dates, so no plan prior and no pending sites).
    """
    if not folder.is_dir():
        return None
    from analytics.core import warehouse
    from analytics.core.scope import AccessScope, PortfolioFilter
    from analytics.enrollment.data import read_sites, read_subjects
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
    from analytics.importers.staging import commit

    study_id = "CDISCPILOT01"
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "pilot.duckdb"
        warehouse.create_empty(path)
        commit(prepare_sdtm(folder, path, SdtmOptions(study_id=study_id)), path)
        wh = warehouse.Warehouse.open(path)
        scope, filters = AccessScope.full_access(), PortfolioFilter(study_ids=(study_id,))
        sites = read_sites(wh, scope, filters)
        subjects = read_subjects(wh, scope, filters)
        warehouse.close_all()
    randomized = subjects["randomization_date"].dropna()
    target = len(randomized)
    true_lpi = randomized.max()
    cuts = []
    for fraction, cut in _cut_dates(randomized, target).items():
        results = forecast_at_cut(sites, subjects, target, cut, None, None, None, seed,
                                  ("poisson_gamma", "pg_constant", "prophet", "linear"))
        row = {"cut": f"{fraction:.0%}", "cut_date": cut.date().isoformat(),
               "actual_days_to_go": int((true_lpi - cut).days),
               "active_sites": int(((pd.to_datetime(sites["activation_date"]) <= cut)).sum())}
        for method, result in results.items():
            q = result["quantiles"]
            row[method] = {"median_days": q[0.5], "interval_80_days": [q[0.1], q[0.9]],
                           "interval_90_days": [q[0.05], q[0.95]],
                           "error_days": q[0.5] - row["actual_days_to_go"],
                           "covered_80": bool(q[0.1] <= row["actual_days_to_go"] <= q[0.9]),
                           "covered_90": bool(q[0.05] <= row["actual_days_to_go"] <= q[0.95])}
        cuts.append(row)
    return {"study_id": study_id, "randomized": target, "planned_subjects": 300, "sites": int(len(sites)),
            "first_randomization": randomized.min().date().isoformat(), "last_randomization": true_lpi.date().isoformat(),
            "cuts": cuts}


def evaluate_enrollment(seeds: tuple[int, ...] = TEST_SEEDS, preset: str = "enrollment",
                        max_studies: int | None = None, include_pilot: bool = True, workdir: Path | None = None,
                        log: Log = _stderr, bootstrap: int = BOOTSTRAP, calibrate: bool = False) -> dict[str, object]:
    """Run the back-test on ``seeds`` (and the pilot); the JSON-ready result.

    With ``calibrate`` it compares :data:`CALIBRATION_VARIANTS` of the Poisson-Gamma model instead
    of the methods (run it on :data:`CALIBRATION_SEEDS`, never on the test seeds).
    """
    methods, variants = ((), CALIBRATION_VARIANTS) if calibrate else (METHODS, None)
    started = time.perf_counter()
    rows: list[dict[str, object]] = []
    skipped = 0
    for seed in seeds:
        histories = enrollment_histories(preset, seed)[:max_studies]
        for i, history in enumerate(histories):
            out = backtest_history(history, seed, methods, variants)
            skipped += not out
            rows += out
            log(f"seed {seed}: study {i + 1}/{len(histories)} ({time.perf_counter() - started:.0f} s)")
    metrics = _per_row_metrics(pd.DataFrame(rows))
    summary = summarize(metrics, np.random.default_rng(0), bootstrap)
    result: dict[str, object] = {
        "preset": preset, "seeds": list(seeds), "cuts": list(CUTS),
        "methods": list(CALIBRATION_VARIANTS if calibrate else METHODS),
        "studies": int(metrics.groupby(["seed", "study_id"]).ngroups), "studies_not_finished": skipped,
        "share_on_time": round(float(metrics.drop_duplicates(["seed", "study_id"])["on_time"].mean()), 4),
        "summary": summary, "targets": {} if calibrate else target_checks(summary),
    }
    if include_pilot and not calibrate:
        log("CDISC pilot: importing and back-testing")
        result["cdisc_pilot"] = backtest_pilot(workdir=workdir)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _fmt(entry: dict[str, object] | None, key: str, scale: float = 1.0, digits: int = 0) -> str:
    if not entry or key not in entry:
        return "-"
    value, (lo, hi) = entry[key]["value"], entry[key]["ci95"]
    return f"{value * scale:.{digits}f} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def summary_lines(result: dict[str, object]) -> list[str]:
    """The headline figures, one line per method and cut."""
    lines = [f"Enrollment back-test: preset {result['preset']}, seeds {result['seeds']}, {result['studies']} studies "
             f"({result['studies_not_finished']} never reached target, left out), {result['share_on_time']:.0%} on time"]
    for method, cuts in result["summary"].items():
        lines.append(f"  {method}")
        for cut, entry in cuts.items():
            lines.append(
                f"    cut {cut:>4} (n={entry['n']}): median |error| {_fmt(entry, 'median_abs_error_days')} d, "
                f"relative {_fmt(entry, 'median_rel_error', 100)}%, signed {_fmt(entry, 'median_signed_error_days')} d, "
                f"80% cover {_fmt(entry, 'coverage_80', 100)}% (width {_fmt(entry, 'median_width_80_days')} d), "
                f"90% cover {_fmt(entry, 'coverage_90', 100)}%, pinball {_fmt(entry, 'pinball_days', 1, 1)} d, "
                f"Brier {_fmt(entry, 'brier_on_time', 1, 3)}")
    lines += target_lines(result["targets"])
    pilot = result.get("cdisc_pilot")
    if pilot:
        lines.append(f"  CDISC pilot: {pilot['randomized']} randomized at {pilot['sites']} sites, "
                     f"{pilot['first_randomization']} to {pilot['last_randomization']}")
        for row in pilot["cuts"]:
            parts = [f"{m} {row[m]['median_days']:.0f} d [{row[m]['interval_80_days'][0]:.0f}, {row[m]['interval_80_days'][1]:.0f}]"
                     for m in ("poisson_gamma", "pg_constant", "prophet", "linear") if m in row]
            lines.append(f"    cut {row['cut']} ({row['cut_date']}, {row['active_sites']} sites active): actual "
                         f"{row['actual_days_to_go']} d to go; " + "; ".join(parts))
    lines.append(f"  ran in {result['seconds']} s")
    return lines
