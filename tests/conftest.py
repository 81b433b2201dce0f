"""Shared fixtures: generated warehouses (built once per test session) and the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.core import warehouse
from analytics.generator import generate_portfolio
from analytics.core import derived
from analytics.registry import REGISTRY
from analytics.generator.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_SEED = 20261101


def build_warehouse(path: Path, preset: str, seed: int) -> Path:
    """Generate ``preset`` into ``path`` the way ``python -m analytics build`` does."""
    with warehouse.build_aside(path) as con:
        generate_portfolio(con, preset, seed)
        warehouse.set_info(con, {"as_of_date": PRESETS[preset].as_of.isoformat(), "preset": preset, "seed": seed})
        derived.refresh(con, REGISTRY)
    return path


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo portfolio with the default seed (what `make run` shows). Treat as read-only."""
    return build_warehouse(tmp_path_factory.mktemp("demo") / "warehouse.duckdb", "demo", DEMO_SEED)


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small portfolio for fast tests. Treat as read-only."""
    return build_warehouse(tmp_path_factory.mktemp("tiny") / "warehouse.duckdb", "tiny", 7)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (it holds the real CDISC and ClinicalTrials.gov files)")
    return SHARED_DATA


@pytest.fixture
def app_env(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app at the demo warehouse for AppTest runs."""
    monkeypatch.setenv(warehouse.DB_ENV_VAR, str(demo_db))
    monkeypatch.delenv("CRO_USER", raising=False)
    return demo_db


@pytest.fixture(scope="session")
def pilot_db(demo_db: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo portfolio plus the real CDISC pilot imported as study CDISCPILOT01. Treat as read-only."""
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
    from analytics.importers.staging import commit

    path = tmp_path_factory.mktemp("pilot") / "warehouse.duckdb"
    warehouse.copy_warehouse(demo_db, path)
    commit(prepare_sdtm(shared_data / "sdtm" / "cdiscpilot01", path, SdtmOptions(study_id="CDISCPILOT01")), path)
    return path
