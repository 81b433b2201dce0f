"""Atypical-data tests find the generator's fabricated sites and leave clean sites alone."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from analytics.evaluation.rbm import build_portfolio
from analytics.kri.atypical import TEST_WEIGHTS, TESTS, atypical_inputs, combine, copied_vectors, score_atypical, shared_traits
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
    assert np.isnan(p.loc[("S", "a")]) and p.loc[("S", "c")] < 1e-10


def test_combined_score_is_weighted_stouffer_over_available_tests():
    frame = pd.DataFrame({t: [np.nan, 0.5, 0.05] for t in TESTS})
    frame.loc[2, "copied_vectors"] = np.nan  # no repeated vector: that test says nothing
    out = combine(frame)
    assert np.isnan(out["atypical_p"].iloc[0])
    assert out["atypical_p"].iloc[1] == pytest.approx(0.5)
    weights = np.array([TEST_WEIGHTS[t] for t in TESTS if t != "copied_vectors"])
    expected = stats.norm.sf(weights.sum() * stats.norm.isf(0.05) / np.sqrt((weights**2).sum()))
    assert out["atypical_p"].iloc[2] == pytest.approx(expected)
    assert out["tests_available"].iloc[2] == len(TESTS) - 1 and out["atypical_flag"].iloc[2]


def _digits(site_roundness: dict[str, float], rng: np.random.Generator) -> pd.DataFrame:
    """Subject-level digit summaries of one study whose sites record only even numbers."""
    rows = []
    for site, share_zero in site_roundness.items():
        for s in range(8):
            digits = rng.choice([0, 2, 4, 6, 8], size=30, p=[share_zero] + [(1 - share_zero) / 4] * 4)
            r = np.where(digits == 0, 1.0, 0.2)
            rows.append({"study_id": "S", "study_site_id": site, "subject_id": f"{site}-{s}", "test_code": "SYSBP",
                         "n": 30, "roundness": r.mean(), "roundness_sq": (r**2).mean()})
    return pd.DataFrame(rows)


def test_digit_preference_is_judged_against_the_studys_own_digits_and_is_one_sided():
    from analytics.kri.atypical import digit_preference

    rng = np.random.default_rng(7)
    sites = {f"even{i}": 0.2 for i in range(15)} | {"rounds_to_zero": 0.7, "avoids_zero": 0.02}
    p = digit_preference(_digits(sites, rng))["digit_preference"].droplevel("study_id")
    assert p["rounds_to_zero"] < 1e-4
    assert p["avoids_zero"] > 0.5  # fewer round numbers than peers is not "rounding"
    assert (p[[f"even{i}" for i in range(15)]] > 0.01).all()  # even-only sites are normal in this study


def test_subjects_moved_between_sites_are_scored_under_their_new_site():
    from analytics.kri.atypical import relabel_sites

    within = pd.DataFrame({"study_id": ["S", "S"], "study_site_id": ["a", "b"], "subject_id": ["x", "y"]})
    (moved,) = relabel_sites((within,), pd.Series({"x": "b", "y": "a"}))
    assert list(moved["study_site_id"]) == ["b", "a"]


def _trait_inputs(fabricated: dict[str, int], steady: dict[str, float], rng: np.random.Generator):
    """Subject-level inputs of one study: per site, ``fabricated`` subjects steadier, rounder and punctual,
    and a site-wide noise factor ``steady`` (a benign device or practice) on every subject."""
    within, digits, visits = [], [], []
    for site in steady:
        for s in range(12):
            fake = s < fabricated.get(site, 0)
            subject = f"{site}-{s}"
            for test, sd in (("SYSBP", 10.0), ("DIABP", 7.0), ("PULSE", 8.0)):
                values = rng.normal(100, sd * steady[site] * (0.6 if fake else 1.0), size=10)
                within.append({"study_id": "S", "study_site_id": site, "subject_id": subject, "test_code": test,
                               "domain": "VS", "n": 10, "variance": values.var(ddof=1),
                               "mean_value": 100 + rng.normal(0, 0.6 if fake else 1.0) * sd})
                r = rng.binomial(1, 0.5 if fake else 0.15, size=30).mean()
                digits.append({"study_id": "S", "study_site_id": site, "subject_id": subject, "test_code": test,
                               "n": 30, "roundness": r, "roundness_sq": r})
            visits.append({"study_id": "S", "study_site_id": site, "subject_id": subject, "visits": 10,
                           "on_day": int(rng.binomial(10, 0.7 if fake else 0.2))})
    return pd.DataFrame(digits), pd.DataFrame(within), pd.DataFrame(visits)


def test_shared_traits_finds_a_subset_of_subjects_not_a_site_wide_quirk():
    rng = np.random.default_rng(11)
    steady = {f"s{i:02d}": 1.0 for i in range(20)} | {"quirk": 0.5, "fabricated": 1.0}
    digits, within, visits = _trait_inputs({"fabricated": 5}, steady, rng)
    p = shared_traits(digits, within, visits)["shared_traits"].droplevel("study_id")
    assert p["fabricated"] < 0.01
    assert p["quirk"] > 0.05  # every subject of the site equally steady: nothing unlike the site's others
    assert (p.drop(["fabricated", "quirk"]) < 0.01).sum() == 0


def test_a_study_s_atypical_tests_are_the_same_scored_alone_or_with_the_others(tiny_db) -> None:
    """A Spark task or a partial refresh scores one study on its own: it must get the digits a full run gives it."""
    from analytics.kri.atypical import Pool, pool_medians

    inputs = atypical_inputs(Warehouse.open(tiny_db), AccessScope.full_access(), NO_FILTER)
    pool = Pool()
    together = score_atypical(*inputs, pool=pool)
    fixed = pool_medians(pool.evidence())
    studies = sorted(together["study_id"].unique())
    assert len(studies) >= 2
    for study in studies:
        alone = score_atypical(*(f[f["study_id"] == study] for f in inputs), pool=Pool(fixed=fixed))
        expected = together[together["study_id"] == study].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone.reset_index(drop=True), expected, check_exact=True, check_dtype=False)


def test_atypical_tests_do_not_depend_on_the_order_the_rows_were_read_in(tiny_db) -> None:
    """DuckDB's grouped queries and Spark's Parquet partitions return rows in no fixed order: the
    p-values must be the same digits whatever it was (the Spark refresh of `large` differed at two
    sites, in the digit-preference test, before its sums were ordered)."""
    from analytics.kri.atypical import Pool, pool_medians

    inputs = atypical_inputs(Warehouse.open(tiny_db), AccessScope.full_access(), NO_FILTER)
    pool = Pool()
    expected = score_atypical(*inputs, pool=pool)
    fixed = pool_medians(pool.evidence())
    for seed in range(5):
        shuffled = [f.sample(frac=1.0, random_state=seed).reset_index(drop=True) for f in inputs]
        got = score_atypical(*shuffled, pool=Pool(fixed=fixed))
        pd.testing.assert_frame_equal(got.sort_values(["study_id", "study_site_id"]).reset_index(drop=True),
                                      expected.sort_values(["study_id", "study_site_id"]).reset_index(drop=True),
                                      check_exact=True, check_dtype=False)
