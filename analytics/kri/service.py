"""Page-facing, cached KRI results: heatmap cells, site table, persistence and drill-down data.

Every function takes only small hashable arguments (warehouse handle, access scope, filters, ids).
Sites are always scored against their *whole study* (the country and site filters select rows to
show, they never change the reference), so a site's flags do not depend on what else is on screen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.core.caching import cached
from analytics.core.derived import Freshness
from analytics.core.derived import freshness as derived_freshness
from analytics.kri.engine import DEFAULT_POLICY
from analytics.kri.extract import snapshot_dates
from analytics.kri.results import KRI_RESULT
from analytics.kri.sites import FLAG_AMBER
from analytics.kri.specs import CATALOGUE, CATALOGUE_BY_ID
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse


METHOD_LABELS = {"calibrated": "Calibrated engine", "funnel": "gsm-style funnel"}


def cutoff_dates(wh: Warehouse) -> list:
    """Monthly snapshot cutoffs, oldest first, ending at the warehouse's as-of date."""
    return snapshot_dates(wh.as_of())


@cached
def freshness(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> Freshness:
    """Whether the stored KRI results of the visible studies are current (pages warn when not)."""
    return derived_freshness(wh, scope, filters.study_level(), KRI_RESULT)


def _engine_results(
    wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str = "calibrated"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored (cells, sites) at every monthly snapshot of the studies the sponsor/study filters select.

    Date filters do not apply: the snapshots always end at the as-of date. Sites carry ``site_p``
    (patient-reshuffle permutation p-value of the site score) at the latest snapshot.
    """
    reference = filters.study_level()
    params = {"method": method}
    cells = wh.query(scope, "SELECT * EXCLUDE (method) FROM kri_cells WHERE method = $method "
                            "ORDER BY snap, kri, study_site_id", params, reference)
    sites = wh.query(scope, "SELECT * EXCLUDE (method) FROM kri_sites WHERE method = $method "
                            "ORDER BY snap, study_site_id", params, reference)
    return cells, sites


@cached
def kri_tables(
    wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str = "calibrated"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, sites) at the latest snapshot for the sites the filters select.

    cells: one row per site and KRI with observed, expected, O/E, rate, p, signed z, flag
    (-1 insufficient, 0 ok, 1 amber, 2 red), direction, months flagged, new flag, and the change of
    the signed score since the previous snapshot.
    sites: one row per site with site name, country, site score and (calibrated method) its
    permutation p-value, flag counts and the number of KRIs flagged for consecutive months.
    """
    # The latest snapshot only: persistence over the six snapshots is stored with it at refresh time.
    reference = filters.study_level()
    params = {"method": method}
    # The change of the score since the previous snapshot replaces the history list (lists are slow to cache).
    cells = wh.query(scope, "SELECT * EXCLUDE (method, z_history), "
                            "list_extract(z_history, -1) - list_extract(z_history, -2) AS z_change "
                            "FROM kri_cells WHERE method = $method "
                            "AND snap = (SELECT max(snap) FROM kri_cells) ORDER BY kri, study_site_id", params, reference)
    sites = wh.query(scope, "SELECT * EXCLUDE (method) FROM kri_sites WHERE method = $method "
                            "AND snap = (SELECT max(snap) FROM kri_sites) ORDER BY study_site_id", params, reference)
    info = wh.query(scope, "SELECT study_site_id, site_name, country_code, site_number, study_id AS study "
                           "FROM scoped_sites", None, filters)
    sites = sites.merge(info.drop(columns="study"), on="study_site_id", how="inner")
    persistent = cells[cells["flag"] >= FLAG_AMBER].groupby("study_site_id")["months_flagged"].max()
    sites["months_flagged"] = sites["study_site_id"].map(persistent).fillna(0).astype("int64")
    new = cells[cells["new_flag"].fillna(False).astype(bool)].groupby("study_site_id").size()
    sites["new_flags"] = sites["study_site_id"].map(new).fillna(0).astype("int64")
    sites = sites.sort_values(["site_p", "site_score"] if method == "calibrated" else ["site_score"],
                              ascending=[True, False] if method == "calibrated" else [False],
                              ignore_index=True)
    cells = cells[cells["study_site_id"].isin(set(sites["study_site_id"]))].reset_index(drop=True)
    cells["kri_name"] = cells["kri"].map({k.id: k.name for k in CATALOGUE})
    return cells.drop(columns=["site_code"]), sites.drop(columns=["snap"])


def alert_burden(cells: pd.DataFrame, sites: pd.DataFrame, method: str) -> dict[str, float]:
    """Sites flagged (any amber or worse, any red) and how many a clean study would flag by chance.

    For the calibrated method chance is the policy's rate (per-cell thresholds over each site's evaluable
    tests, their dependence measured by permutation); for the funnel it is the normal-theory rate of its
    fixed thresholds over those tests.
    """
    evaluable = sites[sites["evaluable"] > 0]
    flagged = int((evaluable["red"] + evaluable["amber"] > 0).sum())
    red = int((evaluable["red"] > 0).sum())
    if method == "calibrated":
        expected_any = DEFAULT_POLICY.amber_site_rate * len(evaluable)
        expected_red = DEFAULT_POLICY.red_site_rate * len(evaluable)
    else:
        from scipy import stats

        spec_rates = {k.id: (stats.norm.cdf(k.funnel_thresholds[1]) + stats.norm.sf(k.funnel_thresholds[2]),
                             stats.norm.cdf(k.funnel_thresholds[0]) + stats.norm.sf(k.funnel_thresholds[3]))
                      for k in CATALOGUE}
        ok = cells[cells["flag"] >= 0]
        # As floats even when no cell is evaluable (an empty map keeps the text dtype of the KRI ids).
        amber_p = ok["kri"].map({k: v[0] for k, v in spec_rates.items()}).astype("float64")
        red_p = ok["kri"].map({k: v[1] for k, v in spec_rates.items()}).astype("float64")
        none_amber = np.exp(np.log1p(-amber_p).groupby(ok["study_site_id"]).sum())
        none_red = np.exp(np.log1p(-red_p).groupby(ok["study_site_id"]).sum())
        expected_any, expected_red = float((1 - none_amber).sum()), float((1 - none_red).sum())
    return {"sites": len(evaluable), "flagged": flagged, "red": red,
            "expected_flagged": round(expected_any, 1), "expected_red": round(expected_red, 1)}


@cached
def kri_site_history(
    wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str, study_site_id: str, kri_id: str
) -> pd.DataFrame:
    """One site's KRI at every monthly snapshot: cutoff, observed, expected, O - E, z, p, flag."""
    cells = wh.query(scope, """
        SELECT snap, observed, expected, observed - expected AS observed_minus_expected, denominator, rate,
               expected_rate, z, p, flag
        FROM kri_cells WHERE method = $method AND study_site_id = $site AND kri = $kri ORDER BY snap""",
        {"method": method, "site": study_site_id, "kri": kri_id}, filters.study_level())
    cutoffs = cutoff_dates(wh)
    cells.insert(0, "cutoff", cells.pop("snap").map(dict(enumerate(cutoffs))))
    return cells


@cached
def kri_funnel(
    wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str, study_id: str, kri_id: str
) -> pd.DataFrame:
    """Every site of ``study_id`` for one KRI at the latest snapshot (for the funnel plot)."""
    cells, _ = kri_tables(wh, scope, filters.study_level(), method)
    return cells[(cells["study_id"] == study_id) & (cells["kri"] == kri_id)].reset_index(drop=True)


_BREAKDOWN_SQL = {
    "ae_body_system": """
        SELECT coalesce(ae.body_system, 'Not coded') AS category, count(*) AS site_count,
               sum(CASE WHEN ae.serious THEN 1 ELSE 0 END) AS serious
        FROM adverse_events ae JOIN scoped_sites USING (study_site_id)
        WHERE ae.study_site_id = $site GROUP BY 1""",
    "pd_category": """
        SELECT coalesce(pd.category, 'Uncategorized') AS category, count(*) AS site_count,
               sum(CASE WHEN pd.important THEN 1 ELSE 0 END) AS important
        FROM protocol_deviations pd JOIN scoped_sites USING (study_site_id)
        WHERE pd.study_site_id = $site GROUP BY 1""",
    "lab_test": """
        SELECT m.test_code AS category, count(*) FILTER (WHERE m.grade >= 3) AS site_count,
               count(*) FILTER (WHERE m.grade IS NOT NULL) AS graded
        FROM measurements m JOIN scoped_sites USING (study_site_id)
        WHERE m.study_site_id = $site AND m.domain = 'LB' GROUP BY 1""",
}
_STUDY_BREAKDOWN_SQL = {
    "ae_body_system": """
        SELECT coalesce(ae.body_system, 'Not coded') AS category, count(*) AS study_count
        FROM adverse_events ae JOIN scoped_sites USING (study_site_id)
        WHERE ae.study_id = $study GROUP BY 1""",
    "pd_category": """
        SELECT coalesce(pd.category, 'Uncategorized') AS category, count(*) AS study_count
        FROM protocol_deviations pd JOIN scoped_sites USING (study_site_id)
        WHERE pd.study_id = $study GROUP BY 1""",
    "lab_test": """
        SELECT m.test_code AS category, count(*) FILTER (WHERE m.grade >= 3) AS study_count
        FROM measurements m JOIN scoped_sites USING (study_site_id)
        WHERE m.study_id = $study AND m.domain = 'LB' GROUP BY 1""",
}


@cached
def kri_breakdown(
    wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_site_id: str, kind: str
) -> pd.DataFrame:
    """Counts by category at a site next to the share its study would predict.

    ``kind``: ``ae_body_system``, ``pd_category`` or ``lab_test``. Columns: category, site_count,
    study_share (category share in the whole study), expected_at_site.
    """
    if kind not in _BREAKDOWN_SQL:
        raise KeyError(f"unknown breakdown {kind!r}")
    reference = filters.study_level()
    study = wh.query(scope, "SELECT study_id FROM scoped_sites WHERE study_site_id = $site",
                     {"site": study_site_id}, reference)
    if study.empty:
        return pd.DataFrame(columns=["category", "site_count", "study_share", "expected_at_site"])
    site = wh.query(scope, _BREAKDOWN_SQL[kind], {"site": study_site_id}, reference)
    whole = wh.query(scope, _STUDY_BREAKDOWN_SQL[kind], {"study": study["study_id"].iloc[0]}, reference)
    table = whole.merge(site, on="category", how="left").fillna({"site_count": 0})
    total = table["study_count"].sum()
    table["study_share"] = table["study_count"] / total if total else 0.0
    table["expected_at_site"] = table["study_share"] * table["site_count"].sum()
    return table.sort_values("site_count", ascending=False, ignore_index=True)


@cached
def country_rollup(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str) -> pd.DataFrame:
    """Per country and KRI: sites, sites flagged amber or worse, red, and the summed O and E."""
    cells, sites = kri_tables(wh, scope, filters, method)
    country = sites.set_index("study_site_id")["country_code"]
    c = cells.assign(country_code=cells["study_site_id"].map(country))
    grouped = c.groupby(["country_code", "kri"])
    table = pd.DataFrame({
        "sites": grouped["study_site_id"].nunique(),
        "flagged": grouped["flag"].apply(lambda f: int((f >= 1).sum())),
        "red": grouped["flag"].apply(lambda f: int((f == 2).sum())),
        "observed": grouped["observed"].sum(),
        "expected": grouped["expected"].sum(),
    }).reset_index()
    table["o_e"] = table["observed"] / table["expected"].where(table["expected"] > 0)
    table["kri_name"] = table["kri"].map({k.id: k.name for k in CATALOGUE})
    return table


@cached
def site_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Study-site id -> "institution (study, site number)" for the sites the filters select."""
    sites = wh.query(scope, "SELECT study_site_id, study_id, site_number, site_name FROM scoped_sites "
                            "ORDER BY study_id, site_number", None, filters)
    return {r.study_site_id: f"{r.site_name} ({r.study_id} site {r.site_number})" for r in sites.itertuples()}


@cached
def scored_site_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Like :func:`site_labels`, for the sites that have stored KRI results (those with a drill-down)."""
    scored = wh.query(scope, "SELECT DISTINCT study_site_id FROM kri_sites", None, filters)["study_site_id"]
    keep = set(scored)
    return {k: v for k, v in site_labels(wh, scope, filters).items() if k in keep}


def kri_names() -> dict[str, str]:
    """KRI id -> display name, in catalogue order."""
    return {k.id: k.name for k in CATALOGUE}


def kri_spec(kri_id: str):
    """The spec of ``kri_id`` or None when unknown (for validating URL parameters)."""
    return CATALOGUE_BY_ID.get(kri_id)


@cached
def atypical_sites(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Stored atypical-data tests and combined score for the sites the filters select.

    Sites are compared with their whole study, so the country and site filters do not change the
    reference; they only select rows.
    """
    return wh.query(scope, "SELECT * FROM atypical_sites ORDER BY study_site_id", None, filters)


def site_flag_counts(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str) -> pd.DataFrame:
    """Per study at the latest snapshot: sites with any red cell, and with any amber or red cell.

    Sites are those the filters select (country and site filters included), as on the heatmap.
    """
    return wh.query(
        scope,
        """
        SELECT s.study_id, count(*) FILTER (WHERE s.red > 0) AS red_sites,
               count(*) FILTER (WHERE s.red + s.amber > 0) AS flagged_sites
        FROM kri_sites s
        WHERE s.method = $method AND s.snap = (SELECT max(snap) FROM kri_sites)
        GROUP BY 1 ORDER BY 1
        """,
        {"method": method},
        filters,
    )
