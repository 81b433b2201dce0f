"""A throwaway PostgreSQL server for the records tests: initdb into a temporary folder, loopback only.

Used when ``$CRO_TEST_POSTGRES_URL`` is not set and the server binaries exist (Debian's
``postgresql`` package puts them in ``/usr/lib/postgresql/<version>/bin``). Running as root, the
server runs as the ``postgres`` user, as PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from analytics.evaluation.app_server import free_port

SERVER_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest version."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class ThrowawayServer:
    """A running server; :meth:`stop` stops it and removes its folder."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["su", self.run_as, "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in command)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def start(bin_dir: Path) -> ThrowawayServer:
    """initdb (trust auth, user ``postgres``) and start a server on 127.0.0.1 at a free port.

    Raises:
        RuntimeError: with initdb's or pg_ctl's output when either fails.
    """
    run_as = SERVER_USER if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="cro-test-pg-"))
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(base, user.pw_uid, user.pw_gid)
    server = ThrowawayServer(bin_dir, base, free_port(), run_as)
    steps = [
        ("initdb", "-D", str(base / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"),
        ("pg_ctl", "-D", str(base / "data"), "-l", str(base / "server.log"), "-w", "-t", "60",
         "-o", f"-c listen_addresses=127.0.0.1 -p {server.port} -c unix_socket_directories={base} -c fsync=off",
         "start"),
    ]
    for step in steps:
        done = server._run(*step)
        if done.returncode != 0:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(f"{step[0]} failed ({done.returncode}): {done.stdout}{done.stderr}{log}")
    return server
