"""Statistical models behind the calibrated KRI scores: tails, dispersion and flag thresholds.

Site counts are scored against their leave-one-site-out expectation with a variance that has three
parts:

* sampling variance (Poisson for counts, binomial for proportions),
* subject-level over-dispersion (some patients have many more AEs than others), estimated from the
  subjects of the study by the method of moments,
* benign between-site spread ``tau^2``, estimated *robustly*: each site implies the ``tau^2`` that
  would make its squared standardized residual equal the chi-square(1) median, and the study's
  estimate is the median of those. Atypical sites cannot inflate it and mask themselves (unlike
  gsm's ``phi = mean(z^2)``).

Tails are exact mid-p probabilities under a negative binomial (counts) or beta-binomial
(proportions) with that mean and variance.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CHI2_1_MEDIAN = float(stats.chi2.median(1))  # 0.4549...
EXACT_BETABINOM_MAX_TRIALS = 60  # above this the beta-binomial CDF is slow; moment-matched NB/binomial
QUADRATURE_NODES = 12
MEDIAN_EFFICIENCY = 0.64
PRIOR_SITES = 10  # weight (in sites) of the pooled between-site variance in a study's estimate
MAX_INFLATION = 25.0
INFLATION_ALPHA = 5e-4  # the tail the predictive inflation is matched at (a typical red threshold)


def _nb_tails(observed: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p lower and upper tails of a count under a negative binomial (Poisson when var <= mean)."""
    over = variance > mean * (1 + 1e-9)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        size = np.where(over, mean**2 / np.maximum(variance - mean, 1e-300), 1.0)
    prob = size / (size + mean)
    pmf = np.where(over, stats.nbinom.pmf(observed, size, prob), stats.poisson.pmf(observed, mean))
    below = np.where(over, stats.nbinom.cdf(observed - 1, size, prob), stats.poisson.cdf(observed - 1, mean))
    return below + 0.5 * pmf, 1.0 - below - 0.5 * pmf


