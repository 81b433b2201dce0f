"""The command line entry as a user runs it: build, migrate, dictionary, bench."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from analytics.cli import main
from tests.import_helpers import as_release_1
from analytics.core import warehouse
from analytics.core import schema


def test_build_prints_row_counts_and_writes_the_facts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "w.duckdb"
    assert main(["build", "--preset", "tiny", "--db", str(db), "--seed", "3"]) == 0
    out = capsys.readouterr()
    assert f"Built {db} (preset tiny, seed 3)" in out.out
    assert "main.subjects" in out.out and "main.measurements" in out.out
    assert "100%" in out.err  # the progress display
    with warehouse.inspect(db) as con:
        facts = dict(con.execute("SELECT key, value FROM meta.warehouse_info").fetchall())
    assert facts["preset"] == "tiny" and facts["seed"] == "3" and facts["as_of_date"] == "2026-11-01"


def test_build_if_missing_keeps_an_existing_file(tiny_db: Path, tmp_path: Path, capsys) -> None:
    db = tmp_path / "w.duckdb"
    warehouse.copy_warehouse(tiny_db, db)
    before = db.read_bytes()
    assert main(["build", "--preset", "tiny", "--db", str(db), "--if-missing"]) == 0
    assert "exists; not rebuilt" in capsys.readouterr().out
    assert db.read_bytes() == before


def test_refresh_reports_what_it_recomputed(tiny_db: Path, tmp_path: Path, capsys) -> None:
    db = tmp_path / "w.duckdb"
    warehouse.copy_warehouse(tiny_db, db)
    assert main(["refresh", "--db", str(db)]) == 0
    assert "every stored result is current" in capsys.readouterr().out
    assert main(["refresh", "--db", str(db), "--all"]) == 0
    out = capsys.readouterr().out
    assert "kri: refreshed" in out and "atypical: refreshed" in out and "forced" in out


def test_migrate_moves_arms_out_of_an_older_file_and_refreshes(tiny_db: Path, tmp_path: Path, capsys) -> None:
    db = tmp_path / "w.duckdb"
    arms = as_release_1(tiny_db, db)
    assert main(["migrate", "--db", str(db)]) == 0
    assert f"schema version 1 -> {schema.SCHEMA_VERSION}" in capsys.readouterr().out
    with warehouse.inspect(db) as con:
        assert not con.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'restricted'"
                               ).fetchone()[0]
        assert con.execute("SELECT count(DISTINCT study_id) FROM derived.kri_cells").fetchone()[0] > 0
    with warehouse.inspect(db) as con:
        assert con.execute("SELECT count(*) FROM restricted.treatment_assignments").fetchone()[0] == arms
    assert main(["migrate", "--db", str(db)]) == 0
    assert f"schema version {schema.SCHEMA_VERSION}, current" in capsys.readouterr().out
    assert main(["migrate", "--db", str(tmp_path / "absent.duckdb")]) == 2


def test_bench_reports_every_page(tiny_db: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    # The exit code says whether the speed targets were met: timing, not correctness, so not asserted here.
    main(["bench", "--db", str(tiny_db), "--out", str(out), "--runs", "1", "--user", "admin"])
    report = json.loads(out.read_text())
    from analytics.frame.pages import PAGES

    views = [p["page"] for p in report["pages"]]
    assert views[: len(PAGES)] == [p.path for p in PAGES]
    assert report["pages"][-1]["title"] == "RBM heatmap drill-down"
    assert all(p["cold_seconds"] > 0 and p["warm_seconds"] > 0 and not p["errors"] for p in report["pages"])
    assert report["slowest_analytics_calls"] and report["peak_memory_mib"] > 0
    import shutil

    if shutil.which("chromium"):  # every view was also timed in the browser, to its last chart
        assert [b["page"] for b in report["browser"]] == [p["page"] for p in report["pages"]]
        assert all(b["browser_seconds"] > 0 for b in report["browser"])
    printed = capsys.readouterr().out
    assert "cold s" in printed and ("headless Chromium" in printed or not shutil.which("chromium"))


def test_bench_enrollment_prints_the_simulation_time(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench-enrollment.json"
    main(["bench", "enrollment", "--runs", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["mid_study"]["simulations"] == 10_000 and report["mid_study"]["sites"] == 500
    assert report["mid_study"]["predict_seconds"] > 0 and report["all_pending"]["pending_sites"] == 500
    assert "10,000 simulations of a 500-site study" in capsys.readouterr().out


def test_eval_enrollment_is_registered_with_its_options() -> None:
    from analytics.cli import make_parser

    args = make_parser().parse_args(["eval", "enrollment", "--max-studies", "2", "--calibrate", "--out", "x.json"])
    assert args.target == "enrollment" and args.max_studies == 2 and args.calibrate


def test_bench_refresh_refuses_a_warehouse_of_an_older_schema_before_any_work(tiny_db: Path, tmp_path: Path,
                                                                              capsys) -> None:
    db = warehouse.copy_warehouse(tiny_db, tmp_path / "w.duckdb")
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM meta.schema_version")
        con.execute("INSERT INTO meta.schema_version VALUES (9, 'Enrollment forecasts', now())")
    scratch = tmp_path / "scratch"
    assert main(["bench", "refresh", "--db", str(db), "--scratch", str(scratch)]) == 2
    err = capsys.readouterr().err
    assert f"{db} is at schema version 9" in err and f"migrate --db {db}" in err
    assert not scratch.exists()  # nothing copied, nothing timed
