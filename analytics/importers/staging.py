"""Committing a validated load: copy the warehouse aside, load in one transaction, swap atomically.

A :class:`PreparedLoad` holds everything a load will write, already validated. :func:`commit`
refuses a load whose report has errors and writes through :func:`analytics.core.warehouse.modify_aside`,
which holds the warehouse's one-writer lock (a build, refresh or second load waits its turn or is
told who is writing): the app keeps reading the old file until the rename, and any failure
(including a constraint the database itself rejects) discards the copy so the warehouse stays
byte-for-byte as it was. Only the derived results of the studies the load touched are refreshed
(a ClinicalTrials.gov load touches none).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from analytics.core import schema
from analytics.importers import IMPORTER_VERSION
from analytics.importers.report import ImportRefused, ImportReport
from analytics.importers.sources import SourceFile
from analytics.importers.validation import to_arrow
from analytics.core import derived
from analytics.core.warehouse import WarehouseError, modify_aside
from analytics.registry import REGISTRY

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

    def touched_studies(self) -> set[str]:
        """Studies whose rows this load writes or removes (provenance rows of benchmark files aside)."""
        touched = set(self.replace_study_ids)
        for name, frame in self.tables.items():
            if name != "data_provenance" and "study_id" in frame.columns:
                touched.update(frame["study_id"].dropna().astype(str).unique())
        return touched


@dataclass(frozen=True)
class CommitResult:
    """What a committed load wrote."""

    rows: dict[str, int]
    seconds: float
    imported_at: dt.datetime
    refreshed: tuple[derived.RefreshOutcome, ...] = ()


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
    refreshed: list[derived.RefreshOutcome] = []
    try:
        with modify_aside(Path(db_path), purpose=f"import {load.source_type}: {load.description}") as con:
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
            derived.mark_changed(con, load.touched_studies())
            # Derived results are part of the data: refreshed before the new file goes live.
            refreshed = derived.refresh(con, REGISTRY, lambda message: progress(f"derived results: {message}"))
            progress("checking and swapping in the new warehouse file")
    except duckdb.Error as exc:
        load.report.error("(warehouse)", "the warehouse rejected the load; nothing was changed", found=str(exc))
        raise ImportRefused(load.report) from exc
    except WarehouseError as exc:
        load.report.error("(warehouse)", str(exc))
        raise ImportRefused(load.report) from exc
    return CommitResult(load.row_counts(), time.perf_counter() - started, imported_at, tuple(refreshed))
