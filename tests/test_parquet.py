"""The warehouse as partitioned Parquet: what the export writes, pages served from it, blinding kept."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics.cli import main
from analytics.core import derived, parquet, schema, warehouse
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.core.warehouse import QueryRefused, Warehouse, WarehouseError
from analytics.kri import service
from analytics.kri.results import KRI_RESULT
from analytics.portfolio import overview


@pytest.fixture(scope="module")
def exported(tiny_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny portfolio exported with its restricted tables in a separate folder."""
    root = tmp_path_factory.mktemp("export")
    assert main(["export", "--format", "parquet", "--db", str(tiny_db), "--out", str(root / "wh"),
                 "--restricted-out", str(root / "restricted")]) == 0
    return root / "wh", root / "restricted"


def test_every_table_is_exported_by_study_with_the_schema_version(tiny_db: Path, exported) -> None:
    out, restricted = exported
    manifest = json.loads((out / parquet.MANIFEST).read_text())
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    main_tables = {t.qualified_name for t in schema.TABLES if t.schema != "restricted"}
    assert set(manifest["tables"]) == main_tables
    generation = out / manifest["generation"]
    with warehouse.inspect(tiny_db) as con:
        studies = {r[0] for r in con.execute("SELECT study_id FROM main.studies").fetchall()}
        for table in schema.TABLES:
            source = f"restricted.main.{table.name}" if table.schema == "restricted" else table.qualified_name
            rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
            if table.schema == "restricted":
                assert not (generation / "main" / table.name).exists()  # never in the main export
                described = json.loads((restricted / parquet.MANIFEST).read_text())["tables"][table.qualified_name]
            else:
                described = manifest["tables"][table.qualified_name]
            assert described["rows"] == rows, table.name
            if parquet.partitioned(table) and rows and table.schema != "restricted":
                folders = {p.name for p in (generation / table.schema / table.name).iterdir()}
                with_rows = {r[0] for r in con.execute(f"SELECT DISTINCT study_id FROM {source}").fetchall()}
                assert folders == {f"study_id={s}" for s in with_rows} and with_rows <= studies
    assert manifest["tables"]["meta.derived_state"]["partitioned_by"] is None


@pytest.mark.parametrize("scope", [AccessScope(), AccessScope.full_access(), AccessScope(sponsor_ids=frozenset({"SP01"}))],
                         ids=["blinded", "unblinded", "one sponsor"])
def test_pages_read_the_same_from_the_export_as_from_the_file(tiny_db: Path, exported, scope: AccessScope) -> None:
    file, folder = Warehouse.open(tiny_db), Warehouse.open(exported[0])
    one_country = PortfolioFilter(country_codes=(file.query(AccessScope.full_access(),
                                                            "SELECT min(country_code) AS c FROM scoped_sites")["c"][0],))
    for filters in (NO_FILTER, one_country):
        for loader in (overview.study_overview, overview.query_aging, overview.milestones_at_risk,
                       overview.risk_signals, service.kri_tables, service.atypical_sites):
            expected, got = loader(file, scope, filters), loader(folder, scope, filters)
            for a, b in zip(expected if isinstance(expected, tuple) else (expected,),
                            got if isinstance(got, tuple) else (got,)):
                pd.testing.assert_frame_equal(a, b)
    assert derived.freshness(folder, scope, NO_FILTER, KRI_RESULT).ok


def test_a_blinded_reader_of_the_export_cannot_reach_treatment_arms(exported) -> None:
    out, restricted = exported
    folder = Warehouse.open(out)
    assert len(folder.query(AccessScope.full_access(), "SELECT * FROM treatment_assignments")) > 0
    with pytest.raises(duckdb.CatalogException):
        folder.query(AccessScope(), "SELECT * FROM treatment_assignments")
    a_file = next(restricted.rglob("*.parquet"))
    with pytest.raises(QueryRefused):
        folder.query(AccessScope(), f"SELECT * FROM read_parquet('{a_file}')")
    # Even a raw cursor on the blinded reader's connection cannot open the restricted files.
    instance, cursor = warehouse._instance(Path(folder.path), True)
    try:
        with pytest.raises(duckdb.PermissionException):
            cursor.execute(f"SELECT * FROM read_parquet('{a_file}')").fetchall()
        with pytest.raises(duckdb.Error):
            cursor.execute("SET enable_external_access = true")
    finally:
        instance.release(cursor)


def test_an_export_without_restricted_tables_serves_blinded_readers_only(tiny_db: Path, tmp_path: Path) -> None:
    parquet.export(tiny_db, tmp_path / "wh")
    folder = Warehouse.open(tmp_path / "wh")
    assert len(overview.study_overview(folder, AccessScope(), NO_FILTER)) > 0
    with pytest.raises(WarehouseError, match="without its restricted tables"):
        folder.query(AccessScope.full_access(), "SELECT count(*) FROM subjects")
    with pytest.raises(parquet.ExportError, match="outside"):
        parquet.export(tiny_db, tmp_path / "wh", tmp_path / "wh" / "restricted")


def test_a_new_export_does_not_disturb_readers_of_the_last(tiny_db: Path, tmp_path: Path) -> None:
    first = parquet.export(tiny_db, tmp_path / "wh")
    before = Warehouse.open(tmp_path / "wh")
    count = "SELECT count(*) AS n FROM subjects"
    n = before.query(AccessScope(), count)["n"][0]
    second = parquet.export(tiny_db, tmp_path / "wh")
    assert second.generation_dir != first.generation_dir and first.generation_dir.exists()
    assert before.query(AccessScope(), count)["n"][0] == n  # the old generation's reader goes on
    after = Warehouse.open(tmp_path / "wh")
    assert after.token != before.token and after.query(AccessScope(), count)["n"][0] == n
    parquet.export(tiny_db, tmp_path / "wh")
    assert not first.generation_dir.exists()  # only the last two generations are kept


def test_an_export_of_another_schema_version_is_refused(tiny_db: Path, tmp_path: Path) -> None:
    parquet.export(tiny_db, tmp_path / "wh")
    manifest = json.loads((tmp_path / "wh" / parquet.MANIFEST).read_text())
    manifest["schema_version"] = schema.SCHEMA_VERSION + 1
    (tmp_path / "wh" / parquet.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(WarehouseError, match="schema version"):
        Warehouse(str(tmp_path / "wh"), uuid.uuid4().hex).query(AccessScope(), "SELECT 1 AS x FROM studies")


def test_refresh_on_spark_needs_an_export(tiny_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    assert main(["refresh", "--all", "--engine", "spark", "--db", str(db)]) == 2
    assert "--source" in capsys.readouterr().err
