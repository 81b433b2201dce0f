"""The DuckDB warehouse: creation, migrations, atomic swaps and scoped read queries.

Readers share one cached read-only connection per file and take a fresh cursor per query (a DuckDB
connection used by two threads at once raises "connection is busy"). Writers never touch a file
readers hold: they build a new file beside it and swap it in with an atomic rename; readers notice
the new inode and reconnect.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from analytics.core import schema
from analytics.core.scope import NO_FILTER, SCOPE_CTES, AccessScope, PortfolioFilter

RESTRICTED_SCHEMA_PATTERN = re.compile(r"\brestricted\s*\.", re.IGNORECASE)
DEFAULT_DB_PATH = Path(__file__).resolve().parents[2] / "data" / "warehouse.duckdb"
DB_ENV_VAR = "CRO_WAREHOUSE"


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
    """The warehouse file is missing, unreadable or of an unknown schema version."""


def default_db_path() -> Path:
    """The warehouse the app opens: ``$CRO_WAREHOUSE`` or ``data/warehouse.duckdb``."""
    return Path(os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH)


# --- migrations -------------------------------------------------------------------------------

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def _migration_1(con: duckdb.DuckDBPyConnection) -> None:
    for name in schema.SCHEMAS:
        if name != "main":
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
    for t in schema.TABLES:
        con.execute(t.ddl())


# Literal DDL, so this migration means the same thing whatever later releases declare. A file created
# by this release already has all of it from migration 1 (hence IF NOT EXISTS). DuckDB cannot add a
# column with a CHECK constraint, so on upgraded files race/ethnicity values are checked by the importers.
_MIGRATION_2_SQL = (
    "ALTER TABLE main.studies ADD COLUMN IF NOT EXISTS treatment_duration_days INTEGER",
    "ALTER TABLE main.studies ADD COLUMN IF NOT EXISTS follow_up_days INTEGER",
    "ALTER TABLE main.study_sites ADD COLUMN IF NOT EXISTS selection_date DATE",
    "ALTER TABLE main.subjects ADD COLUMN IF NOT EXISTS race VARCHAR",
    "ALTER TABLE main.subjects ADD COLUMN IF NOT EXISTS ethnicity VARCHAR",
    "CREATE TABLE IF NOT EXISTS main.enrollment_targets (study_id VARCHAR NOT NULL, dimension VARCHAR NOT NULL, "
    "category VARCHAR NOT NULL, target_share DOUBLE NOT NULL, PRIMARY KEY (study_id, dimension, category))",
    "CREATE TABLE IF NOT EXISTS main.condition_population (indication VARCHAR NOT NULL, country_code VARCHAR NOT NULL, "
    "dimension VARCHAR NOT NULL, category VARCHAR NOT NULL, population_share DOUBLE NOT NULL, source VARCHAR, "
    "PRIMARY KEY (indication, country_code, dimension, category))",
    "CREATE SCHEMA IF NOT EXISTS derived",
    "CREATE TABLE IF NOT EXISTS derived.enrollment_forecast (study_id VARCHAR NOT NULL, series VARCHAR NOT NULL, "
    "date DATE NOT NULL, q05 DOUBLE, q10 DOUBLE, q25 DOUBLE, q50 DOUBLE, q75 DOUBLE, q90 DOUBLE, q95 DOUBLE, "
    "PRIMARY KEY (study_id, series, date))",
    "CREATE TABLE IF NOT EXISTS derived.enrollment_study_summary (study_id VARCHAR NOT NULL PRIMARY KEY, "
    "as_of_date DATE, target INTEGER, randomized INTEGER, active_sites INTEGER, pending_sites INTEGER, "
    "planned_lpi DATE, p_on_time DOUBLE, lpi_p10 DATE, lpi_p50 DATE, lpi_p80 DATE, lpi_p90 DATE, "
    "rate_per_site_month DOUBLE, rate_shape DOUBLE, trend_per_year DOUBLE, prior_weight DOUBLE, "
    "sites_to_add INTEGER, add_sites_by DATE, p_on_time_with_added DOUBLE, linear_lpi DATE, prophet_lpi DATE)",
    "CREATE TABLE IF NOT EXISTS derived.enrollment_site_forecast (study_id VARCHAR NOT NULL, "
    "study_site_id VARCHAR NOT NULL PRIMARY KEY, country_code VARCHAR, state VARCHAR, randomized INTEGER, "
    "open_months DOUBLE, rate_mean DOUBLE, rate_p10 DOUBLE, rate_p90 DOUBLE, expected_by_lpi DOUBLE, "
    "share_of_remaining DOUBLE, p_enrolls_nobody DOUBLE, p_never_activates DOUBLE, activation_p50 DATE)",
    "CREATE TABLE IF NOT EXISTS derived.enrollment_timeline (study_id VARCHAR NOT NULL, milestone VARCHAR NOT NULL, "
    "planned_date DATE, actual_date DATE, p10 DATE, p50 DATE, p80 DATE, p90 DATE, p_by_planned DOUBLE, "
    "PRIMARY KEY (study_id, milestone))",
    "CREATE TABLE IF NOT EXISTS derived.enrollment_demographics (study_id VARCHAR NOT NULL, level VARCHAR NOT NULL, "
    "level_id VARCHAR NOT NULL, dimension VARCHAR NOT NULL, category VARCHAR NOT NULL, randomized INTEGER, "
    "share DOUBLE, target_share DOUBLE, population_share DOUBLE, forecast_count_p50 DOUBLE, "
    "forecast_count_p10 DOUBLE, forecast_count_p90 DOUBLE, forecast_share_p50 DOUBLE, p_meets_target DOUBLE, "
    "PRIMARY KEY (study_id, level, level_id, dimension, category))",
)


def _migration_2(con: duckdb.DuckDBPyConnection) -> None:
    for statement in _MIGRATION_2_SQL:
        con.execute(statement)


# version -> (description, function). A later release appends here; never edit an applied one.
MIGRATIONS: dict[int, tuple[str, Migration]] = {
    1: ("Initial CRO warehouse schema", _migration_1),
    2: ("Enrollment: race/ethnicity, treatment and follow-up length, site selection, diversity targets, "
        "condition population, derived enrollment forecasts", _migration_2),
}


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open warehouse (0 for an empty file)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'meta' AND table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM meta.schema_version").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration newer than the file's version, each in its own transaction."""
    version = current_version(con)
    latest = max(MIGRATIONS)
    if version > latest:
        raise WarehouseError(
            f"warehouse schema version {version} is newer than this release understands ({latest}); "
            "upgrade the application"
        )
    for number in range(version + 1, latest + 1):
        description, apply = MIGRATIONS[number]
        con.execute("BEGIN TRANSACTION")
        try:
            apply(con)
            con.execute(
                "INSERT INTO meta.schema_version VALUES (?, ?, ?)",
                [number, description, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return latest


def create_empty(path: Path) -> None:
    """Create a new warehouse file at ``path`` with the current schema (it must not exist)."""
    with duckdb.connect(str(path)) as con:
        migrate(con)


def set_info(con: duckdb.DuckDBPyConnection, facts: dict[str, object]) -> None:
    """Upsert facts into ``meta.warehouse_info``."""
    for key, value in facts.items():
        con.execute(
            "INSERT OR REPLACE INTO meta.warehouse_info VALUES (?, ?)", [key, None if value is None else str(value)]
        )


@contextmanager
def build_aside(target: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Write a warehouse beside ``target`` and atomically swap it in when the block succeeds.

    The new file is written as ``<target>.building``; on success it is checkpointed, closed and
    renamed over ``target`` (readers still holding the old file keep their snapshot). On failure the
    partial file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".building")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(staging))
    try:
        migrate(con)
        yield con
        con.execute("CHECKPOINT")
        con.close()
        os.replace(staging, target)
    except BaseException:
        con.close()
        staging.unlink(missing_ok=True)
        staging.with_name(staging.name + ".wal").unlink(missing_ok=True)
        raise


@contextmanager
def modify_aside(target: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Change a copy of ``target`` inside one transaction and atomically swap it in on success.

    Like :func:`build_aside`, but the new file starts as a copy of the existing warehouse (a new
    empty one when ``target`` does not exist). Readers keep serving the old file until the rename;
    on any failure the copy is discarded and ``target`` stays byte-for-byte as it was.
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".building")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):
        leftover.unlink(missing_ok=True)
    if target.with_name(target.name + ".wal").exists():
        # A stale write-ahead log would be replayed onto the swapped-in file: refuse instead.
        raise WarehouseError(f"{target} has an unfinished write ({target.name}.wal); close the writer first")
    if target.exists():
        shutil.copyfile(target, staging)
    con = duckdb.connect(str(staging))
    try:
        migrate(con)
        con.execute("BEGIN TRANSACTION")
        yield con
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        con.close()
        os.replace(staging, target)
    except BaseException:
        con.close()
        staging.unlink(missing_ok=True)
        staging.with_name(staging.name + ".wal").unlink(missing_ok=True)
        raise


