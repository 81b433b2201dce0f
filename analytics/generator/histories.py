"""Complete enrollment histories of generated studies, without the rest of the warehouse.

The enrollment back-test (``analytics.evaluation.enrollment``) and the generator's realism tests need
every study's plan, sites and screened subjects, and nothing else: drawing visits, labs and queries
for tens of thousands of subjects would dominate their run time. The data are exactly those a build
with the same preset and seed writes (the same random streams, study by study).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.core import schema
from analytics.generator import reference as ref
from analytics.generator.enrollment import simulate_subjects
from analytics.generator.plan import PortfolioPlan, make_plan
from analytics.generator.presets import PRESETS


@dataclass
class EnrollmentHistory:
    """One study: its plan (a dict of study facts), its sites and its screened subjects (dates as Timestamps)."""

    study: dict[str, object]
    sites: pd.DataFrame
    subjects: pd.DataFrame


def _dates(days: np.ndarray) -> pd.Series:
    days = np.asarray(days, dtype="float64")
    out = pd.to_datetime(np.where(np.isnan(days), 0, np.floor(days)).astype("int64"), unit="D")
    return pd.Series(out).where(~np.isnan(days))


def study_history(plan: PortfolioPlan, study: int, seed: int) -> EnrollmentHistory:
    """The enrollment history of study ``study`` of ``plan`` (generated with ``seed``)."""
    rng = np.random.default_rng([seed, 100 + study])  # the build's stream for this study
    sites = np.flatnonzero(plan.ss_study == study)
    subjects = simulate_subjects(plan, study, sites, rng)
    site_ids = np.array([plan.ss_ids[k] for k in sites])
    fpi = float(plan.study_fpi[study])
    facts = {
        "study_id": plan.study_ids[study],
        "phase": plan.study_phase[study],
        "indication": plan.study_indication[study],
        "target_enrollment": int(plan.study_target[study]),
        "planned_fpi": _dates(np.array([fpi]))[0],
        "planned_lpi": _dates(np.array([fpi + plan.study_enroll_days[study]]))[0],
        "treatment_duration_days": int(plan.study_visits[study] * plan.study_interval[study]),
        "follow_up_days": int(plan.study_follow_up[study]),
        "as_of_date": _dates(np.array([plan.as_of_day]))[0],
    }
    site_frame = pd.DataFrame({
        "study_site_id": site_ids,
        "country_code": [ref.COUNTRIES[c][0] for c in plan.institution_country[plan.ss_institution[sites]]],
        "selection_date": _dates(plan.ss_selection[sites]),
        "planned_activation_date": _dates(plan.ss_planned_activation[sites]),
        "activation_date": _dates(plan.ss_activation[sites]),
        "never_activates": plan.ss_never[sites],
        "planned_enrollment": plan.ss_planned_enrollment[sites].astype("int64"),
    })
    subject_frame = pd.DataFrame({
        "study_site_id": site_ids[subjects.site],
        "screening_date": _dates(subjects.screening),
        "consent_date": _dates(subjects.consent),
        "randomization_date": _dates(subjects.randomization),
        "screen_failed": subjects.screen_failed,
        "sex": np.array(["F", "M"])[subjects.sex],
        "age": subjects.age,
        "race": np.array(schema.RACES)[subjects.race],
        "ethnicity": np.array(schema.ETHNICITIES)[subjects.ethnicity],
    })
    return EnrollmentHistory(facts, site_frame, subject_frame)


def enrollment_histories(preset_name: str, seed: int) -> list[EnrollmentHistory]:
    """Every study's enrollment history for ``preset_name`` and ``seed``."""
    plan = make_plan(PRESETS[preset_name], seed)
    return [study_history(plan, study, seed) for study in range(PRESETS[preset_name].studies)]
