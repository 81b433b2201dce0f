"""The DuckDB warehouse: files, migrations, one writer at a time, invisible swaps, scoped reads.

Two files make a warehouse: the warehouse file (trial data, derived results, ground truth, facts)
and a *restricted store* beside it holding what unblinds (treatment arms, exposures), named by a
generation the warehouse file records. A blinded reader's connection never attaches the restricted
store, and every reader connection has external file access switched off, so no query text can
reach treatment arms for a blinded scope, however it is spelled.

Readers: one read-only in-memory DuckDB instance per (file version, blinded) attaches the file as
catalog ``wh``; each query takes a fresh cursor (a connection used by two threads at once raises
"connection is busy"). When the file is swapped a new instance serves new queries and the old one
retires once its last query has finished, so readers never see an error at a swap.

Writers (build, import, migrate, refresh) take the warehouse's writer lock, write a copy beside
the file under a unique staging name, and rename it over the old one; a failure leaves the file
byte-for-byte as it was. Stale staging files of killed writers are removed under the lock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd

from analytics.core import schema, settings
from analytics.core.scope import (
    NO_FILTER,
    READER_CATALOG,
    AccessScope,
    PortfolioFilter,
    relation_names,
    scoped_relations,
)

DEFAULT_DB_PATH = settings.DEFAULT_WAREHOUSE_PATH
DB_ENV_VAR = settings.WAREHOUSE_ENV_VAR
RESTRICTED_INFO_KEY = "restricted_file"  # meta.warehouse_info: the restricted store's file name
READER_MEMORY_LIMIT = "6GB"  # per reader instance (there are at most two live per file)
# Table functions a page query may use: none of them reads a table or a file.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

# When a dict, every scoped query's wall time is appended under its calling function's name (the
# benchmark sets this; None in normal operation so the hot path does no bookkeeping).
QUERY_TIMINGS: dict[str, list[float]] | None = None


def _calling_function() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}"


class WarehouseError(RuntimeError):
    """The warehouse file is missing, unreadable, locked by a writer or of an unknown schema version."""


class QueryRefused(PermissionError):
    """A query text that is not one plain SELECT over the scoped relations."""


def default_db_path() -> Path:
    """The warehouse the app opens: ``$CRO_WAREHOUSE`` or ``data/warehouse.duckdb``."""
    return Path(os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH)


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# --- migrations -------------------------------------------------------------------------------

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def create_current_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Every schema and table of this release (a new file starts at the latest version)."""
    for name in schema.SCHEMAS:
        if name != "main":
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
    for t in schema.TABLES:
        con.execute(t.ddl())


def _importer_fields(con: duckdb.DuckDBPyConnection) -> None:
    """Importers for real data: AE onset imputation flag, registry fields and sites, restricted SDTM design.

    Runs after the restricted store exists (``restricted.*`` names it). Idempotent.
    """
    added = (
        ("main.adverse_events", "onset_date_imputed", "BOOLEAN"),
        ("restricted.main.treatment_assignments", "arm_code", "VARCHAR"),
        ("restricted.main.treatment_assignments", "actual_arm", "VARCHAR"),
        ("restricted.main.treatment_assignments", "actual_arm_code", "VARCHAR"),
        ("main.historical_trials", "study_type", "VARCHAR"),
        ("main.historical_trials", "primary_completion_date", "DATE"),
        ("main.historical_trials", "primary_completion_date_precision", "VARCHAR"),
        ("main.historical_trials", "sponsor", "VARCHAR"),
        ("main.historical_trials", "sponsor_class", "VARCHAR"),
        ("main.historical_trials", "interventions", "VARCHAR"),
        ("main.historical_trials", "sex", "VARCHAR"),
        ("main.historical_trials", "min_age_years", "DOUBLE"),
        ("main.historical_trials", "max_age_years", "DOUBLE"),
        ("main.historical_trials", "age_groups", "VARCHAR"),
        ("main.historical_trials", "healthy_volunteers", "BOOLEAN"),
        ("main.historical_trials", "eligibility_criteria", "VARCHAR"),
        ("main.historical_trials", "primary_outcome", "VARCHAR"),
    )
    for table, column, sql_type in added:
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {sql_type}")
    for name in ("historical_trial_sites", "treatment_qualifiers", "trial_arms"):
        con.execute(schema.table(name).ddl())
    # Qualifiers that reveal treatment (SUPPEX, arm variables) were loaded to main before: move them.
    # The rule is written out here (not imported) so this applied migration never changes meaning.
    revealing = ("upper(domain) IN ('EX', 'EC', 'TA') OR regexp_matches(upper(qualifier), "
                 "'^(ACT)?ARM(CD|NRS|UD)?$|^TRT[0-9][0-9][PA]N?$|^TRTSEQ[PA]N?$')")
    con.execute("INSERT OR IGNORE INTO restricted.main.treatment_qualifiers BY NAME "
                f"SELECT * FROM main.supplemental_qualifiers WHERE {revealing}")
    con.execute(f"DELETE FROM main.supplemental_qualifiers WHERE {revealing}")


