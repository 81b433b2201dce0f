"""Ground-truth evaluation of the RBM engine: ``python -m analytics eval rbm --out FILE.json``.

An evaluation the engine does not get to write: fresh portfolios are generated for seeds never
used in development (development used 11 and 12), but every anomaly it is judged on is injected
by this package, never by the generator, and misspecified scenarios replace the generator's
adverse events with processes the engine does not assume. Every method (the calibrated engine,
the gsm-style funnel, a simaerep-style baseline with and without its multiplicity adjustment)
scores the same data in the same run. Thresholds "at 1% FPR" are fixed on separate calibration
seeds before the test seeds are scored. Modules:

* :mod:`.portfolio` generated warehouses read the way the app reads them, plus ground truth;
* :mod:`.scenarios` the AE scenarios, their AE processes and the injections;
* :mod:`.simaerep_setups` simaerep's public simulator, usability grid and portfolio stand-in;
* :mod:`.methods` every method's evidence and default flags per site;
* :mod:`.ae`, :mod:`.usability` running the scenarios and the grid; :mod:`.metrics` Wilson
  intervals, thresholds, detection, AUC;
* :mod:`.baseline` the portfolios as a monitor sees them (null burden, site-score calibration);
* :mod:`.fabrication`, :mod:`.atypical_eval` injected fabrication and benign variation;
* :mod:`.pilot` the real CDISC pilot as a null (sites reshuffled) and with injected anomalies.

The JSON keeps ``methods/<method>/...`` (the headline, from the ``generator`` scenario and the
uninjected portfolios) and adds ``scenarios/<name>/...``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analytics.evaluation.rbm import ae, atypical_eval, baseline, pilot, usability
from analytics.evaluation.rbm.methods import METHOD_LABELS, METHODS, YARDSTICK, YARDSTICK_LABEL
from analytics.evaluation.rbm.portfolio import Portfolio, build_portfolio, load_portfolio
from analytics.evaluation.rbm.scenarios import REMOVAL_LEVELS, SCENARIOS, SCENARIOS_BY_NAME
from analytics.generator import GENERATOR_VERSION

# Held out, never yet measured. 7101-7104 are retired (7101-7102 measured repeatedly while the engine
# changed, 7103-7104 gave the last quick run's figures), 7111-7114 are the atypical-only run's.
TEST_SEEDS = tuple(range(7121, 7131))
CALIBRATION_SEEDS = (7001, 7002, 7003)
QUICK_TEST_SEEDS = TEST_SEEDS[:2]
QUICK_CALIBRATION_SEEDS = (7001,)
PILOT_FOLDER = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "sdtm" / "cdiscpilot01"
MISSPECIFIED = ("site_sd_0.15", "site_sd_0.30", "site_sd_0.50", "lognormal_frailty", "zero_inflated",
                "review_misspecified", "country_clusters", "mid_study_onset", "non_serious_only", "prevalence_2_5pct")
TARGETS = {
    "null_any_red_max": 0.01,
    "null_any_amber_max": 0.10,
    "simaerep_setup_at_1pct_fpr": {"0.5": 0.52, "0.75": 0.73, "1": 0.82},
    "atypical_subtle_auc_min": 0.85,
    "atypical_specificity_min": 0.95,
    "site_score_ks_p_min": 0.05,
    "site_score_min_sites": 1000,
    "pilot_reshuffled_red_max": 0.01,
}
PUBLISHED = {
    "description": "simaerep performance article (portfolio data, not public), TPR at ~1% FPR, 50/75/100% removed",
    "gsm_funnel": {"0.5": 0.245, "0.75": 0.464, "1": 0.637},
    "simaerep_no_mult": {"0.5": 0.470, "0.75": 0.681, "1": 0.767},
    "simaerep": {"0.5": 0.399, "0.75": 0.604, "1": 0.694},
}
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class EvalConfig:
    """What one evaluation run covers (the defaults are the full run; :meth:`quick` a few minutes)."""

    test_seeds: tuple[int, ...] = TEST_SEEDS
    calibration_seeds: tuple[int, ...] = CALIBRATION_SEEDS
    preset: str = "eval"
    scenarios: tuple[str, ...] = tuple(s.name for s in SCENARIOS)
    target_per_level: int = ae.TARGET_SITES_PER_LEVEL
    usability_seeds: tuple[int, ...] = TEST_SEEDS[:3]
    atypical: bool = True
    pilot_folder: Path | None = field(default_factory=lambda: PILOT_FOLDER if PILOT_FOLDER.is_dir() else None)
    pilot_reshuffles: int = 100
    pilot_draws: int = 10

    @classmethod
    def quick(cls, **overrides: object) -> "EvalConfig":
        """Two test seeds, one calibration seed, about 200 injected sites per level."""
        values = dict(test_seeds=QUICK_TEST_SEEDS, calibration_seeds=QUICK_CALIBRATION_SEEDS, target_per_level=200,
                      usability_seeds=QUICK_TEST_SEEDS[:1], pilot_reshuffles=20, pilot_draws=3)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _portfolios(config: EvalConfig, tmp: Path, log: Log) -> tuple[dict[int, Portfolio], dict[str, list[pd.DataFrame]]]:
    """Generate every seed's portfolio; on test seeds also the uninjected baseline and the atypical tables."""
    portfolios: dict[int, Portfolio] = {}
    tables: dict[str, list[pd.DataFrame]] = {}
    seeds = tuple(dict.fromkeys(config.calibration_seeds + config.test_seeds))
    needs_portfolio = any(SCENARIOS_BY_NAME[s].source != "simaerep_portfolio" for s in config.scenarios)
    for i, seed in enumerate(seeds, 1):
        testing = seed in config.test_seeds
        if not (needs_portfolio or testing):
            continue
        started = time.perf_counter()
        folder = tmp / f"seed_{seed}"  # its own folder: the restricted store keeps its file name
        folder.mkdir()
        path = folder / "eval.duckdb"
        build_portfolio(path, config.preset, seed)
        portfolio = load_portfolio(path, seed)
        portfolios[seed] = portfolio
        if testing:
            for name, table in baseline.baseline_tables(portfolio, seed).items():
                tables.setdefault(name, []).append(table)
            if config.atypical:
                tables.setdefault("atypical", []).append(atypical_eval.atypical_table(portfolio))
        shutil.rmtree(folder, ignore_errors=True)
        log(f"[eval rbm] {i}/{len(seeds)} seed {seed} ({'test' if testing else 'calibration'}): "
            f"{portfolio.data.patients['study_site_id'].nunique()} sites, {time.perf_counter() - started:.0f} s")
    return portfolios, tables


