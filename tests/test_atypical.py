"""Atypical-data tests find the generator's fabricated sites and leave clean sites alone."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from analytics.evaluation.rbm import build_portfolio
from analytics.kri.atypical import TESTS, atypical_inputs, combine, copied_vectors, score_atypical
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.core.warehouse import Warehouse


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    path = tmp_path_factory.mktemp("atypical") / "eval.duckdb"
    build_portfolio(path, "demo", 5150)
    table = score_atypical(*atypical_inputs(Warehouse.open(path), AccessScope.full_access(), NO_FILTER))
    with duckdb.connect(str(path), read_only=True) as con:
        truth = con.execute(
            "SELECT study_site_id, anomaly_type, (SELECT count(*) FROM truth.anomalies s WHERE s.level = 'subject' "
            "AND s.study_site_id = a.study_site_id) AS fabricated FROM truth.anomalies a WHERE level = 'site'").df()
    return table.merge(truth, on="study_site_id", how="left")


def test_fabricated_sites_rank_above_clean_sites(scored):
    s = scored[scored["tests_available"] > 0]
    fabricated = (s["anomaly_type"] == "fabricated_data") & (s["fabricated"] > 0)
    rows = fabricated | s["anomaly_type"].isna()
    assert fabricated.sum() >= 2
    assert roc_auc_score(fabricated[rows], s.loc[rows, "atypical_score"]) > 0.9


def test_clean_sites_are_rarely_flagged(scored):
    clean = scored[scored["anomaly_type"].isna() & (scored["tests_available"] > 0)]
    assert len(clean) > 50
    assert clean["atypical_flag"].mean() <= 0.05


def test_copied_vectors_only_counts_repeats_beyond_chance():
    copies = pd.DataFrame({"study_id": ["S"] * 3, "study_site_id": ["a", "b", "c"],
                           "vectors": [200, 200, 200], "copied": [0, 0, 40]})
    p = copied_vectors(copies)["copied_vectors"]
    assert p.loc[("S", "a")] == 1.0 and p.loc[("S", "c")] < 1e-10


def test_combined_score_is_fisher_over_available_tests():
    frame = pd.DataFrame({t: [np.nan, 0.5] for t in TESTS})
    out = combine(frame)
    assert np.isnan(out["atypical_p"].iloc[0])
    assert out["atypical_p"].iloc[1] == pytest.approx(stats.chi2.sf(-2 * len(TESTS) * np.log(0.5), 2 * len(TESTS)))
    assert not out["atypical_flag"].iloc[1]
