"""The page declarations: every page of the workbench, declared once.

A :class:`PageSpec` gives a page's key, file, title, icon and URL path, the global filters it
honours, its own URL parameters and the permission it needs. The frame (``app.py``) builds
``st.navigation`` from the pages the user's role permits, draws only the filters the current page
declared, validates the URL against the declarations and hands the page one validated
:class:`~analytics.frame.session.PageContext`. The role x page tests, the browser tests and the
benchmark all iterate over :data:`PAGES`, so a new page is one declaration here, one file in
``pages/`` and its analytics module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analytics.frame.params import Param

if TYPE_CHECKING:
    from analytics.frame.identity import Role
    from analytics.frame.session import PageContext

GLOBAL_FILTERS = ("sponsor", "study", "country", "site", "from", "to")
ALL_FILTERS = GLOBAL_FILTERS
STUDY_FILTERS = ("sponsor", "study", "country", "site")  # pages whose figures have no date axis


@dataclass(frozen=True)
class PageSpec:
    """One page.

    Attributes:
        key: stable id; the permission to open it is ``view:<key>`` unless ``permission`` says otherwise.
        path: the page file under ``pages/``; its stem must equal ``url_path`` (see the frame).
        title, icon: as shown in the navigation.
        url_path: the page's URL.
        filters: the global filters the page honours (the frame draws only these).
        params: the page's own URL parameters.
        has_charts: the page always shows at least one chart (the browser tests check them).
        filter_note: why some global filters do not apply, shown under the filter panel.
    """

    key: str
    path: str
    title: str
    icon: str
    url_path: str
    filters: tuple[str, ...] = ALL_FILTERS
    params: tuple[Param, ...] = ()
    permission: str = ""
    has_charts: bool = True
    filter_note: str = ""

    @property
    def needs(self) -> str:
        return self.permission or f"view:{self.key}"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"page {self.key!r} declares no parameter {name!r}")


# --- page parameters -------------------------------------------------------------------------


def _kri_methods(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.kri.service import METHOD_LABELS

    return METHOD_LABELS


def _kri_names(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.kri.service import kri_names

    return kri_names()


def _heatmap_sites(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.kri.service import scored_site_labels

    return scored_site_labels(ctx.warehouse, ctx.scope, ctx.filters)


def _heatmap_rows(ctx: "PageContext") -> Mapping[str, str]:
    return {str(n): str(n) for n in (25, 50, 100, 200)}


def _areas(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.sites.performance import therapeutic_areas

    return {area: area for area in therapeutic_areas(ctx.warehouse, ctx.scope)}


def _enrollment_studies(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.enrollment.service import study_summaries

    summaries = study_summaries(ctx.warehouse, ctx.scope, ctx.filters)
    return {s: f"{p} ({s})" for s, p in zip(summaries["study_id"], summaries["protocol_id"])}


def _demographic_dimensions(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.enrollment.service import DIMENSION_LABELS

    return DIMENSION_LABELS


def _countries(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.frame.filters import country_labels

    return country_labels(ctx.warehouse, ctx.scope)


def _recruitment_studies(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.recruitment.service import study_labels

    return study_labels(ctx.warehouse, ctx.scope, ctx.filters)


def _relaxable_criteria(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.recruitment.service import relaxable_labels

    return relaxable_labels(ctx.warehouse, ctx.scope, ctx.filters)


def _prescreen_patients(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.recruitment.service import patient_labels

    return patient_labels(ctx.warehouse, ctx.scope, ctx.filters)


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    PageSpec(
        "enrollment", "pages/enrollment.py", "Enrollment", ":material/group_add:", "enrollment",
        filters=STUDY_FILTERS,
        params=(
            Param("forecast_study", "Study to forecast", choices=_enrollment_studies, default_first=True),
            Param("group", "Who is enrolled", choices=_demographic_dimensions, default="sex"),
        ),
        filter_note="Forecasts start from the data's as-of date, so the date filters do not apply here.",
    ),
    PageSpec(
        "site_performance", "pages/site_performance.py", "Site performance", ":material/leaderboard:",
        "site_performance",
        params=(
            Param("area", "Therapeutic area", choices=_areas, default_first=True),
            Param("rank_country", "Countries", kind="many", choices=_countries),
        ),
    ),
    PageSpec(
        "rbm", "pages/rbm_heatmap.py", "RBM heatmap", ":material/grid_on:", "rbm_heatmap",
        filters=STUDY_FILTERS,
        params=(
            Param("method", "Method", choices=_kri_methods, default="calibrated"),
            Param("rows", "Sites shown", choices=_heatmap_rows, default="50"),
            Param("focus", "Site", choices=_heatmap_sites),
            Param("kri", "KRI", choices=_kri_names, default="ae_rate"),
        ),
        filter_note="Monthly snapshots always end at the data's as-of date, so the date filters do not apply here.",
    ),
    PageSpec(
        "recruitment", "pages/recruitment.py", "Recruitment", ":material/person_search:", "recruitment",
        filters=STUDY_FILTERS,
        params=(
            Param("recruit_study", "Protocol", choices=_recruitment_studies, default_first=True),
            Param("relax", "Criterion to relax", choices=_relaxable_criteria),
            Param("patient", "Patient", choices=_prescreen_patients),
        ),
        filter_note="Each pool is drawn on its site's screening date, so the date filters do not apply here.",
    ),
    PageSpec("data", "pages/data.py", "Data", ":material/database_upload:", "data", filters=(), has_charts=False),
)

PAGES_BY_KEY = {p.key: p for p in PAGES}


def pages_for(role: "Role") -> list[PageSpec]:
    """The pages ``role`` may open, in menu order."""
    return [p for p in PAGES if role.allows(p.needs)]


def links_for(role: "Role", exclude: str) -> list[PageSpec]:
    """Pages to link to from page ``exclude`` for ``role``."""
    return [p for p in pages_for(role) if p.key != exclude]


def page_for_path(path: str) -> PageSpec | None:
    """The page whose file or URL path is ``path``."""
    for p in PAGES:
        if path in (p.path, p.url_path) or path.endswith("/" + p.path):
            return p
    return None
