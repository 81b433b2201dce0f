"""The derived-results registry: precomputed results declared once, refreshed only when stale.

Scoring a portfolio's KRIs, atypical-data tests, forecasts or data-quality checks takes far longer
than a monitor waits in a meeting, so these results are computed when data or code change and
stored in ``derived.*`` tables that pages read through the access scope like any other table.

A :class:`DerivedResult` declares its tables (in :mod:`analytics.core.schema`), the function that
computes it for a set of studies, and the modules and parameters that decide it; its
:attr:`~DerivedResult.version` is a hash of their source, so a code change makes it stale.
Every writer records a new data version for each study it changes (:func:`mark_changed`);
:func:`refresh`, run by build, import, migrate and ``python -m analytics refresh``, recomputes a
result only for the studies whose data version, as-of date or result version differ from what
``meta.derived_state`` says it was computed from. Pages never compute a result live: they show
what is stored and say which studies are stale (:func:`freshness`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import inspect
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import duckdb
import pandas as pd

from analytics.core import schema
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import ConnectedWarehouse, Warehouse

PORTFOLIO = "*"  # study_id of a portfolio-level result's state row
EVIDENCE = "evidence"  # run.scratch key: per-study evidence for a portfolio-level input, computed by an engine
Progress = Callable[[str], None]


def _silent(_: str) -> None:
    return None


@dataclass
class RefreshRun:
    """What a result's compute function gets: where to read, which studies, where to report."""

    con: duckdb.DuckDBPyConnection
    study_ids: tuple[str, ...]  # the studies to compute now
    all_study_ids: tuple[str, ...]  # every study in the warehouse
    as_of: dt.date
    progress: Progress = _silent
    inputs: dict[str, object] = field(default_factory=dict)  # recorded in the state (e.g. a prior)
    scratch: dict[str, object] = field(default_factory=dict)  # shared between plan and compute

    @property
    def warehouse(self) -> ConnectedWarehouse:
        return ConnectedWarehouse("(writer)", "", self.con)

    @property
    def scope(self) -> AccessScope:
        """Full access narrowed to the studies being computed."""
        return AccessScope(study_ids=frozenset(self.study_ids), blinded=False)

    @property
    def everything(self) -> bool:
        return set(self.study_ids) == set(self.all_study_ids)


