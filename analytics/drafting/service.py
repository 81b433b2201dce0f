"""The drafting engine: subjects to choose from, a document type's facts, its template rendering,
the identifiers to keep out of it, and the check of any text against them.

Pages and the CLI call these; each takes the warehouse, the user's scope and small values, so the
cached ones key on everything that decides their result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from analytics.core.caching import SubjectLevelRefused, cached
from analytics.core.scope import AccessScope
from analytics.core.warehouse import Warehouse
from analytics.drafting.checker import CheckResult, Requirements, check_draft
from analytics.drafting.context import FactContext, SubjectUnavailable
from analytics.drafting.deid import Identifiers
from analytics.drafting.facts import FactSet, number_facts
from analytics.drafting.queries_patients import BLINDED_NOTE
from analytics.drafting.specs import CATALOGUE_BY_KEY, DocumentSpec
from analytics.drafting.templates import render

PERIODS = {"30": "Last 30 days", "90": "Last 90 days", "180": "Last 180 days"}
DEFAULT_PERIOD = "90"


def spec(key: str) -> DocumentSpec:
    """The document type ``key`` (KeyError naming the known ones)."""
    if key not in CATALOGUE_BY_KEY:
        raise KeyError(f"no document type {key!r}; there are {sorted(CATALOGUE_BY_KEY)}")
    return CATALOGUE_BY_KEY[key]


@cached
def subject_choices(wh: Warehouse, scope: AccessScope, subject_kind: str) -> dict[str, str]:
    """What a document of ``kind`` can be about, for this user: id -> label."""
    kind = subject_kind
    if kind == "site":
        rows = wh.query(scope, "SELECT s.study_site_id, s.site_name, s.site_number, st.protocol_id "
                               "FROM scoped_sites s JOIN scoped_studies st USING (study_id) "
                               "ORDER BY st.protocol_id, s.site_number")
        return {r.study_site_id: f"{r.protocol_id} site {r.site_number}: {r.site_name}" for r in rows.itertuples()}
    if kind in ("study", "study_or_sponsor"):
        rows = wh.query(scope, "SELECT st.study_id, st.protocol_id, st.sponsor_id, sp.name AS sponsor "
                               "FROM scoped_studies st JOIN sponsors sp USING (sponsor_id) ORDER BY st.study_id")
        out = {r.study_id: f"{r.protocol_id} ({r.study_id})" for r in rows.itertuples()}
        if kind == "study_or_sponsor":
            for sponsor_id, name in dict(zip(rows["sponsor_id"], rows["sponsor"])).items():
                out[f"sponsor:{sponsor_id}"] = f"All studies of {name}"
        return out
    if kind == "capa":
        rows = wh.query(scope, "SELECT c.capa_id, st.protocol_id, c.root_cause_category, c.closed_date "
                               "FROM capas c JOIN scoped_studies st USING (study_id) ORDER BY c.capa_id")
        return {f"CAPA-{r.capa_id}": f"CAPA-{r.capa_id} · {r.protocol_id} · {r.root_cause_category} · "
                                     f"{'open' if r.closed_date is None or str(r.closed_date) == 'NaT' else 'closed'}"
                for r in rows.itertuples()}
    if kind == "area":
        rows = wh.query(scope, "SELECT DISTINCT therapeutic_area FROM scoped_studies "
                               "WHERE therapeutic_area IS NOT NULL ORDER BY 1")
        return {a: a for a in rows["therapeutic_area"]}
    raise KeyError(f"unknown subject kind {kind!r}")


@dataclass(frozen=True)
class Facts:
    """A document's numbered facts and where they come from."""

    doc_key: str
    subject: str
    subject_label: str
    facts: FactSet
    study_ids: tuple[str, ...]
    period_days: int
    as_of: dt.date

    @property
    def spec(self) -> DocumentSpec:
        return CATALOGUE_BY_KEY[self.doc_key]

    @property
    def title(self) -> str:
        return f"{self.spec.title}: {self.subject_label}"


