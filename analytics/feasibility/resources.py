"""A resource estimate for a scenario: monitoring visits and CRA effort, from editable assumptions.

Each assumption is declared once (:data:`ASSUMPTIONS`: label, unit, default, bounds) so the page
draws an input for it and the summary lists it. From the scenario's median timeline: each site that
activates (the planned sites less the share that never does) opens a median activation delay after
its planned date, is visited every ``interval_enrolling`` weeks until the last participant is in,
then every ``interval_treatment`` weeks through the treatment and follow-up period, with one
initiation and one close-out visit. CRA days are visits times days per visit (travel and report
included); FTE is CRA days over the months from first activation to the last participant's last
visit at ``days_per_fte_month``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.feasibility import MONTH_DAYS
from analytics.feasibility.scenario import ScenarioResult

WEEKS_PER_MONTH = MONTH_DAYS / 7


@dataclass(frozen=True)
class Assumption:
    key: str
    label: str
    unit: str
    default: float
    low: float
    high: float
    step: float


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption("interval_enrolling", "Monitoring visit every, while enrolling", "weeks", 6, 1, 26, 1),
    Assumption("interval_treatment", "Monitoring visit every, after the last participant is in", "weeks", 8, 1, 52, 1),
    Assumption("treatment_months", "Treatment and follow-up per participant", "months", 12, 0, 120, 1),
    Assumption("days_per_visit", "CRA days per monitoring visit (travel and report included)", "days", 2.0, 0.25, 10, 0.25),
    Assumption("days_initiation", "CRA days per initiation visit", "days", 2.0, 0.25, 10, 0.25),
    Assumption("days_close_out", "CRA days per close-out visit", "days", 1.5, 0.25, 10, 0.25),
    Assumption("days_per_fte_month", "CRA working days per full-time month", "days", 15.0, 5, 23, 0.5),
)
DEFAULTS = {a.key: a.default for a in ASSUMPTIONS}


def resource_estimate(result: ScenarioResult, assumptions: dict[str, float] | None = None) -> pd.DataFrame:
    """Visits, CRA days and FTE (rows: item, value, unit); NaN where the median timeline is beyond the horizon."""
    a = {**DEFAULTS, **(assumptions or {})}
    inputs = result.inputs
    lpi = result.completion_months.get(0.5)
    active_sites = inputs.sites * (1 - inputs.never_activate)
    if lpi is None:
        lpi = np.nan
    # Planned activations are even over the ramp; each opens a median delay later.
    mean_open = inputs.ramp_months / 2 + inputs.median_delay_days / MONTH_DAYS
    enrolling_months = max(lpi - mean_open, 0.0) if np.isfinite(lpi) else np.nan
    visits_enrolling = active_sites * enrolling_months * WEEKS_PER_MONTH / a["interval_enrolling"]
    visits_treatment = active_sites * a["treatment_months"] * WEEKS_PER_MONTH / a["interval_treatment"]
    monitoring = visits_enrolling + visits_treatment
    cra_days = (monitoring * a["days_per_visit"] + active_sites * (a["days_initiation"] + a["days_close_out"]))
    study_months = lpi + a["treatment_months"]
    fte = cra_days / (study_months * a["days_per_fte_month"]) if np.isfinite(study_months) and study_months > 0 else np.nan
    rows = [
        ("Participants to screen", result.screened_needed, "participants"),
        ("Sites expected to activate", active_sites, "sites"),
        ("Initiation and close-out visits", 2 * active_sites, "visits"),
        ("Monitoring visits while enrolling", visits_enrolling, "visits"),
        ("Monitoring visits after the last participant is in", visits_treatment, "visits"),
        ("CRA effort", cra_days, "CRA days"),
        ("Months from first activation to last visit (median)", study_months, "months"),
        ("Average CRA staffing", fte, "FTE"),
    ]
    return pd.DataFrame(rows, columns=["item", "value", "unit"])
