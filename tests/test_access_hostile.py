"""Hostile input: links with SQL fragments, 10 kB values, control characters, repeated and unknown
parameters, and uploaded file names with path tricks are refused with a plain message, without a
trace, and without effect: the warehouse and the records store stay byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.core import warehouse
from analytics.frame.pages import PAGES
from analytics.importers.uploads import unsafe_upload_name
from tests.import_helpers import sha256

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TEN_KB = "A" * 10_240
HOSTILE_VALUES = [
    "ST001' OR '1'='1",
    "SP01; DROP TABLE main.studies; --",
    "x' UNION SELECT arm FROM restricted.treatment_assignments --",
    "$scope_all_sponsors",
    TEN_KB,
    "ST001\x00",
    "\x1b[31mred\x1b[0m",
    "ST001\r\nSet-Cookie: session=stolen",
    "../../../../etc/passwd",
    "%27%20OR%201%3D1",
]


def _records_bytes(url: str) -> str:
    path = Path(url.removeprefix("sqlite:///"))
    digest = hashlib.sha256()
    for part in (path, path.with_name(path.name + "-wal")):  # the WAL holds committed writes not yet checkpointed
        digest.update(part.read_bytes() if part.exists() else b"")
    return digest.hexdigest()


@pytest.fixture
def hostile_app(tiny_db, tmp_path, monkeypatch):
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "db" / "warehouse.duckdb")
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    monkeypatch.setenv("CRO_WAREHOUSE", str(db))
    monkeypatch.setenv("CRO_RECORDS_URL", url)

    def start(user: str) -> tuple[AppTest, Path, str]:
        monkeypatch.setenv("CRO_USER", user)
        at = AppTest.from_file(APP, default_timeout=120).run()  # signed in (its record written) before the snapshot
        assert not at.exception and at.dataframe
        return at, db, url

    return start


def _check_run(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    shown = [m.value for m in (*at.warning, *at.error)]
    for message in shown:
        assert message.isprintable(), f"{where}: a control character reached the page: {message!r}"
        assert len(message) < 500, f"{where}: a message repeats a long value ({len(message)} characters)"
        assert "Traceback" not in message and "duckdb" not in message.lower(), f"{where}: {message}"


@pytest.mark.parametrize("spec", PAGES, ids=lambda p: p.key)
def test_hostile_links_are_refused_without_effect(spec, hostile_app) -> None:
    at, db, url = hostile_app("admin")  # the administrator opens every page
    before = (sha256(db), _records_bytes(url))
    names = [*spec.filters, *(p.name for p in spec.params), "page", "embed_options", "__proto__"]
    at.switch_page(spec.path)
    at.run()
    for value in HOSTILE_VALUES:
        at.query_params.clear()
        for name in names:
            at.query_params[name] = value
        at.run()
        _check_run(at, f"{spec.key} with {value[:40]!r}")
    at.query_params.clear()
    for name in names:
        at.query_params[name] = ["ST001"] * 600  # more repetitions than a link may carry
    at.run()
    _check_run(at, f"{spec.key} with 600 repeated values")
    assert (sha256(db), _records_bytes(url)) == before, "a hostile link changed the warehouse or the records store"


def test_a_link_to_a_page_the_role_lacks_finds_nothing(hostile_app) -> None:
    at, db, url = hostile_app("sponsor_sp01")
    before = (sha256(db), _records_bytes(url))
    with pytest.raises(ValueError):  # the page is not in the sponsor viewer's navigation at all
        at.switch_page("pages/data.py")
    at.run()
    assert "Data" not in [t.value for t in at.title]
    assert (sha256(db), _records_bytes(url)) == before


@pytest.mark.parametrize("name", ["../../etc/passwd.csv", "..\\..\\boot.ini", "/etc/passwd", "dm.csv\x00.xpt",
                                  ".hidden.csv", "C:\\x.csv", "a/b.csv", "..", "", " ", "x" * 300 + ".csv",
                                  "dm\n.csv", "c:dm.csv"])
def test_unsafe_upload_names_are_refused(name) -> None:
    assert unsafe_upload_name(name)


@pytest.mark.parametrize("name", ["dm.xpt", "DM 2024-01.csv", "ae_v2.json", "tables.parquet"])
def test_plain_upload_names_are_accepted(name) -> None:
    assert unsafe_upload_name(name) is None
