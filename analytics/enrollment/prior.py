"""The plan-based prior on the study's mean site rate, with a certainty weight (Gajewski 2008).

Before any site enrolls, the only information is the plan: the target spread over the planned
site-months (each site from its planned activation to the planned last patient in). The prior on
the mean rate ``mu`` (randomizations per site-day) is Gamma with mean equal to the plan's rate and a
shape of ``certainty * target`` pseudo-randomizations. Before the first randomization it is the only
information; afterwards the site counts take over. Plans are optimistic (studies take about twice
their planned time), so on the calibration seeds a weight of 5% of the target made forecasts worse
than none, and 1% was as good as none: the default is 1%, which keeps design-stage forecasts
possible (``python -m analytics eval enrollment --calibrate`` shows the comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_CERTAINTY = 0.01  # chosen on the calibration seeds of `python -m analytics eval enrollment --calibrate`


@dataclass(frozen=True)
class PlanPrior:
    """Gamma prior on the mean site rate: ``shape`` pseudo-randomizations at ``rate_per_day``."""

    rate_per_day: float  # the plan's randomizations per site-day
    shape: float  # pseudo-randomizations (0 = no prior)

    def log_density(self, mu: float) -> float:
        """Log prior density of the mean rate ``mu`` (per site-day), up to a constant."""
        if self.shape <= 0 or not np.isfinite(self.rate_per_day) or self.rate_per_day <= 0:
            return 0.0
        return self.shape * np.log(mu) - self.shape * mu / self.rate_per_day

    def weight(self, randomized: int) -> float:
        """Share of the fitted mean rate's information that comes from the plan (0-1)."""
        return float(self.shape / (self.shape + randomized)) if self.shape > 0 else 0.0


NO_PRIOR = PlanPrior(float("nan"), 0.0)


def plan_rate_per_day(planned_activation: pd.Series, planned_lpi: pd.Timestamp, target: int) -> float:
    """Randomizations per site-day the plan implies (NaN without planned dates)."""
    planned_activation = pd.to_datetime(planned_activation)
    if pd.isna(planned_lpi) or planned_activation.isna().all() or not target:
        return float("nan")
    open_days = (pd.Timestamp(planned_lpi) - planned_activation).dt.days.clip(lower=0).fillna(0).sum()
    return float(target / open_days) if open_days > 0 else float("nan")


def plan_prior(site_table: pd.DataFrame, planned_lpi: pd.Timestamp | None, target: int,
               certainty: float = DEFAULT_CERTAINTY) -> PlanPrior:
    """The plan-based prior for a study; :data:`NO_PRIOR` when the plan has no dates."""
    rate = plan_rate_per_day(site_table["planned_activation_date"], planned_lpi, target)
    if not np.isfinite(rate):
        return NO_PRIOR
    return PlanPrior(rate, certainty * target)
