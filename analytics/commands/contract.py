"""``python -m analytics contract``: write (or check) data/IMPORT_CONTRACT.md from the schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analytics.importers.contract import CONTRACT_PATH, contract_markdown

REPO_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("contract", help="write the operational import contract (Markdown)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / CONTRACT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the schema")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    text = contract_markdown()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run `python -m analytics contract`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0