def evaluate_rbm(config: EvalConfig | None = None, workdir: Path | None = None, log: Log = _stderr) -> dict[str, object]:
    """Run the evaluation and return its metrics (see the module docstring)."""
    config = config or EvalConfig()
    started = time.perf_counter()
    result: dict[str, object] = {
        "evaluation": "rbm",
        "generator_version": GENERATOR_VERSION,
        "preset": config.preset,
        "seeds": {"test": list(config.test_seeds), "calibration": list(config.calibration_seeds),
                  "development (never evaluated on)": [11, 12]},
        "generated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "methods_compared": METHOD_LABELS,
        "yardstick": {YARDSTICK: YARDSTICK_LABEL},
    }
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        portfolios, tables = _portfolios(config, Path(tmp), log)
        combined = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
        scenarios: dict[str, object] = {}
        for name in config.scenarios:
            scenario = SCENARIOS_BY_NAME[name]
            log(f"[eval rbm] scenario {name} ({time.perf_counter() - started:.0f} s elapsed)")
            scored = ae.scenario_tables(scenario, portfolios, config.calibration_seeds, config.test_seeds,
                                        config.target_per_level, log)
            scenarios[name] = ae.scenario_metrics(scenario, scored)
        if config.usability_seeds:
            log(f"[eval rbm] simaerep usability grid ({time.perf_counter() - started:.0f} s elapsed)")
            scenarios["simaerep_usability"] = usability.usability_grid(config.usability_seeds, log)
        result["scenarios"] = scenarios
        base = baseline.baseline_metrics(combined) if "calibrated_sites" in combined else {}
        result["methods"] = _headline(scenarios.get("generator"), base)
        result["site_score"] = (base.get("calibrated", {}).get("site_score_p_clean_sites") if base else None)
        if "atypical" in combined:
            result["atypical_data"] = atypical_eval.atypical_metrics(combined["atypical"])
        if config.pilot_folder is not None and Path(config.pilot_folder).is_dir():
            log(f"[eval rbm] CDISC pilot ({time.perf_counter() - started:.0f} s elapsed)")
            result["cdisc_pilot"] = pilot.pilot_evaluation(Path(config.pilot_folder), config.pilot_reshuffles,
                                                           config.pilot_draws, config.test_seeds[0], log, Path(tmp))
        else:
            result["cdisc_pilot"] = {"skipped": f"SDTM folder not found: {config.pilot_folder}"}
    result["targets"] = {"declared": TARGETS, "results": _targets(result)}
    result["published"] = PUBLISHED
    result["seconds"] = round(time.perf_counter() - started, 1)
    log(f"[eval rbm] done in {result['seconds']} s")
    return result


