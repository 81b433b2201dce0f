"""When pending sites activate, and the chance that they never do.

The activation delay against the planned date, ``D = activation - planned``, is modelled as a
shifted log-normal, ``log(D + EARLIEST_DAYS) ~ Normal(mu, sigma)``, and a share ``never`` of sites
never activates (a cure-type mixture). It is fitted by maximum a posteriori on the study's own sites
at the cut: activated sites give their delay; sites not active yet are censored at the cut (either
never, or later than now); sites known to be dropped count as never. Weak
priors (median delay 60 days, 10% never; about five sites' worth) keep it sensible with few sites.
A pending site's activation is then drawn from the conditional distribution given it is not active
at the cut. Without planned dates nothing is known about sites to come, and none are simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import log_ndtr, ndtr, ndtri

EARLIEST_DAYS = 120.0  # a site can activate at most this long before its planned date
PRIOR_MEDIAN_DELAY_DAYS = 60.0
PRIOR_SIGMA = 0.5
PRIOR_NEVER = 0.10
PRIOR_SITES = 5.0  # pseudo-sites of prior information
QUANTILE_POINTS = 256  # activation quantiles tabulated per pending site (one byte per draw)


@dataclass(frozen=True)
class ActivationModel:
    """Fitted delay distribution (days against plan) and never-activation share."""

    mu: float
    sigma: float
    never: float

    def survival(self, delay_days: np.ndarray) -> np.ndarray:
        """P(D > delay) among sites that do activate."""
        z = (np.log(np.maximum(np.asarray(delay_days, float) + EARLIEST_DAYS, 1e-9)) - self.mu) / self.sigma
        return 1 - ndtr(z)

    def mixture_table(self, planned_offset_days: np.ndarray) -> np.ndarray:
        """Per pending site, activation times (days after the cut) at ``QUANTILE_POINTS`` equally spaced
        levels of the whole mixture: the lowest ``p_never`` share of levels are ``inf`` (never)."""
        offset = np.asarray(planned_offset_days, float)
        p_never, _ = self.pending(offset, np.maximum(-offset, 0))
        u = (np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS
        s0 = self.survival(-offset)
        activates = np.clip((u[None, :] - p_never[:, None]) / (1 - p_never[:, None]), 1e-12, 1 - 1e-12)
        level = np.clip((1 - s0)[:, None] + activates * s0[:, None], 1e-12, 1 - 1e-12)
        delay = np.exp(self.mu + self.sigma * ndtri(level)) - EARLIEST_DAYS
        table = np.maximum(offset[:, None] + delay, 0.0)
        return np.where(u[None, :] < p_never[:, None], np.inf, table)

    def pending(self, planned_offset_days: np.ndarray, elapsed_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For pending sites: P(never activates | not active yet) and a table of activation times.

        Args:
            planned_offset_days: planned activation minus the cut (days; negative when overdue).
            elapsed_days: days the site is already past its planned date (``max(0, -offset)``).

        Returns:
            (p_never, table) where ``table[i, q]`` is the activation time after the cut (days) at
            the ``(q + 0.5) / QUANTILE_POINTS`` quantile of site ``i``'s conditional delay.
        """
        offset = np.asarray(planned_offset_days, float)
        # Not active by the cut means D > -offset (for overdue and future sites alike).
        threshold = -offset
        s0 = self.survival(threshold)
        p_never = self.never / (self.never + (1 - self.never) * s0)
        u = (np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS
        # Quantiles of D given D > threshold: F^-1(F(threshold) + u (1 - F(threshold))).
        f0 = 1 - s0
        level = np.clip(f0[:, None] + u[None, :] * s0[:, None], 1e-12, 1 - 1e-12)
        delay = np.exp(self.mu + self.sigma * ndtri(level)) - EARLIEST_DAYS
        table = np.maximum(offset[:, None] + delay, 0.0)
        return p_never, table


def _prior_mu() -> float:
    return float(np.log(PRIOR_MEDIAN_DELAY_DAYS + EARLIEST_DAYS))


def fit_activation(site_table: pd.DataFrame, cut_date: pd.Timestamp) -> ActivationModel:
    """Fit the activation model on the study's sites at ``cut_date`` (needs planned dates)."""
    cut = pd.Timestamp(cut_date)
    planned = pd.to_datetime(site_table["planned_activation_date"])
    activation = pd.to_datetime(site_table["activation_date"])
    has_plan = planned.notna().to_numpy()
    active = activation.notna().to_numpy() & has_plan
    dropped = site_table["dropped"].to_numpy(bool) & has_plan
    # Every site not active by the cut is censored, also those planned after it: leaving those out
    # would keep the early activators among them and bias the fitted delays early.
    waiting = ~active & ~dropped & has_plan
    delays = (activation[active] - planned[active]).dt.days.to_numpy(float)
    log_delay = np.log(np.maximum(delays + EARLIEST_DAYS, 1.0))
    censor = (cut - planned[waiting]).dt.days.to_numpy(float)
    log_censor = np.log(np.maximum(censor + EARLIEST_DAYS, 1.0))
    n_dropped = int(dropped.sum())
    prior_mu = _prior_mu()

    def negative_log_posterior(params: np.ndarray) -> float:
        mu, log_sigma, logit_never = params
        sigma = np.exp(log_sigma)
        never = 1 / (1 + np.exp(-logit_never))
        z = (log_delay - mu) / sigma
        ll = np.sum(np.log1p(-never) - np.log(sigma) - 0.5 * z * z)
        zc = (log_censor - mu) / sigma
        ll += np.sum(np.log(never + (1 - never) * np.exp(log_ndtr(-zc))))
        ll += n_dropped * np.log(never)
        # Priors worth about PRIOR_SITES sites.
        ll += -0.5 * PRIOR_SITES * ((mu - prior_mu) / PRIOR_SIGMA) ** 2 / 4
        ll += -0.5 * PRIOR_SITES * (log_sigma - np.log(PRIOR_SIGMA)) ** 2
        ll += PRIOR_SITES * (PRIOR_NEVER * np.log(never) + (1 - PRIOR_NEVER) * np.log1p(-never))
        return -float(ll)

    start = np.array([prior_mu, np.log(PRIOR_SIGMA), np.log(PRIOR_NEVER / (1 - PRIOR_NEVER))])
    result = optimize.minimize(negative_log_posterior, start, method="Nelder-Mead",
                               options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000})
    mu, log_sigma, logit_never = result.x
    return ActivationModel(float(mu), float(np.exp(log_sigma)), float(1 / (1 + np.exp(-logit_never))))
