"""The generator's portfolios as a monitor sees them: every KRI, both methods, nothing injected.

On the test seeds: the site score's permutation p-values on clean sites (uniform?), the null alert
burden at the default flags overall and by site size, each KRI's tail calibration on clean sites,
and how well each labelled anomaly type is ranked by its own KRI and by the site score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.evaluation.rbm import metrics
from analytics.evaluation.rbm.portfolio import Portfolio
from analytics.kri.engine import METHODS, run_engine

# Which KRI cell (and tail) should reveal each planted anomaly type.
ANOMALY_KRI = {
    "ae_under_reporting": ("ae_rate", "low"),
    "ae_over_reporting": ("ae_rate", "high"),
    "slow_data_entry": ("late_entry", "high"),
    "query_backlog": ("queries_open_30", "high"),
    "excess_important_deviations": ("important_pd_rate", "high"),
    "enrollment_stall": ("screening_momentum", "low"),
}


def baseline_tables(portfolio: Portfolio, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Site and cell tables of both methods on the portfolio's latest snapshot, labelled."""
    frame = portfolio.data.patients
    randomized = frame.groupby("study_site_id")["randomized"].sum()
    out = {}
    for method in METHODS:
        run = run_engine(frame, method, seed=seed)
        sites = run.sites.merge(portfolio.truth, on="study_site_id", how="left")
        sites["randomized"] = sites["study_site_id"].map(randomized).fillna(0)
        cells = run.cells.merge(portfolio.truth[["study_site_id", "anomaly_type"]], on="study_site_id", how="left")
        cells["randomized"] = cells["study_site_id"].map(randomized).fillna(0)
        out[f"{method}_sites"] = sites.assign(seed=portfolio.seed)
        out[f"{method}_cells"] = cells.assign(seed=portfolio.seed)
    return out


def _evidence(cells: pd.DataFrame, kri_id: str, tail: str, method: str) -> pd.Series:
    part = cells[cells["kri"] == kri_id].set_index(["seed", "study_site_id"])
    if method == "calibrated":
        return -np.log(part[f"p_{tail}"].clip(lower=1e-300))
    return -part["z"] if tail == "low" else part["z"]


def baseline_metrics(tables: dict[str, pd.DataFrame]) -> dict[str, object]:
    """Null burden, site-score calibration, per-KRI tails and per-anomaly AUCs on the test seeds."""
    out: dict[str, object] = {}
    for method in METHODS:
        sites = tables[f"{method}_sites"]
        cells = tables[f"{method}_cells"]
        evaluated = sites[(sites["evaluable"] > 0) & (sites["randomized"] >= 0)]
        clean = evaluated[evaluated["anomaly_type"].isna()]
        sizes = metrics.size_class(clean["randomized"])
        entry: dict[str, object] = {
            "clean_sites": int(len(clean)),
            "null_burden": {"any_amber": metrics.share(clean["any_amber"]), "any_red": metrics.share(clean["any_red"]),
                            "by_size": {name: {"any_amber": metrics.share(clean.loc[sizes == name, "any_amber"]),
                                               "any_red": metrics.share(clean.loc[sizes == name, "any_red"])}
                                        for _, _, name in metrics.SIZE_CLASSES}},
        }
        labelled = sites.set_index(["seed", "study_site_id"])
        per_type = {}
        for anomaly, (kri_id, tail) in ANOMALY_KRI.items():
            evidence = _evidence(cells, kri_id, tail, method)
            rows = labelled["anomaly_type"].isna() | (labelled["anomaly_type"] == anomaly)
            scored = evidence.reindex(labelled.index[rows])
            per_type[anomaly] = {"kri": kri_id, "tail": tail, "auc": metrics._auc(
                scored[labelled.loc[rows, "anomaly_type"].isna().to_numpy()],
                scored[(labelled.loc[rows, "anomaly_type"] == anomaly).to_numpy()])}
        entry["anomaly_auc_with_its_kri"] = per_type
        score = labelled["site_score"]
        entry["site_score_auc_any_anomaly"] = metrics._auc(score[labelled["anomaly_type"].isna()],
                                                           score[labelled["anomaly_type"].notna()])
        if method == "calibrated":
            entry["site_score_p_clean_sites"] = metrics.ks_uniform(clean["site_p"])
            entry["site_score_p_clean_sites_by_size"] = {name: metrics.ks_uniform(clean.loc[sizes == name, "site_p"])
                                                         for _, _, name in metrics.SIZE_CLASSES}
            # What the site score's p-value finds: planted anomalies ranked against clean sites, and
            # the share a monitor sorting by it would see at p <= 0.05.
            p_value = labelled["site_p"].fillna(1.0)
            planted = labelled["anomaly_type"].notna() & (labelled["evaluable"] > 0)
            entry["site_score_p_anomalous_sites"] = {
                "auc": metrics._auc(-p_value[labelled["anomaly_type"].isna() & (labelled["evaluable"] > 0)],
                                    -p_value[planted]),
                "at_or_below_0.05": metrics.share(p_value[planted] <= 0.05)}
            entry["kri_tails_clean_cells"] = _tails(cells)
        out[method] = entry
    return out


def _tails(cells: pd.DataFrame) -> dict[str, object]:
    """Per KRI, clean evaluable cells with each tail below 1% and 0.1%, and their amber/red rates."""
    clean = cells[cells["anomaly_type"].isna() & cells["evaluable"].astype(bool)]
    out = {}
    for kri_id, block in clean.groupby("kri"):
        out[str(kri_id)] = {"cells": int(len(block)),
                            "p_low_below_0.01": round(float((block["p_low"] < 0.01).mean()), 4),
                            "p_high_below_0.01": round(float((block["p_high"] < 0.01).mean()), 4),
                            "p_low_below_0.001": round(float((block["p_low"] < 0.001).mean()), 4),
                            "p_high_below_0.001": round(float((block["p_high"] < 0.001).mean()), 4),
                            "amber_or_red": round(float((block["flag"] >= 1).mean()), 4),
                            "red": round(float((block["flag"] == 2).mean()), 4),
                            # A clean cell's signed z is N(0, 1) under the model at every size; a mean
                            # away from 0 in one size class is a benign effect that goes with size.
                            "mean_z_by_size": _mean_z_by_size(block)}
    return out


def _mean_z_by_size(block: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Mean and SD of the clean cells' signed z per site size class (randomized patients)."""
    sizes = metrics.size_class(block["randomized"])
    out: dict[str, dict[str, float | int | None]] = {}
    for _, _, name in metrics.SIZE_CLASSES:
        z = block.loc[sizes == name, "z"].dropna()
        out[name] = {"cells": int(len(z)), "mean": round(float(z.mean()), 3) if len(z) else None,
                     "sd": round(float(z.std()), 3) if len(z) > 1 else None}
    return out
