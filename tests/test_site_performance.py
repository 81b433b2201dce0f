"""Site scorecards against study peers and the shrunk site-selection ranking."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.sites import performance as sp
from analytics.evaluation.rbm import build_portfolio
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.core.warehouse import Warehouse

SCOPE = AccessScope.full_access()


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    path = tmp_path_factory.mktemp("perf") / "demo.duckdb"
    build_portfolio(path, "demo", 909)
    return Warehouse.open(path)


def test_scorecards_rank_sites_within_their_study(wh):
    cards = sp.site_scorecards(wh, SCOPE, NO_FILTER)
    assert {*sp.METRICS, "overall_pct"} <= set(cards.columns)
    pct = cards[[f"{m}_pct" for m in sp.METRICS]].stack().dropna()
    assert pct.between(0, 100).all()
    # Within a study the best entry lag gets the top percentile (lower lag is better).
    study = cards.groupby("study_id")["entry_lag_days"].count().idxmax()
    rows = cards[cards["study_id"] == study].dropna(subset=["entry_lag_days"])
    assert rows.loc[rows["entry_lag_days"].idxmin(), "entry_lag_days_pct"] == rows["entry_lag_days_pct"].max()
    assert (cards["retention"].dropna().between(0, 1)).all()


def test_sparklines_cover_twelve_months(wh):
    spark = sp.enrollment_sparklines(wh, SCOPE, NO_FILTER)
    assert len(spark) > 0 and spark["randomized_by_month"].map(len).eq(12).all()


def test_shrinkage_pulls_short_histories_to_the_mean():
    history = pd.DataFrame({"site_id": ["long", "short", "mid"], "randomized": [60, 3, 20],
                            "site_months": [60.0, 1.0, 40.0]})
    ranked = sp.shrunk_enrollment_rates(history).set_index("site_id")
    prior = ranked["prior_mean"].iloc[0]
    # The short history's raw rate (3/month) is pulled most of the way back to the mean.
    assert abs(ranked.loc["short", "posterior_mean"] - prior) < 0.5 * abs(ranked.loc["short", "rate"] - prior)
    assert (ranked["upper"] - ranked["lower"]).loc["short"] > (ranked["upper"] - ranked["lower"]).loc["long"]
    assert (ranked["lower"] <= ranked["posterior_mean"]).all() and (ranked["posterior_mean"] <= ranked["upper"]).all()


def test_site_selection_ranking_for_an_area(wh):
    area = sp.therapeutic_areas(wh, SCOPE)[0]
    ranking = sp.site_selection_ranking(wh, SCOPE, area)
    assert len(ranking) > 0
    assert ranking["posterior_mean"].is_monotonic_decreasing


def test_sites_without_recent_randomizations_get_a_flat_sparkline() -> None:
    import pandas as pd

    from analytics.sites.performance import with_sparklines

    cards = pd.DataFrame({"study_site_id": ["A", "B"]})
    spark = pd.DataFrame({"study_site_id": ["A"], "randomized_by_month": [[1, 2, 0]]})
    merged = with_sparklines(cards, spark, months=3)
    assert merged["randomized_by_month"].tolist() == [[1, 2, 0], [0, 0, 0]]
