"""Run one AE under-reporting scenario over the calibration and test seeds and measure every method.

Per seed the scenario's data are drawn (the generator's portfolio, its patients with re-simulated
AEs, or simaerep's simulator) and several *replicates* are scored, each with a fresh share of clean
sites injected, until the test seeds hold about :data:`TARGET_SITES_PER_LEVEL` injected sites per
removal level. Re-simulated sources draw new events for every replicate; the generator's own events
are fixed per seed, so there each site is injected at most once and only the first replicate's
clean sites count towards false-positive rates (the replicates share their data).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from analytics.evaluation.rbm import metrics
from analytics.evaluation.rbm.methods import METHODS, YARDSTICK, score_sites
from analytics.evaluation.rbm.portfolio import Portfolio
from analytics.evaluation.rbm.scenarios import (
    REMOVAL_LEVELS,
    SCENARIOS,
    AEScenario,
    choose_injections,
    eligible_sites,
    inject,
    simulate_events,
)
from analytics.evaluation.rbm.simaerep_setups import portfolio_standin

TARGET_SITES_PER_LEVEL = 1000
# Calibration seeds only need clean sites (for thresholds): a couple of replicates give thousands.
CALIBRATION_REPLICATES = 2
Log = Callable[[str], None]


def _replicates(eligible: int, scenario: AEScenario, test_seeds: int, target: int) -> int:
    prevalence = float(np.mean(scenario.prevalence))
    per_replicate = max(eligible * prevalence / len(REMOVAL_LEVELS), 1.0)
    return int(np.clip(np.ceil(target / (per_replicate * max(test_seeds, 1))), 1, 40))


def _score_replicate(data, levels: pd.Series, scenario: AEScenario, rng: np.random.Generator, seed: int,
                     eligible: pd.DataFrame) -> pd.DataFrame:
    events = inject(data, levels, scenario, rng)
    scored = score_sites(data.with_events(events), scenario.full_catalogue, seed=seed)
    scored = scored[scored["study_site_id"].isin(eligible["study_site_id"])].copy()
    scored["level"] = scored["study_site_id"].map(levels)
    return scored


def scenario_tables(scenario: AEScenario, portfolios: dict[int, Portfolio], calibration_seeds: tuple[int, ...],
                    test_seeds: tuple[int, ...], target: int, log: Log) -> dict[str, pd.DataFrame]:
    """Scored site tables of the calibration and the test seeds (``level`` NaN for clean sites)."""
    tables: dict[str, list[pd.DataFrame]] = {"calibration": [], "test": []}
    index = [s.name for s in SCENARIOS].index(scenario.name)
    for role, seeds in (("calibration", calibration_seeds), ("test", test_seeds)):
        for seed in seeds:
            rng = np.random.default_rng([seed, 1000 + index])
            started = time.perf_counter()
            cap = CALIBRATION_REPLICATES if role == "calibration" else None
            if scenario.source == "simaerep_portfolio":
                parts = _fresh_replicates(scenario, rng, seed, len(test_seeds), target, cap)
            else:
                parts = _portfolio_replicates(scenario, portfolios[seed], rng, seed, len(test_seeds), target, cap)
            for part in parts:
                part["seed"] = seed
                tables[role].append(part)
            log(f"[eval rbm]   {scenario.name} {role} seed {seed}: {len(parts)} replicates, "
                f"{time.perf_counter() - started:.1f} s")
    return {role: pd.concat(parts, ignore_index=True) for role, parts in tables.items()}


def _portfolio_replicates(scenario: AEScenario, portfolio: Portfolio, rng: np.random.Generator, seed: int,
                          test_seeds: int, target: int, cap: int | None) -> list[pd.DataFrame]:
    eligible = eligible_sites(portfolio.data, portfolio.truth)
    count = _replicates(len(eligible), scenario, test_seeds, target)
    fixed_data = scenario.source == "generator"
    if cap is not None:  # calibration: only the clean sites count, and fixed data give them once
        count = min(count, 1 if fixed_data else cap)
    injections = choose_injections(eligible, scenario, count, rng)
    parts = []
    for r, levels in enumerate(injections):
        data = portfolio.data if fixed_data else portfolio.data.with_events(simulate_events(portfolio, scenario, rng))
        part = _score_replicate(data, levels, scenario, rng, seed, eligible)
        part["replicate"] = r
        part["fpr_sample"] = (r == 0) or not fixed_data
        parts.append(part)
    return parts


def _fresh_replicates(scenario: AEScenario, rng: np.random.Generator, seed: int, test_seeds: int,
                      target: int, cap: int | None) -> list[pd.DataFrame]:
    parts, r, count = [], 0, None
    while count is None or r < count:
        data = portfolio_standin(rng, f"{seed}-{r}")
        eligible = eligible_sites(data, None)
        count = count or min(_replicates(len(eligible), scenario, test_seeds, target), cap or 10**6)
        levels = choose_injections(eligible, scenario, 1, rng)[0]
        part = _score_replicate(data, levels, scenario, rng, seed, eligible)
        part["replicate"], part["fpr_sample"] = r, True
        parts.append(part)
        r += 1
    return parts


def scenario_metrics(scenario: AEScenario, tables: dict[str, pd.DataFrame]) -> dict[str, object]:
    """Every method's metrics for one scenario, thresholds from the calibration seeds."""
    cut = metrics.thresholds(tables["calibration"], METHODS)
    test = tables["test"]
    injected = test[test["level"].notna()]
    out: dict[str, object] = {
        "description": scenario.description,
        "source": scenario.source,
        "catalogue": "every KRI" if scenario.full_catalogue else "AE and SAE rates",
        "test_sites": {"clean_for_fpr": int((test["level"].isna() & test["fpr_sample"]).sum()),
                       **{f"{level:g}": int((injected["level"] == level).sum()) for level in REMOVAL_LEVELS}},
        "calibration_clean_sites": int((tables["calibration"]["level"].isna() & tables["calibration"]["fpr_sample"]).sum()),
        "methods": {m: metrics.method_metrics(test, m, cut[m], REMOVAL_LEVELS, by_size=scenario.source != "simaerep_portfolio")
                    for m in METHODS},
        "null_burden": {m: metrics.null_burden(test, m) for m in ("calibrated", "funnel")},
        "equal_fpr_comparison": metrics.equal_fpr_comparison(test, METHODS, REMOVAL_LEVELS),
    }
    if f"score_{YARDSTICK}" in test:
        # How much any ranking could gain at 50% removed, and what the ranking that gains it costs at
        # 75% and 100%: the same equal-FPR comparison with the yardstick in the engine's place.
        out["yardstick_comparison"] = metrics.equal_fpr_comparison(test, (YARDSTICK, *METHODS), REMOVAL_LEVELS,
                                                                   engine=YARDSTICK)
    return out