@dataclass(frozen=True)
class DerivedResult:
    """One precomputed result.

    Attributes:
        name: the result's name in ``meta.derived_state``.
        description: what it is, for the refresh report.
        tables: the ``derived`` tables it writes (every row carries ``study_id``).
        compute: returns ``{table: rows}`` for ``run.study_ids``.
        code: modules whose source decides the result (their hash is part of the version).
        params: parameters that decide the result (part of the version).
        plan: optional; given the stale studies, the studies to compute (a result with a
            portfolio-level input widens the set when that input moved) and why. It may fix
            portfolio-level inputs in ``run.inputs``, which ``compute`` then reads.
        evidence: optional; for a result with a portfolio-level input, the per-study evidence it
            is pooled from (rows of ``evidence_table``, each study from its own data only). An engine
            that computes studies apart computes it per study and hands it to ``plan`` in
            ``run.scratch[EVIDENCE]``; ``plan`` then fixes the input and ``compute`` runs per study.
        evidence_columns: the evidence's (name, type) columns when it has no ``evidence_table``.
        evidence_stages: how many times the engine computes the evidence and calls ``plan`` (an
            input that depends on another one fixed first).
        evidence_of_all: the evidence is needed from every study (not only those computed now).
        portfolio_tables: tables ``compute`` reads over every study for a portfolio-level input (the
            enrollment lock lag reads every study's milestones); an engine that computes studies
            apart gives each computation these tables whole.
        reference: set for a *portfolio-level* result computed from reference data (historical
            trials) rather than per study: a function giving a fingerprint of the data it reads.
            Such a result is one unit (its state row has study_id :data:`PORTFOLIO`), stale when
            its code, that fingerprint or the as-of date changed; its tables carry no ``study_id``
            (they are reference data, read with ``Warehouse.reference``) and are rewritten whole.
    """

    name: str
    description: str
    tables: tuple[str, ...]
    compute: Callable[[RefreshRun], dict[str, pd.DataFrame]]
    code: tuple[str, ...]
    params: tuple[tuple[str, object], ...] = ()
    plan: Callable[[RefreshRun], tuple[set[str], str]] | None = None
    reference: Callable[[duckdb.DuckDBPyConnection], str] | None = None
    evidence: Callable[[RefreshRun], pd.DataFrame] | None = None
    evidence_table: str = ""
    evidence_columns: tuple[tuple[str, str], ...] = ()
    evidence_stages: int = 1
    evidence_of_all: bool = False
    portfolio_tables: tuple[str, ...] = ()

    @cached_property
    def version(self) -> str:
        digest = hashlib.sha256()
        for module in sorted(self.code):
            digest.update(inspect.getsource(importlib.import_module(module)).encode())
        digest.update(repr(sorted(self.params)).encode())
        for name in self.tables:
            digest.update(schema.table(name).ddl().encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RefreshOutcome:
    """What one refresh did for one result."""

    result: str
    studies: tuple[str, ...]
    reason: str
    rows: int
    seconds: float

    def describe(self) -> str:
        if not self.studies:
            return f"{self.result}: up to date"
        which = ", ".join(self.studies) if len(self.studies) <= 6 else f"{len(self.studies)} studies"
        return f"{self.result}: refreshed {which} ({self.reason}; {self.rows:,} rows, {self.seconds:.1f} s)"


Rows = pd.DataFrame | Path  # a frame, or a folder of Parquet files (hive-partitioned by study_id)


class RefreshEngine:
    """Where a refresh computes: this process (the default) or elsewhere (Spark, see
    :mod:`analytics.distributed.refresh`). The registry's bookkeeping stays in :func:`refresh`."""

    name = "local"

    def prepare(self, result: DerivedResult, run: RefreshRun) -> None:
        """Before ``result.plan``: anything the plan needs computed first (nothing here)."""

    def compute(self, result: DerivedResult, run: RefreshRun) -> dict[str, Rows]:
        """``result``'s rows for ``run.study_ids``, per table."""
        return result.compute(run)


LOCAL = RefreshEngine()


def mark_changed(con: duckdb.DuckDBPyConnection, study_ids: list[str] | tuple[str, ...] | set[str]) -> None:
    """Record that a writer changed these studies' data (their derived results become stale)."""
    ids = sorted(set(study_ids))
    if not ids:
        return
    version = uuid.uuid4().hex[:16]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute("DELETE FROM meta.study_versions WHERE list_contains($ids, study_id)", {"ids": ids})
    con.execute("INSERT INTO meta.study_versions SELECT unnest($ids), $v, $t", {"ids": ids, "v": version, "t": now})


def _studies(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    return tuple(r[0] for r in con.execute("SELECT study_id FROM main.studies ORDER BY 1").fetchall())


def _as_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    row = con.execute("SELECT value FROM meta.warehouse_info WHERE key = 'as_of_date'").fetchone()
    return dt.date.fromisoformat(row[0]) if row and row[0] else dt.date.today()


def stale_studies(con: duckdb.DuckDBPyConnection, result: DerivedResult) -> dict[str, str]:
    """Studies whose stored ``result`` is missing or was computed from other data or code: reason each.

    A portfolio-level result (:attr:`DerivedResult.reference`) answers for :data:`PORTFOLIO` alone.
    """
    if result.reference is not None:
        state = _portfolio_state(lambda sql, p: con.execute(sql.format(state="meta.derived_state"), p).df(), result)
        reason = _portfolio_reason(state, result, result.reference(con), _as_of(con))
        return {} if reason is None else {PORTFOLIO: reason}
    rows = con.execute(
        """
        SELECT st.study_id, v.data_version, d.code_version, d.data_version AS used_data, d.as_of_date
        FROM main.studies st
        LEFT JOIN meta.study_versions v USING (study_id)
        LEFT JOIN meta.derived_state d ON d.study_id = st.study_id AND d.result = $result
        """,
        {"result": result.name},
    ).fetchall()
    as_of = _as_of(con)
    reasons: dict[str, str] = {}
    for study_id, data_version, code_version, used_data, used_as_of in rows:
        if code_version is None:
            reasons[study_id] = "not computed yet"
        elif code_version != result.version:
            reasons[study_id] = "code changed"
        elif data_version is None or used_data != data_version:
            reasons[study_id] = "data changed"
        elif used_as_of != as_of:
            reasons[study_id] = "as-of date changed"
    return reasons


def _summarize(reasons: dict[str, str]) -> str:
    counts = pd.Series(list(reasons.values())).value_counts()
    return ", ".join(f"{reason}: {n}" for reason, n in counts.items())


def refresh(
    con: duckdb.DuckDBPyConnection,
    results: tuple[DerivedResult, ...],
    progress: Progress = _silent,
    force: bool = False,
    engine: RefreshEngine = LOCAL,
) -> list[RefreshOutcome]:
    """Recompute every stale result through a writer's open connection; what was done per result.

    Rows of studies that no longer exist are removed. ``force`` recomputes every study. ``engine``
    computes the rows (:data:`LOCAL`: in this process); staleness, plans, the writes and
    ``meta.derived_state`` are the same whichever engine computes.
    """
    all_ids = _studies(con)
    for study_id in set(all_ids) - {r[0] for r in con.execute("SELECT study_id FROM meta.study_versions").fetchall()}:
        mark_changed(con, [study_id])
    outcomes = []
    for result in results:
        _match_declared_tables(con, result)
        if result.reference is not None:
            outcomes.append(_refresh_portfolio(con, result, all_ids, progress, force))
            continue
        con.execute("DELETE FROM meta.derived_state WHERE result = $r AND NOT list_contains($ids, study_id)",
                    {"r": result.name, "ids": list(all_ids)})
        for table in result.tables:
            con.execute(f"DELETE FROM {schema.table(table).qualified_name} "
                        "WHERE NOT list_contains($ids, study_id)", {"ids": list(all_ids)})
        reasons = {s: "forced" for s in all_ids} if force else stale_studies(con, result)
        if not reasons:
            outcomes.append(RefreshOutcome(result.name, (), "up to date", 0, 0.0))
            continue
        started = time.perf_counter()
        run = RefreshRun(con, tuple(sorted(reasons)), all_ids, _as_of(con),
                         lambda message, name=result.name: progress(f"{name}: {message}"))
        reason = _summarize(reasons)
        engine.prepare(result, run)
        if result.plan is not None:
            widened, why = result.plan(run)
            if set(widened) != set(run.study_ids):
                run.study_ids = tuple(sorted(widened))
                reason += f"; {why}"
        frames = engine.compute(result, run) if run.study_ids else {}
        rows = 0
        for table in result.tables:
            qualified = schema.table(table).qualified_name
            con.execute(f"DELETE FROM {qualified} WHERE list_contains($ids, study_id)", {"ids": list(run.study_ids)})
            rows += _insert(con, table, frames.get(table))
        seconds = time.perf_counter() - started
        _record_state(con, result, run, rows, seconds)
        outcomes.append(RefreshOutcome(result.name, run.study_ids, reason, rows, seconds))
    return outcomes


def _match_declared_tables(con: duckdb.DuckDBPyConnection, result: DerivedResult) -> None:
    """Recreate a result's tables whose columns differ from their declaration (derived rows are recomputable).

    The result's version includes its tables' DDL, so every study is recomputed after such a change.
    """
    for name in result.tables:
        table = schema.table(name)
        found = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $s AND table_name = $t "
            "ORDER BY ordinal_position", {"s": table.schema, "t": table.name}).fetchall()]
        if found != [c.name for c in table.columns]:
            con.execute(f"DROP TABLE IF EXISTS {table.qualified_name}")
            con.execute(table.ddl())
            con.execute("DELETE FROM meta.derived_state WHERE result = $r", {"r": result.name})


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Rows | None) -> int:
    """Append ``rows`` (a frame or a Parquet folder) to the derived ``table``; the number of rows."""
    if rows is None:
        return 0
    spec = schema.table(table)
    columns = ", ".join(c.name for c in spec.columns)
    if isinstance(rows, Path):
        files = sorted(str(p) for p in rows.rglob("*.parquet"))
        if not files:
            return 0
        return int(con.execute(
            f"INSERT INTO {spec.qualified_name} BY NAME SELECT {columns} FROM read_parquet($files, "
            "hive_partitioning = true, hive_types = {'study_id': VARCHAR})", {"files": files}).fetchone()[0])
    if not len(rows):
        return 0
    con.register("_derived_rows", rows[[c.name for c in spec.columns]])
    try:
        return int(con.execute(f"INSERT INTO {spec.qualified_name} BY NAME SELECT {columns} FROM _derived_rows")
                   .fetchone()[0])
    finally:
        con.unregister("_derived_rows")


