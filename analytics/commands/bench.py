"""``python -m analytics bench``: page render times against an existing warehouse;
``bench enrollment``: the Poisson-Gamma simulation's speed (no warehouse needed); ``bench load``:
concurrent sessions against the app server; ``bench refresh``: the refresh on the local engine and
on Spark side by side."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analytics.evaluation import performance as bench


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time every page (cold and warm) against an existing warehouse, "
                                     "or the enrollment simulation (`bench enrollment`), all data-quality checks "
                                     "(`bench quality`), matching (`bench recruitment`), concurrent sessions "
                                     "(`bench load`), or the refresh on both engines (`bench refresh`)")
    p.add_argument("target", nargs="?", choices=("pages", "enrollment", "quality", "recruitment", "load", "refresh"),
                   default="pages",
                   help="what to time (default: pages; quality: all data-quality checks over --db)")
    p.add_argument("--db", type=Path, help="pages: warehouse to measure (built beforehand)")
    p.add_argument("--out", type=Path, help="JSON file for the figures (required for pages)")
    p.add_argument("--runs", type=int, default=5, help="runs per figure; the median is reported (default 5)")
    p.add_argument("--user", help="user id from .streamlit/users.toml (default: the local user)")
    p.add_argument("--no-browser", action="store_true", help="pages: skip the headless-Chromium timings")
    p.add_argument("--sessions", type=int, default=20, help="load: concurrent sessions (default 20)")
    p.add_argument("--rounds", type=int, default=3, help="load: times each session opens every page (default 3)")
    p.add_argument("--master", default="local[2]", help="refresh: Spark master (default local[2])")
    p.add_argument("--studies", type=int, metavar="N", help="refresh: measure on the warehouse's first N studies only")
    p.add_argument("--scratch", type=Path, metavar="DIR", help="refresh: folder for the copies and the export "
                                                               "(default: the system's temporary folder)")
    p.set_defaults(func=run)


def _speed_report(report: dict, text: str, out: Path | None) -> int:
    """Print a speed benchmark's figures, write them as JSON when asked; exit 0 when the target is met."""
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"wrote {out}")
    return 0 if report["meets_target"] else 1


def run(args: argparse.Namespace) -> int:
    if args.target == "recruitment":
        from analytics.evaluation.recruitment_speed import bench_matching, format_speed

        report = bench_matching(runs=args.runs)
        print(format_speed(report))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
            print(f"wrote {args.out}")
        return 0 if report["meets_target"] else 1
    if args.target == "enrollment":
        from analytics.evaluation.enrollment_speed import bench_enrollment, format_speed

        report = bench_enrollment(runs=args.runs)
        return _speed_report(report, format_speed(report), args.out)
    if args.target == "quality":
        from analytics.evaluation.quality_speed import bench_quality, format_report

        if args.db is None:
            print("bench quality needs --db", file=sys.stderr)
            return 2
        report = bench_quality(args.db, runs=args.runs)
        return _speed_report(report, format_report(report), args.out)
    if args.target in ("load", "refresh"):
        return _run_server_side(args)
    if args.db is None or args.out is None:
        print("bench pages needs --db and --out", file=sys.stderr)
        return 2
    report = bench.bench_pages(args.db, runs=args.runs, user=args.user)
    if not args.no_browser:
        report["browser"] = bench.bench_browser(args.db, args.user, runs=min(args.runs, 3))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(bench.format_report(report))
    print(f"\nwrote {args.out}")
    met = all(p["meets_targets"] for p in report["pages"]) and all(b["meets_target"] for b in report.get("browser", []))
    return 0 if met else 1


def _run_server_side(args: argparse.Namespace) -> int:
    """``bench load`` and ``bench refresh``: print the figures (and write them to ``--out`` if given)."""
    if args.db is None or not args.db.exists():
        print(f"bench {args.target} needs --db, an existing warehouse file"
              + (" or Parquet export folder" if args.target == "load" else ""), file=sys.stderr)
        return 2
    if args.target == "load":
        from analytics.evaluation.load import format_load, run_load

        report = run_load(args.db, sessions=args.sessions, rounds=args.rounds, user=args.user or "local")
        text, ok = format_load(report), report["errors"] == 0
    else:
        from analytics.evaluation.refresh_speed import bench_refresh, format_refresh

        from analytics.core.warehouse import WarehouseError

        try:
            report = bench_refresh(args.db, master=args.master, scratch=args.scratch, studies=args.studies)
        except WarehouseError as exc:
            print(f"bench refresh: {exc}", file=sys.stderr)
            return 2
        text = format_refresh(report)
        ok = report["identical"]  # identical implies every step finished (only finished runs are compared)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0 if ok else 1
