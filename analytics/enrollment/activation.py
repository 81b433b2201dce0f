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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import log_ndtr, ndtr, ndtri

from analytics.enrollment.curvature import laplace_covariance, numeric_hessian

# A site can activate at most this long before its planned date. About 1% of sites come more than
# 120 days early; at a shift of 120 each was scored at the limit (log 1), a far outlier that stretched
# the fitted spread and pushed pending sites' activations late (their open site-days by the end of
# enrollment were forecast at 74% of what happened at the 10% cut, 88% at 240; calibration seeds).
EARLIEST_DAYS = 240.0
PRIOR_MEDIAN_DELAY_DAYS = 60.0
PRIOR_SIGMA = 0.5
PRIOR_NEVER = 0.10
PRIOR_SITES = 5.0  # pseudo-sites of prior information
QUANTILE_POINTS = 256  # activation quantiles tabulated per pending site (one byte per draw)


@dataclass(frozen=True)
class ActivationModel:
    """Fitted delay distribution (days against plan) and never-activation share.

    ``covariance`` is the Laplace covariance of ``(mu, log sigma, logit never)`` (None: known exactly,
    as at design). Every pending site shares these parameters, so their uncertainty moves all the
    study's future activations together: early in a study, with few sites activated, it is much of
    the uncertainty of the completion date.
    """

    mu: float
    sigma: float
    never: float
    covariance: np.ndarray | None = field(default=None, compare=False)
    earliest_days: float = EARLIEST_DAYS

    def parameter_draws(self, n: int, rng: np.random.Generator) -> list["ActivationModel"]:
        """``n`` models drawn from the parameters' normal approximation (``[self]`` without a covariance)."""
        if self.covariance is None or n <= 1:
            return [self]
        centre = np.array([self.mu, np.log(self.sigma), np.log(self.never / (1 - self.never))])
        draws = rng.multivariate_normal(centre, self.covariance, size=n, method="cholesky")
        return [ActivationModel(float(m), float(np.exp(ls)), float(1 / (1 + np.exp(-ln))), None, self.earliest_days)
                for m, ls, ln in draws]

    def survival(self, delay_days: np.ndarray) -> np.ndarray:
        """P(D > delay) among sites that do activate."""
        z = (np.log(np.maximum(np.asarray(delay_days, float) + self.earliest_days, 1e-9)) - self.mu) / self.sigma
        return 1 - ndtr(z)

    def mixture_table(self, planned_offset_days: np.ndarray, points: int = QUANTILE_POINTS) -> np.ndarray:
        """Per pending site, activation times (days after the cut) at ``points`` equally spaced levels
        of the whole mixture: the lowest ``p_never`` share of levels are ``inf`` (never)."""
        offset = np.asarray(planned_offset_days, float)
        threshold = -offset
        s0 = self.survival(threshold)
        p_never = self.never / (self.never + (1 - self.never) * s0)
        u = (np.arange(points) + 0.5) / points
        activates = np.clip((u[None, :] - p_never[:, None]) / (1 - p_never[:, None]), 1e-12, 1 - 1e-12)
        level = np.clip((1 - s0)[:, None] + activates * s0[:, None], 1e-12, 1 - 1e-12)
        delay = np.exp(self.mu + self.sigma * ndtri(level)) - self.earliest_days
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
        delay = np.exp(self.mu + self.sigma * ndtri(level)) - self.earliest_days
        table = np.maximum(offset[:, None] + delay, 0.0)
        return p_never, table


def _prior_mu(earliest_days: float = EARLIEST_DAYS) -> float:
    return float(np.log(PRIOR_MEDIAN_DELAY_DAYS + earliest_days))


def fit_activation(site_table: pd.DataFrame, cut_date: pd.Timestamp, earliest_days: float = EARLIEST_DAYS
                   ) -> ActivationModel:
    """Fit the activation model on the study's sites at ``cut_date`` (needs planned dates).

    ``earliest_days`` is the log-normal's shift: how long before its planned date a site can
    activate. A site activating earlier than that is scored as if just at the limit.
    """
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
    log_delay = np.log(np.maximum(delays + earliest_days, 1.0))
    censor = (cut - planned[waiting]).dt.days.to_numpy(float)
    log_censor = np.log(np.maximum(censor + earliest_days, 1.0))
    n_dropped = int(dropped.sum())
    prior_mu = _prior_mu(earliest_days)

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
    covariance = laplace_covariance(numeric_hessian(negative_log_posterior, result.x, np.array([1e-3, 1e-3, 1e-3])))
    return ActivationModel(float(mu), float(np.exp(log_sigma)), float(1 / (1 + np.exp(-logit_never))), covariance,
                           earliest_days)
