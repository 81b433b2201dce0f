"""The one command line entry: ``python -m analytics <command>``.

Each command lives in its own module exposing ``register(subparsers)``, which adds a sub-parser
whose ``func`` default takes the parsed arguments and returns an exit code. Adding a command is
adding its module to :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES: tuple[str, ...] = (
    "analytics.commands.build",
    "analytics.commands.admin",
    "analytics.commands.evaluate",
    "analytics.commands.importing",
    "analytics.commands.contract",
    "analytics.commands.bench",
    "analytics.commands.refresh",
    "analytics.commands.export",
    "analytics.commands.records",
    "analytics.commands.quality",
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analytics",
        description="CRO analytics workbench: build, import, benchmark and evaluate the warehouse; keep the records store.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