def _enrollment_fields(con: duckdb.DuckDBPyConnection) -> None:
    """Enrollment: race/ethnicity, treatment and follow-up length, site selection, diversity targets,
    condition population (literal DDL, so this step means the same whatever later releases declare).

    DuckDB cannot add a column with a CHECK constraint, so on upgraded files race/ethnicity values are
    checked by the importers.
    """
    for statement in (
        "ALTER TABLE main.studies ADD COLUMN IF NOT EXISTS treatment_duration_days INTEGER",
        "ALTER TABLE main.studies ADD COLUMN IF NOT EXISTS follow_up_days INTEGER",
        "ALTER TABLE main.study_sites ADD COLUMN IF NOT EXISTS selection_date DATE",
        "ALTER TABLE main.subjects ADD COLUMN IF NOT EXISTS race VARCHAR",
        "ALTER TABLE main.subjects ADD COLUMN IF NOT EXISTS ethnicity VARCHAR",
        "CREATE TABLE IF NOT EXISTS main.enrollment_targets (study_id VARCHAR NOT NULL, dimension VARCHAR NOT NULL, "
        "category VARCHAR NOT NULL, target_share DOUBLE NOT NULL, PRIMARY KEY (study_id, dimension, category))",
        "CREATE TABLE IF NOT EXISTS main.condition_population (indication VARCHAR NOT NULL, "
        "country_code VARCHAR NOT NULL, dimension VARCHAR NOT NULL, category VARCHAR NOT NULL, "
        "population_share DOUBLE NOT NULL, source VARCHAR, PRIMARY KEY (indication, country_code, dimension, category))",
    ):
        con.execute(statement)


def _migration_2(con: duckdb.DuckDBPyConnection) -> None:
    """Move treatment arms and exposures into the restricted store; derived tables; importer fields."""
    has_old = con.execute(
        "SELECT count(*) FROM information_schema.schemata WHERE catalog_name = 'wh' AND schema_name = 'restricted'"
    ).fetchone()[0]
    old_tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'wh' AND table_schema = 'restricted'"
    ).fetchall()}
    for t in schema.TABLES:
        if t.schema == "restricted":
            con.execute(t.ddl().replace(f"restricted.{t.name} (", f"restricted.main.{t.name} (", 1))
            if t.name in old_tables:
                con.execute(f"INSERT INTO restricted.main.{t.name} BY NAME SELECT * FROM wh.restricted.{t.name}")
    if has_old:
        con.execute("DROP SCHEMA wh.restricted CASCADE")
    # Derived results were created ad hoc before: drop them; the refresh after migrating recomputes.
    con.execute("DROP SCHEMA IF EXISTS wh.derived CASCADE")
    con.execute("CREATE SCHEMA derived")
    for t in schema.TABLES:
        if t.schema in ("derived", "meta"):
            con.execute(t.ddl())
    con.execute("INSERT INTO meta.study_versions SELECT study_id, 'migrated', now() FROM main.studies")
    _importer_fields(con)
    _enrollment_fields(con)


def _migration_3_quality(con: duckdb.DuckDBPyConnection) -> None:
    """Data quality: AE outcome and seriousness criteria, measurement time points, the SDTM conformance
    issues of imports, derived findings and signals, labelled data errors (literal DDL, self-contained)."""
    for statement in (
        "ALTER TABLE main.adverse_events ADD COLUMN IF NOT EXISTS outcome VARCHAR",
        "ALTER TABLE main.adverse_events ADD COLUMN IF NOT EXISTS serious_criteria VARCHAR",
        "ALTER TABLE main.measurements ADD COLUMN IF NOT EXISTS time_point VARCHAR",
        "CREATE TABLE IF NOT EXISTS main.sdtm_conformance (study_id VARCHAR NOT NULL, study_site_id VARCHAR, "
        "subject_id VARCHAR, rule_id VARCHAR NOT NULL, severity VARCHAR CHECK (severity IN ('Error', 'Warning')), "
        "domain VARCHAR, variable VARCHAR, file_name VARCHAR, row_number BIGINT, record_key VARCHAR, value VARCHAR, "
        "message VARCHAR)",
    ):
        con.execute(statement)
    # The labelled errors (ground truth) and the derived tables, which the refresh after migrating fills,
    # are created from their declarations.
    for name in ("data_errors", "quality_findings", "quality_signals", "quality_sites"):
        con.execute(schema.table(name).ddl())