def _matched_binomial_tails(observed: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p tails under a binomial with the given mean and (sub-Poisson) variance."""
    trials = np.maximum(np.round(mean**2 / np.maximum(mean - variance, 1e-12)), np.ceil(mean))
    prob = np.clip(mean / trials, 0.0, 1.0)
    pmf = stats.binom.pmf(observed, trials, prob)
    below = stats.binom.cdf(observed - 1, trials, prob)
    return below + 0.5 * pmf, 1.0 - below - 0.5 * pmf


def _proportion_base_tails(
    observed: np.ndarray, trials: np.ndarray, p: np.ndarray, design_effect: np.ndarray,
    exact_max_trials: int = EXACT_BETABINOM_MAX_TRIALS,
) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p tails of successes out of ``trials`` with success probability ``p``, variance inflated by
    ``design_effect`` (>= 1) for clustering of trials within subjects.

    Exact beta-binomial up to :data:`EXACT_BETABINOM_MAX_TRIALS` trials; beyond that a moment-matched
    negative binomial (variance above the mean) or binomial, accurate there and far faster.
    """
    low = np.full(observed.shape, np.nan)
    high = np.full(observed.shape, np.nan)
    mean = trials * p
    variance = mean * (1 - p) * design_effect
    exact = trials <= exact_max_trials
    if exact.any():
        n, k, pe = trials[exact], observed[exact], p[exact]
        rho = np.clip((design_effect[exact] - 1) / np.maximum(n - 1, 1), 1e-9, 0.999)
        total = (1 - rho) / rho
        a, b = pe * total, (1 - pe) * total
        pmf = stats.betabinom.pmf(k, n, a, b)
        below = stats.betabinom.cdf(k - 1, n, a, b)
        low[exact], high[exact] = below + 0.5 * pmf, 1.0 - below - 0.5 * pmf
    approx = ~exact
    if approx.any():
        k, m, v = observed[approx], mean[approx], variance[approx]
        over = v > m
        lo_nb, hi_nb = _nb_tails(k, m, np.where(over, v, m * 2))
        lo_b, hi_b = _matched_binomial_tails(k, m, np.where(over, m * 0.5, v))
        low[approx] = np.where(over, lo_nb, lo_b)
        high[approx] = np.where(over, hi_nb, hi_b)
    return low, high


# Gauss-Hermite (probabilists') nodes for integrating over a normal between-site effect.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def count_tails(
    observed: np.ndarray, expected: np.ndarray, base_variance: np.ndarray, tau2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p (lower, upper) tails of ``observed`` event counts.

    The count is negative binomial given the site's true rate (mean ``expected`` x g, variance
    ``base_variance`` scaled accordingly: Poisson plus subject frailty); the site's rate multiplier
    g is log-normal with log-variance ``tau2`` and mean 1 (benign between-site spread). The mixture
    is integrated by Gauss-Hermite quadrature.

    Args:
        observed: observed counts (events).
        expected: expected counts (events), > 0.
        base_variance: variance of the count at the expected rate (events^2), >= expected.
        tau2: between-site variance of the log rate (dimensionless), >= 0.
    """
    observed = np.asarray(observed, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    extra = np.maximum(np.asarray(base_variance, dtype="float64") - expected, 0.0)
    sigma = np.sqrt(np.maximum(np.asarray(tau2, dtype="float64"), 0.0))
    low = np.zeros_like(observed)
    high = np.zeros_like(observed)
    for x, w in zip(_NODES, _WEIGHTS):
        g = np.exp(sigma * x - sigma**2 / 2)
        mean = expected * g
        lo, hi = _nb_tails(observed, mean, mean + extra * g**2)
        low += w * lo
        high += w * hi
    return np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)


def proportion_tails(
    observed: np.ndarray, trials: np.ndarray, expected: np.ndarray, base_variance: np.ndarray, tau2: np.ndarray,
    exact_max_trials: int = EXACT_BETABINOM_MAX_TRIALS,
) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p (lower, upper) tails of ``observed`` successes out of ``trials``.

    Given the site's true proportion the count is beta-binomial (binomial variance times the
    within-subject design effect implied by ``base_variance``; exact up to ``exact_max_trials``
    trials, moment-matched beyond); the site's logit proportion is
    normal around the expected one with variance ``tau2`` (benign between-site spread), integrated
    by Gauss-Hermite quadrature.
    """
    observed = np.asarray(observed, dtype="float64")
    trials = np.asarray(trials, dtype="float64")
    p0 = np.clip(np.asarray(expected, dtype="float64") / np.maximum(trials, 1e-300), 1e-9, 1 - 1e-9)
    design = np.maximum(np.asarray(base_variance, dtype="float64") / (trials * p0 * (1 - p0)), 1.0)
    sigma = np.sqrt(np.maximum(np.asarray(tau2, dtype="float64"), 0.0))
    logit = np.log(p0 / (1 - p0))
    low = np.zeros_like(observed)
    high = np.zeros_like(observed)
    for x, w in zip(_NODES, _WEIGHTS):
        p = 1 / (1 + np.exp(-(logit + sigma * x)))
        lo, hi = _proportion_base_tails(observed, trials, np.clip(p, 1e-12, 1 - 1e-12), design, exact_max_trials)
        low += w * lo
        high += w * hi
    return np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)


def implied_log_scale_tau2(
    family: str, observed: np.ndarray, trials: np.ndarray, expected: np.ndarray, base_variance: np.ndarray
) -> np.ndarray:
    """Per site, the between-site variance (log rate or logit scale) its residual implies.

    On the log (counts) or logit (proportions) scale the site's residual has variance
    ``tau2 + sampling variance`` (delta method); the implied ``tau2`` is the value at which the
    squared residual equals the chi-square(1) median times that variance.
    """
    if family == "count":
        resid = np.log((observed + 0.5) / (expected + 0.5))
        sampling = base_variance / np.maximum(expected, 1e-12) ** 2
    else:
        p0 = np.clip(expected / np.maximum(trials, 1e-300), 1e-9, 1 - 1e-9)
        ph = (observed + 0.5) / (trials + 1.0)
        resid = np.log(ph / (1 - ph)) - np.log(p0 / (1 - p0))
        sampling = base_variance / np.maximum(trials * p0 * (1 - p0), 1e-12) ** 2
    return resid**2 / CHI2_1_MEDIAN - sampling


