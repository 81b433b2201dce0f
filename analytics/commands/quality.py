"""``python -m analytics quality conformance FOLDER``: check an SDTM folder's conformance without importing it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quality", help="data-quality tools: SDTM conformance of a folder by rule ID")
    p.add_argument("action", choices=("conformance",), help="what to do")
    p.add_argument("folder", type=Path, help="SDTM folder (XPORT, CSV or Dataset-JSON; define.xml is used when present)")
    p.add_argument("--out", type=Path, help="write every issue to this CSV file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analytics.importers.report import ImportReport
    from analytics.importers.sdtm_datasets import read_folder
    from analytics.importers.sources import Limits
    from analytics.quality.conformance import RULES, check_domains, find_define, summary

    report = ImportReport("sdtm")
    domains = read_folder(args.folder, Limits(), report, lambda message: None)
    if report.refused:
        print("\n".join(report.summary_lines()))
        return 1
    define = find_define(args.folder)
    issues = check_domains(domains, define)
    print(f"{args.folder}: {len(domains)} datasets, define.xml {'read' if define else 'absent (no codelist rules)'}; "
          f"rules {', '.join(rule.id for rule in RULES)}")
    if issues.empty:
        print("no conformance issue under these rules")
    else:
        with pd.option_context("display.width", 200, "display.max_colwidth", 90):
            print(summary(issues).to_string(index=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        issues.to_csv(args.out, index=False)
        print(f"wrote {args.out} ({len(issues):,} issues)")
    return 0