def _portfolio_state(fetch: Callable[[str, dict], pd.DataFrame], result: DerivedResult) -> dict | None:
    rows = fetch("SELECT code_version, data_version, as_of_date FROM {state} WHERE result = $r AND study_id = $p",
                 {"r": result.name, "p": PORTFOLIO})
    return None if rows.empty else rows.iloc[0].to_dict()


def _portfolio_reason(state: dict | None, result: DerivedResult, fingerprint: str, as_of: dt.date) -> str | None:
    """Why a portfolio-level result is stale (None when current)."""
    if state is None or pd.isna(state.get("code_version")):
        return "not computed yet"
    if state["code_version"] != result.version:
        return "code changed"
    if state["data_version"] != fingerprint:
        return "reference data changed"
    if pd.Timestamp(state["as_of_date"]).date() != as_of:
        return "as-of date changed"
    return None


def _refresh_portfolio(con: duckdb.DuckDBPyConnection, result: DerivedResult, all_ids: tuple[str, ...],
                       progress: Progress, force: bool) -> RefreshOutcome:
    """Recompute a portfolio-level result (see :attr:`DerivedResult.reference`) when it is stale."""
    fingerprint = result.reference(con)
    as_of = _as_of(con)
    state = _portfolio_state(lambda sql, p: con.execute(sql.format(state="meta.derived_state"), p).df(), result)
    reason = "forced" if force else _portfolio_reason(state, result, fingerprint, as_of)
    if reason is None:
        return RefreshOutcome(result.name, (), "up to date", 0, 0.0)
    started = time.perf_counter()
    run = RefreshRun(con, all_ids, all_ids, as_of, lambda message, name=result.name: progress(f"{name}: {message}"))
    frames = result.compute(run)
    rows = 0
    for table in result.tables:
        qualified = schema.table(table).qualified_name
        con.execute(f"DELETE FROM {qualified}")
        rows += _insert(con, table, frames.get(table))
    seconds = time.perf_counter() - started
    con.execute("DELETE FROM meta.derived_state WHERE result = $r AND study_id = $p", {"r": result.name, "p": PORTFOLIO})
    con.execute("INSERT INTO meta.derived_state VALUES ($r, $p, $code, $data, $as_of, $inputs, $now, $rows, $seconds)",
                {"r": result.name, "p": PORTFOLIO, "code": result.version, "data": fingerprint, "as_of": as_of,
                 "inputs": json.dumps(run.inputs, sort_keys=True, default=str),
                 "now": dt.datetime.now(dt.UTC).replace(tzinfo=None), "rows": rows, "seconds": seconds})
    return RefreshOutcome(result.name, (PORTFOLIO,), reason, rows, seconds)


