"""Derived results: stored answers equal live scoring, read through the scope, refreshed only when stale."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.core import derived, schema, warehouse
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.kri import service
from analytics.kri.engine import run_engine
from analytics.kri.extract import snapshot_dates, subject_measures
from analytics.kri.results import KRI_RESULT
from analytics.registry import REGISTRY

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _state(db: Path) -> pd.DataFrame:
    with warehouse.inspect(db) as con:
        return con.execute("SELECT result, study_id, code_version, data_version, computed_at "
                           "FROM meta.derived_state ORDER BY 1, 2").df()


def test_stored_results_equal_live_scoring(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    assert derived.freshness(wh, AccessScope(), NO_FILTER, KRI_RESULT).ok
    scope = AccessScope.full_access()
    frame = subject_measures(wh, scope, NO_FILTER, snapshot_dates(wh.as_of()))
    for method in ("calibrated", "funnel"):
        live = run_engine(frame, method).cells
        saved, _ = service._engine_results(wh, scope, NO_FILTER, method)
        key = ["snap", "study_site_id", "kri"]
        merged = live.merge(saved, on=key, suffixes=("_live", "_stored"), validate="one_to_one")
        assert len(merged) == len(live) == len(saved)
        assert (merged["flag_live"] == merged["flag_stored"]).all()
        pd.testing.assert_series_equal(merged["p_live"], merged["p_stored"], check_names=False)


def test_stored_results_are_read_through_the_scope(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    with warehouse.inspect(demo_db) as con:
        own = {r[0] for r in con.execute("SELECT study_id FROM main.studies WHERE sponsor_id = 'SP02'").fetchall()}
    sponsor = AccessScope(sponsor_ids=frozenset({"SP02"}))
    cells, sites = service._engine_results(wh, sponsor, NO_FILTER, "calibrated")
    assert set(cells["study_id"]) == own and set(sites["study_id"]) == own
    assert set(service.atypical_sites(wh, sponsor, NO_FILTER)["study_id"]) <= own


def test_a_benchmark_import_refreshes_no_kri_but_the_feasibility_model(demo_db: Path, tmp_path: Path,
                                                                        shared_data: Path) -> None:
    from analytics.feasibility.results import FEASIBILITY_MODEL_RESULT
    from analytics.importers.ctgov import prepare_ctgov
    from analytics.importers.staging import commit

    db = warehouse.copy_warehouse(demo_db, tmp_path / "w.duckdb")
    before = _state(db)
    # The pragmatic-aging export has completed trials (the Alzheimer one only running ones: no model from it).
    result = commit(prepare_ctgov(shared_data / "ctgov" / "pragmatic_aging_ctg-studies.csv"), db)
    refreshed = {o.result: o.studies for o in result.refreshed}
    assert refreshed == {r.name: ((derived.PORTFOLIO,) if r is FEASIBILITY_MODEL_RESULT else ()) for r in REGISTRY}
    per_study = before["study_id"] != derived.PORTFOLIO
    after = _state(db)
    pd.testing.assert_frame_equal(after[after["study_id"] != derived.PORTFOLIO].reset_index(drop=True),
                                  before[per_study].reset_index(drop=True))
    wh = Warehouse.open(db)
    from analytics.feasibility.results import reader_fingerprint
    assert derived.portfolio_freshness(wh, FEASIBILITY_MODEL_RESULT, reader_fingerprint(wh)).ok
    assert not derived.portfolio_freshness(Warehouse.open(demo_db), FEASIBILITY_MODEL_RESULT,
                                           reader_fingerprint(wh)).ok  # the demo's model predates the import
    with warehouse.inspect(db) as con:
        sources = {r[0] for r in con.execute("SELECT DISTINCT data_source FROM derived.feasibility_models").fetchall()}
    assert sources == {"synthetic", "ctgov"}


@pytest.fixture(scope="module")
def pilot_incremental(demo_db: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The pilot imported into a copy of the demo with a prior tolerance wide enough to keep the others."""
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
    from analytics.importers.staging import commit
    from analytics.kri import results

    db = warehouse.copy_warehouse(demo_db, tmp_path_factory.mktemp("incremental") / "w.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(results, "PRIOR_TOLERANCE", 10.0)
        outcome = commit(prepare_sdtm(shared_data / "sdtm" / "cdiscpilot01", db,
                                      SdtmOptions(study_id="CDISCPILOT01")), db)
    return db, outcome


def test_an_sdtm_import_refreshes_only_that_study(demo_db: Path, pilot_incremental) -> None:
    db, outcome = pilot_incremental
    # Portfolio-level results (the feasibility model) read the historical trials, which an SDTM import leaves alone.
    assert {o.result: o.studies for o in outcome.refreshed} == {
        r.name: ("CDISCPILOT01",) if r.reference is None else () for r in REGISTRY}
    before, after = _state(demo_db).set_index(["result", "study_id"]), _state(db).set_index(["result", "study_id"])
    assert set(after.index.difference(before.index)) == {(r.name, "CDISCPILOT01") for r in REGISTRY
                                                          if r.reference is None}
    pd.testing.assert_frame_equal(after.loc[before.index], before)  # the other studies were left as they were


def test_a_prior_that_moves_rescores_every_study(demo_db: Path, pilot_db: Path) -> None:
    # With the default tolerance the pilot (an unusual study among twelve) moves the portfolio prior.
    before, after = _state(demo_db), _state(pilot_db)
    kri_before = before[before["result"] == "kri"].set_index("study_id")["computed_at"]
    kri_after = after[after["result"] == "kri"].set_index("study_id")["computed_at"]
    assert (kri_after[kri_before.index] > kri_before).all()
    atypical_before = before[before["result"] == "atypical"].set_index("study_id")["computed_at"]
    atypical_after = after[after["result"] == "atypical"].set_index("study_id")["computed_at"]
    assert (atypical_after[atypical_before.index] == atypical_before).all()


def test_an_incremental_refresh_gives_the_full_refresh_answer(pilot_incremental, tmp_path: Path) -> None:
    db, _ = pilot_incremental
    copy = warehouse.copy_warehouse(db, tmp_path / "full.duckdb")
    with warehouse.modify_aside(copy) as con:
        derived.refresh(con, (KRI_RESULT,), force=True)  # the result compared below, every study recomputed
    pilot = PortfolioFilter(study_ids=("CDISCPILOT01",))
    incremental, _ = service._engine_results(Warehouse.open(db), AccessScope.full_access(), pilot, "calibrated")
    full, _ = service._engine_results(Warehouse.open(copy), AccessScope.full_access(), pilot, "calibrated")
    pd.testing.assert_frame_equal(incremental.drop(columns="site_code"), full.drop(columns="site_code"))


def test_a_code_change_makes_results_stale_until_refreshed(tiny_db: Path, tmp_path: Path) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE meta.derived_state SET code_version = 'older-engine' WHERE result = 'kri'")
    stale = derived.freshness(Warehouse.open(db), AccessScope(), NO_FILTER, KRI_RESULT)
    assert not stale.ok and set(stale.stale.values()) == {"code changed"}
    assert "python -m analytics refresh" in stale.message(str(db))
    with warehouse.modify_aside(db) as con:
        outcomes = derived.refresh(con, REGISTRY)
    assert {o.result for o in outcomes if o.studies} == {"kri"}  # only the KRI result was recomputed
    assert derived.freshness(Warehouse.open(db), AccessScope(), NO_FILTER, KRI_RESULT).ok


def test_import_refreshes_stored_results_so_the_pilot_is_scored(pilot_db: Path) -> None:
    wh = Warehouse.open(pilot_db)
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
    at.query_params["study"] = "CDISCPILOT01"
    at.switch_page("pages/rbm_heatmap.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert len({y for t in traces for y in t["y"]}) == 17
    assert "AE rate" in {x for t in traces for x in t["x"]}


def test_a_derived_table_of_an_older_layout_is_rebuilt_on_refresh(tiny_db: Path, tmp_path: Path) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    with duckdb.connect(str(db)) as con:  # as an earlier build of this release laid it out
        con.execute("ALTER TABLE derived.kri_cells DROP COLUMN z_history")
    with warehouse.modify_aside(db) as con:
        outcomes = {o.result: o for o in derived.refresh(con, REGISTRY)}
    assert outcomes["kri"].studies and not outcomes["atypical"].studies
    with warehouse.inspect(db) as con:
        columns = [r[0] for r in con.execute("DESCRIBE derived.kri_cells").fetchall()]
    assert "z_history" in columns
    assert derived.freshness(Warehouse.open(db), AccessScope(), NO_FILTER, KRI_RESULT).ok


def test_a_study_with_no_subjects_yet_refreshes_alone(tiny_db: Path, tmp_path: Path) -> None:
    """A planned study (sites not open, nobody consented) changed on its own, as an import or a Spark
    task scores it: every per-study result refreshes it without error, and it gets no KRI rows."""
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    with warehouse.modify_aside(db) as con:
        con.execute("INSERT INTO main.studies SELECT * REPLACE ('ST_PLANNED' AS study_id) FROM main.studies "
                    "ORDER BY study_id LIMIT 1")
        derived.mark_changed(con, ["ST_PLANNED"])
        outcomes = derived.refresh(con, REGISTRY)
    assert {o.result for o in outcomes if "ST_PLANNED" in o.studies} == {r.name for r in REGISTRY if r.reference is None}
    with warehouse.inspect(db) as con:
        assert con.execute("SELECT count(*) FROM derived.kri_sites WHERE study_id = 'ST_PLANNED'").fetchone()[0] == 0


def test_a_study_with_one_site_refreshes_alone(tiny_db: Path, tmp_path: Path) -> None:
    """A study whose subjects are all at one site (a small or new study) scored on its own, as a
    Spark task or a partial refresh does: no site has another to be compared with, and every result
    refreshes it without error (the Spark refresh of all 300 `large` studies failed on one)."""
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    with warehouse.modify_aside(db) as con:
        study, site = con.execute("SELECT study_id, min(study_site_id) FROM main.subjects GROUP BY 1 ORDER BY 1 "
                                  "LIMIT 1").fetchone()
        subjects = [r[0] for r in con.execute("SELECT subject_id FROM main.subjects WHERE study_id = $s "
                                              "AND study_site_id = $site", {"s": study, "site": site}).fetchall()]
        for table in schema.TABLES:
            columns = {c.name for c in table.columns}
            name = f"restricted.main.{table.name}" if table.schema == "restricted" else table.qualified_name
            if table.schema == "derived" or "study_id" not in columns or table.name in ("studies", "study_sites"):
                continue
            if "study_site_id" in columns:
                con.execute(f"DELETE FROM {name} WHERE study_id = $s AND study_site_id IS DISTINCT FROM $site",
                            {"s": study, "site": site})
            elif "subject_id" in columns:
                con.execute(f"DELETE FROM {name} WHERE study_id = $s AND subject_id IS NOT NULL "
                            "AND NOT list_contains($keep, subject_id)", {"s": study, "keep": subjects})
        derived.mark_changed(con, [study])
        outcomes = derived.refresh(con, REGISTRY)
    assert {o.result for o in outcomes if study in o.studies} == {r.name for r in REGISTRY if r.reference is None}
    with warehouse.inspect(db) as con:
        assert con.execute("SELECT count(DISTINCT study_site_id) FROM main.subjects WHERE study_id = $s",
                           {"s": study}).fetchone()[0] == 1
