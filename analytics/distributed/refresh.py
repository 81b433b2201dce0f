"""The derived-results refresh on Spark: every stale study a task, the same Python compute code.

``python -m analytics refresh --engine spark --source DIR`` runs :func:`analytics.core.derived.refresh`
with a :class:`SparkEngine`: the registry decides what is stale and records what was computed, as
with the local engine; only the computing moves. For each result, Spark reads the export's
``studies`` table, groups the studies to compute by ``study_id`` and runs one grouped-map task per
study (``applyInArrow``). The task opens its study's partition of the Parquet export in DuckDB
(:func:`analytics.core.parquet.attach_export`, the same relation names a warehouse file has) and
calls the result's own ``compute`` for that one study; it returns every table of the result as one
Arrow table (a column per table and column, the table's name in ``_table``, the result's recorded
inputs in a marker row). Spark writes each table as Parquet partitioned by study; the writer loads
them into its copy of the serving warehouse, which :func:`analytics.core.warehouse.modify_aside`
swaps in atomically.

A result with a portfolio-level input (the KRI prior) declares the per-study evidence it pools
(:attr:`~analytics.core.derived.DerivedResult.evidence`): Spark computes that per study first, the
result's plan fixes the input on the driver (and widens the studies when it moved), and the scores
are then computed per study with it. Results are the local engine's to the last digit because every
study's computation depends only on its own data and the fixed input (tested).

Arrow, not pandas, crosses the task boundary: a union of several tables in one pandas frame would
turn integer and boolean columns with gaps into floats and objects.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.core import derived, parquet, schema
from analytics.core.derived import DerivedResult, RefreshEngine, RefreshRun, Rows
from analytics.core.warehouse import WarehouseError
from analytics.distributed import spark as sparkutil

TABLE = "_table"
INPUTS = "_inputs"
SEPARATOR = "__"


Fresh = dict[str, tuple[str, tuple[str, ...]]]  # derived table -> (folder Spark wrote it to, studies computed)


def _study_run(source: str, study_id: str, all_ids: tuple[str, ...], as_of, inputs: dict,
               fresh: Fresh, portfolio_tables: tuple[str, ...] = ()) -> RefreshRun:
    """A refresh run of one study over its partition of the export (inside a Spark task).

    A derived table an earlier result of the same refresh recomputed for this study (``fresh``) is
    read from what Spark wrote, not from the export, as the local engine reads its own writes (the
    data-quality signals read the atypical-data tests). ``portfolio_tables`` are read whole (see
    :attr:`~analytics.core.derived.DerivedResult.portfolio_tables`).
    """
    export = parquet.open_export(source)
    con = duckdb.connect(":memory:")
    parquet.attach_export(con, source, blinded=export.restricted() is None, study_ids=(study_id,))
    for name in portfolio_tables:
        table = schema.table(name)
        con.execute(f"CREATE OR REPLACE VIEW wh.{table.qualified_name} AS {parquet.table_select(export, table)}")
    for name, (folder, computed) in fresh.items():
        if study_id in computed:
            table = schema.table(name)
            con.execute(f"CREATE OR REPLACE VIEW wh.{table.qualified_name} AS "
                        f"{parquet.folder_select(Path(folder), table, (study_id,))}")
    return RefreshRun(con, (study_id,), all_ids, as_of, inputs=dict(inputs))


def _to_arrow(frame: pd.DataFrame, table: schema.Table, prefix: str = "") -> pa.Table:
    columns = [c.name for c in table.columns]
    renamed = frame[columns].rename(columns={c: prefix + c for c in columns}).reset_index(drop=True)
    return pa.Table.from_pandas(renamed, schema=sparkutil.arrow_schema(table, prefix), preserve_index=False)


def _union_schema(result: DerivedResult) -> pa.Schema:
    fields = [pa.field(TABLE, pa.string()), pa.field(INPUTS, pa.string())]
    for name in result.tables:
        fields += list(sparkutil.arrow_schema(schema.table(name), name + SEPARATOR))
    return pa.schema(fields)


def _widened(part: pa.Table, union: pa.Schema) -> pa.Table:
    """``part`` with every column of ``union`` (nulls where it has none)."""
    return pa.Table.from_arrays(
        [part.column(f.name) if f.name in part.column_names else pa.nulls(len(part), f.type) for f in union],
        schema=union)


def _union_ddl(result: DerivedResult) -> str:
    fields = [(TABLE, "VARCHAR"), (INPUTS, "VARCHAR")]
    for name in result.tables:
        fields += [(name + SEPARATOR + c.name, c.type) for c in schema.table(name).columns]
    return sparkutil.spark_ddl(fields)


def _evidence_columns(result: DerivedResult) -> list[tuple[str, str]]:
    if result.evidence_table:
        return [(c.name, c.type) for c in schema.table(result.evidence_table).columns]
    return list(result.evidence_columns)


def _evidence_arrow(result: DerivedResult, frame: pd.DataFrame) -> pa.Table:
    columns = _evidence_columns(result)
    arrow = pa.schema([pa.field(name, sparkutil.ARROW_TYPES[type_]) for name, type_ in columns])
    return pa.Table.from_pandas(frame[[name for name, _ in columns]].reset_index(drop=True), schema=arrow,
                                preserve_index=False)


def _task_run(result_name: str, key: tuple, source: str, all_ids: tuple[str, ...], as_of, inputs: dict,
              fresh: Fresh) -> tuple[DerivedResult, RefreshRun]:
    """In a Spark task: the registered result and a run over the group's study (``key``) of the export."""
    from analytics.registry import result as registered

    result = registered(result_name)
    study_id = key[0].as_py() if hasattr(key[0], "as_py") else key[0]
    return result, _study_run(source, study_id, all_ids, as_of, inputs, fresh, result.portfolio_tables)


