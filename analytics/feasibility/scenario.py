"""The scenario calculator: target, sites, ramp, rate with its uncertainty, screen failure -> timeline.

The user states the screening rate per site-month (pre-filled from the benchmark or the model) with a
10th-90th percentile range for it: the range becomes the Gamma prior on the study's mean rate (its
shape solved so the Gamma's 90th / 10th percentile ratio equals the range's). Screen failure turns
screening into randomization (``randomized rate = screening rate x (1 - screen-failure rate)``), so
a higher screen-failure rate lengthens the timeline. The enrollment engine's design-stage model
(:func:`analytics.enrollment.design.design_model`) and its simulation give the timeline band, the
completion distribution and P(target by the planned date); its sites-added curve
(:func:`analytics.enrollment.scenario.p_on_time_by_sites_added`) gives the sites needed for
P(on time) >= 0.8, the added sites opening when the planned ones do on average.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analytics.enrollment.activation import PRIOR_MEDIAN_DELAY_DAYS, PRIOR_NEVER
from analytics.enrollment.design import DEFAULT_SITE_SHAPE, design_model
from analytics.enrollment.scenario import P_REQUIRED, p_on_time_by_sites_added
from analytics.feasibility import MONTH_DAYS

SCENARIO_SIMS = 4_000
SCENARIO_SEED = 14
MAX_PRIOR_SHAPE = 1e4  # a range of (almost) no width: the rate is taken as known
MAX_ADDED_FACTOR = 3  # look for up to this many times the planned sites in added ones


@dataclass(frozen=True)
class ScenarioInputs:
    """What a scenario assumes (units in the names)."""

    target: int  # participants to randomize
    sites: int
    countries: int
    start: dt.date  # first planned site activation
    ramp_months: float  # first to last planned activation
    planned_months: float  # first activation to the last participant in, as the proposal promises
    screening_rate: float  # median screened per active site-month
    screening_rate_p10: float  # the range of the study's mean screening rate
    screening_rate_p90: float
    screen_failure: float  # share of screened who are not randomized (0-1)
    site_shape: float = DEFAULT_SITE_SHAPE  # between-site spread of rates (Gamma shape)
    never_activate: float = PRIOR_NEVER
    median_delay_days: float = PRIOR_MEDIAN_DELAY_DAYS

    def as_dict(self) -> dict[str, object]:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> "ScenarioInputs":
        data = dict(values)
        data["start"] = dt.date.fromisoformat(str(data["start"]))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def problems(self) -> list[str]:
        """Why the inputs cannot be simulated (empty when they can)."""
        out = []
        if self.target < 1 or self.sites < 1:
            out.append("The target and the number of sites must be at least 1.")
        if not 0 <= self.screen_failure < 1:
            out.append("The screen-failure rate must be at least 0% and below 100%.")
        if not (0 < self.screening_rate_p10 <= self.screening_rate <= self.screening_rate_p90):
            out.append("The screening rate needs 0 < 10th percentile <= median <= 90th percentile.")
        if self.planned_months <= 0:
            out.append("The planned enrollment period must be longer than 0 months.")
        return out


def prior_shape_for_range(p10: float, p90: float) -> float:
    """The Gamma shape whose 90th / 10th percentile ratio is ``p90 / p10``."""
    ratio = p90 / p10
    if ratio <= 1.0 + 1e-6:
        return MAX_PRIOR_SHAPE

    def gap(log_shape: float) -> float:
        shape = np.exp(log_shape)
        return np.log(stats.gamma.ppf(0.9, shape) / stats.gamma.ppf(0.1, shape)) - np.log(ratio)

    low, high = np.log(0.05), np.log(MAX_PRIOR_SHAPE)
    if gap(high) > 0:
        return MAX_PRIOR_SHAPE
    if gap(low) < 0:
        return 0.05
    return float(np.exp(optimize.brentq(gap, low, high)))


@dataclass(frozen=True)
class ScenarioResult:
    """What the simulation says about a scenario."""

    inputs: ScenarioInputs
    randomization_rate: float  # median randomized per site-month
    prior_shape: float
    screened_needed: int
    completion_months: dict[float, float | None]  # quantile -> months from start (None beyond the horizon)
    p_on_time: float
    fan: pd.DataFrame  # month, q10, q50, q90 of cumulative randomized
    sites_curve: pd.DataFrame  # sites (total), p_on_time
    sites_needed: int | None  # None: even MAX_ADDED_FACTOR x the plan does not reach P_REQUIRED

    @property
    def planned_lpi(self) -> dt.date:
        return self.inputs.start + dt.timedelta(days=round(self.inputs.planned_months * MONTH_DAYS))

    def summary(self) -> dict[str, object]:
        """The figures a saved scenario keeps (JSON-ready)."""
        return {"randomization_rate": self.randomization_rate, "prior_shape": self.prior_shape,
                "screened_needed": self.screened_needed, "p_on_time": self.p_on_time,
                "sites_needed": self.sites_needed,
                **{f"months_p{int(q * 100)}": v for q, v in self.completion_months.items()}}


def _months(start: pd.Timestamp, date: pd.Timestamp | None) -> float | None:
    return None if date is None else float((pd.Timestamp(date) - start).days / MONTH_DAYS)


def run_scenario(inputs: ScenarioInputs, n_sims: int = SCENARIO_SIMS, seed: int = SCENARIO_SEED) -> ScenarioResult:
    """Simulate ``inputs`` with the enrollment engine (see the module docstring)."""
    problems = inputs.problems()
    if problems:
        raise ValueError(" ".join(problems))
    keep = 1.0 - inputs.screen_failure
    shape = prior_shape_for_range(inputs.screening_rate_p10, inputs.screening_rate_p90)
    start = pd.Timestamp(inputs.start)
    planned_lpi = start + pd.Timedelta(days=round(inputs.planned_months * MONTH_DAYS))
    model = design_model(start, inputs.sites, inputs.ramp_months, inputs.target, inputs.screening_rate * keep, shape,
                         planned_lpi, site_shape=inputs.site_shape, never_activate=inputs.never_activate,
                         median_delay_days=inputs.median_delay_days)
    forecast = model.predict(n_sims=n_sims, seed=seed)
    quantiles = forecast.completion_dates((0.1, 0.5, 0.9))
    fan = forecast.fan(seed=seed)
    fan = pd.DataFrame({"month": (fan["date"] - start).dt.days / MONTH_DAYS, "q10": fan["q10"], "q50": fan["q50"],
                        "q90": fan["q90"]})
    added_open = start + pd.Timedelta(days=round(inputs.ramp_months * MONTH_DAYS / 2 + inputs.median_delay_days))
    curve = p_on_time_by_sites_added(forecast, planned_lpi, MAX_ADDED_FACTOR * inputs.sites, added_open, seed=seed)
    curve = pd.DataFrame({"sites": inputs.sites + curve["sites_added"], "p_on_time": curve["p_on_time"]})
    enough = curve.loc[curve["p_on_time"] >= P_REQUIRED, "sites"]
    return ScenarioResult(
        inputs=inputs, randomization_rate=inputs.screening_rate * keep, prior_shape=shape,
        screened_needed=int(np.ceil(inputs.target / keep)),
        completion_months={q: _months(start, d) for q, d in quantiles.items()},
        p_on_time=forecast.p_target_by(planned_lpi), fan=fan, sites_curve=curve,
        sites_needed=int(enough.iloc[0]) if len(enough) else None)
