"""``python -m analytics refresh``: bring every stored derived result up to date."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
from pathlib import Path

import duckdb

from analytics.core import derived, warehouse
from analytics.core.progress import ProgressBar
from analytics.registry import REGISTRY


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refresh", help="recompute the stored results (KRIs, atypical data, ...) that are stale")
    p.add_argument("--db", type=Path, default=warehouse.default_db_path(), help="warehouse file")
    p.add_argument("--all", action="store_true", help="recompute every study, stale or not")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another writer to finish (default: fail at once)")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="where to compute: this process (default) or Spark, per study, from --source")
    p.add_argument("--source", type=Path, metavar="DIR",
                   help="spark: the Parquet export of the warehouse (`python -m analytics export --format parquet`)")
    p.add_argument("--master", default="local[2]", help="spark: master URL (default local[2], this machine's cores)")
    p.add_argument("--results-out", type=Path, metavar="DIR",
                   help="spark: keep the results Spark writes (Parquet by study) in this folder "
                        "(default: a temporary folder beside the warehouse, removed once loaded)")
    p.set_defaults(func=run)


def refresh_results(con: duckdb.DuckDBPyConnection, force: bool = False,
                    engine: derived.RefreshEngine = derived.LOCAL) -> list[derived.RefreshOutcome]:
    """Refresh every registered result through a writer's connection, printing what was done."""
    bar = ProgressBar("derived results")
    done = [0]
    steps = max(len(REGISTRY) * 3, 1)

    def progress(message: str) -> None:
        done[0] += 1
        bar(min(done[0] / steps, 0.99), message)

    outcomes = derived.refresh(con, REGISTRY, progress, force=force, engine=engine)
    bar(1.0, "stored")
    for outcome in outcomes:
        print(f"  {outcome.describe()}", file=sys.stderr)
    return outcomes


def run(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"no warehouse at {args.db}; build one with `python -m analytics build --db {args.db}`")
        return 2
    started = time.perf_counter()
    with warehouse.inspect(args.db) as con:
        stale = {r.name: derived.stale_studies(con, r) for r in REGISTRY}
    if not args.all and not any(stale.values()):
        print(f"{args.db}: every stored result is current")
        return 0
    if args.engine == "spark":
        return _run_on_spark(args, started)
    try:
        with warehouse.modify_aside(args.db, purpose="refresh", wait_seconds=args.wait) as con:
            outcomes = refresh_results(con, force=args.all)
    except warehouse.WarehouseError as exc:
        print(exc, file=sys.stderr)
        return 2
    for outcome in outcomes:
        print(outcome.describe())
    print(f"refreshed {args.db} in {time.perf_counter() - started:.1f} s")
    return 0


def _run_on_spark(args: argparse.Namespace, started: float) -> int:
    """The refresh computed on Spark from the export at ``--source``, loaded into ``--db`` in one swap."""
    from analytics.core import parquet
    from analytics.distributed import spark as sparkutil
    from analytics.distributed.refresh import SparkEngine

    if args.source is None:
        print("--engine spark needs --source DIR, a Parquet export of the warehouse "
              f"(`python -m analytics export --format parquet --db {args.db} --out DIR`)", file=sys.stderr)
        return 2
    results = args.results_out or args.db.with_name(f"{args.db.name}.spark-results-{uuid.uuid4().hex[:8]}")
    try:
        spark = sparkutil.session(args.master)
    except sparkutil.SparkUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    engine = None
    try:
        engine = SparkEngine(spark, args.source, results, keep_results=args.results_out is not None)
        with warehouse.modify_aside(args.db, purpose="refresh on Spark", wait_seconds=args.wait) as con:
            outcomes = refresh_results(con, force=args.all, engine=engine)
    except (warehouse.WarehouseError, parquet.ExportError) as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        if engine is not None:
            engine.clean()
        if args.results_out is None:
            shutil.rmtree(results, ignore_errors=True)
        spark.stop()
    for outcome in outcomes:
        print(outcome.describe())
    print(f"refreshed {args.db} on Spark ({args.master}) from {args.source} in {time.perf_counter() - started:.1f} s")
    return 0
