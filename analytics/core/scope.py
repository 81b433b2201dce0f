"""Access scope and portfolio filters, and the scoped relations every trial-data query reads.

An :class:`AccessScope` says what a user may see (sponsors, studies, sites, unblinded data). A
:class:`PortfolioFilter` says what the user chose to look at (sponsor, study, country, site,
dates). Both are frozen and hashable so cached analytics functions key their results on them: one
user's cached result never serves another whose scope differs.

Queries never name warehouse tables directly. :func:`scoped_relations` turns the schema
declaration into common table expressions that carry the *bare table names* (``subjects``,
``visits``, ``kri_cells``, ...) and contain only the rows the scope and filters allow, so ordinary
SQL (``FROM subjects JOIN visits USING (subject_id)``) cannot reach an unscoped row. Restricted
relations (treatment arms) are defined only for unblinded scopes; for a blinded scope the
restricted store is not even attached to the connection (see :mod:`analytics.core.warehouse`), so
a query naming them fails with "table not found". Values reach SQL only as ``$name`` parameters;
the CTE text is constant, chosen from the schema and never from input.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from analytics.core import schema

ALL = None  # sentinel: no restriction on this dimension
READER_CATALOG = "wh"  # the warehouse file's catalog name in every query connection


@dataclass(frozen=True)
class AccessScope:
    """What one user may see.

    Attributes:
        sponsor_ids: sponsors whose studies are visible; ``None`` means every sponsor.
        study_ids: further restriction to these studies; ``None`` means every study of the sponsors.
        study_site_ids: further restriction to these study-sites (a monitor's assigned sites);
            ``None`` means every site of the visible studies.
        blinded: True when the user must not see treatment assignment.
        subject_level: False when the user may see only site and study aggregates, never a
            subject-level record (a sponsor viewer); page-facing functions refuse to return subject
            rows for such a scope (:mod:`analytics.core.caching`) and pages leave out what lists
            subjects.
    """

    sponsor_ids: frozenset[str] | None = None
    study_ids: frozenset[str] | None = None
    study_site_ids: frozenset[str] | None = None
    blinded: bool = True
    subject_level: bool = True

    @classmethod
    def full_access(cls, blinded: bool = False) -> "AccessScope":
        return cls(None, None, None, blinded)

    @property
    def is_full(self) -> bool:
        return self.sponsor_ids is None and self.study_ids is None and self.study_site_ids is None

    def sql_params(self) -> dict[str, object]:
        return {
            "scope_all_sponsors": self.sponsor_ids is None,
            "scope_sponsors": sorted(self.sponsor_ids or ()),
            "scope_all_studies": self.study_ids is None,
            "scope_studies": sorted(self.study_ids or ()),
            "scope_all_sites": self.study_site_ids is None,
            "scope_sites": sorted(self.study_site_ids or ()),
        }


@dataclass(frozen=True)
class PortfolioFilter:
    """The global filters chosen in the frame (empty tuple = no narrowing on that dimension)."""

    sponsor_ids: tuple[str, ...] = ()
    study_ids: tuple[str, ...] = ()
    country_codes: tuple[str, ...] = ()
    study_site_ids: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def study_level(self) -> "PortfolioFilter":
        """Only the sponsor and study choices: the comparison set when sites are judged against
        their whole study (country, site and date filters choose rows to show, not the reference)."""
        return PortfolioFilter(sponsor_ids=self.sponsor_ids, study_ids=self.study_ids)

    @property
    def is_empty(self) -> bool:
        return self == NO_FILTER

    @property
    def narrows_sites(self) -> bool:
        return bool(self.country_codes or self.study_site_ids)

    def sql_params(self) -> dict[str, object]:
        return {
            "f_sponsors": list(self.sponsor_ids),
            "f_studies": list(self.study_ids),
            "f_countries": list(self.country_codes),
            "f_sites": list(self.study_site_ids),
            "f_site_narrowed": self.narrows_sites,
            "date_from": self.date_from or dt.date(1900, 1, 1),
            "date_to": self.date_to or dt.date(2999, 12, 31),
        }


NO_FILTER = PortfolioFilter()

# --- the scoped relations ---------------------------------------------------------------------

_SCOPED_STUDIES = """
scoped_studies AS (
    SELECT st.* FROM {cat}.main.studies st
    WHERE ($scope_all_sponsors OR list_contains($scope_sponsors, st.sponsor_id))
      AND ($scope_all_studies OR list_contains($scope_studies, st.study_id))
      AND (len($f_sponsors) = 0 OR list_contains($f_sponsors, st.sponsor_id))
      AND (len($f_studies) = 0 OR list_contains($f_studies, st.study_id))
)"""
_SCOPED_SITES = """
scoped_sites AS (
    SELECT ss.*, si.name AS site_name, si.country_code, si.city
    FROM {cat}.main.study_sites ss
    JOIN scoped_studies USING (study_id)
    JOIN {cat}.main.sites si USING (site_id)
    WHERE ($scope_all_sites OR list_contains($scope_sites, ss.study_site_id))
      AND (len($f_countries) = 0 OR list_contains($f_countries, si.country_code))
      AND (len($f_sites) = 0 OR list_contains($f_sites, ss.study_site_id))
)"""
# Full access with no filter: the same relations without the semi-joins (the text is still constant).
_OPEN_STUDIES = "\nscoped_studies AS (SELECT st.* FROM {cat}.main.studies st)"
_OPEN_SITES = """
scoped_sites AS (
    SELECT ss.*, si.name AS site_name, si.country_code, si.city
    FROM {cat}.main.study_sites ss JOIN {cat}.main.sites si USING (site_id)
)"""

# How each access rule narrows a table to the scope (``t`` is the table, ``{src}`` its location).
_RULES = {
    "reference": "SELECT t.* FROM {src} t",
    "study": "SELECT t.* FROM {src} t WHERE t.study_id IN (SELECT study_id FROM scoped_studies)",
    "site": "SELECT t.* FROM {src} t WHERE t.study_site_id IN (SELECT study_site_id FROM scoped_sites)",
    # Site-level rows by their site; study-level rows (no site) while no site or country is chosen.
    "site_or_study": (
        "SELECT t.* FROM {src} t WHERE t.study_site_id IN (SELECT study_site_id FROM scoped_sites) "
        "OR (t.study_site_id IS NULL AND NOT $f_site_narrowed AND $scope_all_sites "
        "AND t.study_id IN (SELECT study_id FROM scoped_studies))"
    ),
    "subject": "SELECT t.* FROM {src} t WHERE t.subject_id IN (SELECT subject_id FROM subjects)",
    "sponsor": "SELECT t.* FROM {src} t WHERE t.sponsor_id IN (SELECT sponsor_id FROM scoped_studies)",
    "institution": "SELECT t.* FROM {src} t WHERE t.site_id IN (SELECT site_id FROM scoped_sites)",
    # Provenance of the visible studies, and of the ClinicalTrials.gov benchmark files (not trial data).
    "provenance": ("SELECT t.* FROM {src} t WHERE t.study_id IN (SELECT study_id FROM scoped_studies) "
                   "OR t.source_type = 'ctgov'"),
    # The two scoping relations themselves.
    "studies": "SELECT * FROM scoped_studies",
    "study_sites": "SELECT * EXCLUDE (site_name, country_code, city) FROM scoped_sites",
}
_OPEN_RULES = {"study", "site", "site_or_study", "sponsor", "institution", "provenance"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _source(table: schema.Table, catalog: str) -> str:
    if table.schema == "restricted":
        return f"restricted.main.{table.name}"
    return f"{catalog}.{table.schema}.{table.name}"


@lru_cache(maxsize=8)
def _relation_texts(blinded: bool, open_access: bool, catalog: str) -> dict[str, str]:
    """Relation name -> ``name AS (...)`` text for every table a scope of this kind may read."""
    texts = {
        "scoped_studies": (_OPEN_STUDIES if open_access else _SCOPED_STUDIES).format(cat=catalog),
        "scoped_sites": (_OPEN_SITES if open_access else _SCOPED_SITES).format(cat=catalog),
    }
    for table in schema.TABLES:
        rule = table.access
        if rule == "hidden" or (blinded and table.schema == "restricted"):
            continue
        template = "SELECT t.* FROM {src} t" if open_access and rule in _OPEN_RULES else _RULES[rule]
        texts[table.name] = f"\n{table.name} AS ({template.format(src=_source(table, catalog))})"
    return texts


_DEPENDS = {"subject": ("subjects",), "reference": ()}


def scoped_relations(sql: str, blinded: bool, open_access: bool, catalog: str = READER_CATALOG) -> str:
    """The ``name AS (...)`` CTEs (comma separated, in dependency order) that ``sql`` refers to.

    Only relations whose names appear in ``sql`` are included (and what they depend on), which
    keeps parsing cheap; a relation that is not included cannot be read, so this is not a guard.
    """
    texts = _relation_texts(blinded, open_access, catalog)
    wanted = {name for name in _IDENTIFIER.findall(sql) if name in texts}
    for name in list(wanted):
        if name in schema.TABLES_BY_NAME:
            wanted.update(_DEPENDS.get(schema.TABLES_BY_NAME[name].access, ()))
    if wanted:
        wanted.update({"scoped_studies", "scoped_sites"})
    order = ["scoped_studies", "scoped_sites", "subjects"]
    names = [n for n in order if n in wanted] + sorted(wanted - set(order))
    return ",".join(texts[n] for n in names if n in texts)


def relation_names(blinded: bool) -> frozenset[str]:
    """Every relation a scope of this kind can read (bare names)."""
    return frozenset(_relation_texts(blinded, False, READER_CATALOG))