def evaluate_atypical_only(seeds: tuple[int, ...] | None = None, preset: str = "eval", quick: bool = False,
                           workdir: Path | None = None, log: Log = _stderr, pilot: bool = True,
                           calibration: bool = False) -> dict[str, object]:
    """``eval rbm --only atypical``: the atypical-data part alone, with its target (see :mod:`.atypical_eval`).

    ``quick``: the quick run's 20 pilot reshuffles instead of 100; ``pilot=False`` skips the pilot;
    ``calibration``: the seeds are labelled calibration seeds (where settings are chosen), not test seeds.
    """
    config = EvalConfig.quick() if quick else EvalConfig()
    result = atypical_eval.atypical_evaluation(seeds or atypical_eval.ATYPICAL_TEST_SEEDS, preset,
                                               config.pilot_folder if pilot else None,
                                               config.pilot_reshuffles, workdir, log)
    if calibration:
        result["seeds"] = {"test": [], "calibration": result["seeds"]["test"]}  # type: ignore[index]
    result["targets"] = {"declared": {k: TARGETS[k] for k in ("atypical_subtle_auc_min", "atypical_specificity_min")},
                         "results": {k: v for k, v in _targets(result).items() if k == "atypical_subtle"}}
    log(f"[eval rbm --only atypical] done in {result['seconds']} s")
    return result


def _headline(generator: dict[str, object] | None, base: dict[str, object]) -> dict[str, object]:
    """``methods/<method>``: the generator scenario's AE metrics plus the uninjected portfolios' (engine, funnel)."""
    out: dict[str, object] = {}
    for method in METHODS:
        entry: dict[str, object] = {"label": METHOD_LABELS[method]}
        if generator is not None:
            entry["ae_under_reporting"] = generator["methods"][method]  # type: ignore[index]
        if method in base:
            entry.update(base[method])  # type: ignore[arg-type]
        out[method] = entry
    return out


def _rate(entry: dict[str, object] | None) -> float | None:
    return None if entry is None else entry.get("rate")  # type: ignore[return-value]


