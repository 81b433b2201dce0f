"""The Monte Carlo predictive distribution of a fitted Poisson-Gamma model, vectorized with numpy.

On a weekly grid ``x_j = j * STEP_DAYS`` days after the cut, each simulation ``s`` has:

* hyperparameters ``(alpha, mu, gamma)`` drawn from their fitted normal approximation
  (``PARAMETER_DRAWS`` distinct draws shared round-robin by the simulations);
* a unit exposure path ``C_s(x) = integral_0^x exp(gamma u + Z_s(u)) du`` with ``Z_s`` the study's
  log-rate random walk (zero without it), starting from a draw of its filtered level at the cut;
* active sites: the sum of their posterior rates weighted by ``exp(gamma tau_i)`` (a moment-matched
  Gamma of the independent per-site Gamma posteriors), times ``C_s``;
* pending sites: an activation time drawn from the activation model (or never), and a rate from the
  site-rate Gamma; sites activating in the same week share one Gamma draw of their summed rate;
* the completion time: the first ``x`` at which the cumulative intensity ``Lambda_s(x)`` reaches
  ``E_s ~ Gamma(R, 1)``, the arrival of the ``R``-th event of a unit Poisson process (``R`` = the
  randomizations still needed), interpolated within the week.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.enrollment import DAYS_PER_MONTH
from analytics.enrollment.activation import QUANTILE_POINTS
from analytics.enrollment.poisson_gamma import DAYS_PER_YEAR, GAMMA_LIMIT_PER_YEAR, exposure, ramp_delay_days, \
    site_exposure

STEP_DAYS = 7
PARAMETER_DRAWS = 256
ACTIVATION_DRAWS = 8  # draws of the activation model's parameters shared by the pending sites of a simulation
MAX_HORIZON_DAYS = 3653
MIN_HORIZON_DAYS = 364
HORIZON_FACTOR = 3.0  # simulate to this multiple of the naive time to target (later: "beyond the horizon")
FLOAT = np.float32  # the simulations x weeks arrays: single precision halves the memory traffic


@dataclass
class Simulation:
    """What the forecast summaries need from the simulation (days after the cut on the grid ``x``)."""

    x: np.ndarray  # grid, days after the cut (J + 1 points, from 0)
    cumulative_intensity: np.ndarray  # S x (J + 1): expected further randomizations by x_j
    unit_exposure: np.ndarray  # S x (J + 1): C_s(x_j), exposure of a site active (at drift 1) from the cut
    completion_days: np.ndarray  # S: days after the cut when the target is reached (inf beyond the grid)
    arrivals: np.ndarray  # S: E_s ~ Gamma(R, 1)
    alpha: np.ndarray  # S
    beta_per_day: np.ndarray  # S
    gamma_per_day: np.ndarray  # S
    randomized: int
    remaining: int

    @property
    def n_sims(self) -> int:
        return len(self.completion_days)


def _horizon(model, remaining: int) -> int:
    rates = model.rates_
    table = model.site_table_
    active = int(table["activation_date"].notna().sum())
    pending = int((table["activation_date"].isna() & ~table["dropped"]).sum()) if model.include_pending else 0
    never = model.activation_.never if model.activation_ is not None else 0.0
    # The pooled observed rate guards against an optimistic fitted mean (a strong plan prior).
    k, tau = table["randomized"].sum(), table["open_days"].sum()
    mu = min(rates.mu_per_day, k / tau) if k > 0 and tau > 0 else rates.mu_per_day
    per_day = mu * max(active + (1 - never) * pending, 1)
    naive = remaining / max(per_day, 1e-9)
    planned = (model.planned_lpi_ - model.cut_date_).days if model.planned_lpi_ is not None else 0
    horizon = max(HORIZON_FACTOR * naive, 1.5 * planned, MIN_HORIZON_DAYS)
    return int(min(np.ceil(horizon / STEP_DAYS) * STEP_DAYS, MAX_HORIZON_DAYS))


def simulate(model, n_sims: int = 10_000, seed: int = 0, horizon_days: int | None = None) -> Simulation:
    """Simulate ``n_sims`` futures of the fitted ``model`` (a :class:`PoissonGammaModel`)."""
    rng = np.random.default_rng(seed)
    rates, table = model.rates_, model.site_table_
    randomized = int(table["randomized"].sum())
    remaining = max(model.target_ - randomized, 0)
    horizon = horizon_days or _horizon(model, remaining)
    n_steps = int(np.ceil(horizon / STEP_DAYS))
    x = np.arange(n_steps + 1, dtype=float) * STEP_DAYS

    # Hyperparameters: PARAMETER_DRAWS draws shared round-robin.
    n_draws = min(PARAMETER_DRAWS, n_sims)
    centre = np.array([np.log(rates.alpha), np.log(rates.mu_per_day), rates.gamma_per_year])
    draws = rng.multivariate_normal(centre, rates.covariance, size=n_draws, method="cholesky")
    draws[:, 2] = np.clip(draws[:, 2], -GAMMA_LIMIT_PER_YEAR, GAMMA_LIMIT_PER_YEAR)
    which = np.arange(n_sims) % n_draws
    alpha_d, mu_d, gamma_d = np.exp(draws[:, 0]), np.exp(draws[:, 1]), draws[:, 2] / DAYS_PER_YEAR
    beta_d = alpha_d / mu_d

    # Unit exposure path with drift and the study's random walk.
    mid = (x[1:] - STEP_DAYS / 2).astype(FLOAT)
    log_step = gamma_d[which, None].astype(FLOAT) * mid[None, :]
    if model.rate_walk and rates.walk_sd_per_month > 0:
        sd = FLOAT(rates.walk_sd_per_month * np.sqrt(STEP_DAYS / DAYS_PER_MONTH))
        steps = rng.standard_normal((n_sims, n_steps), dtype=FLOAT)
        steps *= sd
        log_step += np.cumsum(steps, axis=1)
        if rates.walk_level or rates.walk_level_var:  # the walk starts where it stood at the cut
            start = rng.normal(rates.walk_level, np.sqrt(rates.walk_level_var), n_sims).astype(FLOAT)
            log_step += start[:, None]
    np.exp(log_step, out=log_step)
    log_step *= FLOAT(STEP_DAYS)
    unit = np.zeros((n_sims, n_steps + 1), dtype=FLOAT)
    np.cumsum(log_step, axis=1, out=unit[:, 1:])

    # Active sites: moment-matched Gamma of the weighted sum of posterior rates, per parameter draw.
    active = table["activation_date"].notna().to_numpy()
    k = table["randomized"].to_numpy(float)[active]
    tau = table["open_days"].to_numpy(float)[active]
    shape = alpha_d[:, None] + k[None, :]
    rate = beta_d[:, None] + site_exposure(tau[None, :], gamma_d[:, None], model.ramp_share)
    weight = np.exp(gamma_d[:, None] * tau[None, :])
    mean = (weight * shape / rate).sum(axis=1)
    var = (weight ** 2 * shape / rate ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_shape = np.where(var > 0, mean ** 2 / var, 0.0)
        sum_scale = np.where(mean > 0, var / mean, 0.0)
    active_rate = np.where(sum_shape[which] > 0, rng.standard_gamma(np.maximum(sum_shape[which], 1e-12)), 0.0)
    intensity = (active_rate * sum_scale[which]).astype(FLOAT)[:, None] * unit

    # Pending sites: activation week per simulation, summed Gamma rates per week.
    pending = ~active & ~table["dropped"].to_numpy(bool)
    if model.include_pending and model.activation_ is not None and pending.any():
        planned = table.loc[pending, "planned_activation_date"]
        has_plan = planned.notna().to_numpy()
        offset = (planned[has_plan] - model.cut_date_).dt.days.to_numpy(float)
        # Randomizing starts a screening period after activation, and the start-up ramp costs about
        # r T days of full-rate enrollment (a shift is the ramp's effect on the count to within a
        # few days); never-activating levels are inf. The activation parameters' uncertainty:
        # ACTIVATION_DRAWS draws, each tabulated at
        # QUANTILE_POINTS / ACTIVATION_DRAWS levels, side by side in one table of QUANTILE_POINTS
        # columns (as fast as one table); a simulation keeps one draw for all its pending sites.
        n_draws_act = ACTIVATION_DRAWS if model.activation_uncertainty else 1
        points = QUANTILE_POINTS // n_draws_act
        tables = [draw.mixture_table(offset, points) for draw in model.activation_.parameter_draws(n_draws_act, rng)]
        when = np.concatenate(tables, axis=1) + float(table["lag_days"].iloc[0]) + ramp_delay_days(model.ramp_share)
        week_table = np.minimum(np.floor(when / STEP_DAYS), n_steps).astype(np.int32)  # n_steps: not in horizon
        n_pending = len(offset)
        column = rng.integers(0, points, (n_sims, n_pending), dtype=np.uint8)  # QUANTILE_POINTS columns in all
        if len(tables) > 1:
            column += (np.arange(n_sims) % len(tables) * points).astype(np.uint8)[:, None]
        week = week_table[np.arange(n_pending)[None, :], column]
        cell = (np.arange(n_sims, dtype=np.int64)[:, None] * (n_steps + 1) + week).ravel()
        counts = np.bincount(cell, minlength=n_sims * (n_steps + 1)).reshape(n_sims, n_steps + 1)[:, :n_steps]
        s_idx, b_idx = np.nonzero(counts)
        summed = np.zeros((n_sims, n_steps), dtype=FLOAT)
        activation_x = (b_idx + 0.5) * STEP_DAYS
        summed[s_idx, b_idx] = (rng.standard_gamma(alpha_d[which[s_idx]] * counts[s_idx, b_idx]) / beta_d[which[s_idx]]
                                * np.exp(-gamma_d[which[s_idx]] * activation_x))
        unit_at_activation = 0.5 * (unit[:, :-1] + unit[:, 1:])
        unit_at_activation *= summed
        intensity[:, 1:] += unit[:, 1:] * np.cumsum(summed, axis=1) - np.cumsum(unit_at_activation, axis=1)

    arrivals = rng.standard_gamma(remaining, n_sims) if remaining > 0 else np.zeros(n_sims)
    reached = intensity >= arrivals[:, None]
    first = np.where(reached.any(axis=1), reached.argmax(axis=1), -1)
    completion = np.full(n_sims, np.inf)
    done = first >= 0
    j = first[done]
    rows = np.flatnonzero(done)
    before = intensity[rows, np.maximum(j - 1, 0)]
    after = intensity[rows, j]
    fraction = np.where(after > before, (arrivals[rows] - before) / np.maximum(after - before, 1e-12), 0.0)
    completion[rows] = np.where(j == 0, 0.0, x[np.maximum(j - 1, 0)] + fraction * STEP_DAYS)
    return Simulation(x=x, cumulative_intensity=intensity, unit_exposure=unit, completion_days=completion,
                      arrivals=arrivals, alpha=alpha_d[which], beta_per_day=beta_d[which],
                      gamma_per_day=gamma_d[which], randomized=randomized, remaining=remaining)
