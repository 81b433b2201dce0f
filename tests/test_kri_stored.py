"""Monitoring results stored in the warehouse: same answers as live scoring, scoped, refreshed on import."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.kri import service, stored
from analytics.kri.engine import run_engine
from analytics.kri.extract import snapshot_dates, subject_measures
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_stored_results_equal_live_scoring(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    assert stored.available(wh)
    scope = AccessScope.full_access()
    frame = subject_measures(wh, scope, NO_FILTER, snapshot_dates(wh.as_of()))
    for method in ("calibrated", "funnel"):
        live = run_engine(frame, method).cells
        saved, _ = stored.read_engine_results(wh, scope, NO_FILTER, method)
        key = ["snap", "study_site_id", "kri"]
        merged = live.merge(saved, on=key, suffixes=("_live", "_stored"), validate="one_to_one")
        assert len(merged) == len(live) == len(saved)
        assert (merged["flag_live"] == merged["flag_stored"]).all()
        pd.testing.assert_series_equal(merged["p_live"], merged["p_stored"], check_names=False)


def test_stored_results_are_read_through_the_scope(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    own = set(wh.reference("SELECT study_id FROM main.studies WHERE sponsor_id = 'SP02'")["study_id"])
    cells, sites = stored.read_engine_results(wh, AccessScope(sponsor_ids=frozenset({"SP02"})), NO_FILTER, "calibrated")
    assert set(cells["study_id"]) == own and set(sites["study_id"]) == own
    atypical = stored.read_atypical(wh, AccessScope(sponsor_ids=frozenset({"SP02"})), NO_FILTER)
    assert set(atypical["study_id"]) <= own


def test_a_warehouse_with_only_benchmarks_has_no_stored_results(tmp_path: Path, shared_data: Path) -> None:
    from analytics.importers.ctgov import prepare_ctgov
    from analytics.importers.staging import commit

    db = tmp_path / "w.duckdb"
    commit(prepare_ctgov(shared_data / "ctgov" / "alzheimer_ctg-studies.csv"), db)
    assert not stored.available(Warehouse.open(db))


def test_import_refreshes_stored_results_so_the_pilot_is_scored(pilot_db: Path) -> None:
    wh = Warehouse.open(pilot_db)
    assert stored.available(wh)
    pilot = PortfolioFilter(study_ids=("CDISCPILOT01",))
    cells, sites = service.kri_tables(wh, AccessScope(), pilot, "calibrated")
    assert len(sites) == 17
    evaluable = cells[cells["flag"] >= 0].groupby("kri")["study_site_id"].nunique()
    assert evaluable["ae_rate"] == 17  # AEs are in the SDTM, so every site is scored
    # No EDC entry dates or queries in SDTM: those KRIs are grey, never "fine".
    for kri in ("query_rate", "late_entry", "ae_reporting_lag", "data_change"):
        assert evaluable.get(kri, 0) == 0


def test_heatmap_shows_every_pilot_site(pilot_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRO_WAREHOUSE", str(pilot_db))
    monkeypatch.setenv("CRO_USER", "local")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["study"] = ["CDISCPILOT01"]
    at.run()
    at.switch_page("pages/rbm_heatmap.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert len(heatmap["y"]) == 17 and all(label.startswith("CDISCPILOT01") for label in heatmap["y"])
    assert "AE rate" in heatmap["x"]


def test_results_from_another_engine_version_are_not_served(demo_db: Path, tmp_path: Path) -> None:
    import duckdb

    copy = tmp_path / "w.duckdb"
    copy.write_bytes(demo_db.read_bytes())
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE meta.warehouse_info SET value = 'engine-0|ae_rate' WHERE key = ?", [stored.VERSION_KEY])
    assert not stored.available(Warehouse.open(copy))
