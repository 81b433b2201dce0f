"""Page-facing, cached reads of the stored enrollment forecasts (derived results) through the scope."""

from __future__ import annotations

import pandas as pd

from analytics.core.caching import cached
from analytics.core.derived import Freshness
from analytics.core.derived import freshness as derived_freshness
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.enrollment.data import read_subjects
from analytics.enrollment.funnel import screen_failure_reasons, screening_funnel
from analytics.enrollment.results import ENROLLMENT_RESULT

DIMENSION_LABELS = {"sex": "Sex", "age_group": "Age group", "race": "Race", "ethnicity": "Ethnicity"}


@cached
def freshness(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> Freshness:
    return derived_freshness(wh, scope, filters.study_level(), ENROLLMENT_RESULT)


@cached
def study_summaries(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """One stored forecast summary per visible study, with its protocol and sponsor."""
    return wh.query(scope, """
        SELECT st.protocol_id, sp.name AS sponsor, st.phase, st.status, e.*
        FROM enrollment_study_summary e JOIN scoped_studies st USING (study_id) JOIN sponsors sp USING (sponsor_id)
        ORDER BY e.p_on_time NULLS LAST, st.study_id
    """, None, filters.study_level())


@cached
def study_forecast(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> pd.DataFrame:
    """The stored fan (actual, plan, each method's quantiles by date) of one study."""
    return wh.query(scope, "SELECT * FROM enrollment_forecast WHERE study_id = $study ORDER BY series, date",
                    {"study": study_id}, filters.study_level())


@cached
def site_forecasts(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> pd.DataFrame:
    """Per site of one study: rate, contribution to the rest of enrollment, P(enrolls nobody), with names."""
    return wh.query(scope, """
        SELECT f.*, s.site_number, s.site_name
        FROM enrollment_site_forecast f JOIN scoped_sites s USING (study_site_id)
        WHERE f.study_id = $study ORDER BY f.expected_by_lpi DESC NULLS LAST
    """, {"study": study_id}, filters)


@cached
def study_timeline(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> pd.DataFrame:
    return wh.query(scope, "SELECT * FROM enrollment_timeline WHERE study_id = $study", {"study": study_id},
                    filters.study_level())


@cached
def study_demographics(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> pd.DataFrame:
    # The table is keyed by study, its site rows by level_id: a site-limited scope keeps only its own sites' rows.
    return wh.query(scope, "SELECT * FROM enrollment_demographics WHERE study_id = $study AND (level <> 'site' "
                           "OR level_id IN (SELECT study_site_id FROM scoped_sites))", {"study": study_id},
                    filters.study_level())


@cached
def funnel(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, study_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stages, screen-failure reasons) of one study and its sites (the sites the filters select)."""
    subjects = read_subjects(wh, scope, filters)
    subjects = subjects[subjects["study_id"] == study_id]
    return screening_funnel(subjects), screen_failure_reasons(subjects)
