"""Monitoring results stored in the warehouse, recomputed whenever the data change.

Scoring a large portfolio takes tens of seconds (six monthly snapshots, two methods, patient-
reshuffle permutations, fabrication tests over millions of results): far longer than a monitor
waits in a meeting. The results depend only on the data, because every site is scored against its
whole study, so they are computed when the data change (at the end of ``build`` and inside every
import's transaction, before the new file is swapped in) and pages read them through the access
scope like any other table.

Tables (schema ``derived``, replaced wholesale on every refresh):

* ``kri_cells``: one row per method, snapshot, site and KRI (the engine's cell table).
* ``kri_sites``: one row per method, snapshot and site (site score, permutation p-value).
* ``atypical_sites``: the atypical-data tests and combined score per site.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from analytics.kri.atypical import atypical_inputs, score_atypical
from analytics.kri.engine import METHODS, run_engine
from analytics.kri.extract import snapshot_dates, subject_measures
from analytics.kri.permutation import site_score_pvalues
from analytics.kri.specs import CATALOGUE
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.core.warehouse import ConnectedWarehouse, Warehouse, set_info

SCHEMA = "derived"
TABLES = ("kri_cells", "kri_sites", "atypical_sites")
AS_OF_KEY = "derived_as_of"  # meta.warehouse_info: the as-of date the stored results were computed for
VERSION_KEY = "derived_version"  # meta.warehouse_info: which engine and catalogue computed them
# Bump the prefix when scoring changes; the KRI ids make a catalogue change invalidate stored results.
RESULTS_VERSION = "engine-1|" + "|".join(k.id for k in CATALOGUE)


def compute_results(wh: Warehouse, progress: Callable[[str], None] = lambda message: None) -> dict[str, pd.DataFrame]:
    """Score every study of the warehouse with every method at the default monthly snapshots."""
    scope = AccessScope.full_access()
    progress("extracting KRI measures")
    frame = subject_measures(wh, scope, NO_FILTER, snapshot_dates(wh.as_of()))
    cells, sites = [], []
    for method in METHODS:
        progress(f"scoring KRIs ({method})")
        run = run_engine(frame, method)
        method_sites = run.sites.copy()
        method_sites["site_p"] = np.nan
        if method == "calibrated" and len(method_sites):
            progress("calibrating site scores by patient reshuffling")
            last = int(method_sites["snap"].max())
            latest = method_sites["snap"] == last
            method_sites.loc[latest, "site_p"] = site_score_pvalues(run, last).reindex(
                method_sites.index[latest]).to_numpy()
        cells.append(run.cells.assign(method=method))
        sites.append(method_sites.assign(method=method))
    progress("atypical-data tests")
    atypical = score_atypical(*atypical_inputs(wh, scope, NO_FILTER))
    return {"kri_cells": pd.concat(cells, ignore_index=True), "kri_sites": pd.concat(sites, ignore_index=True),
            "atypical_sites": atypical}


def refresh(con: duckdb.DuckDBPyConnection, progress: Callable[[str], None] = lambda message: None) -> dict[str, int]:
    """Recompute and replace the stored results through a writer's open connection; rows per table."""
    wh = ConnectedWarehouse("(writer)", "", con)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    if con.execute("SELECT count(*) FROM main.subjects").fetchone()[0] == 0:
        # Nothing to score (e.g. only ClinicalTrials.gov benchmarks loaded): no stored results.
        for name in TABLES:
            con.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")
        con.execute("DELETE FROM meta.warehouse_info WHERE key IN (?, ?)", [AS_OF_KEY, VERSION_KEY])
        return {}
    results = compute_results(wh, progress)
    for name, frame in results.items():
        con.register("_stored_results", frame)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{name} AS SELECT * FROM _stored_results")
        finally:
            con.unregister("_stored_results")
    set_info(con, {AS_OF_KEY: wh.as_of().isoformat(), VERSION_KEY: RESULTS_VERSION})
    return {name: len(frame) for name, frame in results.items()}


def available(wh: Warehouse) -> bool:
    """True when stored results exist, for this warehouse's as-of date and this release's engine.

    Otherwise pages score live (slower) until the next build or import refreshes them.
    """
    info = wh.info()
    return (info.get(AS_OF_KEY) is not None and info.get(AS_OF_KEY) == info.get("as_of_date")
            and info.get(VERSION_KEY) == RESULTS_VERSION)


def read_engine_results(
    wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored (cells, sites) of the studies the scope and the sponsor/study filters select."""
    params = {"method": method}
    cells = wh.query(scope, f"SELECT c.* EXCLUDE (method) FROM {SCHEMA}.kri_cells c "
                            "JOIN scoped_studies USING (study_id) WHERE c.method = $method "
                            "ORDER BY c.snap, c.kri, c.study_site_id", params, filters)
    sites = wh.query(scope, f"SELECT s.* EXCLUDE (method) FROM {SCHEMA}.kri_sites s "
                            "JOIN scoped_studies USING (study_id) WHERE s.method = $method "
                            "ORDER BY s.snap, s.study_site_id", params, filters)
    return cells, sites


def read_site_flag_counts(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, method: str) -> pd.DataFrame:
    """Per study at the latest snapshot: sites with any red cell, and with any amber or red cell.

    Sites are those the filters select (country and site filters included), as on the heatmap.
    """
    return wh.query(
        scope,
        f"""
        SELECT s.study_id, count(*) FILTER (WHERE s.red > 0) AS red_sites,
               count(*) FILTER (WHERE s.red + s.amber > 0) AS flagged_sites
        FROM {SCHEMA}.kri_sites s JOIN scoped_sites USING (study_site_id)
        WHERE s.method = $method AND s.snap = (SELECT max(snap) FROM {SCHEMA}.kri_sites)
        GROUP BY 1 ORDER BY 1
        """,
        {"method": method},
        filters,
    )


def read_atypical(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Stored atypical-data results of the studies the scope and the sponsor/study filters select."""
    return wh.query(scope, f"SELECT a.* FROM {SCHEMA}.atypical_sites a JOIN scoped_studies USING (study_id) "
                           "ORDER BY a.study_site_id", None, filters)
