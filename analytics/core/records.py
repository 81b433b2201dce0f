"""The records store: what the app writes (review dispositions, CAPA actions, signatures, locks, the
audit trail), kept apart from the read-only analytical warehouse.

Small, frequent, concurrent writes go to a transactional database through SQLAlchemy Core:
SQLite in WAL mode at ``data/records.sqlite`` by default, or PostgreSQL for a team (set
``[connections.records] url = "postgresql+psycopg://..."`` in ``.streamlit/secrets.toml`` or
``$CRO_RECORDS_URL``; see :mod:`analytics.core.settings`).

* **Opening a store upgrades its database to the newest Alembic revision** this code knows
  (``records_migrations/``), and refuses, changing nothing, a database at a revision newer than
  that (it was upgraded by a newer release).
* Area tables (:mod:`analytics.core.records_schema`) are **append-only**: :class:`RecordsStore` has
  no update or delete, and the database's triggers refuse UPDATE and DELETE from any client. A
  correction is a new row with the same object key; :meth:`RecordsStore.current` returns the
  latest version of each object, :meth:`RecordsStore.history` every version.
* Every row carries ``actor`` (who, given by the caller) and ``recorded_at`` (when, in UTC, set by
  the store inside the write's lock, so times never run backwards along the audit chain).
* Every append also writes a hash-chained **audit record** in the same transaction
  (:meth:`RecordsStore.audit` writes one for actions that are not rows, e.g. a lock or an export),
  and :meth:`RecordsStore.verify_audit` checks the whole chain (see :mod:`analytics.core.audit_chain`
  for what it detects and its limit).
* Writes are serialized so the chain never forks: SQLite ``BEGIN IMMEDIATE`` (writers queue on a
  lock and a ``flock`` beside the file first, and the transaction is retried with backoff while the
  database is still busy), PostgreSQL a transaction-level advisory lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from analytics.core.audit_chain import (AuditVerification, canonical_json, record_hash, sha256_hex,
                                        verify_chain)
from analytics.core.records_schema import AREA_TABLES, AUDIT_HEAD, AUDIT_LOG, RECORD_TABLES, RecordTable
from analytics.core.settings import load_settings

try:
    import fcntl
except ImportError:  # not POSIX: writers wait at SQLite's own lock only
    fcntl = None

MIGRATIONS_DIR = Path(__file__).resolve().parent / "records_migrations"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# PostgreSQL advisory lock keys (any bigint; these spell "CROaudit" and "CROmigr" in ASCII).
AUDIT_LOCK_KEY = 0x43524F6175646974
MIGRATION_LOCK_KEY = 0x43524F6D696772
SQLITE_BUSY_TIMEOUT_S = 10.0  # how long one SQLite statement waits for the write lock
MAX_WRITE_ATTEMPTS = 8  # whole-transaction retries while SQLite stays busy beyond that
WRITE_OPTION = "records_write"  # execution option: this connection's transactions will write
AUDIT_READ_CHUNK = 5_000

T = TypeVar("T")


class RecordsError(RuntimeError):
    """The records database cannot be used: an unsupported URL, an unreachable server, or a revision
    newer than this code."""


@dataclass(frozen=True)
class AuditEntry:
    """What :meth:`RecordsStore.audit` wrote: its position, time and hash."""

    seq: int
    recorded_at: dt.datetime
    record_hash: str


@dataclass(frozen=True)
class AppendedRecord:
    """What :meth:`RecordsStore.append` wrote: the row's id and version, its time and its audit record."""

    table: str
    record_id: int
    version: int
    recorded_at: dt.datetime
    audit: AuditEntry


# --- engine and migrations ---------------------------------------------------------------------


def _parse_url(url: str | URL) -> URL:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise RecordsError(f"the records store runs on SQLite or PostgreSQL, not {backend!r} ({parsed!r})")
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver requirements.txt installs
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise RecordsError("the records store needs a SQLite file (an in-memory database is one per connection)")
    return parsed


