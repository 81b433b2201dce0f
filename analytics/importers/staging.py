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
from analytics.importers.shrink import MAX_SHRINK_SHARE, Shrink, as_counts, count_sql, find_shrinks, staged_counts, \
    study_tables
from analytics.importers.sources import SourceFile
from analytics.importers.validation import to_arrow
from analytics.core import derived
from analytics.core.warehouse import WarehouseError, modify_aside
from analytics.registry import REGISTRY

Progress = Callable[[str], None]

APPEND = "append"  # plain insert (the study's old rows were deleted first)
UPSERT = "upsert"  # insert or replace by primary key; columns absent from the source keep their values
KEEP_EXISTING = "keep-existing"  # insert only keys the warehouse does not have yet (reference data)

STUDY_TABLES: tuple[schema.Table, ...] = study_tables()


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
    # table -> (column, values): rows with these values are removed before the table is written
    # (a trial's site list is replaced as a whole, so a shorter list leaves no stale sites).
    replace_keys: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    provenance: list[dict[str, object]] = field(default_factory=list)  # one per (study, file)
    description: str = ""
    shrinks: list[Shrink] = field(default_factory=list)  # found when prepared; checked again on commit
    allow_shrink: bool = False  # the user confirmed removing more than MAX_SHRINK_SHARE of a study's rows

    def row_counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.tables.items()}

    def touched_studies(self) -> set[str]:
        """Studies whose rows this load writes or removes (provenance rows of benchmark files aside)."""
        touched = set(self.replace_study_ids)
        for name, frame in self.tables.items():
            if name != "data_provenance" and "study_id" in frame.columns:
                touched.update(frame["study_id"].dropna().astype(str).unique())
        return touched

    @property
    def needs_confirmation(self) -> bool:
        """True when committing would cut a study's rows beyond the shrink guard and nobody confirmed it."""
        return bool(self.shrinks) and not self.allow_shrink

    def confirm_shrink(self) -> None:
        """The user saw :attr:`shrinks` and wants the load anyway (the app's second click, ``--allow-shrink``)."""
        self.allow_shrink = True

    def note_shrinks(self, shrinks: list[Shrink]) -> None:
        """Record what the load would remove, as warnings a user sees before confirming."""
        self.shrinks = shrinks
        for shrink in shrinks:
            self.report.warning("(load)", f"re-import would remove more than {MAX_SHRINK_SHARE:.0%} of study "
                                f"{shrink.study_id}'s rows; it needs your confirmation (--allow-shrink)",
                                column=shrink.table + (f" {shrink.domain}" if shrink.domain else ""),
                                found=shrink.text())


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


def _replace_keys(con: duckdb.DuckDBPyConnection, name: str, column: str, values: list[str]) -> None:
    table = schema.table(name)
    if values:
        # Table and column names come from the schema and the importer, never from user input.
        con.execute(f"DELETE FROM {table.qualified_name} WHERE list_contains($values, {column})", {"values": values})


def _check_shrink(con: duckdb.DuckDBPyConnection, load: PreparedLoad) -> None:
    """Refuse (before anything is removed) a load that cuts a study beyond the guard without confirmation."""
    if not load.replace_study_ids or load.allow_shrink:
        return
    shrinks = []
    for study in load.replace_study_ids:
        before = as_counts(con.execute(count_sql(scoped=False), {"ids": [study]}).df())
        shrinks += find_shrinks(study, before, staged_counts(load.tables, study))
    if shrinks:
        # A separate report: the prepared load stays valid, so a confirmation can commit it later.
        refusal = ImportReport(load.source_type)
        for shrink in shrinks:
            refusal.error("(load)", f"the load would remove more than {MAX_SHRINK_SHARE:.0%} of the study's rows and "
                          "was not confirmed; nothing was changed (confirm with --allow-shrink)",
                          column=shrink.table + (f" {shrink.domain}" if shrink.domain else ""), found=shrink.text())
        raise ImportRefused(refusal)


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
            _check_shrink(con, load)
            if load.replace_study_ids:
                progress(f"removing the previous version of {', '.join(load.replace_study_ids)}")
                _remove_studies(con, load.replace_study_ids)
            for name, (column, values) in load.replace_keys.items():
                _replace_keys(con, name, column, values)
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