def _record_state(con: duckdb.DuckDBPyConnection, result: DerivedResult, run: RefreshRun, rows: int,
                  seconds: float) -> None:
    ids = list(run.study_ids)
    con.execute("DELETE FROM meta.derived_state WHERE result = $r AND list_contains($ids, study_id)",
                {"r": result.name, "ids": ids})
    con.execute(
        """
        INSERT INTO meta.derived_state
        SELECT $r, v.study_id, $code, v.data_version, $as_of, $inputs, $now, $rows, $seconds
        FROM meta.study_versions v WHERE list_contains($ids, v.study_id)
        """,
        {"r": result.name, "code": result.version, "as_of": run.as_of, "ids": ids,
         "inputs": json.dumps(run.inputs, sort_keys=True, default=str),
         "now": dt.datetime.now(dt.UTC).replace(tzinfo=None), "rows": rows, "seconds": seconds},
    )


def stored_inputs(con: duckdb.DuckDBPyConnection, result: str, exclude: tuple[str, ...]) -> list[dict]:
    """The ``inputs`` recorded for ``result`` by studies other than ``exclude`` (distinct values)."""
    rows = con.execute(
        "SELECT DISTINCT inputs FROM meta.derived_state WHERE result = $r AND NOT list_contains($ids, study_id)",
        {"r": result, "ids": list(exclude)},
    ).fetchall()
    return [json.loads(r[0]) for r in rows if r[0]]


