"""Architectural boundaries a reviewer would check by reading the code, checked on every run."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "analytics").rglob("*.py"), *(REPO / "pages").glob("*.py"), REPO / "app.py"])


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_only_the_generator_and_the_evaluation_touch_ground_truth() -> None:
    allowed = ("analytics/generator/", "analytics/evaluation/", "analytics/core/schema.py")
    readers = [_relative(p) for p in SOURCES
               if re.search(r"\btruth\.\w", p.read_text(encoding="utf-8")) and not _relative(p).startswith(allowed)]
    assert readers == []


def test_pages_and_analytics_open_no_connections_of_their_own() -> None:
    # Reads go through Warehouse.query (scope CTEs, parameters); the writers (build, importers, schema
    # admin) open files through analytics.core.warehouse, and the evaluation reads its own temporary files.
    # The Spark engine is a writer's compute: each task reads its study's partition of a Parquet export
    # into an in-memory connection, for the refresh that the writer then swaps in.
    allowed = ("analytics/core/warehouse.py", "analytics/importers/", "analytics/commands/admin.py",
               "analytics/evaluation/", "analytics/distributed/")
    openers = [_relative(p) for p in SOURCES
               if "duckdb.connect(" in p.read_text(encoding="utf-8") and not _relative(p).startswith(allowed)]
    assert openers == []