def create_records_engine(url: str | URL) -> Engine:
    """A SQLAlchemy engine for the records database.

    SQLite: the file's folder is created, the journal is WAL (readers never block the writer),
    foreign keys are on, and a transaction opened on a connection with the ``records_write``
    execution option starts with ``BEGIN IMMEDIATE`` (it takes the write lock first, so two writers
    never both read the chain head). PostgreSQL: psycopg 3, connections checked before use.
    """
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True)
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # the driver's own BEGIN is replaced by the one below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    return engine


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the records schema that this code knows."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def database_revision(connection: Connection) -> str | None:
    """The revision a records database is at (None for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()


def _refuse_unknown(revision: str | None, url: URL) -> None:
    if revision is not None and revision not in known_revisions():
        raise RecordsError(
            f"the records database {url.render_as_string(hide_password=True)} is at revision {revision!r}, "
            f"newer than this release knows (its newest is {head_revision()!r}): it was upgraded by a newer "
            "release of the workbench. Run that release, or upgrade this one; nothing was changed."
        )


def _is_sqlite_busy(error: sa.exc.OperationalError) -> bool:
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _SqliteWriteQueue:
    """Where one SQLite file's writers wait their turn before ``BEGIN IMMEDIATE``.

    SQLite's own wait for a busy database sleeps up to 100 ms between tries, so 20 writers spend
    most of their time asleep while the database is free. Here a process's threads queue on a lock,
    and processes on an exclusive ``flock`` of ``<file>-writelock`` (POSIX), polled every
    millisecond; after :data:`SQLITE_BUSY_TIMEOUT_S` a writer goes on to SQLite's own lock, which is
    what guarantees the serialization either way.
    """

    def __init__(self, database: Path) -> None:
        self._threads = threading.Lock()
        self._lock_path = database.with_name(database.name + "-writelock")
        self._fd: int | None = None

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self._threads:
            if fcntl is None:
                yield
                return
            if self._fd is None:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
            held = False
            while not held and time.monotonic() < deadline:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                except BlockingIOError:
                    time.sleep(0.001)
            try:
                yield
            finally:
                if held:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)


_SQLITE_WRITE_QUEUES: dict[Path, _SqliteWriteQueue] = {}
_SQLITE_WRITE_QUEUES_GUARD = threading.Lock()


def _write_turn(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """SQLite: this file's write queue (shared by every store of the file in this process).
    PostgreSQL queues at its advisory lock instead."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    database = Path(engine.url.database).resolve()
    with _SQLITE_WRITE_QUEUES_GUARD:
        queue = _SQLITE_WRITE_QUEUES.setdefault(database, _SqliteWriteQueue(database))
    return queue.turn()


