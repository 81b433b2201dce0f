"""Speed of matching: 10,000 pre-screening patients x 30 criteria, timed from the pool's frames to every
patient x criterion status with its evidence (the pool's per-record precomputation included).

The protocol joins the generator's oncology and type 2 diabetes protocols (labs with units to convert
and "x ULN", conditions with windows and exceptions, medications with washouts, ECOG, pregnancy,
age and sex) and keeps 30 criteria; the pool is simulated for it with seed :data:`SEED`.
"""

from __future__ import annotations

import os
import time

import numpy as np

from analytics.generator.prescreening import simulate_pool
from analytics.generator.protocols import Protocol, make_protocol
from analytics.recruitment.criteria import EXCLUSION, INCLUSION, Criterion
from analytics.recruitment.matching import match
from analytics.recruitment.parser import parse_criteria
from analytics.recruitment.pool import Pool

PATIENTS, CRITERIA, TARGET_SECONDS, SEED = 10_000, 30, 5.0, 7


def benchmark_protocol(seed: int = SEED) -> Protocol:
    """A 30-criterion protocol drawn from two generated protocols (duplicates by text removed)."""
    rng = np.random.default_rng(seed)
    parts = [make_protocol(rng, indication, "Phase 3") for indication in ("Non-small cell lung cancer", "Type 2 diabetes",
                                                                          "Rheumatoid arthritis")]
    seen, chosen = set(), []
    for section in (INCLUSION, EXCLUSION):
        for protocol in parts:
            for item in protocol.criteria:
                if item.truth.section == section and item.truth.text not in seen and len(chosen) < CRITERIA:
                    seen.add(item.truth.text)
                    chosen.append(item)
    chosen = sorted(chosen, key=lambda c: c.truth.section != INCLUSION)
    renumbered = tuple(type(c)(Criterion(n, c.truth.section, c.truth.text, c.truth.status, c.truth.atoms, c.truth.combine,
                                         c.truth.negated, c.truth.note, c.truth.source), c.statement_rate)
                       for n, c in enumerate(chosen, start=1))
    lines = ["Inclusion Criteria:"] + [f"* {c.truth.text}" for c in renumbered if c.truth.section == INCLUSION]
    lines += ["Exclusion Criteria:"] + [f"* {c.truth.text}" for c in renumbered if c.truth.section == EXCLUSION]
    return Protocol("\n".join(lines), renumbered, 18.0, 80.0, "ALL", "benchmark")


def bench_matching(runs: int = 5, patients: int = PATIENTS) -> dict[str, object]:
    """Median wall and CPU time of matching ``patients`` x 30 criteria (a fresh pool object each run)."""
    protocol = benchmark_protocol()
    rng = np.random.default_rng(SEED)
    sizes = np.full(10, patients // 10)
    pool = simulate_pool(rng, protocol, "BENCH", [f"BENCH-{i}" for i in range(10)], sizes, np.full(10, 20_758), 0.5, 60,
                         12)
    criteria = parse_criteria(protocol.text)
    walls, cpus = [], []
    for _ in range(runs):
        fresh = Pool(pool.patients, pool.conditions, pool.observations, pool.medications)
        started, cpu = time.perf_counter(), time.process_time()
        result = match(fresh, criteria)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    records = len(pool.conditions) + len(pool.observations) + len(pool.medications)
    return {"patients": len(pool.patients), "criteria": len(criteria), "records": records,
            "pairs": int(result.passes.size), "runs": runs, "seconds": round(float(np.median(walls)), 3),
            "cpu_seconds": round(float(np.median(cpus)), 3), "target_seconds": TARGET_SECONDS,
            "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
            "meets_target": bool(np.median(walls) < TARGET_SECONDS)}


def format_speed(report: dict[str, object]) -> str:
    return (f"Matching {report['patients']:,} patients x {report['criteria']} criteria ({report['records']:,} records): "
            f"{report['seconds']:.2f} s wall, {report['cpu_seconds']:.2f} s CPU (median of {report['runs']} runs); "
            f"machine: {report['cpus']} CPUs, load average {report['load_average_1min']}; target under "
            f"{report['target_seconds']:g} s -> {'met' if report['meets_target'] else 'NOT met'}")
