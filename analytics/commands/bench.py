"""``python -m analytics bench``: page render times against an existing warehouse."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from analytics.evaluation import performance as bench


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time every page (cold and warm) against an existing warehouse")
    p.add_argument("--db", type=Path, required=True, help="warehouse to measure (built beforehand)")
    p.add_argument("--out", type=Path, required=True, help="JSON file for the figures")
    p.add_argument("--runs", type=int, default=5, help="runs per figure; the median is reported (default 5)")
    p.add_argument("--user", help="user id from .streamlit/users.toml (default: the local user)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = bench.bench_pages(args.db, runs=args.runs, user=args.user)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(bench.format_report(report))
    print(f"\nwrote {args.out}")
    return 0 if all(p["meets_targets"] for p in report["pages"]) else 1