def pooled_variances(implied: np.ndarray, group: np.ndarray, usable: np.ndarray, pool: np.ndarray) -> dict[int, float]:
    """The median implied between-site variance per pool (snapshot) over every usable site."""
    rows = np.flatnonzero(usable & np.isfinite(implied))
    pool_of_row = pool[group[rows]]
    return {int(p): max(float(np.median(implied[rows][pool_of_row == p])), 0.0) for p in np.unique(pool_of_row)}


def robust_between_site_variance(
    implied: np.ndarray, group: np.ndarray, n_groups: int, usable: np.ndarray, pool: np.ndarray,
    min_sites: int = 3, pooled: dict[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Median-unbiased between-site variance per group (study and snapshot), shrunk toward a pool.

    A site's squared standardized residual falls monotonically as ``tau2`` grows, so the median of
    the per-site implied values (see :func:`implied_log_scale_tau2`) is the ``tau2`` at which half
    the sites sit below the chi-square(1) median. Atypical sites move a median little (unlike gsm's
    ``phi = mean(z^2)``, which they inflate to mask themselves). A study's estimate from ``k`` sites
    is shrunk toward the median over every study of the same ``pool`` (snapshot) with the weight of
    :data:`PRIOR_SITES` sites, so small studies borrow strength. ``pooled`` gives that median per
    pool when it was computed over more studies than these rows hold (a refresh of some studies
    borrows from the whole portfolio, see :mod:`analytics.kri.results`).

    Returns:
        (tau2 per group, number of usable sites per group).
    """
    tau2 = np.zeros(n_groups)
    sites = np.zeros(n_groups, dtype="int64")
    rows = np.flatnonzero(usable & np.isfinite(implied))
    own_pools = pooled_variances(implied, group, usable, pool) if len(rows) else {}
    pooled = {**own_pools, **{int(k): float(v) for k, v in (pooled or {}).items()}}
    if len(rows) == 0:  # no usable site here: every study takes the pooled value (0 without one)
        for g in range(n_groups):
            tau2[g] = pooled.get(int(pool[g]), 0.0)
        return tau2, sites
    order = rows[np.argsort(group[rows], kind="stable")]
    groups, starts, counts = np.unique(group[order], return_index=True, return_counts=True)
    values = implied[order]
    sites[groups] = counts
    for g in range(n_groups):
        prior = pooled.get(pool[g], 0.0)
        tau2[g] = prior
    for g, start, count in zip(groups, starts, counts):
        own = max(float(np.median(values[start:start + count])), 0.0) if count >= min_sites else pooled[pool[g]]
        tau2[g] = (count * own + PRIOR_SITES * pooled[pool[g]]) / (count + PRIOR_SITES)
    return tau2, sites


def estimation_inflation(sites: np.ndarray, alpha: float) -> np.ndarray:
    """Factor on ``tau2`` that makes a normal tail at ``alpha`` as wide as the predictive t tail.

    ``tau2`` estimated from ``k`` sites is uncertain; a new site's effect then follows roughly a t
    distribution with ``0.64 (k - 1)`` degrees of freedom (0.64: efficiency of a median). Inflating
    the variance by ``(t_df.isf(alpha) / z.isf(alpha))^2`` matches the two at the flag threshold.
    """
    df = np.maximum(MEDIAN_EFFICIENCY * (np.asarray(sites, dtype="float64") - 1), 1.0)
    ratio = stats.t.isf(alpha, df) / stats.norm.isf(alpha)
    return np.minimum(ratio**2, MAX_INFLATION)


def cell_alpha(family_rate: float, tests: np.ndarray) -> np.ndarray:
    """Per-test false-positive rate so a site with ``tests`` one-sided tests has ``family_rate`` overall (Sidak)."""
    tests = np.maximum(np.asarray(tests, dtype="float64"), 1.0)
    return 1.0 - (1.0 - family_rate) ** (1.0 / tests)


def signed_z(p_low: np.ndarray, p_high: np.ndarray) -> np.ndarray:
    """A signed normal score of the more extreme tail: negative when the site is low."""
    low = np.clip(p_low, 1e-300, 1.0)
    high = np.clip(p_high, 1e-300, 1.0)
    return np.where(low < high, -stats.norm.isf(np.minimum(low, 0.5)), stats.norm.isf(np.minimum(high, 0.5)))
