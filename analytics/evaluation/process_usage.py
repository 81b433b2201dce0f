"""CPU seconds and memory of a process and everything it starts (a Spark JVM and its Python
workers, a Streamlit server), sampled from psutil while it runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil

SAMPLE_SECONDS = 0.25


@dataclass
class TreeMonitor:
    """Samples a process tree every :data:`SAMPLE_SECONDS` until stopped.

    CPU is the sum over every process seen of its last user + system time (a process that ended
    keeps what it used until its last sample); memory is the largest resident total of one sample.
    """

    pid: int
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = 0
        for process in tree:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    key = (process.pid, process.create_time())
                    self.cpu_by_pid[hash(key)] = times.user + times.system
                    rss += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self.peak_rss = max(self.peak_rss, rss)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_pid.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> "TreeMonitor":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
