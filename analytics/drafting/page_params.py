"""The Drafting page's URL parameters: the document type, what it is about (one parameter per kind
of subject, so each widget offers only its kind), the period and a recorded draft to open.

Choices are computed for the signed-in user (scoped), so a link naming another sponsor's site, CAPA
or draft gets "not available to you" like every other page. Heavy imports happen inside the choice
functions: the page list is declared at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from analytics.frame.params import Param

if TYPE_CHECKING:
    from analytics.frame.session import PageContext

# subject kind (analytics.drafting.specs.SUBJECT_KINDS) -> URL parameter
SUBJECT_PARAMS = {"site": "about_site", "study": "about_study", "study_or_sponsor": "about", "capa": "capa",
                  "area": "area"}


def _documents(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.drafting.specs import CATALOGUE

    return {s.key: s.title for s in CATALOGUE}


def _subjects(kind: str):
    def choices(ctx: "PageContext") -> Mapping[str, str]:
        from analytics.drafting.service import subject_choices

        return subject_choices(ctx.warehouse, ctx.scope, kind)

    return choices


def _periods(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.drafting.service import PERIODS

    return PERIODS


def _drafts(ctx: "PageContext") -> Mapping[str, str]:
    from analytics.drafting.page_data import visible_drafts

    drafts = visible_drafts(ctx.warehouse, ctx.scope)
    return {r.draft_id: f"{r.title} · {r.recorded_at:%Y-%m-%d %H:%M} UTC · {r.actor}" for r in drafts.itertuples()}


PARAMS: tuple[Param, ...] = (
    Param("doc", "Document", choices=_documents, default="monitoring_visit_report"),
    Param("about_site", "Site", choices=_subjects("site"), default_first=True),
    Param("about_study", "Study", choices=_subjects("study"), default_first=True),
    Param("about", "Study or sponsor", choices=_subjects("study_or_sponsor"), default_first=True),
    Param("capa", "CAPA", choices=_subjects("capa"), default_first=True),
    Param("area", "Therapeutic area", choices=_subjects("area"), default_first=True),
    Param("period", "Period", choices=_periods, default="90"),
    Param("draft", "Draft", choices=_drafts),
)
