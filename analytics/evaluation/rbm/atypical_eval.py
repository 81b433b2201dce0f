"""Metrics of the atypical-data tests on generated portfolios with injected fabrication and benign variation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.core import warehouse
from analytics.core.scope import NO_FILTER
from analytics.evaluation.rbm import metrics
from analytics.evaluation.rbm.fabrication import HELD_OUT_STYLES, STYLE_WEIGHTS, inject_atypical
from analytics.evaluation.rbm.portfolio import SCOPE, Portfolio
from analytics.kri.atypical import TESTS, atypical_inputs, score_atypical

SUBJECT_CLASSES = ((2, 4, "2-4"), (5, 14, "5-14"), (15, 10**9, "15+"))  # subjects with vital signs
SPECIFICITY_TARGET = 0.95


def atypical_table(portfolio: Portfolio) -> pd.DataFrame:
    """Inject into the portfolio's warehouse (in place), score it, label every site (generator labels dropped)."""
    details, features = inject_atypical(portfolio.path, portfolio.truth, portfolio.seed)
    wh = warehouse.Warehouse.open(portfolio.path)
    table = score_atypical(*atypical_inputs(wh, SCOPE, NO_FILTER))
    warehouse.close_all()
    table = table[~table["study_site_id"].isin(portfolio.truth["study_site_id"])]
    table = table.merge(details, on="study_site_id", how="left").merge(features, on="study_site_id", how="left")
    return table[table["tests_available"] > 0].assign(seed=portfolio.seed)


def _sensitivity_at(clean: pd.Series, positive: pd.Series, specificity: float) -> float | None:
    """Share of positives above the clean sites' ``specificity`` quantile of the score."""
    if not len(clean) or not len(positive):
        return None
    threshold = float(np.quantile(clean.fillna(0), specificity, method="higher"))
    return round(float((positive.fillna(0) > threshold).mean()), 4)


def atypical_metrics(table: pd.DataFrame) -> dict[str, object]:
    """Per style: AUC, sensitivity at the default flag and at 95% specificity; specificity on clean sites."""
    clean = table[table["style"].isna()]
    benign_rounding = clean["benign_rounding"].fillna("") != ""
    clinics = clean["scheduled_clinic"].fillna(False).astype(bool)
    out: dict[str, object] = {
        "clean_sites": int(len(clean)),
        "specificity": metrics.share(~clean["atypical_flag"].astype(bool)),
        "specificity_sites_with_benign_rounding": metrics.share(~clean.loc[benign_rounding, "atypical_flag"].astype(bool)),
        "specificity_scheduled_clinics": metrics.share(~clean.loc[clinics, "atypical_flag"].astype(bool)),
        "specificity_without_benign_features": metrics.share(
            ~clean.loc[~benign_rounding & ~clinics, "atypical_flag"].astype(bool)),
        "clean_tests_below_0.01": {t: metrics.share(clean[t].dropna() < 0.01) for t in TESTS},
        "styles": {},
    }
    sizes = pd.Series("other", index=table.index)
    for lo, hi, name in SUBJECT_CLASSES:
        sizes[table["subjects_with_vitals"].between(lo, hi)] = name
    for style in STYLE_WEIGHTS:
        positive = table[table["style"] == style]
        entry: dict[str, object] = {
            "held_out": style in HELD_OUT_STYLES,
            "sites": int(len(positive)),
            "auc": metrics._auc(clean["atypical_score"].fillna(0), positive["atypical_score"].fillna(0)),
            "sensitivity_at_default_flag": metrics.share(positive["atypical_flag"].astype(bool)),
            "sensitivity_at_95pct_specificity": _sensitivity_at(clean["atypical_score"], positive["atypical_score"],
                                                                SPECIFICITY_TARGET),
            "auc_by_test": {t: metrics._auc(-np.log(clean[t].clip(lower=1e-300)).fillna(0),
                                            -np.log(positive[t].clip(lower=1e-300)).fillna(0)) for t in TESTS},
            "auc_by_subjects_with_vitals": {name: metrics._auc(
                clean.loc[sizes[clean.index] == name, "atypical_score"].fillna(0),
                positive.loc[sizes[positive.index] == name, "atypical_score"].fillna(0))
                for _, _, name in SUBJECT_CLASSES},
        }
        signatures = [c for c in table.columns if c.startswith("sig_")]
        if style in ("standard", "subtle") and len(positive):
            entry["signature_present_share"] = {c[4:]: round(float(positive[c].fillna(False).astype(bool).mean()), 3)
                                                for c in signatures}
        out["styles"][style] = entry
    return out
