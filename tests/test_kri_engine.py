"""The KRI engine: catalogue, tail probabilities, calibration on a clean study, detection, persistence."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics.kri import service
from analytics.kri.engine import FLAG_RED, run_engine
from analytics.kri.extract import snapshot_dates, subject_measures
from analytics.kri.models import count_tails, proportion_tails
from analytics.kri.specs import CATALOGUE, all_measures, stratum_columns
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.core.warehouse import Warehouse

SCOPE = AccessScope.full_access()


@pytest.fixture(scope="module")
def demo(demo_db):
    path = demo_db  # the session's demo portfolio, with the stored results pages read (read-only here)
    wh = Warehouse.open(path)
    frame = subject_measures(wh, SCOPE, NO_FILTER, snapshot_dates(wh.as_of()))
    with duckdb.connect(str(path), read_only=True) as con:
        truth = con.execute("SELECT study_site_id, anomaly_type FROM truth.anomalies WHERE level = 'site'").df()
    return wh, frame, truth


def test_every_kri_reads_measures_the_extraction_produces():
    measures = set(all_measures()) | {"randomized", "days_on_treatment"}
    for spec in CATALOGUE:
        numerators = stratum_columns(spec.numerator) if spec.stratified else [spec.numerator]
        assert set(numerators) <= measures, spec.id
        assert spec.denominator in measures, spec.id


def test_count_tails_reduce_to_poisson_mid_p():
    observed, expected = np.array([0.0, 3.0, 12.0]), np.array([5.0, 5.0, 5.0])
    low, high = count_tails(observed, expected, expected, np.zeros(3))
    mid = 0.5 * stats.poisson.pmf(observed, expected)
    np.testing.assert_allclose(low, stats.poisson.cdf(observed - 1, expected) + mid, rtol=1e-9)
    np.testing.assert_allclose(low + high, 1.0, rtol=1e-9)


def test_between_site_spread_widens_tails():
    narrow, _ = count_tails(np.array([40.0]), np.array([100.0]), np.array([100.0]), np.array([0.0]))
    wide, _ = count_tails(np.array([40.0]), np.array([100.0]), np.array([100.0]), np.array([0.2]))
    assert wide[0] > 100 * narrow[0]
    low, high = proportion_tails(np.array([30.0]), np.array([100.0]), np.array([10.0]), np.array([9.0]), np.array([0.0]))
    assert high[0] < 1e-6 and low[0] > 0.999


def test_clean_sites_rarely_flag_red_and_far_less_than_funnel(demo):
    _, frame, truth = demo
    rates = {}
    for method in ("calibrated", "funnel"):
        sites = run_engine(frame, method).sites
        latest = sites[(sites["snap"] == sites["snap"].max()) & (sites["evaluable"] > 0)]
        clean = latest[~latest["study_site_id"].isin(truth["study_site_id"])]
        rates[method] = (clean["any_amber"].mean(), clean["any_red"].mean())
    assert rates["calibrated"][0] <= 0.15
    assert rates["calibrated"][1] <= 0.03
    assert rates["funnel"][0] > 2 * rates["calibrated"][0]


def test_a_site_that_stops_reporting_aes_is_flagged_low(demo):
    _, frame, _ = demo
    latest = frame[frame["snap"] == frame["snap"].max()]
    ae_cols = stratum_columns("ae")
    per_site = latest.groupby("study_site_id")[ae_cols].sum().sum(1)
    target = per_site.idxmax()
    silenced = frame.copy()
    silenced.loc[silenced["study_site_id"] == target, ae_cols + stratum_columns("sae")] = 0.0
    run = run_engine(silenced, "calibrated")
    cell = run.cells[(run.cells["study_site_id"] == target) & (run.cells["kri"] == "ae_rate")
                     & (run.cells["snap"] == run.cells["snap"].max())].iloc[0]
    assert cell["flag"] == FLAG_RED and cell["direction"] == "low"
    assert cell["observed"] == 0 and cell["expected"] > 10
    site = run.sites[(run.sites["study_site_id"] == target) & (run.sites["snap"] == run.sites["snap"].max())]
    assert site["site_p"].iloc[0] < 0.05
    # What a monitor reads: the site's AE rate is almost surely below 75% of its study's.
    assert cell["prob_below"] > 0.99 and cell["posterior_ratio_high"] < 0.5


def test_small_sites_are_grey_not_flagged(demo):
    _, frame, _ = demo
    cells = run_engine(frame, "calibrated").cells
    grey = cells[cells["flag"] == -1]
    assert len(grey) > 0
    specs = {s.id: s for s in CATALOGUE}
    too_few = grey["expected"].fillna(0) < grey["kri"].map(lambda k: specs[k].min_expected)
    # A proportion whose reference is 0 or 1 (e.g. every peer's subjects screened recently) has no spread.
    proportion = grey["kri"].map(lambda k: specs[k].family == "proportion")
    reference = grey["expected"] / grey["denominator"].where(grey["denominator"] > 0)
    degenerate = proportion & (reference.isna() | (reference <= 0) | (reference >= 1))
    assert (too_few | degenerate).all()


def test_page_tables_have_persistence_and_follow_the_country_filter(demo):
    wh, _, _ = demo
    cells, sites = service.kri_tables(wh, SCOPE, NO_FILTER, "calibrated")
    assert set(cells["kri"]) == {s.id for s in CATALOGUE}
    assert cells["months_flagged"].between(0, 6).all()
    assert sites["site_p"].dropna().between(0, 1).all()
    country = sites["country_code"].iloc[0]
    from analytics.core.scope import PortfolioFilter

    cells_c, sites_c = service.kri_tables(wh, SCOPE, PortfolioFilter(country_codes=(country,)), "calibrated")
    assert set(sites_c["country_code"]) == {country}
    # Sites are scored against their whole study: the same site keeps its numbers under the filter.
    merged = cells_c.merge(cells, on=["study_site_id", "kri"], suffixes=("", "_all"))
    np.testing.assert_allclose(merged["expected"].fillna(-1), merged["expected_all"].fillna(-1))
    burden = service.alert_burden(cells, sites, "calibrated")
    assert burden["expected_flagged"] == pytest.approx(0.1 * burden["sites"], abs=0.1)
