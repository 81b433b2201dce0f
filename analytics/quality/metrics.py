"""Query and timeliness metrics per site against its study's other sites.

At the warehouse's as-of date: open queries by age, queries per 100 data points, time to resolution
(opened to closed), data-entry lag (visit to first eCRF entry), overdue pages (visits older than
:data:`ENTRY_DUE_DAYS` whose pages are not entered) and the SDV backlog (entered data points not yet
source-data verified). Every figure is one SQL aggregate through the scope; sites are compared with
the median of their study's sites (the country and site filters choose rows, never the peers).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.core.caching import cached
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

AGE_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("0-7 days", 0, 7), ("8-30 days", 8, 30), ("31-60 days", 31, 60), ("61-90 days", 61, 90), ("over 90 days", 91, 10**6))
ENTRY_DUE_DAYS = 10  # a page not entered this long after its visit is overdue
LAG_BINS = (0, 1, 2, 3, 5, 7, 10, 14, 21, 30, 60, 90)

_SITE_METRICS_CTES = """
query_site AS (
    SELECT study_site_id, count(*) AS queries,
           count(*) FILTER (WHERE status <> 'Closed') AS open_queries,
           count(*) FILTER (WHERE status <> 'Closed' AND date_diff('day', opened_date, $as_of) > 30) AS open_over_30,
           median(date_diff('day', opened_date, closed_date)) FILTER (WHERE closed_date IS NOT NULL) AS resolution_median,
           quantile_cont(date_diff('day', opened_date, closed_date), 0.9) FILTER (WHERE closed_date IS NOT NULL)
               AS resolution_p90
    FROM queries GROUP BY 1
), page_site AS (
    SELECT pg.study_site_id, sum(pg.data_points) FILTER (WHERE pg.entry_date IS NOT NULL) AS data_points,
           sum(pg.data_points - pg.sdv_points) FILTER (WHERE pg.entry_date IS NOT NULL) AS sdv_backlog,
           count(*) FILTER (WHERE pg.entry_date IS NULL AND date_diff('day', vi.actual_date, $as_of) > $due)
               AS overdue_pages
    FROM crf_pages pg JOIN visits vi USING (visit_id) GROUP BY 1
), visit_site AS (
    SELECT study_site_id, median(date_diff('day', actual_date, entry_date)) AS entry_lag_median,
           quantile_cont(date_diff('day', actual_date, entry_date), 0.9) AS entry_lag_p90
    FROM visits WHERE actual_date IS NOT NULL AND entry_date IS NOT NULL GROUP BY 1
)"""
_SITE_METRICS_SQL = """
SELECT s.study_id, s.study_site_id, s.site_number, s.site_name, s.country_code,
       q.queries, q.open_queries, q.open_over_30, q.resolution_median, q.resolution_p90,
       p.data_points, 100.0 * q.queries / nullif(p.data_points, 0) AS queries_per_100,
       p.sdv_backlog, p.overdue_pages, v.entry_lag_median, v.entry_lag_p90
FROM scoped_sites s LEFT JOIN query_site q USING (study_site_id) LEFT JOIN page_site p USING (study_site_id)
LEFT JOIN visit_site v USING (study_site_id)
WHERE q.queries IS NOT NULL OR p.data_points IS NOT NULL OR v.entry_lag_median IS NOT NULL
"""

PEER_METRICS = ("queries_per_100", "open_over_30", "resolution_median", "entry_lag_median", "overdue_pages",
                "sdv_backlog")


@cached
def site_metrics(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, as_of: dt.date) -> pd.DataFrame:
    """One row per site: the metrics, and each peer metric's median over the site's study (``*_study``)."""
    everything = wh.query_with(scope, _SITE_METRICS_CTES, _SITE_METRICS_SQL, {"as_of": as_of, "due": ENTRY_DUE_DAYS},
                               filters.study_level())
    numeric = [c for c in everything.columns if c not in ("study_id", "study_site_id", "site_number", "site_name",
                                                          "country_code")]
    everything[numeric] = everything[numeric].astype("float64")  # counts of absent facts are NaN, not pd.NA
    for name in PEER_METRICS:
        everything[f"{name}_study"] = everything.groupby("study_id")[name].transform("median")
    shown = wh.query(scope, "SELECT study_site_id FROM scoped_sites", None, filters)["study_site_id"]
    return everything[everything["study_site_id"].isin(set(shown))].reset_index(drop=True)


@cached
def query_aging(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, as_of: dt.date) -> pd.DataFrame:
    """Open queries at the as-of date by age bucket (bucket order kept)."""
    ages = wh.query(scope, """
        SELECT date_diff('day', opened_date, $as_of) AS age, count(*) AS queries
        FROM queries WHERE status <> 'Closed' AND opened_date BETWEEN $date_from AND $date_to GROUP BY 1""",
                    {"as_of": as_of}, filters)
    rows = []
    for label, low, high in AGE_BUCKETS:
        rows.append({"bucket": label, "queries": int(ages.loc[ages["age"].between(low, high), "queries"].sum())})
    return pd.DataFrame(rows)


@cached
def entry_lag_distribution(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Visits by days from visit to first eCRF entry (binned; the last bin is open-ended)."""
    lags = wh.query(scope, """
        SELECT date_diff('day', actual_date, entry_date) AS lag, count(*) AS visits FROM visits
        WHERE actual_date IS NOT NULL AND entry_date IS NOT NULL AND actual_date BETWEEN $date_from AND $date_to
        GROUP BY 1""", None, filters)
    rows = []
    edges = list(LAG_BINS) + [None]
    for low, high in zip(edges[:-1], edges[1:]):
        mask = lags["lag"] >= low if high is None else lags["lag"].between(low, high - 1)
        label = f"{low}+ days" if high is None else (f"{low} days" if high - low == 1 else f"{low}-{high - 1} days")
        rows.append({"lag": label, "visits": int(lags.loc[mask, "visits"].sum())})
    return pd.DataFrame(rows)


def headline(metrics: pd.DataFrame) -> dict[str, float]:
    """Totals over the sites shown: open queries, queries per 100 data points, overdue pages, SDV backlog."""
    points = metrics["data_points"].sum()
    return {
        "open_queries": float(metrics["open_queries"].sum()),
        "queries_per_100": float(100.0 * metrics["queries"].sum() / points) if points else float("nan"),
        "overdue_pages": float(metrics["overdue_pages"].sum()),
        "sdv_backlog": float(metrics["sdv_backlog"].sum()),
    }