@dataclass(frozen=True)
class Freshness:
    """Which of the studies a page shows have current results."""

    result: str
    stale: dict[str, str]  # study_id -> reason (missing, code changed, data changed)

    @property
    def ok(self) -> bool:
        return not self.stale

    def message(self, db_path: str) -> str:
        if set(self.stale) == {PORTFOLIO}:
            return (f"Stored {self.result} results are not current ({self.stale[PORTFOLIO]}). They are refreshed by "
                    f"`python -m analytics refresh --db {db_path}`; what is shown is what was stored.")
        studies = ", ".join(sorted(self.stale)[:8]) + (" ..." if len(self.stale) > 8 else "")
        return (f"Stored {self.result} results are not current for {len(self.stale)} "
                f"stud{'y' if len(self.stale) == 1 else 'ies'} ({studies}: {_summarize(self.stale)}). "
                f"They are refreshed by `python -m analytics refresh --db {db_path}`; "
                "what is shown is what was stored.")


def portfolio_freshness(wh: Warehouse, result: DerivedResult, fingerprint: str) -> Freshness:
    """Whether a portfolio-level ``result`` was computed from the reference data whose fingerprint is given."""
    state = _portfolio_state(lambda sql, p: wh.reference(sql.format(state="derived_state"), p), result)
    reason = _portfolio_reason(state, result, fingerprint, wh.as_of())
    return Freshness(result.name, {} if reason is None else {PORTFOLIO: reason})


def freshness(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, result: DerivedResult) -> Freshness:
    """Whether the studies the scope and filters select have current stored ``result`` (read only)."""
    visible = wh.query(scope, "SELECT study_id FROM scoped_studies", None, filters)["study_id"].tolist()
    if not visible:
        return Freshness(result.name, {})
    state = wh.reference(
        """
        SELECT v.study_id, v.data_version, d.code_version, d.data_version AS used_data, d.as_of_date
        FROM study_versions v LEFT JOIN derived_state d ON d.study_id = v.study_id AND d.result = $result
        WHERE list_contains($ids, v.study_id)
        """,
        {"result": result.name, "ids": visible},
    ).set_index("study_id")
    as_of = wh.as_of()
    stale: dict[str, str] = {}
    for study_id in visible:
        if study_id not in state.index or pd.isna(state.at[study_id, "code_version"]):
            stale[study_id] = "not computed yet"
        elif state.at[study_id, "code_version"] != result.version:
            stale[study_id] = "code changed"
        elif state.at[study_id, "used_data"] != state.at[study_id, "data_version"]:
            stale[study_id] = "data changed"
        elif pd.Timestamp(state.at[study_id, "as_of_date"]).date() != as_of:
            stale[study_id] = "as-of date changed"
    return Freshness(result.name, stale)
