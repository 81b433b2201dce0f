"""The app as a real ``streamlit run`` server on a free loopback port, for benchmarks and tests.

One starter for everything that drives the app from outside (``bench pages`` in a browser,
``bench load`` over websockets, the browser tests): the same command line, the same health wait,
the same clean stop. The server's output goes to a temporary file, not a pipe (a pipe nobody reads
stalls a long run), and its tail is in the error when the server does not start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from analytics.core import warehouse

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    """A loopback TCP port nobody listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(db: Path, user: str | None, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
               port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``streamlit run app.py`` on ``db`` as ``user`` (``CRO_USER``; None leaves it unset), with
    ``env`` and extra command-line ``args`` added; yields (base URL, server process) once it answers
    its health check, and stops it after."""
    port = port or free_port()
    environment = {**os.environ, warehouse.DB_ENV_VAR: str(db), **({"CRO_USER": user} if user is not None else {}),
                   **(env or {})}
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             *args],
            cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"streamlit did not start: {log.read().decode(errors='replace')[-2000:]}")
                time.sleep(0.5)
            yield base, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
