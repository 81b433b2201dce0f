"""Loading by scope: a loader limited to some sponsors, studies or sites cannot change what others see."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.core import warehouse
from analytics.core.scope import AccessScope
from analytics.importers.ctgov import prepare_ctgov
from analytics.importers.report import ImportRefused
from analytics.importers.staging import commit
from analytics.importers.tables import prepare_tables
from tests.import_helpers import sha256


def _shared_institution(db: Path) -> tuple[str, str, str]:
    """(site_id, sponsor A, sponsor B): an institution that studies of two sponsors use."""
    with warehouse.inspect(db) as con:
        return con.execute(
            "SELECT ss.site_id, min(st.sponsor_id), max(st.sponsor_id) FROM main.study_sites ss "
            "JOIN main.studies st USING (study_id) GROUP BY 1 HAVING count(DISTINCT st.sponsor_id) > 1 "
            "ORDER BY 1 LIMIT 1").fetchone()


def _own_institution(db: Path, sponsor: str) -> str:
    with warehouse.inspect(db) as con:
        return con.execute(
            "SELECT ss.site_id FROM main.study_sites ss JOIN main.studies st USING (study_id) GROUP BY 1 "
            "HAVING bool_and(st.sponsor_id = ?) ORDER BY 1 LIMIT 1", [sponsor]).fetchone()[0]


def _messages(load) -> str:
    return " | ".join(load.report.to_frame()["message"].astype(str))


def test_a_sponsor_limited_loader_cannot_change_an_institution_another_sponsor_uses(tiny_db, tmp_path) -> None:
    site, sponsor, _other = _shared_institution(tiny_db)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "sites.csv").write_text(f"site_id,name,country_code,city\n{site},Renamed Hospital,DE,Berlin\n")
    scope = AccessScope(sponsor_ids=frozenset({sponsor}))
    before = sha256(tiny_db)
    load = prepare_tables(folder, tiny_db, scope=scope)
    assert load.report.refused
    assert "also a site of studies outside your access" in _messages(load)
    with pytest.raises(ImportRefused):
        commit(load, tiny_db)
    assert sha256(tiny_db) == before
    # The same row from a loader who sees every sponsor is accepted (validated, not committed here).
    assert not prepare_tables(folder, tiny_db, scope=AccessScope.full_access(blinded=True)).report.refused


def test_an_institution_only_the_loaders_studies_use_may_be_changed(tiny_db, tmp_path) -> None:
    site, sponsor, _ = _shared_institution(tiny_db)
    own = _own_institution(tiny_db, sponsor)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "sites.csv").write_text(f"site_id,name,country_code,city\n{own},Renamed Hospital,DE,Berlin\n")
    load = prepare_tables(folder, tiny_db, scope=AccessScope(sponsor_ids=frozenset({sponsor})))
    assert not load.report.refused, _messages(load)


def test_a_sponsor_limited_loader_cannot_rename_another_sponsor(tiny_db, tmp_path) -> None:
    _, sponsor, other = _shared_institution(tiny_db)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "sponsors.csv").write_text(f"sponsor_id,name\n{other},Someone Else Pharma\n")
    load = prepare_tables(folder, tiny_db, scope=AccessScope(sponsor_ids=frozenset({sponsor})))
    assert load.report.refused and "sponsor outside your access" in _messages(load)


def test_a_site_limited_loader_cannot_load_rows_of_other_sites(tiny_db, tmp_path) -> None:
    with warehouse.inspect(tiny_db) as con:
        study, mine, theirs = con.execute(
            "SELECT study_id, min(study_site_id), max(study_site_id) FROM main.study_sites GROUP BY 1 ORDER BY 1 "
            "LIMIT 1").fetchone()
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "subjects.csv").write_text(
        "subject_id,study_id,study_site_id,sex,age,screening_date,randomization_date,status\n"
        f"NEW-001,{study},{theirs},F,54,2024-01-20,2024-02-01,On study\n")
    scope = AccessScope(study_ids=frozenset({study}), study_site_ids=frozenset({mine}))
    load = prepare_tables(folder, tiny_db, scope=scope)
    assert load.report.refused and "you may not load data for this site" in _messages(load)


def test_benchmark_trials_are_loaded_only_by_a_loader_who_sees_every_sponsor(tiny_db, tmp_path) -> None:
    export = tmp_path / "trials.csv"
    export.write_text("NCT Number,Study Title\nNCT00000001,A trial\n")
    load = prepare_ctgov(export, scope=AccessScope(sponsor_ids=frozenset({"SP01"})))
    assert load.report.refused and "shared by every sponsor" in _messages(load)