def _migration_4_capa(con: duckdb.DuckDBPyConnection) -> None:
    """CAPA trends: start date of process-shift anomalies, labelled quality-event themes, text themes.

    The derived tables are literal DDL (so this step means the same whatever later releases declare); the
    ground-truth tables are named through the declaration, since only the generator and the evaluation
    spell out the truth schema.
    """
    anomalies = schema.table("anomalies").qualified_name
    for statement in (
        f"ALTER TABLE {anomalies} ADD COLUMN IF NOT EXISTS start_date DATE",
        schema.table("quality_event_labels").ddl(),
        "CREATE TABLE IF NOT EXISTS derived.capa_themes (study_id VARCHAR NOT NULL, theme_id INTEGER NOT NULL, "
        "name VARCHAR, top_terms VARCHAR, events INTEGER, sites INTEGER, recurrences INTEGER, first_reported DATE, "
        "last_reported DATE, PRIMARY KEY (study_id, theme_id))",
        "CREATE TABLE IF NOT EXISTS derived.capa_event_themes (study_id VARCHAR NOT NULL, quality_event_id BIGINT "
        "NOT NULL, study_site_id VARCHAR, theme_id INTEGER, theme_similarity DOUBLE, repeats_event_id BIGINT, "
        "repeat_similarity DOUBLE, repeat_days INTEGER, possible_recurrence BOOLEAN, PRIMARY KEY (quality_event_id))",
    ):
        con.execute(statement)


def _migration_5_kri_posterior(con: duckdb.DuckDBPyConnection) -> None:
    """KRI cells carry the site-level posterior and the permutation-calibrated flag thresholds (literal DDL).

    The next refresh recomputes the KRI results (the engine's code changed), filling the columns.
    """
    for column in ("posterior_ratio", "posterior_ratio_low", "posterior_ratio_high", "prob_below", "prob_above",
                   "amber_alpha", "red_alpha"):
        con.execute(f"ALTER TABLE derived.kri_cells ADD COLUMN IF NOT EXISTS {column} DOUBLE")


def _migration_6_feasibility(con: duckdb.DuckDBPyConnection) -> None:
    """Feasibility: secondary outcomes and number of arms of historical trials; the model's derived tables."""
    con.execute("ALTER TABLE main.historical_trials ADD COLUMN IF NOT EXISTS secondary_outcome VARCHAR")
    con.execute("ALTER TABLE main.historical_trials ADD COLUMN IF NOT EXISTS arm_count INTEGER")
    for name in ("feasibility_models", "feasibility_model_metrics", "feasibility_cv_predictions"):
        con.execute(schema.table(name).ddl())


def _migration_7_recruitment(con: duckdb.DuckDBPyConnection) -> None:
    """Recruitment: study eligibility criteria, pre-screening pools, parsed criteria and the generator's truth.

    New tables only (from their declarations); existing rows are untouched.
    """
    for name in ("study_eligibility", "prescreen_patients", "prescreen_conditions", "prescreen_observations",
                 "prescreen_medications", "recruitment_criteria", "prescreen_truth", "eligibility_truth"):
        con.execute(schema.table(name).ddl())


def _migration_8_atypical_shared_traits(con: duckdb.DuckDBPyConnection) -> None:
    """Atypical-data sites carry the shared-traits test's p-value (literal DDL; the next refresh fills it)."""
    con.execute("ALTER TABLE derived.atypical_sites ADD COLUMN IF NOT EXISTS shared_traits DOUBLE")


def _migration_9_enrollment_horizon(con: duckdb.DuckDBPyConnection) -> None:
    """Enrollment forecasts carry the simulation horizon, so a quantile beyond it reads "after <date>" (literal DDL).

    The next refresh recomputes the enrollment results (the engine's code changed), filling the columns.
    """
    for table in ("enrollment_study_summary", "enrollment_timeline"):
        con.execute(f"ALTER TABLE derived.{table} ADD COLUMN IF NOT EXISTS horizon_date DATE")


def _migration_10_prescreen_completeness(con: duckdb.DuckDBPyConnection) -> None:
    """Pre-screening patients say whether their condition and medication lists are complete (literal DDL).

    Generated pools hold complete lists by construction, so their rows are marked complete; imported rows keep
    "not stated" (NULL), under which an absent condition or medication is unknown, not "not present".
    """
    for column in ("conditions_complete", "medications_complete"):
        con.execute(f"ALTER TABLE main.prescreen_patients ADD COLUMN IF NOT EXISTS {column} BOOLEAN")
        con.execute(f"UPDATE main.prescreen_patients SET {column} = true WHERE source = 'synthetic' AND {column} IS NULL")