def evidence_task(result_name: str, source: str, all_ids: tuple[str, ...], as_of, fresh: Fresh, inputs: dict):
    """The grouped-map function computing one study's evidence for a portfolio-level input."""
    def task(key: tuple, rows: pa.Table) -> pa.Table:
        result, run = _task_run(result_name, key, source, all_ids, as_of, inputs, fresh)
        try:
            return _evidence_arrow(result, result.evidence(run))
        finally:
            run.con.close()
    return task


def compute_task(result_name: str, source: str, all_ids: tuple[str, ...], as_of, inputs: dict, fresh: Fresh):
    """The grouped-map function computing every table of a result for one study."""
    def task(key: tuple, rows: pa.Table) -> pa.Table:
        result, run = _task_run(result_name, key, source, all_ids, as_of, inputs, fresh)
        try:
            frames = result.compute(run)
        finally:
            run.con.close()
        union = _union_schema(result)
        parts = [pa.table({TABLE: [""], INPUTS: [json.dumps(run.inputs, sort_keys=True, default=str)]})]
        for name in result.tables:
            frame = frames.get(name)
            if frame is not None and len(frame):
                part = _to_arrow(frame, schema.table(name), name + SEPARATOR)
                parts.append(part.append_column(TABLE, pa.array([name] * len(part), pa.string())))
        return pa.concat_tables([_widened(part, union) for part in parts])
    return task


