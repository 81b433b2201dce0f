"""Scoped warehouse reads for enrollment: studies, sites, subjects, milestones, targets, population.

Every read goes through ``Warehouse.query`` (the access scope's relations, values as parameters).
Treatment arms are never read.
"""

from __future__ import annotations

import pandas as pd

from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

DATE_COLUMNS = ("planned_fpi", "planned_lpi", "selection_date", "planned_activation_date", "activation_date",
                "screening_date", "consent_date", "randomization_date", "planned_date", "actual_date")


def _dates(frame: pd.DataFrame) -> pd.DataFrame:
    for column in DATE_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column])
    return frame


def read_studies(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """One row per study: target, planned FPI/LPI, treatment and follow-up length (days), indication."""
    return _dates(wh.query(scope, """
        SELECT st.study_id, st.phase, st.indication, st.target_enrollment, st.planned_fpi, st.planned_lpi,
               st.treatment_duration_days, st.follow_up_days, st.visit_interval_days, st.planned_visits, st.status
        FROM scoped_studies st ORDER BY st.study_id
    """, None, filters))


def read_sites(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """One row per study-site: country, status, selection, planned and actual activation, planned enrollment."""
    return _dates(wh.query(scope, """
        SELECT ss.study_id, ss.study_site_id, ss.site_number, ss.country_code, ss.status, ss.selection_date,
               ss.planned_activation_date, ss.activation_date, ss.planned_enrollment,
               ss.status = 'Never activated' AS dropped
        FROM scoped_sites ss ORDER BY ss.study_id, ss.study_site_id
    """, None, filters))


def read_subjects(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Screened subjects with their dates, screen-failure reason and demographics (no treatment arm)."""
    return _dates(wh.query(scope, """
        SELECT s.study_id, s.study_site_id, ss.country_code, s.screening_date, s.consent_date, s.randomization_date,
               s.screen_failure_reason, s.status, s.sex, s.age, s.race, s.ethnicity
        FROM subjects s JOIN scoped_sites ss USING (study_site_id)
        ORDER BY s.study_id, s.randomization_date, s.subject_id  -- a total order: ties decide the sites' order
    """, None, filters))


def read_milestones(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Planned and actual milestones of the studies."""
    return _dates(wh.query(scope, """
        SELECT m.study_id, m.milestone, m.sequence, m.planned_date, m.actual_date
        FROM milestones m JOIN scoped_studies USING (study_id) ORDER BY m.study_id, m.sequence
    """, None, filters))


def read_targets(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """The studies' diversity plans: target share per dimension and group."""
    return wh.query(scope, """
        SELECT t.study_id, t.dimension, t.category, t.target_share
        FROM enrollment_targets t JOIN scoped_studies USING (study_id) ORDER BY ALL
    """, None, filters)


def read_condition_population(wh: Warehouse, indications: list[str]) -> pd.DataFrame:
    """Reference shares of the conditions' populations per country (not trial data)."""
    return wh.reference(
        "SELECT indication, country_code, dimension, category, population_share, source "
        "FROM condition_population WHERE list_contains($indications, indication) "
        "ORDER BY indication, country_code, dimension, category",  # one order however the table is stored
        {"indications": list(indications)})