def _migration_11_registry_last_update(con: duckdb.DuckDBPyConnection) -> None:
    """Historical trials carry the registry record's last-update date and its precision (literal DDL).

    Rows loaded before stay without it (their running trials are censored at the as-of date, as before);
    re-importing the export fills it.
    """
    con.execute("ALTER TABLE main.historical_trials ADD COLUMN IF NOT EXISTS last_update_date DATE")
    con.execute("ALTER TABLE main.historical_trials ADD COLUMN IF NOT EXISTS last_update_date_precision VARCHAR")


def _migration_12_trial_exports(con: duckdb.DuckDBPyConnection) -> None:
    """Historical trials carry the export each record came from and that export's as-of date (literal DDL).

    A generated history's records get the generation's as-of date (the warehouse's, which the build set from
    the preset) and name it by the preset and seed the warehouse records. ClinicalTrials.gov records loaded
    before stay without an export (which of several imports last wrote a record was not kept): they are
    read as of the warehouse's date, as before, until their export is imported again, which fills both.
    """
    for column, sql_type in (("export_file", "VARCHAR"), ("export_sha256", "VARCHAR"), ("export_as_of", "DATE")):
        con.execute(f"ALTER TABLE main.historical_trials ADD COLUMN IF NOT EXISTS {column} {sql_type}")
    con.execute("""
        UPDATE main.historical_trials
        SET export_file = coalesce('generated (' || (SELECT value FROM meta.warehouse_info WHERE key = 'preset')
                                   || ', seed ' || (SELECT value FROM meta.warehouse_info WHERE key = 'seed') || ')',
                                   'generated'),
            export_as_of = (SELECT TRY_CAST(value AS DATE) FROM meta.warehouse_info WHERE key = 'as_of_date')
        WHERE data_source = 'synthetic' AND export_file IS NULL
    """)


# version -> (description, function): the step from version - 1. Never edit an applied step.
MIGRATIONS: dict[int, tuple[str, Migration | None]] = {
    1: ("Initial CRO warehouse schema", None),
    2: ("Restricted store beside the file; derived results declared in the schema; importer fields for real "
        "data (imputation flag, registry fields and sites, restricted SDTM design); enrollment (race/ethnicity, "
        "treatment and follow-up length, site selection, diversity targets, condition population)", _migration_2),
    3: ("Data quality: AE outcome and seriousness criteria, measurement time points, SDTM conformance issues, "
        "quality findings and signals, labelled data errors", _migration_3_quality),
    4: ("CAPA trends: start date of process-shift anomalies, labelled quality-event themes, text themes and "
        "recurrences (derived)", _migration_4_capa),
    5: ("KRI cells: site-level posterior of the rate ratio and permutation-calibrated flag thresholds",
        _migration_5_kri_posterior),
    6: ("Feasibility: secondary outcomes and number of arms of historical trials; feasibility model tables",
        _migration_6_feasibility),
    7: ("Recruitment: study eligibility criteria, pre-screening pools (patients, conditions, observations, "
        "medications), parsed criteria, pre-screening ground truth", _migration_7_recruitment),
    8: ("Atypical data: the shared-traits test (a subset of a site's subjects unlike its others)",
        _migration_8_atypical_shared_traits),
    9: ("Enrollment forecasts: the simulation horizon of the study summary and timeline", _migration_9_enrollment_horizon),
    10: ("Recruitment: pre-screening patients state whether their condition and medication lists are complete",
         _migration_10_prescreen_completeness),
    11: ("Historical trials: the registry record's last-update date (running trials are censored there)",
         _migration_11_registry_last_update),
    12: ("Historical trials: the export each record came from and that export's as-of date (each record is "
         "censored at its own export's date)", _migration_12_trial_exports),
}