def _run_write(engine: Engine, work: Callable[[Connection], T], lock_key: int) -> T:
    """Run ``work`` in one serialized write transaction, retrying it whole while SQLite is busy."""
    writer = engine.execution_options(**{WRITE_OPTION: True})
    for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
        try:
            with _write_turn(engine), writer.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
                return work(conn)
        except sa.exc.OperationalError as error:
            if not _is_sqlite_busy(error) or attempt == MAX_WRITE_ATTEMPTS:
                raise
            time.sleep(min(2.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # the loop returns or raises


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the records database to head in one transaction; returns (revision before, after).

    Raises:
        RecordsError: the database is at a revision newer than this code knows (nothing is changed).
    """
    with engine.connect() as conn:
        before = database_revision(conn)
    _refuse_unknown(before, engine.url)
    head = head_revision()
    if before == head:
        return before, head

    def migrate(conn: Connection) -> str | None:
        found = database_revision(conn)  # again under the lock: another process may have upgraded
        _refuse_unknown(found, engine.url)
        if found != head:
            command.upgrade(_alembic_config(conn), "head")
        return found

    return _run_write(engine, migrate, MIGRATION_LOCK_KEY), head


# --- the store ---------------------------------------------------------------------------------


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_type(spec: RecordTable, name: str, value: Any) -> None:
    kind = spec.column(name).type
    accepted = {
        "text": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "date": isinstance(value, dt.date) and not isinstance(value, dt.datetime),
        "timestamp": isinstance(value, dt.datetime) and value.tzinfo is not None,
        "json": True,
    }[kind]
    if not accepted:
        raise ValueError(f"{spec.name}.{name} takes a {kind} value"
                         f"{' (timezone-aware)' if kind == 'timestamp' else ''}, not {value!r}")


def _validated_row(spec: RecordTable, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as it will be stored, or ValueError naming the table and column at fault."""
    unknown = sorted(set(row) - set(spec.column_names))
    if unknown:
        raise ValueError(f"{spec.name} has no column(s) {unknown} (actor, time, id and version are set by the store)")
    values = {name: row.get(name) for name in spec.column_names}
    for column in spec.columns:
        value = values[column.name]
        if column.required and (value is None or (isinstance(value, str) and not value.strip())):
            raise ValueError(f"{spec.name}.{column.name} is required")
        if value is None:
            continue
        _check_type(spec, column.name, value)
        if column.allowed and value not in column.allowed:
            raise ValueError(f"{spec.name}.{column.name} must be one of {list(column.allowed)}, not {value!r}")
    canonical_json(values)  # refuse now what the audit payload could not hold (e.g. NaN in a json column)
    return values


def _object_id(spec: RecordTable, values: Mapping[str, Any]) -> str:
    key = [values[k] for k in spec.key]
    return str(key[0]) if len(key) == 1 else canonical_json(key)


def _frame(result: sa.CursorResult) -> pd.DataFrame:
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


class RecordsStore:
    """One records database. Thread-safe; open one per process (e.g. ``st.cache_resource``).

    Opening it upgrades the database to the newest revision (see :func:`upgrade_to_head`), unless
    ``upgrade=False``, and refuses a database newer than this code.
    """

    def __init__(self, url: str | URL | None = None, *, upgrade: bool = True) -> None:
        """Open the store at ``url`` (default: the configured one, :func:`load_settings`)."""
        self.engine = create_records_engine(url if url is not None else load_settings().records_url)
        try:
            if upgrade:
                upgrade_to_head(self.engine)
            else:
                with self.engine.connect() as conn:
                    _refuse_unknown(database_revision(conn), self.engine.url)
        except sa.exc.OperationalError as error:
            self.engine.dispose()
            reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
            raise RecordsError(f"cannot open the records database {self.display_url}: {reason}") from error

    @property
    def display_url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return database_revision(conn)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "RecordsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes --

    def _write_audit(self, conn: Connection, actor: str, action: str, object_type: str, object_id: str,
                     scope: object, payload: object, when: dt.datetime) -> AuditEntry:
        """Append one audit record and advance the head; the caller holds the write lock."""
        head = conn.execute(sa.select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.record_hash)).one()
        payload_text = canonical_json(payload)
        record = {
            "seq": head.seq + 1,
            "actor": actor,
            "recorded_at": when,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "scope": canonical_json(scope),
            "payload_sha256": sha256_hex(payload_text),
            "payload": payload_text,
            "prev_hash": head.record_hash,
        }
        record["record_hash"] = record_hash(record)
        conn.execute(sa.insert(AUDIT_LOG).values(record))
        conn.execute(sa.update(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 1)
                     .values(seq=record["seq"], record_hash=record["record_hash"]))
        return AuditEntry(record["seq"], when, record["record_hash"])

    def audit(self, actor: str, action: str, object_type: str, object_id: str, scope: object = None,
              payload: object = None) -> AuditEntry:
        """Append one record to the audit chain.

        Args:
            actor: who acted (the signed-in user id).
            action: what was done, e.g. ``"lock"``, ``"export"``, ``"sign"``.
            object_type, object_id: what it was done to.
            scope: the actor's access scope (an ``AccessScope``, a mapping, or None), kept as
                canonical JSON.
            payload: any JSON-ready data (sets, dates, dataclasses are converted, see
                :func:`analytics.core.audit_chain.plain`); its SHA-256 is chained.
        """
        for name, value in (("actor", actor), ("action", action), ("object_type", object_type),
                            ("object_id", object_id)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"audit {name} must be a non-empty string, not {value!r}")
        canonical_json(payload), canonical_json(scope)  # refuse before taking the lock
        return _run_write(self.engine, lambda conn: self._write_audit(
            conn, actor, action, object_type, object_id, scope, payload, _utc_now()), AUDIT_LOCK_KEY)

    def append(self, table: str, row: Mapping[str, Any], *, actor: str, scope: object = None) -> AppendedRecord:
        """Append a version of an object to an area table, with its audit record, in one transaction.

        The first row of an object key is version 1; a row with a key already present is a
        correction (action ``"correct"`` in the audit, otherwise ``"append"``) and gets the next version.

        Raises:
            KeyError: no such records table.
            ValueError: an unknown, missing or ill-typed column, or a value outside its allowed list.
        """
        spec = record_table(table)
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError(f"actor must be a non-empty string, not {actor!r}")
        values = _validated_row(spec, row)
        object_id = _object_id(spec, values)
        target = AREA_TABLES[table]
        canonical_json(scope)

        def write(conn: Connection) -> AppendedRecord:
            key_match = [target.c[k] == values[k] for k in spec.key]
            latest = conn.execute(sa.select(sa.func.max(target.c.version)).where(*key_match)).scalar()
            version = (latest or 0) + 1
            when = _utc_now()
            record_id = conn.execute(
                sa.insert(target).values(version=version, actor=actor, recorded_at=when, **values)
            ).inserted_primary_key[0]
            payload = {"table": table, "record_id": record_id, "version": version, "row": values}
            entry = self._write_audit(conn, actor, "append" if version == 1 else "correct", table, object_id,
                                      scope, payload, when)
            return AppendedRecord(table, record_id, version, when, entry)

        return _run_write(self.engine, write, AUDIT_LOCK_KEY)

    # -- reads --

    def history(self, table: str, *key: object) -> pd.DataFrame:
        """Every version of one object (its key values in declared order), oldest first."""
        spec = record_table(table)
        if len(key) != len(spec.key):
            raise ValueError(f"{table} is keyed by {list(spec.key)}; got {len(key)} value(s)")
        target = AREA_TABLES[table]
        query = (sa.select(target).where(*[target.c[k] == v for k, v in zip(spec.key, key)])
                 .order_by(target.c.record_id))
        with self.engine.connect() as conn:
            return _frame(conn.execute(query))

    def current(self, table: str, where: Mapping[str, object] | None = None) -> pd.DataFrame:
        """The latest version of each object, in the order those versions were written.

        Args:
            where: column -> value (equality) or list/tuple/set of values (any of them); applied to
                the latest versions, so an object whose correction moved it out of a filter is not
                shown by its older version.
        """
        spec = record_table(table)
        target = AREA_TABLES[table]
        latest = (sa.select(sa.func.max(target.c.record_id)).group_by(*[target.c[k] for k in spec.key])
                  .scalar_subquery())
        conditions = [target.c.record_id.in_(latest)]
        for name, value in (where or {}).items():
            if name not in target.c:
                raise ValueError(f"{table} has no column {name!r}")
            if isinstance(value, (list, tuple, set, frozenset)):
                conditions.append(target.c[name].in_(list(value)))
            else:
                conditions.append(target.c[name] == value)
        with self.engine.connect() as conn:
            return _frame(conn.execute(sa.select(target).where(*conditions).order_by(target.c.record_id)))

    def audit_log(self, last: int | None = None) -> pd.DataFrame:
        """Audit records in seq order: all, or the ``last`` N."""
        query = sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq.desc() if last else AUDIT_LOG.c.seq)
        if last:
            query = query.limit(last)
        with self.engine.connect() as conn:
            frame = _frame(conn.execute(query))
        return frame.sort_values("seq").reset_index(drop=True) if last else frame

    def verify_audit(self) -> AuditVerification:
        """Check the whole audit chain against itself and its head (in one consistent snapshot)."""
        with self.engine.connect() as conn:
            if self.backend == "postgresql":  # SQLite's read transaction is a snapshot already (WAL)
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            head = conn.execute(sa.select(AUDIT_HEAD)).mappings().first()
            head_row = None if head is None else dict(head)
            result = conn.execution_options(yield_per=AUDIT_READ_CHUNK).execute(
                sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq))
            return verify_chain(result.mappings(), head_row)


def record_table(name: str) -> RecordTable:
    """The declaration of an area table, or KeyError listing the tables there are."""
    for spec in RECORD_TABLES:
        if spec.name == name:
            return spec
    raise KeyError(f"no records table {name!r}; there are {[t.name for t in RECORD_TABLES]}")


__all__ = [
    "AppendedRecord", "AuditEntry", "AuditVerification", "RecordsError", "RecordsStore", "create_records_engine",
    "database_revision", "head_revision", "known_revisions", "record_table", "upgrade_to_head",
]
