"""Concurrent appends to the records store: N writers at once, as threads or as processes.

Every writer opens its connection (processes: their own store) first and waits for a start signal, so the
clock measures appends only. Each writer appends review dispositions for its own findings, every
finding twice (a record and its correction), so versions and the audit chain are both exercised.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from analytics.core.records import RecordsStore

BENCH_ACTOR_PREFIX = "bench-writer-"
REPO_ROOT = Path(__file__).resolve().parents[2]  # writer processes import analytics from here


@dataclass(frozen=True)
class ThroughputResult:
    backend: str
    mode: str
    writers: int
    appends: int
    seconds: float

    @property
    def appends_per_second(self) -> float:
        return self.appends / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "appends_per_second": round(self.appends_per_second, 1)}


def bench_row(writer: int, index: int) -> dict[str, str]:
    """The ``index``-th row writer ``writer`` appends (findings repeat once: odd rows are corrections)."""
    return {
        "finding_id": f"W{writer:02d}-F{index // 2:04d}",
        "study_id": f"BENCH{writer % 3}",
        "study_site_id": f"BENCH{writer % 3}-S{index % 5}",
        "disposition": "Query raised" if index % 2 == 0 else "Not an issue",
        "reason": f"writer {writer} row {index}",
    }


def _append_rows(store: RecordsStore, writer: int, appends: int) -> None:
    for index in range(appends):
        store.append("review_dispositions", bench_row(writer, index), actor=f"{BENCH_ACTOR_PREFIX}{writer}",
                     scope={"role": "bench", "writer": writer})


def _process_writer(writer: int, appends: int) -> None:
    """One writer process: read the URL from stdin (never argv: it may hold a password), open the
    store, say "ready", wait for "go" on stdin, append."""
    url = sys.stdin.readline().strip()
    with RecordsStore(url, upgrade=False) as store:
        store.revision()  # connect before the clock starts
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("writer process: expected 'go' on stdin")
        _append_rows(store, writer, appends)
        print(f"done {time.monotonic()}", flush=True)  # the system-wide clock the parent started on


def _run_processes(url: str, writers: int, appends_per_writer: int) -> float:
    """Seconds from "go" until every writer process has appended its rows; RuntimeError if one failed.

    Plain subprocesses (not multiprocessing), so a child never re-runs the parent's ``__main__``."""
    command = [sys.executable, "-m", "analytics.evaluation.records_throughput", str(appends_per_writer)]
    workers = [subprocess.Popen([*command, str(w)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT) for w in range(writers)]
    try:
        for worker in workers:
            worker.stdin.write(url + "\n")
            worker.stdin.flush()
        for worker in workers:
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a writer process did not start: {worker.communicate(timeout=60)[1]}")
        started = time.monotonic()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    failed = [(w, worker.returncode, outputs[w][1]) for w, worker in enumerate(workers) if worker.returncode != 0]
    if failed:
        raise RuntimeError(f"writer process(es) failed: {failed}")
    # Until the last writer's last append (not its interpreter's exit).
    return max(float(out.split()[-1]) for out, _ in outputs) - started


def measure_appends(store: RecordsStore, writers: int, appends_per_writer: int,
                    processes: bool = False) -> ThroughputResult:
    """Run ``writers`` concurrent writers of ``appends_per_writer`` appends each against ``store``.

    Threads share ``store`` (one engine and pool, as the app shares one per process); processes
    each open their own store on the same URL (as several app servers would).

    Raises:
        RuntimeError: a writer failed (its error is re-raised for threads, named for processes).
    """
    if processes:
        seconds = _run_processes(store.engine.url.render_as_string(hide_password=False), writers,
                                 appends_per_writer)
        return ThroughputResult(store.backend, "processes", writers, writers * appends_per_writer, seconds)

    errors: list[BaseException] = []
    barrier = threading.Barrier(writers + 1)

    def run(writer: int) -> None:
        try:
            barrier.wait()
            _append_rows(store, writer, appends_per_writer)
        except BaseException as error:  # surfaced to the caller below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} writer thread(s) failed; first: {errors[0]!r}") from errors[0]
    return ThroughputResult(store.backend, "threads", writers, writers * appends_per_writer, seconds)


if __name__ == "__main__":  # one writer process of measure_appends(processes=True): APPENDS WRITER
    _process_writer(writer=int(sys.argv[2]), appends=int(sys.argv[1]))