class SparkEngine(RefreshEngine):
    """Computes derived results on Spark from a Parquet export (``source``) of the serving warehouse.

    ``results_dir``: where Spark writes the results (one folder per refresh run under it, removed
    once loaded unless ``keep_results``).
    """

    name = "spark"

    def __init__(self, spark, source: Path | str, results_dir: Path | str, keep_results: bool = False) -> None:
        self.spark = spark
        self.export = parquet.open_export(source)
        self.results_dir = Path(results_dir)
        self.keep_results = keep_results
        self.written: list[Path] = []
        self.fresh: Fresh = {}

    # -- checks ---------------------------------------------------------------------------------

    def check_source(self, run: RefreshRun) -> None:
        """Refuse an export taken from other data than the warehouse being refreshed."""
        con = duckdb.connect(":memory:")
        try:
            parquet.attach_export(con, self.export.root, blinded=True)
            exported = dict(con.execute("SELECT study_id, data_version FROM meta.study_versions").fetchall())
            as_of = con.execute("SELECT value FROM meta.warehouse_info WHERE key = 'as_of_date'").fetchone()
        finally:
            con.close()
        serving = dict(run.con.execute("SELECT study_id, data_version FROM meta.study_versions").fetchall())
        differing = [s for s in run.study_ids if exported.get(s) != serving.get(s)]
        if differing:
            raise WarehouseError(
                f"the export at {self.export.root} was taken from other data than the warehouse for "
                f"{len(differing)} stud{'y' if len(differing) == 1 else 'ies'} ({', '.join(differing[:5])}); "
                "export the warehouse again (`python -m analytics export --format parquet ...`) and rerun")
        if as_of is None or as_of[0] != run.as_of.isoformat():
            raise WarehouseError(f"the export at {self.export.root} has as-of date {as_of[0] if as_of else None}, "
                                 f"the warehouse {run.as_of}; export it again")

    # -- the engine -----------------------------------------------------------------------------

    def _studies(self, study_ids: tuple[str, ...]):
        """The export's studies to compute, as Spark reads them, one shuffle partition per study."""
        from pyspark.sql import functions as F

        self.spark.conf.set("spark.sql.shuffle.partitions", str(max(len(study_ids), 1)))
        studies = self.spark.read.parquet(str(self.export.table_dir(schema.table("studies"))))
        return studies.select("study_id").where(F.col("study_id").isin(list(study_ids))).groupBy("study_id")

    def prepare(self, result: DerivedResult, run: RefreshRun) -> None:
        self.check_source(run)
        if result.evidence is None:
            return
        studies = run.all_study_ids if result.evidence_of_all else run.study_ids
        ddl = sparkutil.spark_ddl(_evidence_columns(result))
        for stage in range(result.evidence_stages):
            run.progress(f"per-study evidence on Spark ({len(studies)} studies, pass {stage + 1})")
            task = evidence_task(result.name, str(self.export.root), run.all_study_ids, run.as_of, dict(self.fresh),
                                 dict(run.inputs))
            evidence = self._studies(studies).applyInArrow(task, ddl).toArrow()
            run.scratch[derived.EVIDENCE] = evidence.to_pandas()
            if stage + 1 < result.evidence_stages and result.plan is not None:
                result.plan(run)  # fixes what the next pass needs

    def compute(self, result: DerivedResult, run: RefreshRun) -> dict[str, Rows]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        if set(run.study_ids) - set(self.export_study_ids()):
            missing = sorted(set(run.study_ids) - set(self.export_study_ids()))
            raise WarehouseError(f"the export at {self.export.root} has no study {missing[0]}; export it again")
        self.check_source(run)
        run.progress(f"computing {len(run.study_ids)} studies on Spark")
        task = compute_task(result.name, str(self.export.root), run.all_study_ids, run.as_of, run.inputs,
                            dict(self.fresh))
        union = self._studies(run.study_ids).applyInArrow(task, _union_ddl(result))
        union = union.persist(StorageLevel.DISK_ONLY)
        try:
            recorded = {r[0] for r in union.where(F.col(TABLE) == "").select(INPUTS).collect()}
            if len(recorded) > 1:
                raise WarehouseError(f"{result.name}: the studies recorded different inputs; a result whose "
                                     "inputs differ per study cannot be refreshed in one run")
            if recorded and recorded != {json.dumps(run.inputs, sort_keys=True, default=str)}:
                run.inputs = json.loads(recorded.pop())
            folder = self.results_dir / f"{result.name}-{uuid.uuid4().hex[:8]}"
            self.written.append(folder)
            out: dict[str, Rows] = {}
            for name in result.tables:
                columns = [F.col(f"{name}{SEPARATOR}{c.name}").alias(c.name) for c in schema.table(name).columns]
                target = folder / "derived" / name
                (union.where(F.col(TABLE) == name).select(*columns)
                 .write.mode("overwrite").partitionBy("study_id").parquet(str(target)))
                out[name] = target
                self.fresh[name] = (str(target), tuple(run.study_ids))
        finally:
            union.unpersist()
        return out

    def export_study_ids(self) -> tuple[str, ...]:
        con = duckdb.connect(":memory:")
        try:
            parquet.attach_export(con, self.export.root, blinded=True)
            return tuple(r[0] for r in con.execute("SELECT study_id FROM main.studies").fetchall())
        finally:
            con.close()

    def clean(self) -> None:
        """Remove the result folders this engine wrote (after they were loaded), unless kept."""
        if not self.keep_results:
            for folder in self.written:
                shutil.rmtree(folder, ignore_errors=True)
