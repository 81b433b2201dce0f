"""Speed of the Poisson-Gamma predictive simulation: 10,000 simulations of a 500-site study.

The study is synthetic and fixed (seeded): 500 sites, of which 400 are active with Gamma-distributed
counts over up to two years and 100 are still pending with planned activation dates over the next
year, target 2,000 with 40% randomized. ``fit`` (maximum likelihood, activation model) and
``predict`` (the simulation) are timed separately; the figure is the median over ``runs``. A second
case has all 500 sites pending (a study at design stage), the most expensive shape.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from analytics.enrollment.poisson_gamma import PoissonGammaModel

TARGET_SECONDS = 0.3
N_SITES = 500
N_SIMS = 10_000


def synthetic_site_table(n_sites: int = N_SITES, pending_share: float = 0.2, seed: int = 1) -> tuple[pd.DataFrame, pd.Timestamp]:
    """A site table shaped like a large Phase 3 study at a cut, and the cut date (see :func:`synthetic_dates`)."""
    rng = np.random.default_rng(seed)
    cut = pd.Timestamp("2026-01-01")
    pending = rng.uniform(size=n_sites) < pending_share
    open_days = np.where(pending, 0.0, rng.uniform(30, 730, n_sites))
    rate = rng.gamma(1.5, 1 / 1.5, n_sites) * 0.6 / 30.4375
    counts = np.where(pending, 0, rng.poisson(rate * open_days))
    activation = pd.Series(cut - pd.to_timedelta(open_days, unit="D")).where(~pending)
    planned = pd.Series(np.where(pending, cut + pd.to_timedelta(rng.uniform(0, 365, n_sites), unit="D"),
                                 activation - pd.to_timedelta(rng.normal(40, 30, n_sites), unit="D")))
    table = pd.DataFrame({
        "study_site_id": [f"S{i:04d}" for i in range(n_sites)], "country_code": "US",
        "planned_activation_date": pd.to_datetime(planned), "activation_date": activation,
        "dropped": False, "randomized": counts.astype("int64"), "open_days": open_days,
        "randomized_open_days_sum": counts * open_days / 2, "selection_date": pd.NaT, "lag_days": 14.0,
    })
    return table, cut


def synthetic_dates(table: pd.DataFrame, cut: pd.Timestamp, seed: int = 2) -> pd.Series:
    """Randomization dates of :func:`synthetic_site_table`'s counts, spread evenly over each site's open time."""
    rng = np.random.default_rng(seed)
    counts = table["randomized"].to_numpy("int64")
    open_days = np.repeat(table["open_days"].to_numpy(float), counts)
    return pd.Series(cut - pd.to_timedelta(open_days * rng.uniform(size=len(open_days)), unit="D"))


def _time_case(pending_share: float, runs: int) -> dict[str, object]:
    table, cut = synthetic_site_table(pending_share=pending_share)
    dates = synthetic_dates(table, cut)
    randomized = int(table["randomized"].sum())
    target = int(randomized / 0.4) if randomized else 2_000
    fit_times, predict_times, predict_cpu = [], [], []
    for run in range(runs + 1):  # the first run warms up (imports, allocations) and is not counted
        started = time.perf_counter()
        model = PoissonGammaModel(rate_walk=True).fit(table, cut, target, cut + pd.Timedelta(days=540), dates)
        fitted, cpu = time.perf_counter(), time.process_time()
        forecast = model.predict(n_sims=N_SIMS, seed=run)
        done = time.perf_counter()
        if run:
            fit_times.append(fitted - started)
            predict_times.append(done - fitted)
            predict_cpu.append(time.process_time() - cpu)
    return {"sites": N_SITES, "pending_sites": int(table["activation_date"].isna().sum()), "simulations": N_SIMS,
            "target": target, "randomized": int(table["randomized"].sum()),
            "fit_seconds": round(float(np.median(fit_times)), 4),
            "predict_seconds": round(float(np.median(predict_times)), 4),
            "predict_cpu_seconds": round(float(np.median(predict_cpu)), 4),
            "median_completion_days": float(np.median(forecast.sims.completion_days))}


def bench_enrollment(runs: int = 5) -> dict[str, object]:
    """Time fit and predict for the mid-study and the design-stage 500-site cases."""
    mid = _time_case(0.2, runs)
    design = _time_case(1.0, runs)
    return {"runs": runs, "target_seconds": TARGET_SECONDS, "mid_study": mid, "all_pending": design,
            "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
            "meets_target": bool(mid["predict_seconds"] < TARGET_SECONDS)}


def format_speed(report: dict[str, object]) -> str:
    lines = [f"Poisson-Gamma simulation, {N_SIMS:,} simulations of a {N_SITES}-site study (median of {report['runs']} runs):"]
    for key, label in (("mid_study", "mid-study"), ("all_pending", "all sites pending")):
        case = report[key]
        lines.append(f"  {label:>18}: predict {case['predict_seconds']:.3f} s (CPU {case['predict_cpu_seconds']:.3f} s), "
                     f"fit {case['fit_seconds']:.3f} s "
                     f"({case['pending_sites']} pending, {case['randomized']}/{case['target']} randomized)")
    lines.append(f"  machine: {report['cpus']} CPUs, load average {report['load_average_1min']} (wall time suffers when it "
                 "exceeds the CPUs)")
    lines.append(f"  target: predict under {report['target_seconds']} s -> {'met' if report['meets_target'] else 'NOT met'}")
    return "\n".join(lines)