# --- reading -----------------------------------------------------------------------------------

_CONNECTIONS: dict[str, tuple[tuple[int, int], duckdb.DuckDBPyConnection]] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _file_identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns)


def _read_connection(path: Path) -> duckdb.DuckDBPyConnection:
    """The shared read-only connection for ``path``, reopened when the file was swapped."""
    key = str(path.resolve())
    try:
        identity = _file_identity(path)
    except FileNotFoundError:
        raise WarehouseError(
            f"no warehouse at {path}; build one with `python -m analytics build --preset demo --db {path}`"
        ) from None
    with _CONNECTIONS_LOCK:
        cached = _CONNECTIONS.get(key)
        if cached and cached[0] == identity:
            return cached[1]
        if cached:
            cached[1].close()
        con = duckdb.connect(key, read_only=True)
        version = current_version(con)
        if version != schema.SCHEMA_VERSION:
            con.close()
            raise WarehouseError(
                f"{path} has schema version {version}, this release needs {schema.SCHEMA_VERSION}; "
                f"run `python -m analytics migrate --db {path}`"
            )
        _CONNECTIONS[key] = (identity, con)
        return con


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
            raise WarehouseError(
                f"no warehouse at {p}; build one with `python -m analytics build --preset demo --db {p}`"
            ) from None
        return cls(str(p.resolve()), f"{ino}:{mtime}")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return _read_connection(Path(self.path)).cursor()

    def query(
        self,
        scope: AccessScope,
        sql: str,
        params: dict[str, object] | None = None,
        filters: PortfolioFilter = NO_FILTER,
    ) -> pd.DataFrame:
        """Run ``sql`` with the ``scoped_studies`` / ``scoped_sites`` CTEs in front of it.

        ``sql`` must be a constant query text that reads trial tables only through those CTEs (join
        on ``study_id`` or ``study_site_id``); values come in ``params`` as ``$name`` parameters.
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
        """Like :meth:`query`, with extra CTEs (``name AS (...)``, comma separated) after the scope's.

        Raises :class:`PermissionError` when a blinded scope's query touches the ``restricted``
        schema (treatment assignment): blinding is enforced here, not left to each page.
        """
        if scope.blinded and RESTRICTED_SCHEMA_PATTERN.search(ctes + sql):
            raise PermissionError("treatment assignment is restricted; this user is blinded")
        text = "WITH " + SCOPE_CTES + ((",\n" + ctes) if ctes.strip() else "") + "\n" + sql
        all_params = {**scope.sql_params(), **filters.sql_params(), **(params or {})}
        used = {k: v for k, v in all_params.items() if "$" + k in text}
        started = time.perf_counter()
        try:
            return self._execute(text, used)
        finally:
            if QUERY_TIMINGS is not None:
                QUERY_TIMINGS.setdefault(_calling_function(), []).append(time.perf_counter() - started)

    def _execute(self, sql: str, params: dict[str, object] | list[object]) -> pd.DataFrame:
        cur = self.cursor()
        try:
            return cur.execute(sql, params).df()
        finally:
            cur.close()

    def reference(self, sql: str, params: list[object] | None = None) -> pd.DataFrame:
        """Read reference data that is not trial data (countries, historical trials, warehouse facts)."""
        return self._execute(sql, params or [])

    def info(self) -> dict[str, str]:
        """Facts from ``meta.warehouse_info`` (as-of date, preset, seed, build time)."""
        df = self.reference("SELECT key, value FROM meta.warehouse_info")
        return dict(zip(df["key"], df["value"]))

    def as_of(self) -> dt.date:
        """The date the data describe ("today" for the portfolio)."""
        value = self.info().get("as_of_date")
        return dt.date.fromisoformat(value) if value else dt.date.today()


@dataclass(frozen=True)
class ConnectedWarehouse(Warehouse):
    """A warehouse read through a connection a writer holds open (inside a build or an import).

    Queries see the writer's uncommitted changes. Never pass one to a cached function: the
    connection is not part of its identity.
    """

    connection: duckdb.DuckDBPyConnection | None = field(default=None, compare=False, hash=False, repr=False)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        raise TypeError("a ConnectedWarehouse reads through its writer's connection only")

    def _execute(self, sql: str, params: dict[str, object] | list[object]) -> pd.DataFrame:
        return self.connection.execute(sql, params).df()


def close_all() -> None:
    """Close every cached read connection (tests and the CLI call this before swapping files)."""
    with _CONNECTIONS_LOCK:
        for _, con in _CONNECTIONS.values():
            con.close()
        _CONNECTIONS.clear()