def _study_ids(wh: Warehouse, scope: AccessScope, facts: FactSet, subject: str) -> tuple[str, ...]:
    ids = []
    for f in facts:
        if f.source_key.startswith("study_id="):
            ids.append(f.source_key.split("=", 1)[1])
    if ids:
        return tuple(dict.fromkeys(ids))
    if subject.startswith("CAPA-") or "-" in subject:  # a site or a CAPA: ask the warehouse
        rows = wh.query(scope, "SELECT study_id FROM scoped_sites WHERE study_site_id = $s", {"s": subject})
        if not rows.empty:
            return (rows["study_id"].iloc[0],)
    return ()


@cached
def document_facts(wh: Warehouse, scope: AccessScope, doc_key: str, subject: str,
                   period_days: int = int(DEFAULT_PERIOD)) -> Facts:
    """The numbered facts of document ``doc_key`` about ``subject`` for the period ending at the as-of date.

    Raises:
        SubjectUnavailable: the subject is unknown or outside the user's scope (same message).
    """
    document = spec(doc_key)
    choices = subject_choices(wh, scope, document.subject_kind)
    if subject not in choices:
        raise SubjectUnavailable(f"'{subject}' is not available to you")
    as_of = wh.as_of()
    ctx = FactContext(wh, scope, subject, period_days, as_of)
    raw = document.facts_query(ctx)
    notes = (BLINDED_NOTE,) if doc_key == "csr_ae_overview" and scope.blinded else ()
    facts = number_facts(raw, notes)
    study_ids = _study_ids(wh, scope, facts, subject)
    if not study_ids and document.subject_kind == "area":
        rows = wh.query(scope, "SELECT study_id FROM scoped_studies WHERE therapeutic_area = $a ORDER BY 1",
                        {"a": subject})
        study_ids = tuple(rows["study_id"])
    return Facts(doc_key, subject, choices[subject], facts, study_ids, period_days, as_of)


def requirements(document: DocumentSpec, blinded: bool) -> Requirements:
    return Requirements(sections=document.required_sections, blinded=blinded,
                        patient_facing=document.patient_facing, max_grade=document.max_grade)


def render_template(facts: Facts) -> str:
    """The document from its template (the embedded default when no model endpoint is configured)."""
    return render(facts.title, facts.spec.sections, facts.facts, facts.spec.preface)


@cached
def known_identifiers(wh: Warehouse, scope: AccessScope, study_ids: tuple[str, ...]) -> Identifiers:
    """Subject ids and person names (investigators, CAPA owners) of the studies a document draws on.

    Raises:
        SubjectLevelRefused: the scope sees aggregates only (a sponsor viewer); the de-identification
            list is subject-level, so such a role cannot draft.
    """
    if not scope.subject_level:
        raise SubjectLevelRefused("the drafting assistant needs subject-level access, which this role does not have")
    if not study_ids:
        return Identifiers()
    params = {"studies": list(study_ids)}
    subjects = wh.query(scope, "SELECT subject_id FROM subjects WHERE list_contains($studies, study_id)", params)
    names = wh.query(scope, "SELECT investigator AS name FROM study_sites WHERE list_contains($studies, study_id) "
                            "AND investigator IS NOT NULL UNION SELECT owner FROM capas "
                            "WHERE list_contains($studies, study_id) AND owner IS NOT NULL", params)
    return Identifiers(frozenset(subjects["subject_id"]), frozenset(names["name"]))


def check(text: str, facts: Facts, identifiers: Identifiers, blinded: bool) -> CheckResult:
    """The faithfulness check of ``text`` against the document's facts and rules."""
    return check_draft(text, facts.facts, requirements(facts.spec, blinded), identifiers, facts.title)


def available_documents(blinded: bool) -> Mapping[str, str]:
    """Document type key -> title, as the page offers them."""
    return {key: s.title for key, s in CATALOGUE_BY_KEY.items()}
