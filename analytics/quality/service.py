"""Page-facing reads of the stored data-quality results: summary, paged findings, signals, a subject's record.

Every function reads the stored derived tables through the scope (pages never run the checks) and
takes small hashable arguments so it can be cached. The findings table is paged in SQL (``LIMIT`` /
``OFFSET``): a large portfolio's findings never travel to the page whole. Findings set aside by a
reviewer ("not an issue", from the records store) are passed in as their ids.
"""

from __future__ import annotations

import pandas as pd

from analytics.core.caching import cached
from analytics.core.derived import Freshness
from analytics.core.derived import freshness as derived_freshness
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.quality.results import FINDINGS_RESULT, SIGNALS_RESULT
from analytics.quality.specs import CATALOGUE, CATEGORIES, SEVERITIES

PAGE_SIZE = 50
EXPORT_LIMIT = 200_000  # findings in one export file (a filter narrows a larger set)
STATUSES = {"open": "Open (not set aside)", "set_aside": "Set aside as not an issue", "all": "All findings"}
CONFORMANCE_NAMES = {"SD0002": "Required variable null", "SD0003": "Invalid ISO 8601 value",
                     "SD0005": "Duplicate --SEQ", "SD0064": "Subject not in DM", "SD0065": "Visit not in SV",
                     "TV-SV": "Planned visit not in TV", "CT2001": "Value outside non-extensible codelist",
                     "CT2002": "Value outside codelist"}

_WHERE = """
WHERE (len($severities) = 0 OR list_contains($severities, f.severity))
  AND (len($categories) = 0 OR list_contains($categories, f.category))
  AND (len($checks) = 0 OR list_contains($checks, f.check_id))
  AND (f.record_date IS NULL OR f.record_date BETWEEN $date_from AND $date_to)
  AND CASE $status WHEN 'open' THEN NOT list_contains($hidden, f.finding_id)
                   WHEN 'set_aside' THEN list_contains($hidden, f.finding_id) ELSE TRUE END
"""


def check_names() -> dict[str, str]:
    """Check id -> "id: name" for every edit check and conformance rule, catalogue order."""
    names = {c.id: f"{c.id}: {c.name}" for c in CATALOGUE}
    names.update({rule: f"{rule}: {name}" for rule, name in CONFORMANCE_NAMES.items()})
    return names


