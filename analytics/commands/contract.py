"""``python -m analytics contract``: write (or check) data/IMPORT_CONTRACT.md from the schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analytics.importers.contract import CONTRACT_PATH, contract_markdown
from analytics.importers.prescreen import PRESCREEN_CONTRACT_PATH, prescreen_contract_markdown

REPO_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("contract", help="write the operational import contract (Markdown)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / CONTRACT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the schema")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    status = _write(args.output, contract_markdown(), args.check)
    if args.output == REPO_ROOT / CONTRACT_PATH:  # the pre-screening contract sits beside the default one
        status = max(status, _write(REPO_ROOT / PRESCREEN_CONTRACT_PATH, prescreen_contract_markdown(), args.check))
    return status


def _write(output: Path, text: str, check: bool) -> int:
    """Write ``text`` to ``output``, or with ``check`` report whether the file is current (exit code)."""
    args = argparse.Namespace(output=output, check=check)
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
