"""The workbench's portfolio SQL on Spark SQL: DuckDB's query text transpiled with sqlglot.

The queries are not written twice. :class:`RecordingWarehouse` runs an analytics function (the
Overview's ``study_overview``, ``query_aging``, ...) against a warehouse as usual and keeps every
query text DuckDB ran, the scoped relations included, with its parameters. :func:`to_spark_sql`
transpiles such a text from DuckDB's dialect to Spark's (sqlglot), naming the warehouse's tables
(``wh.main.subjects``) by the temporary views :func:`register_export` creates over the Parquet
export (``main_subjects``); the parameters stay parameters (Spark's ``:name`` markers, values passed
to ``spark.sql(..., args=...)``).

Only the non-restricted tables are registered: this runs portfolio aggregates for full-access
(unblinded or admin) batch use, not pages for users with a narrower scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import sqlglot
from sqlglot import exp

from analytics.core import schema
from analytics.core.parquet import RESTRICTED, Export, partitioned
from analytics.core.scope import READER_CATALOG
from analytics.core.warehouse import Warehouse
from analytics.distributed.spark import spark_ddl


@dataclass(frozen=True)
class RecordingWarehouse(Warehouse):
    """A warehouse handle that keeps every query it runs: ``log`` holds (sql, params) pairs.

    Give it a token of its own (``RecordingWarehouse(path, token="record-...")``) so cached analytics
    functions run their queries instead of answering from the cache.
    """

    log: list = field(default_factory=list, compare=False, hash=False)

    def _execute(self, sql: str, params: dict[str, object] | list[object], blinded: bool) -> pd.DataFrame:
        self.log.append((sql, dict(params) if isinstance(params, dict) else {}))
        return super()._execute(sql, params, blinded)


def view_name(table: schema.Table) -> str:
    """The Spark temporary view of a warehouse table (``main_subjects``)."""
    return f"{table.schema}_{table.name}"


def _array_extract(node: exp.Anonymous) -> exp.Expression:
    """DuckDB's ``array_extract(list, i)`` (1-based, NULL outside the list) in Spark, which sqlglot
    passes through unchanged (Spark's ``element_at`` takes an INT and fails outside the list)."""
    array, index = node.expressions
    template = sqlglot.parse_one("CASE WHEN i BETWEEN 1 AND SIZE(a) THEN ELEMENT_AT(a, CAST(i AS INT)) END",
                                 read="spark")
    return template.transform(lambda n: (index.copy() if n == exp.column("i") else
                                         array.copy() if n == exp.column("a") else n))


# DuckDB functions sqlglot leaves as they are, though Spark has no such function.
SPARK_REWRITES = {"ARRAY_EXTRACT": _array_extract, "LIST_EXTRACT": _array_extract}


def to_spark_sql(duckdb_sql: str, params: dict[str, object] | None = None) -> str:
    """``duckdb_sql`` (as the warehouse ran it) in Spark's dialect, over the export's views.

    ``params`` tells which parameters are lists: DuckDB's ``len`` takes text or a list, Spark's
    ``length`` only text (a list's is ``size``), and sqlglot cannot tell them apart without types.
    """
    lists = {name for name, value in (params or {}).items() if isinstance(value, (list, tuple))}

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.upper() in SPARK_REWRITES:
            return SPARK_REWRITES[node.name.upper()](node)
        if isinstance(node, exp.Length) and isinstance(node.this, exp.Placeholder) and node.this.name in lists:
            return exp.ArraySize(this=node.this.copy())
        return node

    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(rewrite)
    for node in tree.find_all(exp.Table):
        if node.catalog == READER_CATALOG and node.db:
            node.set("this", exp.to_identifier(f"{node.db}_{node.name}"))
            node.set("db", None)
            node.set("catalog", None)
    return tree.sql(dialect="spark")


def spark_args(params: dict[str, object]):
    """The query's parameter values as Spark literals (lists as arrays, dates as dates)."""
    from pyspark.sql import functions as F

    def literal(value: object):
        if isinstance(value, (list, tuple)):
            return F.array(*[literal(v) for v in value])
        return F.lit(value)

    return {name: literal(value) for name, value in params.items()}


def register_export(spark, export: Export) -> list[str]:
    """Temporary views over the export's non-restricted tables, typed as declared; their names."""
    names = []
    for table in schema.TABLES:
        if table.schema == RESTRICTED:
            continue
        ddl = spark_ddl([(c.name, c.type) for c in table.columns])
        folder = export.table_dir(table)
        has_files = folder.is_dir() and any(folder.rglob("*.parquet"))
        if not has_files:
            frame = spark.createDataFrame([], ddl)
        elif partitioned(table):
            frame = spark.read.schema(ddl).parquet(str(folder))
        else:
            frame = spark.read.schema(ddl).parquet(str(folder / "data_0.parquet"))
        frame.select(*[c.name for c in table.columns]).createOrReplaceTempView(view_name(table))
        names.append(view_name(table))
    return names


def run_on_spark(spark, duckdb_sql: str, params: dict[str, object]) -> pd.DataFrame:
    """Run a recorded DuckDB query on Spark SQL over the registered views."""
    return spark.sql(to_spark_sql(duckdb_sql, params), args=spark_args(params)).toPandas()
