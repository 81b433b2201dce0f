"""Ground-truth evaluation of the RBM engine against the gsm-style funnel baseline.

Fresh synthetic portfolios (the ``eval`` preset, seeds never used in development) are generated into
temporary warehouses; both methods score the same data in the same run, and only this module reads
``truth.anomalies``. Reported per method:

* site-level AUC of the site score for any labelled anomaly, and per anomaly type with its KRI;
* AE under-reporting detection at 1% and 5% site-level false-positive rate, per share removed
  (50/75/100%) and by site size. The score is the AE-rate low-tail evidence (``-ln p_low`` for the
  calibrated engine, ``-z`` for the funnel); the threshold is the (1 - FPR) quantile of that score
  over clean sites (no labelled anomaly) of the same run;
* null alert burden: share of clean sites with any amber / any red cell at their default thresholds;
* atypical-data AUC, specificity and sensitivity (engine only; gsm has no fabrication tests).

Sites are study-sites with at least one screened subject at the as-of date.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from analytics.core import warehouse
from analytics.generator import GENERATOR_VERSION, PRESETS, generate_portfolio
from analytics.kri.atypical import TESTS, atypical_inputs, score_atypical
from analytics.kri.engine import METHODS, run_engine
from analytics.kri.extract import snapshot_dates, subject_measures
from analytics.core.scope import NO_FILTER, AccessScope

DEFAULT_SEEDS = (7101, 7102, 7103)  # not used while developing (development used 11 and 12)
FALSE_POSITIVE_RATES = (0.01, 0.05)
REMOVAL_LEVELS = (0.5, 0.75, 1.0)
SIZE_CLASSES = ((1, 4, "1-4"), (5, 14, "5-14"), (15, 10**9, "15+"))  # randomized subjects
TARGETS = {
    "ae_under_detection_at_1pct_fpr": {"0.5": 0.60, "0.75": 0.80, "1.0": 0.90},
    "null_any_amber_max": 0.10,
    "null_any_red_max": 0.01,
    "atypical_auc_min": 0.95,
    "atypical_specificity_min": 0.95,
}
PUBLISHED = {
    "gsm_funnel_at_1pct_fpr": {"0.5": 0.245, "0.75": 0.464, "1.0": 0.637},
    "simaerep_at_1pct_fpr": {"0.5": 0.470, "0.75": 0.681, "1.0": 0.767},
}
# Which KRI cell (and tail) should reveal each anomaly type.
ANOMALY_KRI = {
    "ae_under_reporting": ("ae_rate", "low"),
    "ae_over_reporting": ("ae_rate", "high"),
    "slow_data_entry": ("late_entry", "high"),
    "query_backlog": ("queries_open_30", "high"),
    "excess_important_deviations": ("important_pd_rate", "high"),
    "enrollment_stall": ("screening_momentum", "low"),
}
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_portfolio(path: Path, preset: str, seed: int) -> None:
    """Generate the ``preset`` portfolio for ``seed`` into a new warehouse at ``path``."""
    with warehouse.build_aside(path) as con:
        generate_portfolio(con, preset, seed)
        warehouse.set_info(con, {"as_of_date": PRESETS[preset].as_of.isoformat(), "preset": preset,
                                 "seed": seed, "generator_version": GENERATOR_VERSION})


def score_portfolio(path: Path) -> dict[str, pd.DataFrame]:
    """Site tables (current snapshot) for both methods plus the atypical-data table, with labels."""
    wh = warehouse.Warehouse.open(path)
    scope = AccessScope.full_access()
    as_of = wh.as_of()
    frame = subject_measures(wh, scope, NO_FILTER, snapshot_dates(as_of))
    last = int(frame["snap"].max())
    current = frame[frame["snap"] == last]
    randomized = current.groupby("study_site_id")["randomized"].sum()
    with duckdb.connect(str(path), read_only=True) as con:
        truth = con.execute(
            "SELECT study_site_id, anomaly_type, magnitude, "
            "(SELECT count(*) FROM truth.anomalies s WHERE s.level = 'subject' "
            " AND s.study_site_id = a.study_site_id) AS fabricated_subjects "
            "FROM truth.anomalies a WHERE level = 'site'"
        ).df()
    out: dict[str, pd.DataFrame] = {}
    for method in METHODS:
        run = run_engine(frame, method)
        cells = run.cells[run.cells["snap"] == last]
        sites = run.sites[run.sites["snap"] == last].set_index("study_site_id")
        for kri_id in {k for k, _ in ANOMALY_KRI.values()}:
            part = cells[cells["kri"] == kri_id].set_index("study_site_id")
            if method == "calibrated":
                low = -np.log(part["p_low"].clip(lower=1e-300))
                high = -np.log(part["p_high"].clip(lower=1e-300))
            else:
                low, high = -part["z"], part["z"]
            sites[f"{kri_id}__low"] = low.reindex(sites.index)
            sites[f"{kri_id}__high"] = high.reindex(sites.index)
        # Was the AE rate flagged low (amber or red) at each monthly snapshot? (time to detection)
        ae = run.cells[run.cells["kri"] == "ae_rate"]
        flagged_low = ae.assign(low=(ae["flag"] > 0) & (ae["direction"] == "low")).pivot_table(
            index="study_site_id", columns="snap", values="low", aggfunc="max", fill_value=False)
        for snap in range(last + 1):
            column = flagged_low[snap] if snap in flagged_low.columns else pd.Series(dtype=bool)
            sites[f"ae_low_flag__s{snap}"] = column.reindex(sites.index).fillna(False).astype(bool)
        out[method] = _label(sites.reset_index(), truth, randomized)
    atypical = score_atypical(*atypical_inputs(wh, scope, NO_FILTER))
    out["atypical"] = _label(atypical, truth, randomized)
    warehouse.close_all()
    return out


def _label(sites: pd.DataFrame, truth: pd.DataFrame, randomized: pd.Series) -> pd.DataFrame:
    labelled = sites.merge(truth, on="study_site_id", how="left")
    labelled["randomized"] = labelled["study_site_id"].map(randomized).fillna(0).astype("int64")
    labelled["size_class"] = "0"
    for lo, hi, name in SIZE_CLASSES:
        labelled.loc[labelled["randomized"].between(lo, hi), "size_class"] = name
    return labelled


def _auc(labels: pd.Series, scores: pd.Series) -> float | None:
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        return None
    return round(float(roc_auc_score(labels, scores.fillna(scores.min() - 1 if scores.notna().any() else 0))), 4)


def _detection(sites: pd.DataFrame, score: str) -> dict[str, object]:
    """AE under-reporting detection at each FPR, per removal level, overall and by site size."""
    clean = sites[sites["anomaly_type"].isna()]
    under = sites[sites["anomaly_type"] == "ae_under_reporting"]
    floor = sites[score].min() - 1 if sites[score].notna().any() else 0.0
    result: dict[str, object] = {}
    for fpr in FALSE_POSITIVE_RATES:
        threshold = float(np.quantile(clean[score].fillna(floor), 1 - fpr))
        detected = under[score].fillna(floor) > threshold
        entry: dict[str, object] = {"threshold": round(threshold, 4)}
        for level in REMOVAL_LEVELS:
            rows = under["magnitude"] == level
            entry[str(level)] = {"detected": round(float(detected[rows].mean()), 4) if rows.any() else None,
                                 "sites": int(rows.sum())}
        by_size: dict[str, dict[str, object]] = {}
        for _, _, name in (*SIZE_CLASSES, (0, 0, "0")):
            by_size[name] = {}
            for level in REMOVAL_LEVELS:
                rows = (under["magnitude"] == level) & (under["size_class"] == name)
                by_size[name][str(level)] = {
                    "detected": round(float(detected[rows].mean()), 4) if rows.any() else None,
                    "sites": int(rows.sum())}
        entry["by_size"] = by_size
        result[f"fpr_{fpr:g}"] = entry
    return result


def _flagged_by_month(sites: pd.DataFrame) -> dict[str, object]:
    """Share of AE under-reporting sites flagged low on AE rate at each monthly snapshot (time to detection).

    Keys are months before the as-of date (0 = the as-of date). Clean sites' share is the price.
    """
    snaps = sorted(int(c.split("__s")[1]) for c in sites.columns if c.startswith("ae_low_flag__s"))
    last = max(snaps) if snaps else 0
    clean = sites["anomaly_type"].isna()
    result: dict[str, object] = {}
    for snap in snaps:
        column = sites[f"ae_low_flag__s{snap}"]
        entry = {str(level): round(float(column[(sites["anomaly_type"] == "ae_under_reporting")
                                                 & (sites["magnitude"] == level)].mean()), 4)
                 for level in REMOVAL_LEVELS}
        entry["clean"] = round(float(column[clean].mean()), 4)
        result[f"{last - snap}_months_before"] = entry
    return result


def _precision_at_top(sites: pd.DataFrame, score: str, positive: pd.Series) -> dict[str, object]:
    """Share of true anomalies among the top 1% and 5% of sites by ``score``."""
    ranked = sites.assign(_positive=positive.to_numpy()).sort_values(score, ascending=False, na_position="last")
    out: dict[str, object] = {}
    for share in (0.01, 0.05):
        k = max(1, int(round(share * len(ranked))))
        out[f"top_{share:.0%}"] = {"k": k, "precision": round(float(ranked["_positive"].head(k).mean()), 4)}
    return out


def method_metrics(sites: pd.DataFrame) -> dict[str, object]:
    """All metrics of one method on its labelled site table."""
    clean = sites["anomaly_type"].isna()
    evaluated = sites[sites["evaluable"] > 0]
    clean_eval = evaluated["anomaly_type"].isna()
    per_type = {}
    for anomaly, (kri_id, tail) in ANOMALY_KRI.items():
        rows = clean | (sites["anomaly_type"] == anomaly)
        per_type[anomaly] = {"kri": kri_id, "tail": tail,
                             "auc": _auc(sites.loc[rows, "anomaly_type"].notna(), sites.loc[rows, f"{kri_id}__{tail}"])}
    by_size_burden = {}
    for _, _, name in SIZE_CLASSES:
        rows = evaluated[clean_eval & (evaluated["size_class"] == name)]
        by_size_burden[name] = {"clean_sites": len(rows),
                                "any_amber": round(float(rows["any_amber"].mean()), 4) if len(rows) else None,
                                "any_red": round(float(rows["any_red"].mean()), 4) if len(rows) else None}
    return {
        "site_score_auc_any_anomaly": _auc(sites["anomaly_type"].notna(), sites["site_score"]),
        "anomaly_auc_with_its_kri": per_type,
        "ae_under_reporting_auc": per_type["ae_under_reporting"]["auc"],
        "ae_under_reporting_detection": _detection(sites, "ae_rate__low"),
        "ae_under_reporting_flagged_by_month": _flagged_by_month(sites),
        "precision_site_score_any_anomaly": _precision_at_top(sites, "site_score", sites["anomaly_type"].notna()),
        "precision_ae_low_for_ae_under_reporting": _precision_at_top(
            sites, "ae_rate__low", sites["anomaly_type"] == "ae_under_reporting"),
        "null_alert_burden": {
            "clean_sites": int(clean_eval.sum()),
            "any_amber": round(float(evaluated.loc[clean_eval, "any_amber"].mean()), 4),
            "any_red": round(float(evaluated.loc[clean_eval, "any_red"].mean()), 4),
            "by_size": by_size_burden,
        },
    }


def atypical_metrics(table: pd.DataFrame) -> dict[str, object]:
    """AUC, specificity and sensitivity of the atypical-data score for fabricated-data sites."""
    scored = table[table["tests_available"] > 0]
    fabricated = scored["anomaly_type"] == "fabricated_data"
    with_subjects = fabricated & (scored["fabricated_subjects"] > 0)
    clean = scored["anomaly_type"].isna()
    rows = clean | with_subjects
    return {
        "auc": _auc(with_subjects[rows], scored.loc[rows, "atypical_score"]),
        "specificity": round(float(1 - scored.loc[clean, "atypical_flag"].mean()), 4),
        "sensitivity": round(float(scored.loc[with_subjects, "atypical_flag"].mean()), 4) if with_subjects.any() else None,
        # Each test alone (its evidence -ln p), to show what every test contributes.
        "auc_by_test": {test: _auc(with_subjects[rows], -np.log(scored.loc[rows, test].clip(lower=1e-300)))
                        for test in TESTS},
        "fabricated_sites_scored": int(with_subjects.sum()),
        "fabricated_sites_without_fabricated_subjects": int((fabricated & ~with_subjects).sum()),
        "clean_sites": int(clean.sum()),
    }


def evaluate_rbm(
    seeds: tuple[int, ...] = DEFAULT_SEEDS, preset: str = "eval", workdir: Path | None = None,
    log: Log = _stderr,
) -> dict[str, object]:
    """Generate ``seeds`` portfolios, score them with both methods and return the metrics."""
    started = time.perf_counter()
    tables: dict[str, list[pd.DataFrame]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for i, seed in enumerate(seeds, 1):
            path = Path(tmp) / f"eval_{seed}.duckdb"
            log(f"[eval rbm] {i}/{len(seeds)} generating preset {preset!r} seed {seed} ...")
            build_portfolio(path, preset, seed)
            log(f"[eval rbm] {i}/{len(seeds)} scoring ({time.perf_counter() - started:.0f} s elapsed)")
            for name, table in score_portfolio(path).items():
                tables.setdefault(name, []).append(table.assign(seed=seed))
            path.unlink(missing_ok=True)
    combined = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
    result: dict[str, object] = {
        "evaluation": "rbm",
        "preset": preset,
        "seeds": list(seeds),
        "generated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "sites": int(len(combined["calibrated"])),
        "labelled_sites": combined["calibrated"]["anomaly_type"].value_counts().to_dict(),
        "methods": {method: method_metrics(combined[method]) for method in METHODS},
        "atypical_data": atypical_metrics(combined["atypical"]),
        "targets": TARGETS,
        "published": PUBLISHED,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    log(f"[eval rbm] done in {result['seconds']} s")
    return result


def summary_lines(result: dict[str, object]) -> list[str]:
    """A short human-readable summary of :func:`evaluate_rbm` output."""
    lines = [f"RBM evaluation: preset {result['preset']}, seeds {result['seeds']}, {result['sites']} sites"]
    for method, m in result["methods"].items():  # type: ignore[union-attr]
        det = m["ae_under_reporting_detection"]
        burden = m["null_alert_burden"]
        lines.append(f"  {method:10s} site-score AUC {m['site_score_auc_any_anomaly']}, "
                     f"AE-under AUC {m['ae_under_reporting_auc']}")
        for fpr in FALSE_POSITIVE_RATES:
            d = det[f"fpr_{fpr:g}"]
            cells = " / ".join(f"{d[str(level)]['detected']:.1%}" if d[str(level)]["detected"] is not None else "n/a"
                               for level in REMOVAL_LEVELS)
            lines.append(f"    AE under-reporting detected at {fpr:.0%} FPR (50/75/100% removed): {cells}")
        lines.append(f"    null burden: any amber {burden['any_amber']:.1%}, any red {burden['any_red']:.1%} "
                     f"of {burden['clean_sites']} clean sites")
        months = m["ae_under_reporting_flagged_by_month"]
        lines.append("    AE under-reporting flagged (amber/red, 50/75/100%; clean) by months before as-of: " + "; ".join(
            f"{k.split('_')[0]}: {v['0.5']:.0%}/{v['0.75']:.0%}/{v['1.0']:.0%} ({v['clean']:.1%})"
            for k, v in sorted(months.items(), key=lambda kv: -int(kv[0].split('_')[0]))))
        p = m["precision_ae_low_for_ae_under_reporting"]
        lines.append("    precision of the AE-low ranking for AE under-reporting: " + ", ".join(
            f"{k.replace('_', ' ')} ({v['k']} sites) {v['precision']:.0%}" for k, v in p.items()))
    a = result["atypical_data"]
    lines.append(f"  atypical data: AUC {a['auc']}, specificity {a['specificity']:.1%}, "
                 f"sensitivity {a['sensitivity']}")
    lines.append("    each test alone, AUC: " + ", ".join(f"{test} {auc}" for test, auc in a["auc_by_test"].items()))
    t = TARGETS["ae_under_detection_at_1pct_fpr"]
    lines.append(f"  targets: AE under at 1% FPR {t['0.5']:.0%}/{t['0.75']:.0%}/{t['1.0']:.0%}; amber <= 10%, "
                 "red <= 1%; atypical AUC >= 0.95, specificity >= 95%")
    return lines