def _targets(result: dict[str, object]) -> dict[str, object]:
    """Each target with the figure reached and whether it is met (point estimates)."""
    out: dict[str, object] = {}
    scenarios = result.get("scenarios", {})
    burden = {}
    for name, s in scenarios.items():  # type: ignore[union-attr]
        if "null_burden" in s:
            nb = s["null_burden"]["calibrated"]
            red, amber = _rate(nb["any_red"]), _rate(nb["any_amber"])
            burden[name] = {"any_red": red, "any_amber": amber,
                            "met": red is not None and red <= TARGETS["null_any_red_max"]
                            and amber is not None and amber <= TARGETS["null_any_amber_max"]}
    out["null_burden_every_scenario"] = burden
    if "simaerep_portfolio" in scenarios:
        at = scenarios["simaerep_portfolio"]["methods"]["calibrated"]["at_1pct_fpr"]  # type: ignore[index]
        reached = {k: _rate(at[k]) for k in TARGETS["simaerep_setup_at_1pct_fpr"]}  # type: ignore[union-attr]
        out["simaerep_setup_at_1pct_fpr"] = {"reached": reached, "met": all(
            v is not None and v >= TARGETS["simaerep_setup_at_1pct_fpr"][k] for k, v in reached.items())}  # type: ignore[index]
    matches = {}
    for name in MISSPECIFIED:
        if name not in scenarios:
            continue
        methods = scenarios[name]["methods"]  # type: ignore[index]
        per_level = {}
        for level in REMOVAL_LEVELS:
            key = f"{level:g}"
            engine = _rate(methods["calibrated"]["at_1pct_fpr"][key])
            best = max(_rate(methods[m]["at_1pct_fpr"][key]) or 0.0 for m in ("funnel", "simaerep", "simaerep_no_mult"))
            per_level[key] = {"engine": engine, "best_baseline": best, "met": engine is not None and engine >= best}
            equal = (scenarios[name].get("equal_fpr_comparison") or {}).get(key)  # type: ignore[union-attr]
            if equal:
                # The same comparison with every method at the same realized FPR on the test seeds.
                rival = min(equal["engine_minus"], key=lambda m: equal["engine_minus"][m]["difference"])
                per_level[key]["at_equal_test_fpr"] = {"engine": equal["detection"]["calibrated"],
                                                       "best_baseline": rival, **equal["engine_minus"][rival]}
        matches[name] = {"levels": per_level, "met": all(v["met"] for v in per_level.values())}
    out["engine_matches_baselines_misspecified"] = matches
    aty = result.get("atypical_data")
    if aty:
        subtle = aty["styles"]["subtle"]  # type: ignore[index]
        spec = _rate(aty["specificity"])  # type: ignore[index]
        out["atypical_subtle"] = {"auc": subtle["auc"], "specificity": spec,
                                  "met": subtle["auc"] is not None and subtle["auc"] >= TARGETS["atypical_subtle_auc_min"]
                                  and spec is not None and spec >= TARGETS["atypical_specificity_min"]}
    site = result.get("site_score")
    if site:
        out["site_score_uniform"] = {"ks_p": site["p_value"], "sites": site["n"],  # type: ignore[index]
                                     "met": site["p_value"] is not None and site["p_value"] > TARGETS["site_score_ks_p_min"]
                                     and site["n"] >= TARGETS["site_score_min_sites"]}  # type: ignore[index]
    pilot_result = result.get("cdisc_pilot", {})
    if "calibrated" in pilot_result.get("null_reshuffled", {}):  # type: ignore[union-attr]
        red = _rate(pilot_result["null_reshuffled"]["calibrated"]["any_red"])  # type: ignore[index]
        out["pilot_reshuffled_red"] = {"any_red": red, "met": red is not None and red <= TARGETS["pilot_reshuffled_red_max"]}
    return out


def _fmt(entry: dict[str, object] | None) -> str:
    rate = _rate(entry)
    return "n/a" if rate is None else f"{rate:.1%}"


