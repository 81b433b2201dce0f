"""The Anisimov-Fedorov Poisson-Gamma enrollment model, with a drift term (a tPG-style extension).

Site ``i`` randomizes as a Poisson process from its activation with intensity ``lambda_i * h(s)``,
``s`` the days since activation and ``h(s) = exp(gamma * s)`` (``gamma = 0``: the classic constant-
rate model). Site rates are ``Gamma(alpha, beta)``; so a site's count after ``tau`` days open is
negative binomial with exposure ``H(tau) = (exp(gamma tau) - 1) / gamma``, and its rate's posterior
is ``Gamma(alpha + k, beta + H(tau))``. ``(alpha, mu = alpha / beta, gamma)`` are fitted by maximum
a posteriori: the negative-binomial likelihood of the per-site counts and open times, the event-time
likelihood of the drift (``gamma * sum of days-since-activation of the site's randomizations``), the
plan-based prior on ``mu`` (``prior.py``) and weak priors on ``alpha`` and ``gamma``. The curvature at
the optimum gives the parameters' uncertainty, which the simulation propagates.

Rates drift at the study level too (competing trials, amendments), simulated as a random walk of the
log rate (``walk_sd_per_month``, :data:`WALK_PRIOR_SD` for every study) that starts where the walk
stands at the cut: its level, filtered from the last two years' monthly counts against the fitted
site model (:func:`filtered_walk_level`). A per-study estimate of the walk's SD
(:func:`estimate_walk_sd`) is kept as an option: it reads calendar seasonality and Poisson noise as a
walk (round 9, on calibration seeds), so it is off by default.

``PoissonGammaModel().fit(site_table, cut_date, target=..., planned_lpi=...).predict(...)`` gives a
:class:`~analytics.enrollment.forecast.Forecast` with tidy frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import gammaln

from analytics.enrollment import DAYS_PER_MONTH
from analytics.enrollment.activation import EARLIEST_DAYS, ActivationModel, fit_activation
from analytics.enrollment.curvature import laplace_covariance, numeric_hessian
from analytics.enrollment.prior import DEFAULT_CERTAINTY, NO_PRIOR, PlanPrior, plan_prior

DAYS_PER_YEAR = 365.25
ALPHA_PRIOR = (np.log(1.5), 1.0)  # log alpha ~ Normal(mean, sd): weak
GAMMA_PRIOR_MEAN_PER_YEAR = 0.0  # drift ~ Normal(mean, sd) per year of open time (chosen on calibration seeds)
GAMMA_PRIOR_SD_PER_YEAR = 0.15  # round 5, from 0.2, 0.15, 0.1 on calibration seeds 8201-8216
GAMMA_LIMIT_PER_YEAR = 1.5
RAMP_DAYS = 30.0  # a new site's start-up shortfall fades with this time constant (activation to first patient ~32 days)
RAMP_SHARE = 0.5  # the rate's shortfall at activation, as a share (round 6, on calibration seeds 8201-8213: 0.3 read
# part of the real start-up shortfall as rates rising with open time; 0.5 narrowed the early intervals, same error
# at the 30% cut; see CALIBRATION_VARIANTS in analytics/evaluation/enrollment.py)
WALK_PRIOR_SD = 0.06  # random-walk SD per month (chosen on calibration seeds in round 4, from 0, 0.06 and 0.1)
# The prior's weight, in months of the study's own evidence. Infinite: every study's walk is the prior's.
# Round 9, calibration seeds 8201-8213: a calendar seasonality like the generator's alone reads as a walk of
# about 0.18 a month, so a quarter of the per-study estimates reached 0.18-0.25 (intervals too wide early)
# while small studies read Poisson noise as no walk (0.04-0.05, too narrow late). With the walk at the prior
# and started from its filtered level the largest coverage deviation was 3.7 points, against 4.6 with the
# per-study estimate (24 months' weight) started from the average level.
WALK_PRIOR_MONTHS = float("inf")
WALK_MIN_BIN_EXPECTED = 1.0  # months expecting fewer randomizations say nothing about the walk (log of 0 or 1)
WALK_MIN_BINS = 4  # fewer such months: too little history to read the walk from
WALK_WINDOW_MONTHS = 24
WALK_MAX_PER_MONTH = 0.25  # beyond this the estimate says more about misfit than about drift


@dataclass(frozen=True)
class FittedRates:
    """Fitted hyperparameters and their uncertainty (covariance of ``(log alpha, log mu, gamma per year)``)."""

    alpha: float
    mu_per_day: float
    gamma_per_year: float
    covariance: np.ndarray
    walk_sd_per_month: float
    prior_weight: float
    walk_level: float = 0.0  # the random walk's log level at the cut, relative to the history's average
    walk_level_var: float = 0.0  # its posterior variance

    @property
    def beta_per_day(self) -> float:
        return self.alpha / self.mu_per_day

    @property
    def gamma_per_day(self) -> float:
        return self.gamma_per_year / DAYS_PER_YEAR

    @property
    def rate_per_site_month(self) -> float:
        return self.mu_per_day * DAYS_PER_MONTH


def exposure(open_days: np.ndarray, gamma_per_day: float | np.ndarray) -> np.ndarray:
    """``H(tau) = integral_0^tau exp(gamma s) ds`` in days (``tau`` when ``gamma`` is 0)."""
    open_days = np.asarray(open_days, float)
    g = np.asarray(gamma_per_day, float)
    small = np.abs(g * open_days) < 1e-8
    safe = np.where(np.abs(g) < 1e-12, 1.0, g)
    return np.where(small, open_days * (1 + 0.5 * g * open_days), np.expm1(g * open_days) / safe)


def site_exposure(open_days: np.ndarray, gamma_per_day: float | np.ndarray, ramp_share: float = RAMP_SHARE) -> np.ndarray:
    """A site's exposure after ``open_days`` with its start-up ramp: ``integral_0^tau (1 - r e^(-s/T)) e^(gamma s) ds``.

    New sites screen slowly at first (staff trained, referrals not yet flowing); ignoring that makes
    young sites look slow and rates look like they rise with open time (a spurious positive drift).
    ``r`` is :data:`RAMP_SHARE`, ``T`` :data:`RAMP_DAYS`.
    """
    g = np.asarray(gamma_per_day, float)
    full = exposure(open_days, g)
    return full - ramp_share * exposure(open_days, g - 1 / RAMP_DAYS) if ramp_share else full


def ramp_delay_days(ramp_share: float = RAMP_SHARE) -> float:
    """The exposure a new site loses to its ramp, as days of full-rate enrollment (``r T``)."""
    return ramp_share * RAMP_DAYS


def _negative_log_posterior(params: np.ndarray, k: np.ndarray, tau: np.ndarray, s_sum: np.ndarray,
                            prior: PlanPrior, time_varying: bool, drift_prior_sd: float,
                            drift_prior_mean: float = GAMMA_PRIOR_MEAN_PER_YEAR, ramp_share: float = RAMP_SHARE) -> float:
    log_alpha, log_mu, gamma_year = params
    if not time_varying:
        gamma_year = 0.0
    alpha, mu = np.exp(log_alpha), np.exp(log_mu)
    beta = alpha / mu
    h = site_exposure(tau, gamma_year / DAYS_PER_YEAR, ramp_share)
    # The ramp's factor at each randomization does not depend on the parameters: it drops out.
    ll = np.sum(gammaln(alpha + k) - gammaln(alpha) + alpha * np.log(beta) - (alpha + k) * np.log(beta + h))
    ll += gamma_year / DAYS_PER_YEAR * np.sum(s_sum)
    ll += prior.log_density(mu)
    ll += -0.5 * ((log_alpha - ALPHA_PRIOR[0]) / ALPHA_PRIOR[1]) ** 2
    if time_varying:
        ll += -0.5 * ((gamma_year - drift_prior_mean) / drift_prior_sd) ** 2
    return -float(ll)


def fit_rates(site_table: pd.DataFrame, prior: PlanPrior = NO_PRIOR, time_varying: bool = True,
              drift_prior_sd: float = GAMMA_PRIOR_SD_PER_YEAR,
              drift_prior_mean: float = GAMMA_PRIOR_MEAN_PER_YEAR, ramp_share: float = RAMP_SHARE) -> FittedRates:
    """Fit ``(alpha, mu, gamma)`` on the active sites of ``site_table`` (see the module docstring)."""
    active = site_table["activation_date"].notna().to_numpy() & (site_table["open_days"].to_numpy() > 0)
    k = site_table["randomized"].to_numpy(float)[active]
    tau = site_table["open_days"].to_numpy(float)[active]
    s_sum = site_table["randomized_open_days_sum"].to_numpy(float)[active]
    if prior.shape <= 0 and k.sum() == 0:
        raise ValueError("no randomizations and no plan: the enrollment rate cannot be estimated")
    if prior.shape > 0:
        start_mu = prior.rate_per_day
    else:
        start_mu = k.sum() / max(tau.sum(), 1.0)
    start = np.array([ALPHA_PRIOR[0], np.log(max(start_mu, 1e-6)), drift_prior_mean if time_varying else 0.0])

    def objective(p: np.ndarray) -> float:
        return _negative_log_posterior(p, k, tau, s_sum, prior, time_varying, drift_prior_sd, drift_prior_mean, ramp_share)

    limit = GAMMA_LIMIT_PER_YEAR if time_varying else 0.0
    bounds = [(np.log(0.05), np.log(200.0)), (np.log(1e-7), np.log(10.0)), (-limit, limit)]
    result = optimize.minimize(objective, start, method="L-BFGS-B", bounds=bounds)
    x = result.x
    hess = numeric_hessian(objective, x, np.array([1e-3, 1e-3, 1e-3]))
    if not time_varying:
        hess[2, :] = hess[:, 2] = 0.0
        hess[2, 2] = 1e12
    covariance = laplace_covariance(hess)
    return FittedRates(
        alpha=float(np.exp(x[0])), mu_per_day=float(np.exp(x[1])), gamma_per_year=float(x[2] if time_varying else 0.0),
        covariance=covariance, walk_sd_per_month=0.0, prior_weight=prior.weight(int(k.sum())),
    )


def _monthly_observed_expected(site_table: pd.DataFrame, randomization_dates: pd.Series, cut_date: pd.Timestamp,
                               rates: FittedRates, ramp_share: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The study's randomizations and their expectation under the fitted site model, per 30-day bin.

    Bins of the last :data:`WALK_WINDOW_MONTHS` months, the last one ending at the cut; the expectation
    is each site's posterior mean rate times its exposure within the bin. None with under 3 months.
    """
    cut = pd.Timestamp(cut_date)
    dates = pd.to_datetime(pd.Series(randomization_dates)).dropna()
    activation = pd.to_datetime(site_table["activation_date"])
    first = activation.min()
    if pd.isna(first):
        return None
    months = int(min(WALK_WINDOW_MONTHS, (cut - first).days // 30))
    if months < 3:
        return None
    # Days relative to the cut, so dates of any resolution (pandas' ns or DuckDB's us) bin alike.
    edges = -30.0 * np.arange(months, -1, -1)
    relative = -((cut - dates[dates <= cut]).dt.total_seconds().to_numpy(float) / 86400.0)
    observed = np.histogram(relative, bins=edges)[0]
    k = site_table["randomized"].to_numpy(float)
    tau = site_table["open_days"].to_numpy(float)
    g = rates.gamma_per_day
    mean_rate = (rates.alpha + k) / (rates.beta_per_day + site_exposure(tau, g, ramp_share))
    start_days = edges[:-1][None, :] + tau[:, None]
    end_days = start_days + 30
    lo, hi = np.clip(start_days, 0, None), np.clip(end_days, 0, None)
    within = site_exposure(hi, g, ramp_share) - site_exposure(lo, g, ramp_share)
    expected = (mean_rate[:, None] * within * activation.notna().to_numpy()[:, None]).sum(axis=0)
    return observed.astype(float), expected


def estimate_walk_sd(site_table: pd.DataFrame, randomization_dates: pd.Series, cut_date: pd.Timestamp,
                     rates: FittedRates, prior_sd: float = WALK_PRIOR_SD, ramp_share: float = RAMP_SHARE,
                     prior_months: float = WALK_PRIOR_MONTHS) -> float:
    """Month-to-month SD of the study's log rate beyond Poisson noise (moment estimator, shrunk to a prior).

    The study's 30-day counts over the last :data:`WALK_WINDOW_MONTHS` months are compared with
    their expectation under the fitted site model; the variance of the month-to-month change of the
    log ratio, less the Poisson part, estimates the random walk's increment variance. The estimate
    is noisy (a few dozen months at most) and also absorbs seasonality, so it is shrunk towards
    ``prior_sd`` with a weight of ``prior_months`` months (infinite: the prior alone).
    """
    if not np.isfinite(prior_months):
        return prior_sd
    bins = _monthly_observed_expected(site_table, randomization_dates, cut_date, rates, ramp_share)
    if bins is None:
        return prior_sd
    observed, expected = bins
    keep = expected > WALK_MIN_BIN_EXPECTED
    if keep.sum() < WALK_MIN_BINS:
        return prior_sd
    ratio = np.log((observed[keep] + 0.5) / (expected[keep] + 0.5))
    changes = np.diff(ratio)
    noise = 1 / expected[keep][1:] + 1 / expected[keep][:-1]
    # A change of the log ratio is one step of the walk plus two months' Poisson noise.
    raw = max(float(np.mean(changes ** 2 - noise)), 0.0)
    n = len(changes)
    shrunk = (n * raw + prior_months * prior_sd ** 2) / (n + prior_months)
    return float(min(np.sqrt(shrunk), WALK_MAX_PER_MONTH))


def walk_start_variance(history_months: float, window_months: float, walk_sd: float) -> float:
    """Variance of a random walk's level at the window's first month about the walk's average over the history.

    The fitted site rates fix the history's average level, so the level at the start of the window is
    not free: for a walk of variance ``q`` a month over ``T`` months, ``Var(W(t0) - mean W) = q (t0^2 / T -
    t0 + T / 3)`` with ``t0 = T - window`` (0 when the window covers the whole history).
    """
    T = max(float(history_months), 1.0)
    t0 = max(T - float(window_months), 0.0)
    return walk_sd ** 2 * (t0 ** 2 / T - t0 + T / 3)


def filtered_walk_level(site_table: pd.DataFrame, randomization_dates: pd.Series, cut_date: pd.Timestamp,
                        rates: FittedRates, walk_sd: float, ramp_share: float = RAMP_SHARE) -> tuple[float, float]:
    """Where the study's random walk stands at the cut: ``(log level, its variance)``, by a local-level Kalman filter.

    The fitted site rates describe the history's average level. Under a random walk the level at the
    cut has wandered from that average (the further, the longer the history), so the simulation
    starts from the filtered level rather than from 0. State: the log level, one step of the walk
    (variance ``walk_sd^2``) a month; observation: each 30-day bin's ``log((O + 1/2) / (E + 1/2))``
    with variance ``1 / (E + 1/2)`` (Poisson); bins expecting under one randomization only advance
    the state; the first month's level starts at the history's average with the variance of
    :func:`walk_start_variance`. ``(0, 0)`` when there is too little history or no walk.
    """
    bins = _monthly_observed_expected(site_table, randomization_dates, cut_date, rates, ramp_share)
    if bins is None or walk_sd <= 0:
        return 0.0, 0.0
    observed, expected = bins
    if (expected > WALK_MIN_BIN_EXPECTED).sum() < WALK_MIN_BINS:
        return 0.0, 0.0
    first = pd.to_datetime(site_table["activation_date"]).min()
    history = (pd.Timestamp(cut_date) - first).days / 30
    level, var = 0.0, walk_start_variance(history, len(observed), walk_sd)
    for month, (o, e) in enumerate(zip(observed, expected)):
        if month:
            var += walk_sd ** 2
        if e <= WALK_MIN_BIN_EXPECTED:
            continue
        noise = 1.0 / (e + 0.5)
        gain = var / (var + noise)
        level += gain * (np.log((o + 0.5) / (e + 0.5)) - level)
        var *= 1 - gain
    return float(level), float(var)


@dataclass
class PoissonGammaModel:
    """The enrollment model with a scikit-learn-like interface.

    Attributes:
        certainty: weight of the plan-based prior, in shares of the target (``prior.py``).
        time_varying: fit the drift ``gamma`` (False: constant rates, the classic model).
        rate_walk: simulate the study-level random walk of the log rate.
        include_pending: simulate sites not yet active (False: "Poisson-Gamma without activation").
        drift_prior_sd: prior SD of the drift (log-rate change per year of open time).
        drift_prior_mean: prior mean of the drift.
        ramp_share: a new site's rate shortfall at activation, fading over :data:`RAMP_DAYS` (0: none).
        walk_prior_sd: the random walk's SD per month that the study's estimate is shrunk to.
        walk_prior_months: the prior's weight in months of the study's own evidence (inf: the prior alone).
        activation_uncertainty: draw the activation model's parameters from their fitted uncertainty
            (False: every simulation uses the fitted delay distribution and never-activation share).
        activation_earliest_days: the activation delay's shift, days before plan (``activation.py``).
        walk_from_level: start the simulated walk from its filtered level at the cut
            (:func:`filtered_walk_level`; False: from the history's average level, as before round 9;
            see ``CALIBRATION_VARIANTS`` in :mod:`analytics.evaluation.enrollment`).
    """

    certainty: float = DEFAULT_CERTAINTY
    time_varying: bool = True
    drift_prior_sd: float = GAMMA_PRIOR_SD_PER_YEAR
    drift_prior_mean: float = GAMMA_PRIOR_MEAN_PER_YEAR
    ramp_share: float = RAMP_SHARE
    walk_prior_sd: float = WALK_PRIOR_SD
    walk_prior_months: float = WALK_PRIOR_MONTHS
    rate_walk: bool = True
    include_pending: bool = True
    activation_uncertainty: bool = False
    activation_earliest_days: float = EARLIEST_DAYS
    walk_from_level: bool = True
    rates_: FittedRates | None = field(default=None, init=False)
    activation_: ActivationModel | None = field(default=None, init=False)
    site_table_: pd.DataFrame | None = field(default=None, init=False)
    cut_date_: pd.Timestamp | None = field(default=None, init=False)
    target_: int = field(default=0, init=False)
    planned_lpi_: pd.Timestamp | None = field(default=None, init=False)

    def fit(self, site_table: pd.DataFrame, cut_date: pd.Timestamp, target: int,
            planned_lpi: pd.Timestamp | None = None, randomization_dates: pd.Series | None = None
            ) -> "PoissonGammaModel":
        """Fit rates and activation on ``site_table`` (from :func:`~analytics.enrollment.site_table.build_site_table`).

        Args:
            site_table: per-site counts and open times at the cut.
            cut_date: the data cut.
            target: randomized subjects the study needs (count).
            planned_lpi: planned last patient in (for the plan prior and P(on time)); may be None.
            randomization_dates: the study's randomization dates, those the site table counts (for where
                the random walk stands at the cut; without them it starts from the average level).
        """
        cut = pd.Timestamp(cut_date)
        prior = plan_prior(site_table, planned_lpi, target, self.certainty) if self.certainty > 0 else NO_PRIOR
        rates = fit_rates(site_table, prior, self.time_varying, self.drift_prior_sd, self.drift_prior_mean,
                          self.ramp_share)
        if self.rate_walk:
            dated = randomization_dates is not None
            randomization_dates = randomization_dates if dated else pd.Series(dtype="datetime64[us]")
            walk = estimate_walk_sd(site_table, randomization_dates, cut, rates, self.walk_prior_sd, self.ramp_share,
                                    self.walk_prior_months)
            # Without the dates every month would read as empty: the walk then starts from the average level.
            level, level_var = (filtered_walk_level(site_table, randomization_dates, cut, rates, walk, self.ramp_share)
                                if self.walk_from_level and dated else (0.0, 0.0))
            rates = FittedRates(rates.alpha, rates.mu_per_day, rates.gamma_per_year, rates.covariance, walk,
                                rates.prior_weight, level, level_var)
        self.rates_ = rates
        has_plan = site_table["planned_activation_date"].notna().any()
        self.activation_ = fit_activation(site_table, cut, self.activation_earliest_days) if has_plan else None
        self.site_table_ = site_table.reset_index(drop=True)
        self.cut_date_ = cut
        self.target_ = int(target)
        self.planned_lpi_ = pd.Timestamp(planned_lpi) if planned_lpi is not None and pd.notna(planned_lpi) else None
        return self

    def predict(self, horizon_days: int | None = None, n_sims: int = 10_000, seed: int = 0):
        """Monte Carlo predictive distribution from the cut (see :mod:`analytics.enrollment.simulate`)."""
        from analytics.enrollment.forecast import Forecast
        from analytics.enrollment.simulate import simulate

        if self.rates_ is None:
            raise RuntimeError("fit the model before predicting")
        sims = simulate(self, n_sims=n_sims, seed=seed, horizon_days=horizon_days)
        return Forecast(self, sims)
