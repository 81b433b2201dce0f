"""Access scope and portfolio filters, applied in SQL with parameters.

An :class:`AccessScope` says what a user may see (sponsors, studies, unblinded data). A
:class:`PortfolioFilter` says what the user chose to look at (study, country, site, dates). Both are
frozen and hashable so cached analytics functions key their results on them: one user's cached
result never serves another whose scope differs.

Every query that reads trial data is run through :func:`analytics.core.warehouse.Warehouse.query`, which
prepends the ``scoped_studies`` and ``scoped_sites`` common table expressions built here. Queries
join to those CTEs; they never name user input in SQL text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ALL = None  # sentinel: no restriction on this dimension


@dataclass(frozen=True)
class AccessScope:
    """What one user may see.

    Attributes:
        sponsor_ids: sponsors whose studies are visible; ``None`` means every sponsor.
        study_ids: further restriction to these studies; ``None`` means every study of the sponsors.
        blinded: True when the user must not see treatment assignment.
        role: the user's role name (for page lists and messages; not used in SQL).
    """

    sponsor_ids: frozenset[str] | None = None
    study_ids: frozenset[str] | None = None
    blinded: bool = True
    role: str = "viewer"

    @classmethod
    def full_access(cls, blinded: bool = False, role: str = "admin") -> "AccessScope":
        return cls(None, None, blinded, role)

    def sql_params(self) -> dict[str, object]:
        return {
            "scope_all_sponsors": self.sponsor_ids is None,
            "scope_sponsors": sorted(self.sponsor_ids or ()),
            "scope_all_studies": self.study_ids is None,
            "scope_studies": sorted(self.study_ids or ()),
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

    def sql_params(self) -> dict[str, object]:
        return {
            "f_sponsors": list(self.sponsor_ids),
            "f_studies": list(self.study_ids),
            "f_countries": list(self.country_codes),
            "f_sites": list(self.study_site_ids),
            "date_from": self.date_from or dt.date(1900, 1, 1),
            "date_to": self.date_to or dt.date(2999, 12, 31),
        }


NO_FILTER = PortfolioFilter()

# The CTEs every trial-data query starts from. Parameters only; the text is constant.
SCOPE_CTES = """
scoped_studies AS (
    SELECT st.*
    FROM main.studies st
    WHERE ($scope_all_sponsors OR list_contains($scope_sponsors, st.sponsor_id))
      AND ($scope_all_studies OR list_contains($scope_studies, st.study_id))
      AND (len($f_sponsors) = 0 OR list_contains($f_sponsors, st.sponsor_id))
      AND (len($f_studies) = 0 OR list_contains($f_studies, st.study_id))
),
scoped_sites AS (
    SELECT ss.*, si.name AS site_name, si.country_code, si.city
    FROM main.study_sites ss
    JOIN scoped_studies USING (study_id)
    JOIN main.sites si USING (site_id)
    WHERE (len($f_countries) = 0 OR list_contains($f_countries, si.country_code))
      AND (len($f_sites) = 0 OR list_contains($f_sites, ss.study_site_id))
)"""

