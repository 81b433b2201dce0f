"""``python -m analytics migrate`` and ``dictionary``: schema upkeep."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from analytics.core import schema, warehouse

DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "data" / "DATA_DICTIONARY.md"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="upgrade a warehouse file to this release's schema version")
    p.add_argument("--db", type=Path, default=warehouse.DEFAULT_DB_PATH)
    p.set_defaults(func=run_migrate)
    d = sub.add_parser("dictionary", help="write the data dictionary generated from the schema")
    d.add_argument("--out", type=Path, default=DICTIONARY_PATH)
    d.set_defaults(func=run_dictionary)


def run_migrate(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"no warehouse at {args.db}")
        return 2
    with duckdb.connect(str(args.db)) as con:
        before = warehouse.current_version(con)
        after = warehouse.migrate(con)
    print(f"{args.db}: schema version {before} -> {after}")
    return 0


def run_dictionary(args: argparse.Namespace) -> int:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(schema.data_dictionary_markdown() + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