def current_version(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> int:
    """The schema version of an open warehouse (0 for an empty file)."""
    where = "table_schema = 'meta' AND table_name = 'schema_version'"
    if catalog:
        where += f" AND table_catalog = '{catalog}'"
    if not con.execute(f"SELECT count(*) FROM information_schema.tables WHERE {where}").fetchone()[0]:
        return 0
    prefix = f"{catalog}." if catalog else ""
    return con.execute(f"SELECT coalesce(max(version), 0) FROM {prefix}meta.schema_version").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Bring the writer's file to this release's schema; returns (version before, version after).

    A new file gets the current schema in one step; an older file gets every later step. Writers
    migrate only their private staging copy, so a failed step never reaches the live file (DuckDB
    cannot write two attached files in one transaction, and the staging copy makes it unnecessary).
    A file newer than the release is refused.
    """
    version = current_version(con)
    latest = max(MIGRATIONS)
    if version > latest:
        raise WarehouseError(
            f"warehouse schema version {version} is newer than this release understands ({latest}); "
            "upgrade the application"
        )
    steps = [latest] if version == 0 else list(range(version + 1, latest + 1))
    for number in steps:
        description, apply = MIGRATIONS[number]
        if version == 0:
            create_current_schema(con)
            description = f"Schema version {latest}, created new"
        elif apply is not None:
            apply(con)
        con.execute(
            "INSERT INTO meta.schema_version VALUES (?, ?, ?)",
            [number, description, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
        )
    return version, latest


def set_info(con: duckdb.DuckDBPyConnection, facts: dict[str, object]) -> None:
    """Upsert facts into ``meta.warehouse_info``."""
    for key, value in facts.items():
        con.execute(
            "INSERT OR REPLACE INTO meta.warehouse_info VALUES (?, ?)", [key, None if value is None else str(value)]
        )


# --- writing ----------------------------------------------------------------------------------


def _lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def _staging_prefix(target: Path) -> str:
    return target.name + ".building-"


def restricted_name(target: Path, generation: str) -> str:
    """File name of the restricted store of generation ``generation`` beside ``target``."""
    return f"{target.stem}.restricted-{generation}{target.suffix}"


@contextmanager
def writer_lock(target: Path, purpose: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the one-writer-at-a-time lock of the warehouse at ``target``.

    A second writer waits up to ``wait_seconds`` and then fails with who holds the lock and since
    when. Under the lock, staging files left by killed writers are removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = open(_lock_path(target), "a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip()
                    try:
                        info = json.loads(holder) if holder else {}
                    except json.JSONDecodeError:
                        info = {}
                    raise WarehouseError(
                        f"another writer is changing {target} since {info.get('since', 'an unknown time')} "
                        f"({info.get('purpose', 'unknown work')}, pid {info.get('pid', '?')}); "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "purpose": purpose,
                                 "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}))
        handle.flush()
        _remove_stale_staging(target)
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def _remove_stale_staging(target: Path) -> None:
    """Staging files of writers that died (only called with the writer lock held)."""
    prefixes = (_staging_prefix(target), f"{target.stem}.restricted-")
    for path in target.parent.iterdir():
        if path.name.startswith(prefixes) and ".building-" in path.name:
            path.unlink(missing_ok=True)


def _referenced_restricted(target: Path) -> str | None:
    """The restricted store file name the warehouse at ``target`` records (None if none)."""
    if not target.exists():
        return None
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_quoted(target)} AS probe (READ_ONLY)")
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'probe' "
                           "AND table_schema = 'meta' AND table_name = 'warehouse_info'").fetchone()[0]:
            return None
        row = con.execute("SELECT value FROM probe.meta.warehouse_info WHERE key = ?", [RESTRICTED_INFO_KEY]).fetchone()
        return row[0] if row else None
    finally:
        con.close()


def _writer_connection(staging: Path, restricted_staging: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH {_quoted(staging)} AS {READER_CATALOG}")
    con.execute(f"ATTACH {_quoted(restricted_staging)} AS restricted")
    con.execute(f"USE {READER_CATALOG}")
    return con


@contextmanager
def _write_aside(target: Path, purpose: str, copy_existing: bool, wait_seconds: float) -> Iterator[duckdb.DuckDBPyConnection]:
    target = Path(target)
    with writer_lock(target, purpose, wait_seconds):
        if target.with_name(target.name + ".wal").exists():
            # A stale write-ahead log would be replayed onto the swapped-in file: refuse instead.
            raise WarehouseError(f"{target} has an unfinished write ({target.name}.wal); close the writer first")
        token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        generation = uuid.uuid4().hex[:12]
        staging = target.with_name(_staging_prefix(target) + token)
        final_restricted = target.with_name(restricted_name(target, generation))
        restricted_staging = final_restricted.with_name(final_restricted.name + ".building-" + token)
        previous = _referenced_restricted(target)
        if copy_existing and target.exists():
            shutil.copyfile(target, staging)
            if previous and target.with_name(previous).exists():
                shutil.copyfile(target.with_name(previous), restricted_staging)
        staged = (staging, staging.with_name(staging.name + ".wal"),
                  restricted_staging, restricted_staging.with_name(restricted_staging.name + ".wal"))
        con = _writer_connection(staging, restricted_staging)
        try:
            migrate(con)
            set_info(con, {RESTRICTED_INFO_KEY: final_restricted.name})
            yield con
            con.execute(f"CHECKPOINT {READER_CATALOG}")
            con.execute("CHECKPOINT restricted")
            con.close()
            os.replace(restricted_staging, final_restricted)
            os.replace(staging, target)  # the commit point: readers see the new pair from here on
        except BaseException:
            con.close()
            for path in staged:
                path.unlink(missing_ok=True)
            raise
        # Keep the store the previous file named (readers may still be attaching it); drop older ones.
        keep = {final_restricted.name, previous}
        for path in target.parent.glob(f"{target.stem}.restricted-*{target.suffix}"):
            if path.name not in keep:
                path.unlink(missing_ok=True)


@contextmanager
def build_aside(target: Path, purpose: str = "build", wait_seconds: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Write a new warehouse beside ``target`` and atomically swap it in when the block succeeds.

    The connection has the new file as its default catalog (``main.subjects`` names its table) and
    the new restricted store attached as ``restricted``. On failure both are removed and ``target``
    is untouched.
    """
    with _write_aside(Path(target), purpose, copy_existing=False, wait_seconds=wait_seconds) as con:
        yield con


@contextmanager
def modify_aside(target: Path, purpose: str = "modify", wait_seconds: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Change a private copy of ``target`` and atomically swap it in on success.

    Like :func:`build_aside`, but the copy starts from the existing warehouse and its restricted
    store (a new empty one when ``target`` does not exist). Readers keep serving the old file until
    the rename; on any failure the copy is discarded and ``target`` stays byte-for-byte as it was.
    """
    with _write_aside(Path(target), purpose, copy_existing=True, wait_seconds=wait_seconds) as con:
        yield con


def create_empty(path: Path) -> None:
    """Create a new warehouse file at ``path`` with the current schema (it must not exist)."""
    if Path(path).exists():
        raise WarehouseError(f"{path} exists already")
    with build_aside(Path(path), purpose="create"):
        pass


def copy_warehouse(source: Path | str, destination: Path | str) -> Path:
    """Copy a warehouse file and its restricted store to ``destination``.

    The copy gets a restricted store of its own, named after the destination and recorded in the
    copy, so a copy beside its source (same folder) never shares or overwrites the source's store.
    """
    source, destination = Path(source), Path(destination)
    if destination.exists() and destination.resolve() == source.resolve():
        raise WarehouseError(f"cannot copy the warehouse {source} onto itself")
    destination.parent.mkdir(parents=True, exist_ok=True)
    name = _referenced_restricted(source)
    shutil.copyfile(source, destination)
    if name and source.with_name(name).exists():
        own = restricted_name(destination, uuid.uuid4().hex[:12])
        shutil.copyfile(source.with_name(name), destination.with_name(own))
        con = duckdb.connect(str(destination))
        try:
            set_info(con, {RESTRICTED_INFO_KEY: own})
        finally:
            con.close()
    return destination


@contextmanager
def inspect(path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection on the whole warehouse (tests, evaluation, administration only).

    ``main.subjects`` and ``restricted.treatment_assignments`` name their tables: nothing is
    scoped, so pages and analytics never use this; they read through :meth:`Warehouse.query`.
    """
    target = Path(path)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_quoted(target)} AS {READER_CATALOG} (READ_ONLY)")
        name = _referenced_restricted(target)
        if name and target.with_name(name).exists():
            con.execute(f"ATTACH {_quoted(target.with_name(name))} AS restricted (READ_ONLY)")
        con.execute(f"USE {READER_CATALOG}")
        yield con
    finally:
        con.close()


# --- reading -----------------------------------------------------------------------------------


def _file_identity(path: Path) -> tuple[int, int]:
    """Changes when the file is swapped (for a Parquet export folder: when its manifest is)."""
    stat = (path / "warehouse.json").stat() if path.is_dir() else path.stat()
    return (stat.st_ino, stat.st_mtime_ns)


def _check_version(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    version = current_version(con, READER_CATALOG)
    if version != schema.SCHEMA_VERSION:
        raise WarehouseError(
            f"{path} has schema version {version}, this release needs {schema.SCHEMA_VERSION}; "
            f"run `python -m analytics migrate --db {path}`"
        )


def _attach_file(con: duckdb.DuckDBPyConnection, path: Path, blinded: bool) -> None:
    """A reader on a warehouse file: the file, and its restricted store unless blinded."""
    con.execute(f"ATTACH {_quoted(path)} AS {READER_CATALOG} (READ_ONLY)")
    _check_version(con, path)
    if not blinded:
        row = con.execute(f"SELECT value FROM {READER_CATALOG}.meta.warehouse_info WHERE key = ?",
                          [RESTRICTED_INFO_KEY]).fetchone()
        store = path.with_name(row[0]) if row and row[0] else None
        if store is None or not store.exists():
            raise WarehouseError(f"the restricted store of {path} is missing ({row[0] if row else 'not recorded'})")
        con.execute(f"ATTACH {_quoted(store)} AS restricted (READ_ONLY)")


def _attach_export(con: duckdb.DuckDBPyConnection, path: Path, blinded: bool) -> None:
    """A reader on a Parquet export folder (read-only replicas): views over its files, which stay the
    only files the connection may open once external access is off (the restricted export's only
    for unblinded readers)."""
    from analytics.core import parquet

    try:
        folders = parquet.attach_export(con, path, blinded)
    except parquet.ExportError as error:
        raise WarehouseError(str(error)) from None
    _check_version(con, path)
    con.execute("SET allowed_directories = $dirs", {"dirs": [f"{folder}{os.sep}" for folder in folders]})
    con.execute("SET parquet_metadata_cache = true")


class _ReaderInstance:
    """One read-only DuckDB instance on one version of the file; closed when retired and idle."""

    def __init__(self, path: Path, blinded: bool) -> None:
        self.path = path
        self.active = 0
        self.retired = False
        self.lock = threading.Lock()
        con = duckdb.connect(":memory:", config={"memory_limit": READER_MEMORY_LIMIT})
        try:
            if path.is_dir():
                _attach_export(con, path, blinded)
            else:
                _attach_file(con, path, blinded)
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        self.connection = con

    def acquire(self) -> duckdb.DuckDBPyConnection:
        with self.lock:
            self.active += 1
        return self.connection.cursor()

    def release(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.close()
        with self.lock:
            self.active -= 1
            close = self.retired and self.active == 0
        if close:
            self.connection.close()

    def retire(self) -> None:
        with self.lock:
            self.retired = True
            close = self.active == 0
        if close:
            self.connection.close()


_INSTANCES: dict[tuple[str, bool], tuple[tuple[int, int], _ReaderInstance]] = {}
_INSTANCES_LOCK = threading.Lock()


def _missing(path: Path) -> WarehouseError:
    return WarehouseError(
        f"no warehouse at {path}; build one with `python -m analytics build --preset demo --db {path}`"
    )


def _instance(path: Path, blinded: bool) -> tuple[_ReaderInstance, duckdb.DuckDBPyConnection]:
    """The live reader instance for ``path`` and a cursor on it; a swapped file gets a new one, the
    old retires once its last cursor is released.

    The cursor is taken under the instances' lock: another thread's swap could otherwise retire and
    close the instance between the lookup and the first query.
    """
    key = (str(path), blinded)
    try:
        identity = _file_identity(path)
    except FileNotFoundError:
        raise _missing(path) from None
    with _INSTANCES_LOCK:
        cached = _INSTANCES.get(key)
        if cached and cached[0] == identity:
            return cached[1], cached[1].acquire()
        fresh = _ReaderInstance(path, blinded)
        _INSTANCES[key] = (identity, fresh)
        cursor = fresh.acquire()
    if cached:
        cached[1].retire()
    return fresh, cursor


@lru_cache(maxsize=4096)
def check_query_text(sql: str) -> frozenset[str]:
    """Refuse anything but one SELECT whose tables are bare relation names; its own CTE names.

    Read from DuckDB's own parse tree (not a pattern over the text): a schema- or catalog-qualified
    table (``main.subjects``, ``"restricted".treatment_assignments``, comments in between) or a
    table function other than :data:`ALLOWED_TABLE_FUNCTIONS` (``query_table``, ``read_csv``, ...)
    raises :class:`QueryRefused`.
    """
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise QueryRefused("only a single SELECT statement may be run through the query layer")
    # One parser connection serves every thread: a DuckDB connection runs one call at a time.
    with _PARSER_LOCK:
        tree = json.loads(_PARSER.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        raise QueryRefused(f"the query could not be parsed: {tree.get('error_message')}")
    stack: list[object] = [tree]
    own_ctes: set[str] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for entry in (node.get("cte_map") or {}).get("map", []):
                own_ctes.add(entry.get("key", ""))
            kind = node.get("type")
            if kind == "BASE_TABLE" and (node.get("schema_name") or node.get("catalog_name")):
                qualified = ".".join(p for p in (node.get("catalog_name"), node.get("schema_name"),
                                                 node.get("table_name")) if p)
                raise QueryRefused(f"table {qualified!r} is not a scoped relation; name relations without a schema")
            if kind == "TABLE_FUNCTION":
                name = (node.get("function") or {}).get("function_name", "?")
                if name not in ALLOWED_TABLE_FUNCTIONS:
                    raise QueryRefused(f"table function {name!r} may not be used through the query layer")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(own_ctes)


_PARSER = duckdb.connect(":memory:")
_PARSER_LOCK = threading.Lock()
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _compose(scope: AccessScope, filters: PortfolioFilter, ctes: str, sql: str) -> str:
    user_text = ("WITH " + ctes + "\n" + sql) if ctes.strip() else sql
    clash = check_query_text(user_text) & relation_names(False)
    if clash:
        raise QueryRefused(f"the query's own CTE {sorted(clash)[0]!r} has the name of a scoped relation; rename it")
    open_access = scope.is_full and not (filters.sponsor_ids or filters.study_ids or filters.narrows_sites)
    relations = scoped_relations(ctes + "\n" + sql, scope.blinded, open_access)
    parts = [p for p in (relations, ctes.strip()) if p]
    return ("WITH " + ",\n".join(parts) + "\n" + sql) if parts else sql


def _used_params(text: str, values: dict[str, object]) -> dict[str, object]:
    names = set(_PARAMETER.findall(text))
    return {k: v for k, v in values.items() if k in names}


@dataclass(frozen=True)
class Warehouse:
    """A handle on one warehouse file; small and hashable so cached functions can key on it.

    ``token`` changes whenever the file is replaced, so cached results from an older file are never
    served after a rebuild or import.
    """

    path: str
    token: str = ""

    @classmethod
    def open(cls, path: Path | str | None = None) -> "Warehouse":
        p = Path(path) if path else default_db_path()
        try:
            ino, mtime = _file_identity(p)
        except FileNotFoundError:
            raise _missing(p) from None
        return cls(str(p.resolve()), f"{ino}:{mtime}")

    def query(
        self,
        scope: AccessScope,
        sql: str,
        params: dict[str, object] | None = None,
        filters: PortfolioFilter = NO_FILTER,
    ) -> pd.DataFrame:
        """Run ``sql`` over the scoped relations of ``scope`` and ``filters``.

        ``sql`` is a constant SELECT that names tables by their bare names (``subjects``,
        ``kri_cells``; ``scoped_sites`` adds site names and countries); each relation holds only
        the rows the scope and the filters allow. Values come in ``params`` as ``$name``.
        """
        return self.query_with(scope, "", sql, params, filters)

    def query_with(
        self,
        scope: AccessScope,
        ctes: str,
        sql: str,
        params: dict[str, object] | None = None,
        filters: PortfolioFilter = NO_FILTER,
    ) -> pd.DataFrame:
        """Like :meth:`query`, with extra CTEs (``name AS (...)``, comma separated) after the scope's."""
        text = _compose(scope, filters, ctes, sql)
        values = {**scope.sql_params(), **filters.sql_params(), **(params or {})}
        started = time.perf_counter()
        try:
            return self._execute(text, _used_params(text, values), scope.blinded)
        finally:
            if QUERY_TIMINGS is not None:
                QUERY_TIMINGS.setdefault(_calling_function(), []).append(time.perf_counter() - started)

    def _execute(self, sql: str, params: dict[str, object] | list[object], blinded: bool) -> pd.DataFrame:
        instance, cursor = _instance(Path(self.path), blinded)
        try:
            return cursor.execute(sql, params).df()
        finally:
            instance.release(cursor)

    def reference(self, sql: str, params: dict[str, object] | None = None) -> pd.DataFrame:
        """Read data that is not trial data: reference tables (``countries``, ``historical_trials``)
        and facts about the file (``warehouse_info``, ``study_versions``, ``derived_state``)."""
        check_query_text(sql)
        names = [t for t in schema.TABLES if t.access == "reference" or t.schema == "meta"]
        ctes = ",\n".join(f"{t.name} AS (SELECT * FROM {READER_CATALOG}.{t.schema}.{t.name})"
                          for t in names if re.search(rf"\b{t.name}\b", sql))
        text = ("WITH " + ctes + "\n" + sql) if ctes else sql
        return self._execute(text, _used_params(text, params or {}), True)

    def info(self) -> dict[str, str]:
        """Facts from ``meta.warehouse_info`` (as-of date, preset, seed, build time)."""
        df = self.reference("SELECT key, value FROM warehouse_info")
        return dict(zip(df["key"], df["value"]))

    def as_of(self) -> dt.date:
        """The date the data describe ("today" for the portfolio)."""
        value = self.info().get("as_of_date")
        return dt.date.fromisoformat(value) if value else dt.date.today()


@dataclass(frozen=True)
class ConnectedWarehouse(Warehouse):
    """A warehouse read through a connection a writer holds open (inside a build or an import).

    Queries see the writer's uncommitted changes, through the same scoped relations. Never pass
    one to a cached function: the connection is not part of its identity.
    """

    connection: duckdb.DuckDBPyConnection | None = field(default=None, compare=False, hash=False, repr=False)

    def _execute(self, sql: str, params: dict[str, object] | list[object], blinded: bool) -> pd.DataFrame:
        return self.connection.execute(sql, params).df()


def close_all() -> None:
    """Retire every reader instance (tests and the CLI call this before removing files)."""
    with _INSTANCES_LOCK:
        instances = [inst for _, inst in _INSTANCES.values()]
        _INSTANCES.clear()
    for inst in instances:
        inst.retire()
