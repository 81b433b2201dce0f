"""Speed of all data-quality checks over an existing warehouse (``bench quality --db PATH``).

Every edit check and the conformance read run through the query layer with full (unblinded) access, as
the refresh runs them; the figure is the median total over ``runs`` with each check's median beside it.
The signal scoring (robust z, entry bursts, IsolationForest) is timed separately: it is a derived result
computed when data change, not part of the checks' target.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from analytics.core import warehouse
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.quality.anomalies import score_sites, signal_inputs
from analytics.quality.engine import run_checks

TARGET_SECONDS = 10.0
FULL = AccessScope.full_access(blinded=False)


def bench_quality(db: Path, runs: int = 3) -> dict[str, object]:
    """Median wall time of all checks (and per check), rows scanned, findings, and the signal scoring."""
    wh = warehouse.Warehouse.open(db)
    with warehouse.inspect(db) as con:
        sizes = {name: con.execute(f"SELECT count(*) FROM main.{name}").fetchall()[0][0]
                 for name in ("subjects", "visits", "measurements", "adverse_events", "crf_pages")}
    totals, per_check, findings = [], {}, 0
    for _ in range(runs):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        found = run_checks(wh, FULL, NO_FILTER, timings=timings)
        totals.append(time.perf_counter() - started)
        findings = len(found)
        for check, seconds in timings.items():
            per_check.setdefault(check, []).append(seconds)
    started = time.perf_counter()
    score_sites(*signal_inputs(wh, FULL, NO_FILTER))
    signals_seconds = time.perf_counter() - started
    total = statistics.median(totals)
    return {"db": str(db), "runs": runs, "cpus": os.cpu_count(), "rows": sizes, "findings": findings,
            "seconds_all_checks": round(total, 2), "seconds_per_check": {k: round(statistics.median(v), 3)
                                                                        for k, v in per_check.items()},
            "seconds_signals": round(signals_seconds, 2), "target_seconds": TARGET_SECONDS,
            "meets_target": total < TARGET_SECONDS, "load_average": os.getloadavg()[0]}


def format_report(report: dict[str, object]) -> str:
    rows = report["rows"]
    lines = [f"all data-quality checks over {report['db']}: {report['seconds_all_checks']:.2f} s "
             f"(median of {report['runs']}; target < {report['target_seconds']:.0f} s; "
             f"{'met' if report['meets_target'] else 'NOT met'}), {report['findings']:,} findings",
             f"  {rows['measurements']:,} results, {rows['visits']:,} visits, {rows['adverse_events']:,} AEs, "
             f"{rows['crf_pages']:,} pages, {rows['subjects']:,} subjects; {report['cpus']} CPUs, "
             f"load average {report['load_average']:.1f}"]
    for check, seconds in sorted(report["seconds_per_check"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {check:18s} {seconds:7.3f} s")
    lines.append(f"  signal scoring (derived result, separate): {report['seconds_signals']:.2f} s")
    return "\n".join(lines)
