"""Shared helpers for the importer tests: where the shared real data lives, checksums, copies."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PILOT = SHARED_DATA / "sdtm" / "cdiscpilot01"
CTGOV = SHARED_DATA / "ctgov"
BAD_INPUTS = SHARED_DATA / "bad_inputs"

needs_shared_data = pytest.mark.skipif(
    not PILOT.is_dir(), reason=f"shared real data not found at {SHARED_DATA} (expected ../shared/data from the repo)"
)


def sha256(path: Path) -> str:
    """Digest of a warehouse file together with every restricted store beside it (and no staging file)."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes())
    for other in sorted(path.parent.glob(f"*.restricted-*{path.suffix}")):
        digest.update(other.name.encode())
        digest.update(other.read_bytes())
    assert not list(path.parent.glob("*.building*")), "a staging file was left behind"
    return digest.hexdigest()


def copy_domains(target: Path, *names: str) -> Path:
    """Copy pilot files (e.g. "dm.xpt") into a temporary folder (never into the repository)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(PILOT / name, target / name)
    return target


def open_page(page: str, timeout: int = 120):
    """Run the app (the frame) and switch to ``page`` (e.g. "pages/data.py"), as a user's click would."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=timeout)
    at.switch_page(page)
    return at.run()
