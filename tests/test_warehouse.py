"""The warehouse file: schema versions, migrations, atomic swaps, the data dictionary."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from analytics.core import schema, warehouse
from analytics.core.scope import AccessScope
from analytics.commands.admin import DICTIONARY_PATH


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_file_records_its_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    warehouse.create_empty(db)
    with warehouse.inspect(db) as con:
        assert warehouse.current_version(con) == schema.SCHEMA_VERSION
        tables = {r[0] for r in con.execute(
            "SELECT CASE WHEN table_catalog = 'restricted' THEN 'restricted' ELSE table_schema END "
            "|| '.' || table_name FROM information_schema.tables").fetchall()}
    assert {t.qualified_name for t in schema.TABLES} <= tables
    # Treatment arms live only in the restricted store, never in the warehouse file itself.
    with duckdb.connect(str(db), read_only=True) as con:
        assert not con.execute("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_name = 'treatment_assignments'").fetchone()[0]


def test_migrate_is_idempotent_and_refuses_newer_files(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    warehouse.create_empty(db)
    with duckdb.connect(str(db)) as con:
        assert warehouse.migrate(con) == (schema.SCHEMA_VERSION, schema.SCHEMA_VERSION)
        assert con.execute("SELECT max(version) FROM meta.schema_version").fetchone()[0] == schema.SCHEMA_VERSION
        con.execute("INSERT INTO meta.schema_version VALUES (?, 'from the future', now())", [schema.SCHEMA_VERSION + 1])
        with pytest.raises(warehouse.WarehouseError, match="newer than this release"):
            warehouse.migrate(con)


def test_an_older_file_is_upgraded_by_registered_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "w.duckdb"
    warehouse.create_empty(db)

    def add_column(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("ALTER TABLE main.studies ADD COLUMN IF NOT EXISTS nickname VARCHAR")

    monkeypatch.setitem(warehouse.MIGRATIONS, schema.SCHEMA_VERSION + 1, ("add nickname", add_column))
    with duckdb.connect(str(db)) as con:
        assert warehouse.migrate(con) == (schema.SCHEMA_VERSION, schema.SCHEMA_VERSION + 1)
        cols = {r[0] for r in con.execute("DESCRIBE main.studies").fetchall()}
    assert "nickname" in cols


def test_failed_build_leaves_the_existing_warehouse_byte_for_byte(tiny_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "w.duckdb"
    warehouse.copy_warehouse(tiny_db, target)
    before = _sha256(target)
    with pytest.raises(RuntimeError, match="boom"):
        with warehouse.build_aside(target) as con:
            con.execute("INSERT INTO main.sponsors VALUES ('X', 'half-written')")
            raise RuntimeError("boom")
    assert _sha256(target) == before
    assert not [p for p in tmp_path.iterdir() if ".building" in p.name]


def test_readers_see_the_new_file_after_a_swap(tmp_path: Path) -> None:
    target = tmp_path / "w.duckdb"
    with warehouse.build_aside(target) as con:
        con.execute("INSERT INTO main.sponsors VALUES ('A', 'First')")
    first = warehouse.Warehouse.open(target)
    everyone = AccessScope.full_access()
    assert first.query(everyone, "SELECT name FROM sponsors")["name"].tolist() == ["First"]
    with warehouse.build_aside(target) as con:
        con.execute("INSERT INTO main.sponsors VALUES ('A', 'Second')")
    second = warehouse.Warehouse.open(target)
    assert second.token != first.token
    assert second.query(everyone, "SELECT name FROM sponsors")["name"].tolist() == ["Second"]
    warehouse.close_all()


def test_allowed_values_are_enforced_by_the_database(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    warehouse.create_empty(db)
    with duckdb.connect(str(db)) as con:
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO main.studies (study_id, protocol_id, sponsor_id, blinded, phase) "
                        "VALUES ('S', 'P', 'SP', true, 'Phase 9')")


def test_missing_warehouse_gives_a_build_instruction(tmp_path: Path) -> None:
    with pytest.raises(warehouse.WarehouseError, match="python -m analytics build"):
        warehouse.Warehouse.open(tmp_path / "absent.duckdb")


def test_data_dictionary_is_generated_from_the_schema() -> None:
    assert DICTIONARY_PATH.read_text(encoding="utf-8") == schema.data_dictionary_markdown() + "\n", (
        "data/DATA_DICTIONARY.md is stale: run `python -m analytics dictionary`"
    )


def test_a_version_1_file_gains_the_enrollment_columns_and_tables(tiny_db: Path, tmp_path: Path) -> None:
    from analytics.cli import main
    from tests.import_helpers import as_release_1

    db = tmp_path / "v1.duckdb"
    as_release_1(tiny_db, db)
    with duckdb.connect(str(db)) as con:  # without what the enrollment work added
        for table, column in (("studies", "treatment_duration_days"), ("studies", "follow_up_days"),
                              ("study_sites", "selection_date"), ("subjects", "race"), ("subjects", "ethnicity")):
            con.execute(f"ALTER TABLE main.{table} DROP COLUMN {column}")
        for name in ("main.enrollment_targets", "main.condition_population"):
            con.execute(f"DROP TABLE {name}")
        assert warehouse.current_version(con) == 1
    assert main(["migrate", "--db", str(db)]) == 0
    with warehouse.inspect(db) as con:
        assert warehouse.current_version(con) == schema.SCHEMA_VERSION
        for table in schema.TABLES:
            columns = {r[0] for r in con.execute(f"DESCRIBE {table.qualified_name}").fetchall()}
            assert {c.name for c in table.columns} <= columns, table.qualified_name


def test_a_copy_beside_its_source_has_its_own_restricted_store(tiny_db: Path, tmp_path: Path) -> None:
    source = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    copy = warehouse.copy_warehouse(source, tmp_path / "w-copy.duckdb")
    with warehouse.inspect(source) as con:
        arms = con.execute("SELECT count(*) FROM restricted.treatment_assignments").fetchone()[0]
    assert arms > 0
    with warehouse.modify_aside(copy, purpose="test") as con:
        con.execute("DELETE FROM restricted.treatment_assignments")
    with warehouse.inspect(source) as con:
        assert con.execute("SELECT count(*) FROM restricted.treatment_assignments").fetchone()[0] == arms
    with warehouse.inspect(copy) as con:
        assert con.execute("SELECT count(*) FROM restricted.treatment_assignments").fetchone()[0] == 0
    with pytest.raises(warehouse.WarehouseError, match="onto itself"):
        warehouse.copy_warehouse(source, source)


EXPORT_COLUMNS = ("export_file", "export_sha256", "export_as_of")  # schema step 12
LAST_UPDATE_COLUMNS = ("last_update_date", "last_update_date_precision")  # schema step 11


def _as_release(source: Path, db: Path, version: int, added_since: tuple[str, ...],
                statements: tuple[str, ...] = ()) -> pd.DataFrame:
    """``source`` copied to ``db`` as release ``version`` laid historical trials out (without the columns
    added since), after ``statements``; returns its historical trials."""
    warehouse.copy_warehouse(source, db)
    with duckdb.connect(str(db)) as con:
        for column in added_since:
            con.execute(f"ALTER TABLE main.historical_trials DROP COLUMN {column}")
        for statement in statements:
            con.execute(statement)
        con.execute("DELETE FROM meta.schema_version")
        con.execute("INSERT INTO meta.schema_version VALUES (?, ?, now())", [version, f"release {version}"])
        return con.execute("SELECT * FROM main.historical_trials ORDER BY nct_id").df()


def _migrated_trials(db: Path) -> pd.DataFrame:
    """``python -m analytics migrate`` on ``db``; its historical trials after."""
    from analytics.cli import main

    assert main(["migrate", "--db", str(db)]) == 0
    with warehouse.inspect(db) as con:
        assert warehouse.current_version(con) == schema.SCHEMA_VERSION
        return con.execute("SELECT * FROM main.historical_trials ORDER BY nct_id").df()


def test_a_version_10_file_gains_the_registry_last_update_and_keeps_its_trials(tiny_db: Path, tmp_path: Path) -> None:
    from analytics.feasibility.trials import build_trial_table

    db = tmp_path / "v10.duckdb"
    before = _as_release(tiny_db, db, 10, LAST_UPDATE_COLUMNS + EXPORT_COLUMNS)
    after = _migrated_trials(db)
    assert after[before.columns].equals(before) and after["last_update_date"].isna().all()
    # Trials loaded before the step have no last update: running ones are censored at the as-of date, as before.
    trials = build_trial_table(after, dt.date(2026, 11, 1))
    running = trials[trials["status"].isin(["RECRUITING", "ACTIVE_NOT_RECRUITING"])]
    expected = (pd.Timestamp("2026-11-01") - running["start_date"]).dt.days / 30.4375
    assert len(running) and np.allclose(running["duration_months"], expected)


def test_a_version_11_file_gains_each_records_export_and_keeps_its_trials(tiny_db: Path, tmp_path: Path) -> None:
    from analytics.feasibility import MONTH_DAYS
    from analytics.feasibility.trials import trial_table
    from analytics.generator.history import generated_export_name
    from analytics.generator.presets import PRESETS

    db = tmp_path / "v11.duckdb"
    with warehouse.inspect(tiny_db) as con:
        built = con.execute("SELECT DISTINCT export_file, export_as_of FROM main.historical_trials").fetchall()
    # As release 11 laid historical trials out, with a record imported then.
    before = _as_release(tiny_db, db, 11, EXPORT_COLUMNS, (
        "INSERT INTO main.historical_trials (nct_id, status, start_date, completion_date, data_source) "
        "VALUES ('NCT04000001', 'RECRUITING', DATE '2022-11-01', DATE '2028-01-01', 'ctgov')",))
    after = _migrated_trials(db)
    assert after[before.columns].equals(before)  # nothing lost
    # The generated history is dated by its generation, exactly as a fresh build of this release dates it.
    preset = PRESETS["tiny"]
    generated = after[after["data_source"] == "synthetic"]
    assert built == [(generated_export_name("tiny", 7), preset.as_of)]
    assert (generated["export_file"] == built[0][0]).all()
    assert (generated["export_as_of"] == pd.Timestamp(preset.as_of)).all()
    # A record imported before exports were dated names no export; it is read as of the warehouse's date.
    imported = after.set_index("nct_id").loc["NCT04000001"]
    assert pd.isna(imported["export_file"]) and pd.isna(imported["export_as_of"])
    trials = trial_table(warehouse.Warehouse.open(db)).set_index("nct_id")
    assert trials.at["NCT04000001", "duration_months"] == pytest.approx(
        (pd.Timestamp(preset.as_of) - pd.Timestamp("2022-11-01")).days / MONTH_DAYS)
    warehouse.close_all()
