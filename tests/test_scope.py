"""The access scope: nobody sees another sponsor's data; unknown or foreign ids are refused politely."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import re

import duckdb
import pandas as pd
import pytest

from analytics.portfolio import overview as portfolio
from analytics.frame.identity import load_users
from analytics.frame.pages import GLOBAL_FILTERS
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.frame.filters import filter_options, validate_filters
from analytics.core import warehouse
from analytics.core.warehouse import Warehouse

SCOPED_FUNCTIONS = (portfolio.study_overview, portfolio.query_aging, portfolio.milestones_at_risk,
                    portfolio.risk_signals)


def _sponsor_studies(wh: Warehouse, sponsor: str) -> set[str]:
    with warehouse.inspect(wh.path) as con:
        return {r[0] for r in con.execute("SELECT study_id FROM main.studies WHERE sponsor_id = ?", [sponsor]).fetchall()}


@pytest.mark.parametrize("func", SCOPED_FUNCTIONS, ids=lambda f: f.__name__)
def test_single_sponsor_scope_returns_only_that_sponsors_studies(demo_db: Path, func) -> None:
    wh = Warehouse.open(demo_db)
    for sponsor in ("SP01", "SP02", "SP03"):
        allowed = _sponsor_studies(wh, sponsor)
        result = func(wh, AccessScope(sponsor_ids=frozenset({sponsor})))
        assert set(result["study_id"]) <= allowed


def test_study_scope_and_filters_narrow_further(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    scope = AccessScope(study_ids=frozenset({"ST002", "ST003"}))
    assert set(portfolio.study_overview(wh, scope)["study_id"]) == {"ST002", "ST003"}
    # A filter cannot widen the scope: asking for a study outside it yields nothing.
    outside = portfolio.study_overview(wh, scope, PortfolioFilter(study_ids=("ST001",)))
    assert outside.empty


def test_country_filter_counts_only_that_countrys_sites(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    de = portfolio.study_overview(wh, AccessScope(), PortfolioFilter(country_codes=("DE",)))
    with warehouse.inspect(demo_db) as con:
        expected = con.execute("""
            SELECT ss.study_id, count(s.randomization_date) AS n FROM main.subjects s
            JOIN main.study_sites ss USING (study_site_id) JOIN main.sites si USING (site_id)
            WHERE si.country_code = 'DE' GROUP BY 1""").df().set_index("study_id")["n"]
    got = de.set_index("study_id")["randomized"]
    pd.testing.assert_series_equal(got[expected.index].astype("int64"), expected.astype("int64"), check_names=False)


def test_filter_options_are_scoped(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    options = filter_options(wh, AccessScope(sponsor_ids=frozenset({"SP01"})))
    assert set(options["sponsor_id"]) == {"SP01"}


def test_foreign_and_unknown_ids_get_the_same_message(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    sponsor = AccessScope(sponsor_ids=frozenset({"SP01"}))
    options = filter_options(wh, sponsor)
    foreign = sorted(set(filter_options(wh, AccessScope())["study_id"]) - set(options["study_id"]))[0]
    own = sorted(options["study_id"])[0]
    filters, _, problems = validate_filters(
        {"study": [own, foreign, "ST999"], "from": ["2025-13-01"], "site": ["x'; DROP TABLE studies; --"]}, wh,
        sponsor, GLOBAL_FILTERS)
    assert filters.study_ids == (own,)
    assert filters.date_from is None
    assert problems[0] == f"Study '{foreign}' is not available to you; it was removed from the filters."
    assert problems[1] == "Study 'ST999' is not available to you; it was removed from the filters."
    assert any("not a date" in p for p in problems)
    assert any("DROP TABLE" in p and "not available" in p for p in problems)


def test_reversed_date_range_is_ignored_with_a_message(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    filters, _, problems = validate_filters({"from": ["2026-05-01"], "to": ["2026-01-01"]}, wh, AccessScope(),
                                            GLOBAL_FILTERS)
    assert filters.date_from is None and filters.date_to is None
    assert problems == ["The date range 2026-05-01 to 2026-01-01 is reversed; it was ignored."]
    filters, _, problems = validate_filters({"from": ["2026-01-01"], "to": ["2026-05-01"]}, wh, AccessScope(),
                                            GLOBAL_FILTERS)
    assert (filters.date_from, filters.date_to, problems) == (dt.date(2026, 1, 1), dt.date(2026, 5, 1), [])


def test_cached_results_are_keyed_on_the_scope(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    everyone = portfolio.study_overview(wh, AccessScope())
    sponsor = portfolio.study_overview(wh, AccessScope(sponsor_ids=frozenset({"SP01"})))
    assert len(everyone) > len(sponsor)
    assert len(portfolio.study_overview(wh, AccessScope())) == len(everyone)


def test_users_file_roles_and_blinding() -> None:
    users = load_users()
    assert users["local"].role.name == "clinops_lead"
    assert users["local"].scope.sponsor_ids is None
    assert users["sponsor_sp01"].scope.sponsor_ids == frozenset({"SP01"})
    assert all(u.scope.blinded for u in users.values() if u.role.name not in ("admin", "unblinded_statistician"))
    assert not users["statistician"].scope.blinded


ARM_QUERIES = (
    "SELECT arm, count(*) AS n FROM treatment_assignments GROUP BY 1",
    'SELECT arm, count(*) AS n FROM "restricted".treatment_assignments GROUP BY 1',
    "SELECT arm, count(*) AS n FROM restricted/**/.treatment_assignments GROUP BY 1",
    "SELECT arm, count(*) AS n FROM query_table('restricted' || '.treatment_assignments') GROUP BY 1",
    "SELECT arm, count(*) AS n FROM restricted.main.treatment_assignments GROUP BY 1",
    "SELECT arm, count(*) AS n FROM read_parquet('x.parquet') GROUP BY 1",
    "SELECT count(*) AS n FROM subjects; SELECT arm FROM treatment_assignments",
)


@pytest.mark.parametrize("sql", ARM_QUERIES)
def test_blinded_scope_cannot_read_treatment_arms_however_the_query_is_spelled(demo_db: Path, sql: str) -> None:
    wh = Warehouse.open(demo_db)
    with pytest.raises(Exception) as refused:
        wh.query(AccessScope(blinded=True), sql)
    assert not isinstance(refused.value, AssertionError)
    assert re.search(r"does not exist|not a scoped relation|may not be used|single SELECT", str(refused.value))


def test_unblinded_scope_reads_treatment_arms_through_the_scope(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    arms = wh.query(AccessScope(blinded=False), ARM_QUERIES[0])
    assert arms["n"].sum() > 0
    one = wh.query(AccessScope(sponsor_ids=frozenset({"SP01"}), blinded=False), ARM_QUERIES[0])
    assert 0 < one["n"].sum() < arms["n"].sum()


def test_a_blinded_connection_cannot_attach_or_read_files(demo_db: Path) -> None:
    # Below the query layer: even a raw cursor of a blinded reader cannot open the restricted store.
    from analytics.core.warehouse import _instance

    instance, cursor = _instance(Path(Warehouse.open(demo_db).path), True)
    restricted = next(demo_db.parent.glob("*.restricted-*.duckdb"))
    try:
        for statement in (f"ATTACH '{restricted}' AS r2 (READ_ONLY)", f"SELECT * FROM '{restricted}'",
                          "SET enable_external_access = true"):
            with pytest.raises(duckdb.Error):
                cursor.execute(statement)
    finally:
        instance.release(cursor)


def test_qualified_tables_are_refused_for_every_scope(demo_db: Path) -> None:
    with pytest.raises(PermissionError, match="not a scoped relation"):
        Warehouse.open(demo_db).query(AccessScope.full_access(), "SELECT count(*) FROM main.subjects")
