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
        subject_level: the page lists subject-level records (a validation report's rows, a subject
            listing); roles that see only aggregates (a sponsor viewer, a presentation) do not get it.
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
    subject_level: bool = False

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


def _drafting_params() -> tuple[Param, ...]:
    from analytics.drafting.page_params import PARAMS

    return PARAMS


def _countries(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.frame.filters import country_labels

    return country_labels(ctx.warehouse, ctx.scope)


def _quality_severities(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.quality.specs import SEVERITIES

    return {s: s for s in SEVERITIES}


def _quality_categories(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.quality.specs import CATEGORIES

    return {c: c for c in CATEGORIES}


def _quality_checks(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.quality.service import check_names

    return check_names()


def _quality_statuses(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.quality.service import STATUSES

    return STATUSES


def _quality_pages(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.quality.service import page_numbers

    return page_numbers(ctx.warehouse, ctx.scope, ctx.filters)


def _quality_subjects(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.quality.service import subjects_with_findings

    return subjects_with_findings(ctx.warehouse, ctx.scope, ctx.filters)


def _quality_sites(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.quality.service import ranked_site_labels

    return ranked_site_labels(ctx.warehouse, ctx.scope, ctx.filters)


def _capa_views(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.capa.service import VIEWS

    return VIEWS


def _capa_studies(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.capa.data import study_labels

    return study_labels(ctx.warehouse, ctx.scope, ctx.filters)


def _capa_groupings(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.capa.tables import GROUP_LABELS

    return GROUP_LABELS


def _capa_qtls(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.capa.qtl import QTLS

    return {q.id: q.name for q in QTLS}


def _capa_events(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.capa.service import event_choices

    return event_choices(ctx.warehouse, ctx.scope, ctx.filters)


def _feasibility(name: str):
    """The Feasibility page's choices for parameter ``name`` (from the historical trials)."""

    def choices(ctx: "PageContext") -> Mapping[str, str]:
        from analytics.feasibility import service

        if name == "compare":
            return service.scenario_choices()
        return getattr(service, f"{name}_choices")(ctx.warehouse)

    return choices


FEASIBILITY_PARAMS = (
    Param("source", "Trials from", choices=_feasibility("source"), default_first=True),
    Param("study_type", "Study type", choices=_feasibility("study_type"), default="INTERVENTIONAL"),
    Param("phase", "Phase", kind="many", choices=_feasibility("phase")),
    Param("group", "Condition group", kind="many", choices=_feasibility("group")),
    Param("condition", "Condition contains", kind="text"),
    Param("countries", "Countries", kind="many", choices=_feasibility("country")),
    Param("sponsor_class", "Sponsor class", kind="many", choices=_feasibility("sponsor_class")),
    Param("from_year", "Start year from", choices=_feasibility("year")),
    Param("to_year", "Start year to", choices=_feasibility("year")),
    Param("status", "Status", kind="many", choices=_feasibility("status")),
    Param("compare", "Saved scenarios compared", kind="many", choices=_feasibility("compare")),
)


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
    PageSpec("feasibility", "pages/feasibility.py", "Feasibility", ":material/travel_explore:", "feasibility",
             filters=(), params=FEASIBILITY_PARAMS,
             filter_note="Benchmarks come from historical registry trials, not from the portfolio's studies, so the "
                         "sponsor, study, site and date filters do not apply; the page's own filters choose the "
                         "comparable trials. Candidate sites are the institutions your access covers."),
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
        "recruitment", "pages/recruitment.py", "Recruitment", ":material/person_search:", "recruitment",
        filters=STUDY_FILTERS,
        params=(
            Param("recruit_study", "Protocol", choices=_recruitment_studies, default_first=True),
            Param("relax", "Criterion to relax", choices=_relaxable_criteria),
            Param("patient", "Patient", choices=_prescreen_patients),
        ),
        filter_note="Each pool is drawn on its site's screening date, so the date filters do not apply here.",
        subject_level=True,
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
        "data_quality", "pages/data_quality.py", "Data quality", ":material/fact_check:", "data_quality",
        params=(
            Param("severity", "Severity", kind="many", choices=_quality_severities),
            Param("category", "Category", kind="many", choices=_quality_categories),
            Param("check", "Check", kind="many", choices=_quality_checks),
            Param("show", "Show", choices=_quality_statuses, default="open"),
            Param("page", "Page", choices=_quality_pages, default="1"),
            Param("subject", "Subject", choices=_quality_subjects),
            Param("signal_site", "Site", choices=_quality_sites),
        ),
        filter_note="Sites are compared with their whole study: the country and site filters choose rows, never "
                    "the peers. The date filters apply to the date of each finding's record.",
        subject_level=True,
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
        "capa", "pages/capa_trends.py", "CAPA trends", ":material/published_with_changes:", "capa_trends",
        params=(
            Param("view", "View", choices=_capa_views, default="trends"),
            Param("chart_study", "Study for the charts", choices=_capa_studies),
            Param("group", "Group by", choices=_capa_groupings, default="process"),
            Param("qtl", "Parameter", choices=_capa_qtls, default="important_deviations"),
            Param("event", "Quality event", choices=_capa_events),
        ),
        filter_note="Control charts end at the last full month before the data's as-of date; QTLs are judged on "
                    "whole studies, so the country and site filters do not narrow them.",
    ),
    PageSpec("drafting", "pages/drafting.py", "Drafting", ":material/edit_document:", "drafting", filters=(),
             params=_drafting_params(), has_charts=False),
    PageSpec("data", "pages/data.py", "Data", ":material/database_upload:", "data", filters=(), has_charts=False,
             subject_level=True),
)

PAGES_BY_KEY = {p.key: p for p in PAGES}


def pages_for(role: "Role") -> list[PageSpec]:
    """The pages ``role`` may open, in menu order (subject-level pages only for roles that see subjects)."""
    return [p for p in PAGES if role.allows(p.needs) and (role.subject_level or not p.subject_level)]


def links_for(role: "Role", exclude: str) -> list[PageSpec]:
    """Pages to link to from page ``exclude`` for ``role``."""
    return [p for p in pages_for(role) if p.key != exclude]


def page_for_path(path: str) -> PageSpec | None:
    """The page whose file or URL path is ``path``."""
    for p in PAGES:
        if path in (p.path, p.url_path) or path.endswith("/" + p.path):
            return p
    return None
