"""Committing a validated load: copy the warehouse aside, load in one transaction, swap atomically.

A :class:`PreparedLoad` holds everything a load will write, already validated. :func:`commit`
refuses a load whose report has errors, takes an exclusive import lock (two loads never race),
and writes through :func:`analytics.core.warehouse.modify_aside`: the app keeps reading the old file
until the rename, and any failure (including a constraint the database itself rejects) discards
the copy so the warehouse stays byte-for-byte as it was.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from analytics.core import schema
from analytics.importers import IMPORTER_VERSION
from analytics.importers.report import ImportRefused, ImportReport
from analytics.importers.sources import SourceFile
from analytics.importers.validation import to_arrow
from analytics.kri import stored
from analytics.core.warehouse import modify_aside

Progress = Callable[[str], None]

APPEND = "append"  # plain insert (the study's old rows were deleted first)
UPSERT = "upsert"  # insert or replace by primary key; columns absent from the source keep their values
KEEP_EXISTING = "keep-existing"  # insert only keys the warehouse does not have yet (reference data)

STUDY_TABLES: tuple[schema.Table, ...] = tuple(
    t for t in schema.TABLES if any(c.name == "study_id" for c in t.columns) and t.schema != "meta"
)


def _silent(_: str) -> None:
    return None


@dataclass
class PreparedLoad:
    """A validated load, ready to commit: rows per table, how to write them, and their sources."""

    source_type: str  # sdtm | ctgov | tables
    report: ImportReport
    files: list[SourceFile] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # table name -> rows, in load order
    policies: dict[str, str] = field(default_factory=dict)  # table name -> APPEND / UPSERT / KEEP_EXISTING
    replace_study_ids: tuple[str, ...] = ()  # studies whose previous rows are removed first
    provenance: list[dict[str, object]] = field(default_factory=list)  # one per (study, file)
    description: str = ""

    def row_counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.tables.items()}


@dataclass(frozen=True)
class CommitResult:
    """What a committed load wrote."""

    rows: dict[str, int]
    seconds: float
    imported_at: dt.datetime


@contextmanager
def import_lock(db_path: Path) -> Iterator[None]:
    """Exclusive lock held for the whole copy-load-swap, so concurrent loads queue up."""
    lock_path = Path(db_path).with_name(Path(db_path).name + ".import-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, policy: str) -> None:
    table = schema.table(name)
    batch = to_arrow(frame, table)
    if batch.num_rows == 0:
        return
    verb = {APPEND: "INSERT", UPSERT: "INSERT OR REPLACE", KEEP_EXISTING: "INSERT OR IGNORE"}[policy]
    con.register("_import_batch", batch)
    try:
        # The table name comes from the schema, never from user input.
        con.execute(f"{verb} INTO {table.qualified_name} BY NAME SELECT * FROM _import_batch")
    finally:
        con.unregister("_import_batch")


def _remove_studies(con: duckdb.DuckDBPyConnection, study_ids: tuple[str, ...]) -> None:
    """Delete every row of the given studies, then the sites only they used."""
    if not study_ids:
        return
    old_sites = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT site_id FROM main.study_sites WHERE list_contains($ids, study_id)", {"ids": list(study_ids)}
        ).fetchall()
    ]
    for table in STUDY_TABLES:
        con.execute(f"DELETE FROM {table.qualified_name} WHERE list_contains($ids, study_id)", {"ids": list(study_ids)})
    if old_sites:
        con.execute(
            "DELETE FROM main.sites WHERE list_contains($sites, site_id) "
            "AND site_id NOT IN (SELECT site_id FROM main.study_sites)",
            {"sites": old_sites},
        )


def commit(load: PreparedLoad, db_path: Path, progress: Progress = _silent) -> CommitResult:
    """Write ``load`` into the warehouse at ``db_path`` atomically; raise :class:`ImportRefused` if unsafe."""
    if load.report.refused:
        raise ImportRefused(load.report)
    started = time.perf_counter()
    imported_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    with import_lock(db_path):
        try:
            with modify_aside(Path(db_path)) as con:
                if load.replace_study_ids:
                    progress(f"removing the previous version of {', '.join(load.replace_study_ids)}")
                    _remove_studies(con, load.replace_study_ids)
                for name, frame in load.tables.items():
                    progress(f"loading {name} ({len(frame):,} rows)")
                    _write(con, name, frame, load.policies.get(name, APPEND))
                provenance = pd.DataFrame(load.provenance)
                if len(provenance):
                    provenance["imported_at"] = imported_at
                    provenance["importer_version"] = IMPORTER_VERSION
                    _write(con, "data_provenance", provenance, UPSERT)
                # Monitoring results are part of the data: recomputed before the new file goes live.
                stored.refresh(con, lambda message: progress(f"monitoring results: {message}"))
                progress("checking and swapping in the new warehouse file")
        except duckdb.Error as exc:
            load.report.error("(warehouse)", "the warehouse rejected the load; nothing was changed", found=str(exc))
            raise ImportRefused(load.report) from exc
    return CommitResult(load.row_counts(), time.perf_counter() - started, imported_at)
