"""``python -m analytics migrate`` and ``dictionary``: schema upkeep."""

from __future__ import annotations

import argparse
from pathlib import Path

from analytics.commands.refresh import refresh_results
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
    with warehouse.inspect(args.db) as con:
        before = warehouse.current_version(con)
    if before == schema.SCHEMA_VERSION:
        print(f"{args.db}: schema version {before}, current")
        return 0
    try:
        with warehouse.modify_aside(args.db, purpose="migrate") as con:  # migrates the copy it writes
            refresh_results(con)
    except warehouse.WarehouseError as exc:
        print(exc)
        return 2
    print(f"{args.db}: schema version {before} -> {schema.SCHEMA_VERSION}")
    return 0


def run_dictionary(args: argparse.Namespace) -> int:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(schema.data_dictionary_markdown() + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