def freshness(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> list[Freshness]:
    """Whether the stored findings and signals of the visible studies are current."""
    return [derived_freshness(wh, scope, filters.study_level(), result) for result in (FINDINGS_RESULT, SIGNALS_RESULT)]


def _params(severities: tuple[str, ...], categories: tuple[str, ...], checks: tuple[str, ...], status: str,
            hidden: tuple[str, ...]) -> dict[str, object]:
    return {"severities": list(severities), "categories": list(categories), "checks": list(checks),
            "status": status, "hidden": list(hidden)}


@cached
def summary(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, hidden: tuple[str, ...]) -> pd.DataFrame:
    """Open findings (not set aside) by category and severity, every combination present."""
    counts = wh.query(scope, f"SELECT f.category, f.severity, count(*) AS findings FROM quality_findings f {_WHERE} "
                             "GROUP BY ALL", _params((), (), (), "open", hidden), filters)
    grid = pd.MultiIndex.from_product([CATEGORIES, SEVERITIES], names=["category", "severity"])
    return counts.set_index(["category", "severity"]).reindex(grid, fill_value=0).reset_index()


@cached
def trend(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, hidden: tuple[str, ...]) -> pd.DataFrame:
    """Open findings per month of their record's date, by category."""
    return wh.query(scope, f"""
        SELECT date_trunc('month', f.record_date) AS month, f.category, count(*) AS findings
        FROM quality_findings f {_WHERE} AND f.record_date IS NOT NULL GROUP BY ALL ORDER BY 1, 2""",
                    _params((), (), (), "open", hidden), filters)


@cached
def findings_page(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, severities: tuple[str, ...],
                  categories: tuple[str, ...], checks: tuple[str, ...], status: str, hidden: tuple[str, ...],
                  page: int, page_size: int = PAGE_SIZE) -> tuple[pd.DataFrame, int]:
    """(one page of findings, most severe and newest first; how many match in all)."""
    params = _params(severities, categories, checks, status, hidden)
    total = int(wh.query(scope, f"SELECT count(*) AS n FROM quality_findings f {_WHERE}", params, filters)["n"].iloc[0])
    rows = wh.query(scope, f"""
        SELECT f.*, s.site_name, s.site_number FROM quality_findings f
        LEFT JOIN scoped_sites s USING (study_site_id)
        {_WHERE}
        ORDER BY CASE f.severity WHEN 'Critical' THEN 0 WHEN 'Major' THEN 1 ELSE 2 END, f.record_date DESC NULLS LAST,
                 f.finding_id
        LIMIT $limit OFFSET $offset""", {**params, "limit": page_size, "offset": max(page - 1, 0) * page_size}, filters)
    return rows, total


def export_findings(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, severities: tuple[str, ...],
                    categories: tuple[str, ...], checks: tuple[str, ...], status: str, hidden: tuple[str, ...],
                    only: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every finding the filters select (at most :data:`EXPORT_LIMIT`), or only the ids in ``only``."""
    params = {**_params(severities, categories, checks, status, hidden), "only": list(only), "limit": EXPORT_LIMIT}
    return wh.query(scope, f"""
        SELECT f.*, s.site_name, s.site_number FROM quality_findings f LEFT JOIN scoped_sites s USING (study_site_id)
        {_WHERE} AND (len($only) = 0 OR list_contains($only, f.finding_id))
        ORDER BY f.study_id, f.study_site_id, f.subject_id, f.check_id LIMIT $limit""", params, filters)


@cached
def findings_by_id(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, ids: tuple[str, ...]) -> pd.DataFrame:
    """The stored findings with these ids that the scope may see."""
    return wh.query(scope, "SELECT * FROM quality_findings WHERE list_contains($ids, finding_id)", {"ids": list(ids)},
                    filters)


@cached
def subjects_with_findings(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Subject id -> label, for the subjects that have findings (the drill-down's choices)."""
    rows = wh.query(scope, "SELECT subject_id, count(*) AS n FROM quality_findings WHERE subject_id IS NOT NULL "
                           "GROUP BY 1 ORDER BY 1", None, filters)
    return {r.subject_id: f"{r.subject_id} ({r.n} finding{'s' if r.n != 1 else ''})" for r in rows.itertuples()}


@cached
def subject_record(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, subject_id: str) -> dict[str, pd.DataFrame]:
    """One subject's record: demographics and dates, visits, adverse events, results, findings."""
    params = {"subject": subject_id}
    return {
        "subject": wh.query(scope, "SELECT * FROM subjects WHERE subject_id = $subject", params, filters),
        "visits": wh.query(scope, "SELECT visit_number, visit_name, status, scheduled_date, window_days, actual_date, "
                                  "entry_date FROM visits WHERE subject_id = $subject ORDER BY visit_number, actual_date",
                           params, filters),
        "adverse_events": wh.query(scope, "SELECT term, serious, serious_criteria, grade, outcome, onset_date, end_date, "
                                          "report_date FROM adverse_events WHERE subject_id = $subject ORDER BY onset_date",
                                   params, filters),
        "results": wh.query(scope, """
            SELECT v.visit_name, m.collected_date, m.domain, m.test_code, m.time_point, m.value, m.unit, m.ref_low,
                   m.ref_high FROM measurements m LEFT JOIN visits v USING (visit_id)
            WHERE m.subject_id = $subject ORDER BY m.collected_date, m.domain, m.test_code""", params, filters),
        "findings": wh.query(scope, "SELECT * FROM quality_findings WHERE subject_id = $subject ORDER BY check_id",
                             params, filters),
    }


@cached
def ranked_sites(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Sites by the combined evidence of their unusual data patterns, strongest first."""
    return wh.query(scope, """
        SELECT q.*, s.site_name, s.site_number, s.country_code FROM quality_sites q JOIN scoped_sites s USING (study_site_id)
        WHERE q.combined_p IS NOT NULL ORDER BY q.score DESC, q.study_site_id""", None, filters)


@cached
def site_signals(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_site_id: str) -> pd.DataFrame:
    """Every stored signal of one site, strongest first."""
    return wh.query(scope, "SELECT * FROM quality_signals WHERE study_site_id = $site ORDER BY p, signal",
                    {"site": study_site_id}, filters)


@cached
def page_numbers(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Page number -> label for the findings the scope and filters hold (at least one page)."""
    total = int(wh.query(scope, "SELECT count(*) AS n FROM quality_findings", None, filters)["n"].iloc[0])
    pages = max(1, -(-total // PAGE_SIZE))
    return {str(n): str(n) for n in range(1, pages + 1)}


@cached
def ranked_site_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Study-site id -> label for the ranked sites (the signal drill-down's choices), strongest first."""
    sites = ranked_sites(wh, scope, filters)
    return {r.study_site_id: f"{r.site_name} ({r.study_id} site {r.site_number})" for r in sites.itertuples()}


def visible_studies(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> list[str]:
    """The study ids the scope and filters select (to narrow reads of the records store)."""
    return wh.query(scope, "SELECT study_id FROM scoped_studies ORDER BY 1", None, filters)["study_id"].tolist()
