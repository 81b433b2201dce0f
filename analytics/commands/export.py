"""``python -m analytics export --format parquet --out DIR``: the warehouse as Parquet partitioned by study."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analytics.core import parquet, warehouse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write every warehouse table as Parquet, hive-partitioned by study "
                                      "(for Spark and read-only replicas)")
    p.add_argument("--format", choices=("parquet",), default="parquet", help="file format (parquet)")
    p.add_argument("--out", type=Path, required=True, help="export folder (a new generation replaces the last)")
    p.add_argument("--db", type=Path, default=warehouse.default_db_path(), help="warehouse file to export")
    p.add_argument("--restricted-out", type=Path, metavar="FOLDER",
                   help="also write the restricted tables (treatment arms, exposures) to this separate folder; "
                        "without it they are not exported")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"no warehouse at {args.db}; build one with `python -m analytics build --db {args.db}`", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        written = parquet.export(args.db, args.out, args.restricted_out)
    except (parquet.ExportError, warehouse.WarehouseError) as error:
        print(error, file=sys.stderr)
        return 2
    for name, table in sorted(written.tables.items()):
        print(f"  {name:<40} {table['rows']:>12,}" + ("  by study" if table["partitioned_by"] else ""))
    restricted = written.restricted()
    if restricted is not None:
        for name, table in sorted(restricted.tables.items()):
            print(f"  {name:<40} {table['rows']:>12,}  by study, in {restricted.root}")
    else:
        print("  restricted tables not exported (pass --restricted-out FOLDER for unblinded readers)")
    print(f"exported {args.db} to {written.generation_dir} (schema version {written.manifest['schema_version']}) "
          f"in {time.perf_counter() - started:.1f} s")
    return 0