def summary_lines(result: dict[str, object]) -> list[str]:
    """A short human-readable summary of :func:`evaluate_rbm` output."""
    seeds = result["seeds"]
    lines = [f"RBM evaluation: preset {result['preset']}, test seeds {seeds['test']}, "  # type: ignore[index]
             f"calibration seeds {seeds['calibration']}"]  # type: ignore[index]
    for name, s in result.get("scenarios", {}).items():  # type: ignore[union-attr]
        if "methods" not in s:
            continue
        lines.append(f"  scenario {name}: {s['description']}")
        for method in METHODS:
            m = s["methods"][method]
            at1 = m["at_1pct_fpr"]
            default = m["default_flags"]
            flag_name = "amber_or_red" if "amber_or_red" in default else "flagged"
            d = default[flag_name]
            lines.append(
                f"    {method:17s} at 1% FPR {' / '.join(_fmt(at1[f'{lv:g}']) for lv in REMOVAL_LEVELS)} "
                f"(realized FPR {_fmt(at1['false_positive_rate'])}); default flag {flag_name}: "
                f"{' / '.join(_fmt(d[f'{lv:g}']) for lv in REMOVAL_LEVELS)} at FPR {_fmt(d['false_positive_rate'])}")
        equal = s.get("equal_fpr_comparison") or {}
        diffs = [(f"{lv:g}", min(equal[f"{lv:g}"]["engine_minus"].items(), key=lambda kv: kv[1]["difference"]))
                 for lv in REMOVAL_LEVELS if equal.get(f"{lv:g}")]
        if diffs:
            lines.append("    at equal test FPR 1%, engine minus best baseline: " + "; ".join(
                f"{lv} {d['difference']:+.1%} [{d['low']:+.1%}, {d['high']:+.1%}] vs {m}" for lv, (m, d) in diffs))
        yard = s.get("yardstick_comparison") or {}
        if any(yard.get(f"{lv:g}") for lv in REMOVAL_LEVELS):
            lines.append("    yardstick (likelihood ratio for half kept) at equal test FPR 1%: " + "; ".join(
                f"{lv:g} {yard[f'{lv:g}']['detection'][YARDSTICK]:.1%} (engine {yard[f'{lv:g}']['detection']['calibrated']:.1%}, "
                f"best baseline {max(v for m, v in yard[f'{lv:g}']['detection'].items() if m not in (YARDSTICK, 'calibrated')):.1%})"
                for lv in REMOVAL_LEVELS if yard.get(f"{lv:g}")))
        nb = s["null_burden"]["calibrated"]
        lines.append(f"    engine null burden: any amber {_fmt(nb['any_amber'])}, any red {_fmt(nb['any_red'])} "
                     f"of {nb['any_red']['n']} clean sites")
    grid = result.get("scenarios", {}).get("simaerep_usability")  # type: ignore[union-attr]
    if grid:
        lines.append("  usability grid (mean TPR / mean FPR over cells): " + "; ".join(
            f"{m} {v['mean_tpr']:.1%} / {v['mean_fpr']:.1%}" for m, v in grid["summary"].items()))
    site = result.get("site_score")
    if site:
        lines.append(f"  site score p on {site['n']} clean sites: KS p {site['p_value']}, "
                     f"share <= 0.05 {site['share_below_0.05']:.1%}")
    aty = result.get("atypical_data")
    if aty:
        lines.append(f"  atypical data: specificity {_fmt(aty['specificity'])} over {aty['clean_sites']} clean sites "
                     f"(benign rounding {_fmt(aty['specificity_sites_with_benign_rounding'])})")
        for style, e in aty["styles"].items():
            ci = e.get("auc_interval") or {}
            lines.append(f"    {style:16s} AUC {e['auc']} [{ci.get('low')}, {ci.get('high')}], flagged {_fmt(e['sensitivity_at_default_flag'])} "
                         f"of {e['sites']}{' (held out)' if e['held_out'] else ''}")
    p = result.get("cdisc_pilot", {})
    if "null_reshuffled" in p and "injected" not in p:  # type: ignore[operator]
        lines.append(f"  CDISC pilot reshuffled: atypical flag {_fmt(p['null_reshuffled']['atypical_flag'])}")  # type: ignore[index]
    elif "null_reshuffled" in p:  # type: ignore[operator]
        n = p["null_reshuffled"]  # type: ignore[index]
        inj = p["injected"]  # type: ignore[index]
        lines.append(f"  CDISC pilot reshuffled: any red {_fmt(n['calibrated']['any_red'])}, any amber "
                     f"{_fmt(n['calibrated']['any_amber'])} (funnel {_fmt(n['funnel']['any_red'])} / "
                     f"{_fmt(n['funnel']['any_amber'])}), atypical flag {_fmt(n['atypical_flag'])}")
        lines.append(f"  CDISC pilot injected: all AEs removed red {_fmt(inj['removed_all']['red'])}, half removed "
                     f"amber+ {_fmt(inj['removed_half']['amber_or_red'])}; rounded site rank 1 on digits "
                     f"{_fmt(inj['rounded']['rank_1'])}; copied records flagged {_fmt(inj['fabricated']['atypical_flag'])}")
    for name, t in result.get("targets", {}).get("results", {}).items():  # type: ignore[union-attr]
        if isinstance(t, dict) and "met" in t:
            lines.append(f"  target {name}: {'met' if t['met'] else 'NOT met'}")
    return lines
