"""``python -m analytics build``: generate a synthetic portfolio into a new warehouse file."""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from analytics.core import warehouse
from analytics.commands.refresh import refresh_results
from analytics.generator import GENERATOR_VERSION, PRESETS, generate_portfolio, row_counts
from analytics.core.progress import ProgressBar

DEFAULT_SEED = 20261101


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="generate a synthetic CRO portfolio into a warehouse file")
    p.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="portfolio size (default: demo)")
    p.add_argument("--db", type=Path, default=warehouse.DEFAULT_DB_PATH, help="warehouse file to (re)build")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    p.add_argument("--if-missing", action="store_true", help="do nothing when the file already exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.if_missing and args.db.exists():
        print(f"{args.db} exists; not rebuilt")
        return 0
    started = time.perf_counter()
    with warehouse.build_aside(args.db, purpose=f"build --preset {args.preset}") as con:
        generate_portfolio(con, args.preset, args.seed, ProgressBar(f"build {args.preset}"))
        warehouse.set_info(con, {"as_of_date": PRESETS[args.preset].as_of.isoformat()})
        refresh_results(con)
        seconds = time.perf_counter() - started
        warehouse.set_info(con, {
            "as_of_date": PRESETS[args.preset].as_of.isoformat(),
            "preset": args.preset,
            "seed": args.seed,
            "generator_version": GENERATOR_VERSION,
            "build_seconds": f"{seconds:.1f}",
        })
        counts = row_counts(con)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    width = max(len(name) for name in counts)
    print(f"Built {args.db} (preset {args.preset}, seed {args.seed}) in {seconds:.1f} s, peak memory {peak_mib:,.0f} MiB")
    for name, rows in counts.items():
        print(f"  {name.ljust(width)}  {rows:>12,}")
    return 0
