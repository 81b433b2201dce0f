"""The Recruitment page's loaders: studies with criteria, their parsed criteria, pools, matches.

Every function reads through the access scope (``wh.query``), so a monitor's pools are their sites'
only; pools are subject-level data and are refused for a scope limited to aggregates
(``AccessScope.subject_level`` false), while the waterfall (counts only) stays available to it.
Results are cached on (warehouse, scope, filters, study, criteria version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

from analytics.core import derived
from analytics.core.caching import cached
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.recruitment import funnel
from analytics.recruitment.criteria import Criterion, criteria_from_json, criteria_json
from analytics.recruitment.matching import MatchResult, match
from analytics.recruitment.pool import CONDITION_COLUMNS, MEDICATION_COLUMNS, OBSERVATION_COLUMNS, Pool
from analytics.recruitment.results import RECRUITMENT_CRITERIA_RESULT


class PatientLevelRefused(PermissionError):
    """Patient rows asked for by a scope that may see only aggregates."""


def patient_level_allowed(scope: AccessScope) -> bool:
    """Whether the scope may see individual pre-screening patients (not a sponsor's aggregate view)."""
    return bool(getattr(scope, "subject_level", True))


def _require_patient_level(scope: AccessScope) -> None:
    if not patient_level_allowed(scope):
        raise PatientLevelRefused("pre-screening pools list individual patients, which this role may not see")


def freshness(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> derived.Freshness:
    return derived.freshness(wh, scope, filters, RECRUITMENT_CRITERIA_RESULT)


@cached
def recruitment_studies(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Studies in scope with stored criteria, and how many pre-screening patients they have in scope."""
    return wh.query(scope, """
        SELECT st.study_id, st.protocol_id, st.title, st.indication, count(DISTINCT rc.number) AS criteria,
               (SELECT count(*) FROM prescreen_patients p WHERE p.study_id = st.study_id) AS patients
        FROM scoped_studies st JOIN recruitment_criteria rc USING (study_id)
        GROUP BY ALL ORDER BY st.study_id
    """, None, filters)


def study_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> Mapping[str, str]:
    studies = recruitment_studies(wh, scope, filters)
    return {s: f"{p} ({s}): {i}" for s, p, i in zip(studies["study_id"], studies["protocol_id"], studies["indication"])}


@cached
def stored_criteria_json(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> str:
    """The study's parsed criteria as JSON (cache-friendly text; see :func:`stored_criteria`)."""
    rows = wh.query(scope, "SELECT structure FROM recruitment_criteria WHERE study_id = $study ORDER BY number",
                    {"study": study_id}, filters)
    return criteria_json([Criterion.from_dict(json.loads(s)) for s in rows["structure"]])


def stored_criteria(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> list[Criterion]:
    return criteria_from_json(stored_criteria_json(wh, scope, filters.study_level(), study_id))


@cached
def site_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> dict[str, str]:
    sites = wh.query(scope, """
        SELECT s.study_site_id, s.site_number, s.site_name, s.country_code, count(p.patient_id) AS patients
        FROM scoped_sites s LEFT JOIN prescreen_patients p USING (study_site_id)
        WHERE s.study_id = $study GROUP BY ALL ORDER BY s.site_number
    """, {"study": study_id}, filters)
    return {r.study_site_id: f"{r.site_number} {r.site_name} ({r.country_code})" for r in sites.itertuples()}


@cached
def load_pool(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> Pool:
    """The study's pre-screening patients and records at the sites the scope and filters allow."""
    params = {"study": study_id}
    patients = wh.query(scope, "SELECT patient_id, study_id, study_site_id, sex, age, screening_date, "
                               "conditions_complete, medications_complete "
                               "FROM prescreen_patients WHERE study_id = $study ORDER BY patient_id", params, filters)
    tables = {}
    for name, columns in (("prescreen_conditions", CONDITION_COLUMNS), ("prescreen_observations", OBSERVATION_COLUMNS),
                          ("prescreen_medications", MEDICATION_COLUMNS)):
        # Table and column names are constants from the schema; the study is a parameter.
        tables[name] = wh.query(scope, f"SELECT {', '.join(columns)} FROM {name} WHERE study_id = $study",
                                params, filters)
    return Pool(patients, tables["prescreen_conditions"], tables["prescreen_observations"],
                tables["prescreen_medications"])


@cached
def _matches(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str, criteria: str) -> MatchResult:
    return match(load_pool(wh, scope, filters, study_id), criteria_from_json(criteria))


def matches(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str,
            criteria: list[Criterion]) -> MatchResult:
    """Every patient of the study's pools in scope against ``criteria`` (patient-level: refused for aggregates)."""
    _require_patient_level(scope)
    return _matches(wh, scope, filters, study_id, criteria_json(criteria))


@cached
def _waterfall(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str, criteria: str,
               relax_key: str | None, relaxed_json: str | None) -> tuple[pd.DataFrame, dict[str, int]]:
    result = match(load_pool(wh, scope, filters, study_id), criteria_from_json(criteria))
    if relax_key:
        replacement = criteria_from_json(relaxed_json)[0] if relaxed_json else None
        result = funnel.what_if(result, relax_key, replacement)
    return funnel.waterfall(result), funnel.eligible_counts(result)


def waterfall(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str, criteria: list[Criterion],
              relax_key: str | None = None, replacement: Criterion | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Counts only (open to every role of the page): the waterfall and the patients per category, optionally
    with one criterion relaxed (``replacement``) or dropped (``replacement`` None with ``relax_key``)."""
    return _waterfall(wh, scope, filters, study_id, criteria_json(criteria), relax_key,
                      criteria_json([replacement]) if replacement is not None else None)


@cached
def relaxable_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Criteria with one threshold a planner may move, over the studies in scope: key -> label."""
    rows = wh.query(scope, "SELECT study_id, structure FROM recruitment_criteria WHERE status = 'structured' "
                           "ORDER BY study_id, number", None, filters)
    labels: dict[str, str] = {}
    for study_id, structure in zip(rows["study_id"], rows["structure"]):
        criterion = Criterion.from_dict(json.loads(structure))
        if funnel.relaxable([criterion]):
            labels[criterion.key] = f"{criterion.number}. {criterion.text}"
    return labels


@cached
def patient_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Pre-screening patients in scope (empty for a scope limited to aggregates)."""
    if not patient_level_allowed(scope):
        return {}
    rows = wh.query(scope, "SELECT patient_id FROM prescreen_patients ORDER BY patient_id", None, filters)
    return {p: p for p in rows["patient_id"]}
