"""One writer at a time, swaps readers never see, and killed writers that lose nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analytics.core import warehouse
from analytics.core.scope import AccessScope
from tests.import_helpers import sha256

REPO = Path(__file__).resolve().parents[1]


def _live_digest(db: Path) -> str:
    """SHA-256 of the warehouse file and of the restricted store it names (what readers open)."""
    digest = hashlib.sha256(db.read_bytes())
    with warehouse.inspect(db) as con:
        name = con.execute("SELECT value FROM meta.warehouse_info WHERE key = 'restricted_file'").fetchone()[0]
    digest.update(db.with_name(name).read_bytes())
    return digest.hexdigest()


def test_a_second_writer_is_told_who_is_writing_and_since_when(tiny_db: Path, tmp_path: Path) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    before = sha256(db)
    with warehouse.modify_aside(db, purpose="import sdtm: a long load"):
        with pytest.raises(warehouse.WarehouseError, match=r"another writer is changing .* since .*import sdtm"):
            with warehouse.build_aside(db, purpose="build --preset tiny"):
                pass
    assert not list(tmp_path.glob("*.building*"))
    assert sha256(db) != before  # the first writer's change landed; the second changed nothing


def test_a_build_and_an_import_at_once_one_fails_clearly_and_the_other_lands(tiny_db: Path, tmp_path: Path,
                                                                             shared_data: Path) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "analytics"]
    importing = subprocess.Popen([*run, "import", "sdtm", str(shared_data / "sdtm" / "cdiscpilot01"), "--db", str(db),
                                  "--study-id", "PILOT01"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    time.sleep(2.0)  # the import is validating or writing; the build comes in while it holds the lock
    build = subprocess.run([*run, "build", "--preset", "tiny", "--db", str(db)], cwd=REPO, env=env,
                           capture_output=True, text=True)
    out, _ = importing.communicate(timeout=300)
    codes = (importing.returncode, build.returncode)
    assert sorted(codes)[0] == 0, (out, build.stdout, build.stderr)
    with warehouse.inspect(db) as con:
        pilot = con.execute("SELECT count(*) FROM main.subjects WHERE study_id = 'PILOT01'").fetchone()[0]
    if build.returncode:  # the build came in while the import held the lock: the import's result is intact
        assert "another writer is changing" in build.stdout + build.stderr
        assert pilot == 306
    elif importing.returncode:  # the import reached its commit while the build held the lock
        assert "another writer is changing" in out, out
        assert pilot == 0  # the build's file, whole, with nothing of the refused import
    # else one finished before the other began (a fast machine): both landed in turn
    assert not list(tmp_path.glob("*.building*"))


def test_eight_readers_over_repeated_swaps_see_no_error(tiny_db: Path, tmp_path: Path) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                wh = warehouse.Warehouse.open(db)
                for blinded in (True, False):
                    frame = wh.query(AccessScope(blinded=blinded),
                                     "SELECT count(*) AS n FROM subjects JOIN visits USING (subject_id)")
                    counts.append(int(frame["n"][0]))
            except BaseException as exc:  # noqa: BLE001 - every error is a failure here
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(8)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(3):
            time.sleep(0.3)
            with warehouse.modify_aside(db, purpose="swap test") as con:
                con.execute("UPDATE main.studies SET title = title || '.'")
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    assert errors == [], errors[:3]
    assert len(counts) > 24 and len(set(counts)) == 1


@pytest.mark.parametrize("after_seconds", [0.5, 1.5, 3.0])
def test_an_import_killed_at_any_point_leaves_the_warehouse_as_it_was(tiny_db: Path, tmp_path: Path,
                                                                     shared_data: Path, after_seconds: float) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    before_live = _live_digest(db)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "analytics", "import", "sdtm", str(shared_data / "sdtm" / "cdiscpilot01"),
            "--db", str(db), "--study-id", "PILOT01"]
    victim = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(after_seconds)
    if victim.poll() is None:
        victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    if victim.returncode == 0:  # it finished before the kill: nothing to check about a half-done import
        pytest.skip(f"the import finished within {after_seconds} s")
    assert _live_digest(db) == before_live  # the file readers open, and the store it names, are untouched
    # Whatever the kill left beside the file, the next writer cleans it and succeeds.
    assert subprocess.run(args, cwd=REPO, env=env, capture_output=True).returncode == 0
    assert not list(tmp_path.glob("*.building*"))
    with warehouse.inspect(db) as con:
        assert con.execute("SELECT count(*) FROM main.subjects WHERE study_id = 'PILOT01'").fetchone()[0] == 306


def test_query_texts_checked_from_many_threads_at_once_all_pass() -> None:
    """Streamlit serves each session in a thread; the first view of a page checks new query texts."""
    errors: list[BaseException] = []

    def check(worker: int) -> None:
        for i in range(300):
            try:  # distinct texts, so each call parses (the check is cached per text)
                warehouse.check_query_text(f"SELECT {worker} AS w, {i} AS i FROM subjects")
            except BaseException as exc:  # noqa: BLE001 - every error is a failure here
                errors.append(exc)

    threads = [threading.Thread(target=check, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [], errors[:3]
