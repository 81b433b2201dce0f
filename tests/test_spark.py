"""Spark in local mode: the derived-results refresh and the Overview's SQL give the local answers.

One ``local[2]`` session for the module (starting the JVM takes seconds); the tiny portfolio. Java
and pyspark are needed: without them the tests skip with a reason, and fail when
``CRO_REQUIRE_SPARK=1`` (CI installs both).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from analytics.core import derived, parquet, schema, warehouse
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse, WarehouseError
from analytics.evaluation.refresh_speed import derived_differences
from analytics.portfolio import overview
from analytics.registry import REGISTRY

REQUIRE_SPARK_ENV_VAR = "CRO_REQUIRE_SPARK"


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from analytics.distributed import spark as sparkutil

    try:
        session = sparkutil.session("local[2]", "cro-tests")
    except sparkutil.SparkUnavailable as error:
        if os.environ.get(REQUIRE_SPARK_ENV_VAR) == "1":
            pytest.fail(f"Spark is required ({REQUIRE_SPARK_ENV_VAR}=1) but {error}")
        pytest.skip(f"no Spark here: {error}")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def portfolio(tiny_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny portfolio with a few incomplete subject records (so every derived table has rows),
    refreshed in full on the local engine. Treat as read-only."""
    db = warehouse.copy_warehouse(tiny_db, tmp_path_factory.mktemp("spark-portfolio") / "warehouse.duckdb")
    with warehouse.modify_aside(db) as con:
        changed = [r[0] for r in con.execute(
            "UPDATE main.subjects SET age = NULL WHERE subject_id IN (SELECT min(subject_id) FROM main.subjects "
            "GROUP BY study_id) RETURNING study_id").fetchall()]
        derived.mark_changed(con, changed)
        derived.refresh(con, REGISTRY, force=True)
    return db


@pytest.fixture(scope="module")
def source(portfolio: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark-source")
    parquet.export(portfolio, root / "wh", root / "restricted")
    return root / "wh"


def _studies(db: Path) -> list[str]:
    with warehouse.inspect(db) as con:
        return [r[0] for r in con.execute("SELECT study_id FROM main.studies ORDER BY 1").fetchall()]


def test_the_refresh_on_spark_equals_the_local_refresh_to_the_last_digit(spark, portfolio: Path, source: Path,
                                                                         tmp_path: Path) -> None:
    from analytics.distributed.refresh import SparkEngine

    db = warehouse.copy_warehouse(portfolio, tmp_path / "w.duckdb")
    engine = SparkEngine(spark, source, tmp_path / "results")
    with warehouse.modify_aside(db, purpose="refresh on Spark") as con:
        outcomes = derived.refresh(con, REGISTRY, force=True, engine=engine)
    assert {o.result for o in outcomes if o.studies} == {r.name for r in REGISTRY}
    differences = derived_differences(portfolio, db)
    # Every derived table on main has rows to compare (per study, and the portfolio-level feasibility model).
    assert {name for name, (rows, _, _) in differences.items() if name != "meta.derived_state" and rows == 0} == set()
    assert {name: (only_a, only_b) for name, (_, only_a, only_b) in differences.items()} == \
        {name: (0, 0) for name in differences}
    # Spark wrote the per-study results as Parquet partitioned by study before they were loaded.
    assert {p.parent.name for p in (tmp_path / "results").rglob("*.parquet")} == \
        {f"study_id={s}" for s in _studies(portfolio)}
    engine.clean()
    assert not any((tmp_path / "results").rglob("*.parquet"))


def test_a_study_s_results_are_the_same_refreshed_alone_or_with_the_portfolio(portfolio: Path, tmp_path: Path) -> None:
    """A partial refresh (one study, as a Spark task computes it) gives the rows the full refresh gave."""
    for study in _studies(portfolio)[:2]:
        db = warehouse.copy_warehouse(portfolio, tmp_path / study / "w.duckdb")
        with warehouse.modify_aside(db) as con:
            derived.mark_changed(con, [study])
            outcomes = derived.refresh(con, REGISTRY)
        assert {o.result: o.studies for o in outcomes if o.studies} == \
            {r.name: (study,) for r in REGISTRY if r.reference is None}
        differences = derived_differences(portfolio, db)
        differences.pop("meta.derived_state")  # the study's data version moved, as a writer's would
        assert {name: (only_a, only_b) for name, (_, only_a, only_b) in differences.items()} == \
            {name: (0, 0) for name in differences}, study


def test_an_export_of_other_data_is_refused_before_any_work(spark, portfolio: Path, source: Path,
                                                            tmp_path: Path) -> None:
    from analytics.distributed.refresh import SparkEngine

    db = warehouse.copy_warehouse(portfolio, tmp_path / "w.duckdb")
    with warehouse.modify_aside(db) as con:
        derived.mark_changed(con, [_studies(portfolio)[0]])  # the warehouse moved on since the export
    before = db.read_bytes()
    with pytest.raises(WarehouseError, match="other data"):
        with warehouse.modify_aside(db) as con:
            derived.refresh(con, REGISTRY, engine=SparkEngine(spark, source, tmp_path / "results"))
    assert db.read_bytes() == before


def _comparable(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Values only, typed as in ``like`` (DuckDB's answer): dates as datetimes, numbers as floats
    (DuckDB and Spark choose other integer widths, and Spark returns dates as objects)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(like[column]):
            out[column] = pd.to_datetime(out[column]).astype("datetime64[us]")
        elif pd.api.types.is_numeric_dtype(like[column]) and not pd.api.types.is_bool_dtype(like[column]):
            out[column] = out[column].astype("float64")
        else:
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out.sort_values(list(out.columns), ignore_index=True)


def test_the_overview_sql_on_spark_gives_the_same_aggregates(spark, portfolio: Path, source: Path) -> None:
    from analytics.distributed.sql import RecordingWarehouse, register_export, run_on_spark

    register_export(spark, parquet.open_export(source))
    duck = Warehouse.open(portfolio)
    country = duck.query(AccessScope.full_access(), "SELECT country_code AS c FROM scoped_sites "
                                                    "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")["c"][0]
    recorded = RecordingWarehouse(duck.path, f"record-{uuid.uuid4().hex}")
    for filters in (NO_FILTER, PortfolioFilter(country_codes=(country,))):
        for loader in (overview.study_overview, overview.query_aging, overview.milestones_at_risk):
            loader(recorded, AccessScope.full_access(), filters)
    queries = [(sql, params) for sql, params in recorded.log if "FROM wh.main" in sql]
    assert len(queries) >= 8
    for sql, params in queries:
        expected = Warehouse._execute(recorded, sql, params, False)
        got = run_on_spark(spark, sql, params)
        assert list(got.columns) == list(expected.columns)
        assert len(expected) > 0
        pd.testing.assert_frame_equal(_comparable(got, expected), _comparable(expected, expected), check_dtype=False)
