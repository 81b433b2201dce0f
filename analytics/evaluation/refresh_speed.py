"""Refresh wall time with the local engine and on Spark, side by side, and whether they agree.

``python -m analytics bench refresh --db PATH`` copies the warehouse twice into a scratch folder,
exports it as Parquet, and runs ``python -m analytics refresh --all`` on one copy with
``--engine local`` and on the other with ``--engine spark --source EXPORT`` (local mode), each as
its own process so its figures are the whole run's: wall time, CPU seconds of the process tree (the
Spark JVM and its Python workers included) and peak memory. Then it checks that both copies hold
the same derived rows, bit for bit. The export is timed apart (Spark's input would be kept current
by the writers in a real deployment, not rewritten per refresh). ``--studies N`` measures on the
first N studies of the warehouse (the others' rows removed from both copies first), for a large
portfolio on a machine where a refresh of all of it takes too long.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from analytics.core import schema, warehouse
from analytics.evaluation.process_usage import TreeMonitor

REPO = Path(__file__).resolve().parents[2]


def derived_differences(a: Path, b: Path) -> dict[str, tuple[int, int, int]]:
    """Per derived table of two warehouse files: rows in ``a``, rows only in ``a``, rows only in ``b``
    (``EXCEPT ALL``: every value compared exactly, NULLs and NaNs alike)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        out = {}
        for table in schema.TABLES:
            if table.schema == "derived":
                q = table.qualified_name
                out[table.name] = tuple(con.execute(
                    f"SELECT (SELECT count(*) FROM a.{q}), "
                    f"(SELECT count(*) FROM (SELECT * FROM a.{q} EXCEPT ALL SELECT * FROM b.{q})), "
                    f"(SELECT count(*) FROM (SELECT * FROM b.{q} EXCEPT ALL SELECT * FROM a.{q}))").fetchone())
        state = ("SELECT result, study_id, code_version, data_version, as_of_date, inputs, rows "
                 "FROM {}.meta.derived_state ORDER BY 1, 2")
        same = con.execute(state.format("a")).fetchall() == con.execute(state.format("b")).fetchall()
        out["meta.derived_state"] = (0, 0, 0) if same else (0, 1, 1)
        return out
    finally:
        con.close()


def measured(command: list[str]) -> dict:
    """Run a command; its wall time, CPU seconds (process tree), peak memory and exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with TreeMonitor(proc.pid) as monitor:
        output, _ = proc.communicate()
    return {"command": " ".join(command), "returncode": proc.returncode, "wall_seconds": time.perf_counter() - started,
            "cpu_seconds": monitor.cpu_seconds, "peak_rss_mib": monitor.peak_rss / 2**20,
            "output_tail": output.strip().splitlines()[-6:]}


def keep_studies(db: Path, count: int) -> list[str]:
    """Remove every study but the first ``count`` (by id) from the warehouse at ``db``; those kept."""
    with warehouse.modify_aside(db, purpose="benchmark subset") as con:
        kept = [r[0] for r in con.execute("SELECT study_id FROM main.studies ORDER BY 1 LIMIT $n", {"n": count}).fetchall()]
        for table in schema.TABLES:
            if any(c.name == "study_id" for c in table.columns):
                name = f"restricted.main.{table.name}" if table.schema == "restricted" else table.qualified_name
                con.execute(f"DELETE FROM {name} WHERE NOT list_contains($ids, study_id)", {"ids": kept})
    return kept


def bench_refresh(db: Path, master: str = "local[2]", scratch: Path | None = None, studies: int | None = None) -> dict:
    """Both engines' refresh of every study of ``db`` (on copies; of its first ``studies`` only when
    given); the figures."""
    with warehouse.inspect(db) as con:
        version = warehouse.current_version(con)
    if version != schema.SCHEMA_VERSION:
        # A refresh migrates its file on the way but the export refuses it: both engines must start equal.
        raise warehouse.WarehouseError(f"{db} is at schema version {version}, this release at "
                                       f"{schema.SCHEMA_VERSION}; run `python -m analytics migrate --db {db}` first")
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-refresh-") as folder:
        root = Path(folder)
        local_db = warehouse.copy_warehouse(db, root / "local" / "warehouse.duckdb")
        if studies is not None:
            keep_studies(local_db, studies)
        spark_db = warehouse.copy_warehouse(local_db, root / "spark" / "warehouse.duckdb")
        cli = [sys.executable, "-m", "analytics"]
        load_before = os.getloadavg()
        exported = measured(cli + ["export", "--format", "parquet", "--db", str(spark_db), "--out", str(root / "export"),
                                   "--restricted-out", str(root / "export-restricted")])
        local = measured(cli + ["refresh", "--all", "--db", str(local_db)])
        spark = measured(cli + ["refresh", "--all", "--engine", "spark", "--master", master,
                                "--source", str(root / "export"), "--db", str(spark_db)])
        # Two failed refreshes leave two equal, stale copies: only finished runs can be compared.
        comparable = exported["returncode"] == local["returncode"] == spark["returncode"] == 0
        differences = derived_differences(local_db, spark_db) if comparable else {}
        with warehouse.inspect(local_db) as con:
            studies = con.execute("SELECT count(*) FROM main.studies").fetchone()[0]
            preset = con.execute("SELECT value FROM meta.warehouse_info WHERE key = 'preset'").fetchone()
            measurements = con.execute("SELECT count(*) FROM main.measurements").fetchone()[0]
    return {
        "db": str(db), "preset": preset[0] if preset else None, "studies": studies, "measurements": measurements,
        "master": master,
        "export": exported, "local": local, "spark": spark,
        "comparable": comparable,
        "identical": comparable and all(only_a == only_b == 0 for _, only_a, only_b in differences.values()),
        "differences": differences, "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
    }


def format_refresh(report: dict) -> str:
    """The figures as a short text table."""
    lines = [f"refresh of all {report['studies']} studies ({report['measurements']:,} results) of {report['db']} "
             f"(preset {report['preset']}), Spark master {report['master']}, {report['cpu_count']} cores",
             f"{'step':<28} {'wall':>9} {'CPU':>9} {'peak memory':>12}  exit"]
    for key, label in (("export", "export to Parquet"), ("local", "refresh --engine local"),
                       ("spark", "refresh --engine spark")):
        run = report[key]
        lines.append(f"{label:<28} {run['wall_seconds']:>8.1f}s {run['cpu_seconds']:>8.1f}s "
                     f"{run['peak_rss_mib']:>8,.0f} MiB  {run['returncode']}")
    if not report["comparable"]:
        failed = [key for key in ("export", "local", "spark") if report[key]["returncode"] != 0]
        lines.append("derived tables NOT COMPARED: " + ", ".join(failed) + " failed; its output ends:")
        for key in failed:
            lines.extend(f"  [{key}] {line}" for line in report[key]["output_tail"])
    else:
        lines.append("derived tables identical, bit for bit: " + ("yes" if report["identical"] else
                     "NO: " + ", ".join(f"{t} ({a}/{b} rows differ)" for t, (_, a, b) in report["differences"].items()
                                        if a or b)))
    lines.append("load average before {:.1f} / {:.1f} / {:.1f}, after {:.1f} / {:.1f} / {:.1f}".format(
        *report["load_average_before"], *report["load_average_after"]))
    return "\n".join(lines)
