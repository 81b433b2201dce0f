"""Concurrent appends to the records store: N writers at once, as threads or as processes.

Every writer opens its connection (processes: their own store) first and waits at a barrier, so the
clock measures appends only. Each writer appends review dispositions for its own findings, every
finding twice (a record and its correction), so versions and the audit chain are both exercised.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import asdict, dataclass

from analytics.core.records import RecordsStore

BENCH_ACTOR_PREFIX = "bench-writer-"


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
        "disposition": "Confirmed" if index % 2 == 0 else "Not an issue",
        "reason": f"writer {writer} row {index}",
    }


def _append_rows(store: RecordsStore, writer: int, appends: int) -> None:
    for index in range(appends):
        store.append("review_dispositions", bench_row(writer, index), actor=f"{BENCH_ACTOR_PREFIX}{writer}",
                     scope={"role": "bench", "writer": writer})


def _process_writer(url: str, writer: int, appends: int, ready: multiprocessing.Barrier) -> None:
    with RecordsStore(url, upgrade=False) as store:
        store.revision()  # connect before the clock starts
        ready.wait()
        _append_rows(store, writer, appends)


def measure_appends(store: RecordsStore, writers: int, appends_per_writer: int,
                    processes: bool = False) -> ThroughputResult:
    """Run ``writers`` concurrent writers of ``appends_per_writer`` appends each against ``store``.

    Threads share ``store`` (one engine and pool, as the app shares one per process); processes
    each open their own store on the same URL (as several app servers would).

    Raises:
        RuntimeError: a writer failed (its error is re-raised for threads, named for processes).
    """
    url = store.engine.url.render_as_string(hide_password=False)
    if processes:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["analytics.core.records"])
        ready = context.Barrier(writers + 1)
        workers = [context.Process(target=_process_writer, args=(url, w, appends_per_writer, ready))
                   for w in range(writers)]
        for worker in workers:
            worker.start()
        ready.wait(timeout=300)
        started = time.perf_counter()
        for worker in workers:
            worker.join(timeout=600)
        seconds = time.perf_counter() - started
        failed = [w for w, worker in enumerate(workers) if worker.exitcode != 0]
        if failed:
            raise RuntimeError(f"writer process(es) {failed} failed (exit codes "
                               f"{[workers[w].exitcode for w in failed]})")
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
