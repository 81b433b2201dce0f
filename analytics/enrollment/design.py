"""A design-stage Poisson-Gamma model: no site has enrolled yet; rates come from an expectation.

Feasibility sizes a study before it exists: sites activate on a planned ramp (each with the
activation model's delay and chance of never activating), and the mean site rate is not fitted
but stated with its uncertainty, as a Gamma prior on the mean rate (shape ``prior_shape``; the
simulation draws ``log mu`` from a normal with the Gamma's log-variance, trigamma(shape)). Sites
differ around the mean by the site-rate Gamma of shape ``site_shape``. The same simulation as for
running studies (:mod:`analytics.enrollment.simulate`) then gives the completion distribution, the
fan and P(target by a date).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import polygamma

from analytics.enrollment import DAYS_PER_MONTH
from analytics.enrollment.activation import PRIOR_MEDIAN_DELAY_DAYS, PRIOR_NEVER, PRIOR_SIGMA, ActivationModel
from analytics.enrollment.poisson_gamma import ALPHA_PRIOR, WALK_PRIOR_SD, FittedRates, PoissonGammaModel
from analytics.enrollment.site_table import SITE_TABLE_COLUMNS

DEFAULT_SITE_SHAPE = float(np.exp(ALPHA_PRIOR[0]))  # the engine's prior median of the site-rate shape (1.5)
SITE_SHAPE_LOG_SD = 0.3  # uncertainty of the site-rate shape at design (log scale)
# The design's delay spread (PRIOR_SIGMA) is stated on a log-normal shifted by this many days; running
# studies fit their own delays with activation.EARLIEST_DAYS (240), which design-stage figures predate.
DESIGN_DELAY_SHIFT_DAYS = 120.0
NO_DRIFT_VARIANCE = 1e-10  # the drift is fixed at 0 at design (a tiny variance keeps the draws well defined)


def planned_activations(start: pd.Timestamp, n_sites: int, ramp_months: float) -> pd.Series:
    """Planned activation dates: evenly spaced from ``start`` over ``ramp_months`` (all at start when 0)."""
    offsets = np.linspace(0.0, max(ramp_months, 0.0) * DAYS_PER_MONTH, max(n_sites, 1)) if n_sites > 1 else np.zeros(1)
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(np.round(offsets), unit="D"))


def design_model(start: pd.Timestamp, n_sites: int, ramp_months: float, target: int, rate_per_site_month: float,
                 prior_shape: float, planned_lpi: pd.Timestamp | None = None, site_shape: float = DEFAULT_SITE_SHAPE,
                 never_activate: float = PRIOR_NEVER, median_delay_days: float = PRIOR_MEDIAN_DELAY_DAYS,
                 rate_walk_sd: float = WALK_PRIOR_SD) -> PoissonGammaModel:
    """A :class:`PoissonGammaModel` ready to ``predict`` for a study not yet enrolling.

    Args:
        start: the first planned activation (the simulation's cut).
        n_sites: sites planned; ramp_months: months from the first to the last planned activation.
        target: participants to randomize.
        rate_per_site_month: expected mean randomizations per active site-month.
        prior_shape: shape of the Gamma prior on that mean rate (larger = surer).
        planned_lpi: the date the target should be reached (for P(on time)).
        site_shape: shape of the between-site rate Gamma (1 = rates as spread as their mean).
        never_activate, median_delay_days: the activation model (share of sites that never activate;
            median delay against the planned date), the engine's priors by default.
        rate_walk_sd: month-to-month SD of the study's log rate (the engine's prior by default).
    """
    if n_sites < 1 or target < 1 or not rate_per_site_month > 0 or not prior_shape > 0:
        raise ValueError("a design needs at least one site, a target, a positive rate and a positive prior shape")
    start = pd.Timestamp(start)
    planned = planned_activations(start, n_sites, ramp_months)
    table = pd.DataFrame({
        "study_site_id": [f"planned-{i + 1}" for i in range(n_sites)], "country_code": None,
        "planned_activation_date": planned.to_numpy(), "activation_date": pd.NaT, "dropped": False, "randomized": 0,
        "open_days": 0.0, "randomized_open_days_sum": 0.0, "selection_date": pd.NaT, "lag_days": 0.0,
    })[list(SITE_TABLE_COLUMNS)]
    table["activation_date"] = pd.to_datetime(table["activation_date"])
    covariance = np.diag([SITE_SHAPE_LOG_SD ** 2, float(polygamma(1, prior_shape)), NO_DRIFT_VARIANCE])
    model = PoissonGammaModel(include_pending=True, rate_walk=rate_walk_sd > 0)
    model.rates_ = FittedRates(alpha=site_shape, mu_per_day=rate_per_site_month / DAYS_PER_MONTH, gamma_per_year=0.0,
                               covariance=covariance, walk_sd_per_month=rate_walk_sd, prior_weight=1.0)
    model.activation_ = ActivationModel(mu=float(np.log(median_delay_days + DESIGN_DELAY_SHIFT_DAYS)), sigma=PRIOR_SIGMA,
                                        never=never_activate, earliest_days=DESIGN_DELAY_SHIFT_DAYS)
    model.site_table_ = table
    model.cut_date_ = start
    model.target_ = int(target)
    model.planned_lpi_ = pd.Timestamp(planned_lpi) if planned_lpi is not None else None
    return model
