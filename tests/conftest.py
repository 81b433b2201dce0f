"""Shared fixtures: generated warehouses (built once per test session), the shared data folder, and
records databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


def build_warehouse(path: Path, preset: str, seed: int, refresh: bool = True) -> Path:
    """Generate ``preset`` into ``path`` the way ``python -m analytics build`` does.

    ``refresh=False`` leaves the derived results out: the generated data alone, for tests of the
    generator (the refresh is most of a build's time).
    """
    with warehouse.build_aside(path) as con:
        generate_portfolio(con, preset, seed)
        warehouse.set_info(con, {"as_of_date": PRESETS[preset].as_of.isoformat(), "preset": preset, "seed": seed})
        if refresh:
            derived.refresh(con, REGISTRY)
    return path


@pytest.fixture(scope="session", autouse=True)
def records_store_of_the_test_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """App runs (AppTest, browser servers, command-line loads) write their audit records to a throwaway
    store, never to the repository's data/records.sqlite."""
    saved = {k: os.environ.get(k) for k in ("CRO_RECORDS_URL", "CRO_IDENTITY_MODE", "CRO_USERS_FILE")}
    url = f"sqlite:///{tmp_path_factory.mktemp('records') / 'records.sqlite'}"
    os.environ["CRO_RECORDS_URL"] = url
    os.environ.pop("CRO_IDENTITY_MODE", None)
    os.environ.pop("CRO_USERS_FILE", None)
    yield url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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
def app_env(demo_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the app at the demo warehouse and a throwaway records store, with no model endpoint."""
    monkeypatch.setenv(warehouse.DB_ENV_VAR, str(demo_db))
    monkeypatch.setenv("CRO_RECORDS_URL", f"sqlite:///{tmp_path / 'records.sqlite'}")
    for name in ("CRO_USER", "CRO_LLM_BASE_URL", "OPENAI_BASE_URL", "CRO_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
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


# --- the records store on both backends --------------------------------------------------------

POSTGRES_URL_ENV_VAR = "CRO_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV_VAR = "CRO_REQUIRE_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server whose user may create databases: ``$CRO_TEST_POSTGRES_URL``, else a
    throwaway server started here with initdb/pg_ctl, else skip (fail when CRO_REQUIRE_POSTGRES=1)."""
    import os

    from tests import postgres_server

    def unavailable(reason: str) -> None:
        if os.environ.get(REQUIRE_POSTGRES_ENV_VAR) == "1":
            pytest.fail(f"PostgreSQL is required ({REQUIRE_POSTGRES_ENV_VAR}=1) but {reason}")
        pytest.skip(f"no PostgreSQL for the records tests: {reason}")

    if os.environ.get(POSTGRES_URL_ENV_VAR):
        yield os.environ[POSTGRES_URL_ENV_VAR]
        return
    bin_dir = postgres_server.find_bin_dir()
    if bin_dir is None:
        unavailable(f"{POSTGRES_URL_ENV_VAR} is not set and no initdb/pg_ctl was found "
                    "(Debian: apt-get install postgresql)")
    try:
        server = postgres_server.start(bin_dir)
    except (RuntimeError, OSError, KeyError) as error:  # KeyError: no postgres user to run it as
        unavailable(f"starting a throwaway server with {bin_dir} failed: {error}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty records database: a SQLite file, or a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.sqlite'}"
        return
    import uuid

    import sqlalchemy as sa

    server_url = sa.make_url(request.getfixturevalue("postgres_server_url"))
    name = f"cro_records_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server_url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
