"""``python -m analytics refresh``: bring every stored derived result up to date."""

from __future__ import annotations

import argparse
import sys
import time
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
    p.set_defaults(func=run)


def refresh_results(con: duckdb.DuckDBPyConnection, force: bool = False) -> list[derived.RefreshOutcome]:
    """Refresh every registered result through a writer's connection, printing what was done."""
    bar = ProgressBar("derived results")
    done = [0]
    steps = max(len(REGISTRY) * 3, 1)

    def progress(message: str) -> None:
        done[0] += 1
        bar(min(done[0] / steps, 0.99), message)

    outcomes = derived.refresh(con, REGISTRY, progress, force=force)
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
