"""A dependency-free progress display for long command-line work (writes to stderr)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Callable ``(fraction, message)`` that redraws one status line on stderr.

    On a terminal the line is redrawn in place; otherwise (CI logs, pipes) a line is printed at
    most every ``every_seconds`` so logs stay short.
    """

    def __init__(self, label: str, width: int = 30, every_seconds: float = 5.0) -> None:
        self.label = label
        self.width = width
        self.every_seconds = every_seconds
        self.started = time.perf_counter()
        self._last_print = -1e9
        self._tty = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.perf_counter() - self.started
        filled = int(round(fraction * self.width))
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%} {elapsed:6.1f}s {message}"
        if self._tty:
            sys.stderr.write("\r" + line.ljust(100))
            if fraction >= 1.0:
                sys.stderr.write("\n")
        elif fraction >= 1.0 or elapsed - self._last_print >= self.every_seconds:
            sys.stderr.write(line + "\n")
            self._last_print = elapsed
        sys.stderr.flush()
