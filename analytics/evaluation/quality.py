"""Ground-truth evaluation of the data-quality checks and the anomaly ranking (``eval quality``).

For each held-out seed a fresh portfolio (preset ``eval``) is generated twice:

* **clean** (no injected errors): every finding is a false finding (target: none);
* **with labelled errors** of every edit check's kind (:mod:`analytics.generator.data_errors`):
  recall per check and category against ``truth.data_errors`` (a finding of the expected check on the
  changed record), and the findings no injected error explains.

Then, on the clean portfolio, a **fabrication style the tests were not tuned to** is injected at
:data:`FABRICATING_SITES` sites with no other labelled anomaly: most randomized subjects' lab and
vital-sign values are invented independently per visit, uniformly within the test's normal range (no
subject keeps its own level, nothing is ever abnormal, no digit preference, no copying, visits on their
usual dates), and their visits are entered in batches every :data:`BATCH_DAYS` days; the same sites and
values are also ranked without the batch entry (what the values alone give away). The generator's
own fabrication style (low variance, rounding, copied vectors, punctual visits), which the atypical
tests were built against, is left out of the ranking. Reported: precision of the top 10 sites, and
AUC of the ranking score for the injected sites against all other sites, with 95% intervals.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analytics.core import warehouse
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.generator import generate_portfolio
from analytics.generator.presets import PRESETS
from analytics.generator.reference import LAB_TESTS
from analytics.kri.atypical import atypical_inputs, score_atypical
from analytics.quality.anomalies import score_sites, signal_inputs
from analytics.quality.engine import run_checks
from analytics.quality.specs import CATALOGUE

DEFAULT_SEEDS = (7401, 7402, 7403)  # never used in development
DEVELOPMENT_SEED = 7490  # the fabrication injection was checked to run on this seed only
ERRORS_PER_CHECK = 25
FABRICATING_SITES = 12
FABRICATED_SHARE = 0.7
MIN_RANDOMIZED = 6
BATCH_DAYS = 45
TOP = 10
FULL = AccessScope.full_access(blinded=False)
DECIMALS = {t.code: t.decimals for t in LAB_TESTS}
NO_RANGE_BAND = {"WEIGHT": (55.0, 100.0)}  # tests without a normal range: a plausible band a person would invent


def _build(path: Path, preset: str, seed: int, errors: int) -> None:
    with warehouse.build_aside(path) as con:
        generate_portfolio(con, preset, seed, data_errors_per_check=errors)
        warehouse.set_info(con, {"as_of_date": PRESETS[preset].as_of.isoformat(), "preset": preset, "seed": seed})


def _wilson(successes: int, trials: int) -> list[float]:
    if trials == 0:
        return [float("nan"), float("nan")]
    z = 1.959964
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return [round(centre - half, 3), round(centre + half, 3)]


def inject_unseen_fabrication(path: Path, seed: int, sites: int = FABRICATING_SITES, batch_entry: bool = True
                              ) -> pd.DataFrame:
    """Invent values within the normal range (and, with ``batch_entry``, enter the visits in batches) at
    ``sites`` clean sites; the sites chosen."""
    with warehouse.modify_aside(path, purpose="eval quality: fabrication") as con:
        chosen = con.execute("""
            SELECT ss.study_id, ss.study_site_id FROM main.study_sites ss
            JOIN (SELECT study_site_id, count(*) AS n FROM main.subjects WHERE randomization_date IS NOT NULL
                  GROUP BY 1) r USING (study_site_id)
            WHERE r.n >= $min AND ss.study_site_id NOT IN (SELECT study_site_id FROM truth.anomalies
                                                          WHERE study_site_id IS NOT NULL)
            ORDER BY hash(ss.study_site_id, $seed) LIMIT $k""", {"min": MIN_RANDOMIZED, "seed": seed, "k": sites}).df()
        con.register("_sites", chosen)
        con.execute("""
            CREATE TEMP TABLE _fabricated AS
            SELECT s.subject_id FROM main.subjects s JOIN _sites USING (study_site_id)
            WHERE s.randomization_date IS NOT NULL AND (hash(s.subject_id, $seed) % 1000) < $share""",
                    {"seed": seed, "share": int(FABRICATED_SHARE * 1000)})
        decimals = pd.DataFrame({"test_code": list(DECIMALS), "decimals": list(DECIMALS.values())})
        bands = pd.DataFrame({"test_code": list(NO_RANGE_BAND), "band_low": [b[0] for b in NO_RANGE_BAND.values()],
                              "band_high": [b[1] for b in NO_RANGE_BAND.values()]})
        con.register("_decimals", decimals)
        con.register("_bands", bands)
        con.execute("""
            UPDATE main.measurements m SET value = round(x.low + (hash(m.measurement_id, $seed) % 100000) / 100000.0
                                                         * (x.high - x.low), CAST(x.decimals AS INTEGER))
            FROM (SELECT r.measurement_id, coalesce(r.ref_low, b.band_low) AS low,
                         coalesce(r.ref_high, b.band_high) AS high, coalesce(d.decimals, 1) AS decimals
                  FROM main.measurements r LEFT JOIN _bands b USING (test_code) LEFT JOIN _decimals d USING (test_code)
                  WHERE r.subject_id IN (SELECT subject_id FROM _fabricated)
                    AND coalesce(r.ref_low, b.band_low) IS NOT NULL AND coalesce(r.ref_high, b.band_high) IS NOT NULL) x
            WHERE m.measurement_id = x.measurement_id""", {"seed": seed})
        as_of = con.execute("SELECT CAST(value AS DATE) FROM meta.warehouse_info WHERE key = 'as_of_date'"
                            ).fetchall()[0][0]
        # Batch entry: every visit waits for the next batch day (days since 2000-01-01 divisible by BATCH_DAYS).
        con.execute(f"""
            UPDATE main.visits SET entry_date = least(CAST(actual_date + CAST({BATCH_DAYS} -
                (date_diff('day', DATE '2000-01-01', actual_date) % {BATCH_DAYS}) AS INTEGER) AS DATE), $as_of)
            WHERE $batch AND entry_date IS NOT NULL AND subject_id IN (SELECT subject_id FROM _fabricated)""",
                    {"as_of": as_of, "batch": batch_entry})
        con.execute("""
            UPDATE main.crf_pages p SET entry_date = v.entry_date FROM main.visits v
            WHERE $batch AND p.visit_id = v.visit_id AND p.entry_date IS NOT NULL
              AND p.subject_id IN (SELECT subject_id FROM _fabricated)""", {"batch": batch_entry})
        counts = con.execute("SELECT count(*) FROM _fabricated").fetchall()[0][0]
        con.unregister("_sites")
    chosen["fabricated_subjects"] = counts
    return chosen


def _recall(findings: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    found = set(zip(findings["check_id"], findings["record_id"].astype(str)))
    truth = truth.assign(found=[(c, r) in found for c, r in zip(truth["check_id"], truth["record_id"].astype(str))])
    explained_subjects = set(truth["subject_id"].dropna())
    unexplained = findings[~findings["subject_id"].isin(explained_subjects)]
    return truth, len(unexplained)


def _ranking(path: Path, fabricating: set[str]) -> dict[str, object]:
    wh = warehouse.Warehouse.open(path)
    per_subject, entries, _ = signal_inputs(wh, FULL, NO_FILTER)
    atypical = score_atypical(*atypical_inputs(wh, FULL, NO_FILTER))
    _, sites = score_sites(per_subject, entries, atypical)
    with warehouse.inspect(path) as con:
        tuned = set(con.execute("SELECT DISTINCT study_site_id FROM truth.anomalies WHERE anomaly_type = "
                                "'fabricated_data'").df()["study_site_id"])
    ranked = sites[~sites["study_site_id"].isin(tuned)].dropna(subset=["score"]).sort_values(
        ["score", "study_site_id"], ascending=[False, True])
    positive = ranked["study_site_id"].isin(fabricating).to_numpy()
    top = positive[:TOP]
    scores = ranked["score"].to_numpy()
    auc = float(stats.mannwhitneyu(scores[positive], scores[~positive]).statistic / (positive.sum() * (~positive).sum())) \
        if positive.any() and (~positive).any() else float("nan")
    with_tuned = sites.dropna(subset=["score"]).sort_values(["score", "study_site_id"], ascending=[False, True])
    positive_all = with_tuned["study_site_id"].isin(fabricating | tuned).to_numpy()
    return {"sites_ranked": int(len(ranked)), "fabricating_ranked": int(positive.sum()),
            "top10_fabricating": int(top.sum()), "auc": round(auc, 4),
            "ranks_of_fabricating": [int(i) + 1 for i in np.flatnonzero(positive)],
            "tuned_style_sites": len(tuned),
            "top10_any_fabrication_with_tuned_style": int(positive_all[:TOP].sum())}


def evaluate_quality(seeds: tuple[int, ...] = DEFAULT_SEEDS, preset: str = "eval",
                     errors_per_check: int = ERRORS_PER_CHECK) -> dict[str, object]:
    """Run the evaluation on fresh portfolios; the metrics as a JSON-ready dict."""
    started = time.perf_counter()
    per_seed, truths, rankings, values_rankings = [], [], [], []
    clean_findings = unexplained_total = 0
    with tempfile.TemporaryDirectory(prefix="cro-eval-quality-") as folder:
        for seed in seeds:
            clean, dirty = Path(folder) / f"clean-{seed}.duckdb", Path(folder) / f"errors-{seed}.duckdb"
            _build(clean, preset, seed, 0)
            _build(dirty, preset, seed, errors_per_check)
            on_clean = run_checks(warehouse.Warehouse.open(clean), FULL, NO_FILTER)
            on_dirty = run_checks(warehouse.Warehouse.open(dirty), FULL, NO_FILTER)
            with warehouse.inspect(dirty) as con:
                truth = con.execute("SELECT * FROM truth.data_errors").df()
            truth, unexplained = _recall(on_dirty, truth)
            truths.append(truth.assign(seed=seed))
            values_only = warehouse.copy_warehouse(clean, Path(folder) / f"values-{seed}" / "warehouse.duckdb")
            fabricating = inject_unseen_fabrication(clean, seed)
            ranking = _ranking(clean, set(fabricating["study_site_id"]))
            rankings.append(ranking)
            # The same sites and values without batch entry: how much the values alone give away.
            inject_unseen_fabrication(values_only, seed, batch_entry=False)
            values_rankings.append(_ranking(values_only, set(fabricating["study_site_id"])))
            clean_findings += len(on_clean)
            unexplained_total += unexplained
            per_seed.append({"seed": seed, "findings_on_clean": int(len(on_clean)),
                             "clean_findings_by_check": on_clean.groupby("check_id").size().to_dict(),
                             "injected_errors": int(len(truth)), "found": int(truth["found"].sum()),
                             "findings_with_errors": int(len(on_dirty)), "unexplained_findings": int(unexplained),
                             "fabricated_subjects": int(fabricating["fabricated_subjects"].iloc[0])
                             if len(fabricating) else 0, **ranking,
                             "values_only": values_rankings[-1]})
            warehouse.close_all()
    truth = pd.concat(truths, ignore_index=True)
    by_check = truth.groupby("check_id")["found"].agg(["sum", "size"])
    by_category = truth.groupby("category")["found"].agg(["sum", "size"])
    top_hits = sum(r["top10_fabricating"] for r in rankings)
    top_total = sum(min(TOP, r["sites_ranked"]) for r in rankings)
    names = {c.id: c.name for c in CATALOGUE}
    return {
        "preset": preset, "seeds": list(seeds), "errors_per_check": errors_per_check,
        "seconds": round(time.perf_counter() - started, 1),
        "recall_by_category": {k: {"found": int(v["sum"]), "injected": int(v["size"]),
                                   "recall": round(v["sum"] / v["size"], 4), "ci95": _wilson(int(v["sum"]), int(v["size"]))}
                               for k, v in by_category.iterrows()},
        "recall_by_check": {k: {"name": names.get(k, k), "found": int(v["sum"]), "injected": int(v["size"]),
                                "recall": round(v["sum"] / v["size"], 4)} for k, v in by_check.iterrows()},
        "findings_on_clean_data": clean_findings,
        "unexplained_findings_with_errors": unexplained_total,
        "top10_precision_unseen_fabrication": round(top_hits / top_total, 3) if top_total else float("nan"),
        "top10_precision_ci95": _wilson(top_hits, top_total),
        "auc_unseen_fabrication": [r["auc"] for r in rankings],
        "top10_precision_values_only": round(sum(r["top10_fabricating"] for r in values_rankings) / top_total, 3)
        if top_total else float("nan"),
        "top10_precision_values_only_ci95": _wilson(sum(r["top10_fabricating"] for r in values_rankings), top_total),
        "auc_values_only": [r["auc"] for r in values_rankings],
        "per_seed": per_seed,
    }


def summary_lines(result: dict[str, object]) -> list[str]:
    lines = [f"eval quality: preset {result['preset']}, seeds {result['seeds']}, {result['errors_per_check']} errors "
             f"per check and seed ({result['seconds']} s)"]
    for category, r in result["recall_by_category"].items():
        lines.append(f"  recall {category:24s} {r['found']:4d}/{r['injected']:4d} = {r['recall']:.1%} "
                     f"(95% CI {r['ci95'][0]:.1%}-{r['ci95'][1]:.1%})")
    lines.append(f"  findings on clean data: {result['findings_on_clean_data']}; findings no injected error explains: "
                 f"{result['unexplained_findings_with_errors']}")
    ci = result["top10_precision_ci95"]
    lines.append(f"  top-10 precision, unseen fabrication style: {result['top10_precision_unseen_fabrication']:.2f} "
                 f"(95% CI {ci[0]:.2f}-{ci[1]:.2f}); AUC per seed {result['auc_unseen_fabrication']}")
    ci = result["top10_precision_values_only_ci95"]
    lines.append(f"  same values without batch entry: top-10 precision {result['top10_precision_values_only']:.2f} "
                 f"(95% CI {ci[0]:.2f}-{ci[1]:.2f}); AUC per seed {result['auc_values_only']}")
    for seed in result["per_seed"]:
        lines.append(f"    seed {seed['seed']}: top 10 hold {seed['top10_fabricating']} of {seed['fabricating_ranked']} "
                     f"fabricating sites (ranks {seed['ranks_of_fabricating']}); with the tuned style counted too: "
                     f"{seed['top10_any_fabrication_with_tuned_style']}/10")
    return lines
