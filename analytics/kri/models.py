"""The hierarchical model behind the calibrated KRI scores: likelihoods, fitted spread, tails, posterior.

A site's count (or yes-count out of trials) is scored against its expected count ``E`` from the
study's other sites. Given the site's true rate multiplier ``g = exp(u)`` the count has

* sampling variance (Poisson for counts, binomial for proportions) plus
* subject-level over-dispersion (some patients have many more events than others), estimated from
  the subjects of the study, so the count is negative binomial (counts) or beta-binomial
  (proportions) with mean ``E g`` (or logit shifted by ``u``).

Between sites the effect ``u`` is a two-component mixture:

* clean sites: ``u ~ N(-tau^2 / 2, tau^2)`` (log-normal rate multiplier with mean 1; for
  proportions a normal shift of the logit), the *benign* spread between sites;
* a share of atypical sites (fitted, prior over :data:`CONTAMINATION_GRID`) with a wide effect (SD
  :data:`OUTLIER_SD`).

``tau^2`` and the atypical share are fitted per study by **marginal likelihood** on a grid (the site effect integrated out by
Gauss-Hermite quadrature); the outlier component keeps atypical sites from inflating it and gives
each site its probability of being clean, which weights its contribution to the other sites'
reference (see :mod:`analytics.kri.engine`). A study with few sites borrows strength from a
portfolio prior worth :data:`PRIOR_SITES` sites. Tails (mid-p) are computed under the clean
component, integrated over the posterior of ``tau`` (three posterior quantiles) and over the
uncertainty of the reference itself. The site-level posterior of ``g`` under the mixture prior gives
statements a monitor can read: "P(this site's AE rate is below 75% of its study's) = 0.97".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special, stats

CHI2_1_MEDIAN = float(stats.chi2.median(1))  # 0.4549...
EXACT_BETABINOM_MAX_TRIALS = 60  # above this the beta-binomial CDF is slow; moment-matched NB/binomial
QUADRATURE_NODES = 12
PRIOR_SITES = 10  # weight (in sites) of the portfolio's between-site variance in a study's estimate
PRIOR_ONLY_SAMPLING_VARIANCE = 0.1  # sampling variance of the prior's pseudo-sites in a study with no usable site
# The share of atypical sites is fitted too, over this grid with these prior weights.
CONTAMINATION_GRID = (0.01, 0.03, 0.1, 0.2, 0.3)
CONTAMINATION_PRIOR = (0.3, 0.25, 0.2, 0.15, 0.1)
OUTLIER_SD = 1.5  # SD of an atypical site's effect (log rate or logit)
# Candidate between-site SDs (log-rate or logit scale) for the marginal likelihood.
TAU_GRID = np.concatenate([[0.0], np.geomspace(0.02, 1.5, 19)])
LIKELIHOOD_NODES = 8  # adaptive nodes for the marginal likelihood
GAMMA_NODES = 16  # nodes of the count-side (dual) integral
GAMMA_EXACT_MAX_SHAPE = 60.0  # Gauss-Laguerre up to this Gamma shape, Wilson-Hilferty beyond
TAU_POSTERIOR_QUANTILES = (1 / 6, 1 / 2, 5 / 6)  # tails average over these posterior quantiles of tau
RATIO_BELOW = 0.75  # the posterior reports P(site rate < 75% of the study's) ...
RATIO_ABOVE = 1 / 0.75  # ... and P(site rate > 133% of the study's)
POSTERIOR_GRID = np.linspace(np.log(0.01), np.log(20.0), 201)  # log rate multipliers for the posterior

# Gauss-Hermite (probabilists') nodes for integrating over a normal between-site effect.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
_LL_NODES, _LL_WEIGHTS = np.polynomial.hermite_e.hermegauss(LIKELIHOOD_NODES)
_LL_WEIGHTS = _LL_WEIGHTS / _LL_WEIGHTS.sum()
_GAMMA_GH_NODES, _GAMMA_GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(GAMMA_NODES)
_GAMMA_GH_WEIGHTS = _GAMMA_GH_WEIGHTS / _GAMMA_GH_WEIGHTS.sum()


# --- distributions ------------------------------------------------------------------------------

def _nb_size(expected: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Negative-binomial size of a count with mean ``E g`` and variance ``E g + extra g^2`` (any g)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(extra > 1e-12 * np.maximum(expected, 1e-300) ** 2, expected**2 / np.maximum(extra, 1e-300), np.inf)


def _nb_tails(observed: np.ndarray, mean: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p lower and upper tails of a count under a negative binomial (Poisson where size is inf)."""
    k = np.asarray(observed, dtype="float64")
    mean = np.maximum(np.asarray(mean, dtype="float64"), 1e-300)
    size = np.broadcast_to(size, mean.shape)
    poisson = ~np.isfinite(size)
    r = np.where(poisson, 1.0, size)
    p = r / (r + mean)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_pmf_nb = (special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1)
                      + r * np.log(p) + k * np.log1p(-p))
        log_pmf_pois = k * np.log(mean) - mean - special.gammaln(k + 1)
        pmf = np.exp(np.where(poisson, log_pmf_pois, log_pmf_nb))
        below_nb = np.where(k >= 1, special.betainc(r, np.maximum(k, 1.0), p), 0.0)
        below_pois = np.where(k >= 1, special.gammaincc(np.maximum(k, 1.0), mean), 0.0)
    below = np.where(poisson, below_pois, below_nb)
    return np.clip(below + 0.5 * pmf, 0.0, 1.0), np.clip(1.0 - below - 0.5 * pmf, 0.0, 1.0)


def _matched_binomial_tails(observed: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p tails under a binomial with the given mean and (sub-Poisson) variance."""
    trials = np.maximum(np.round(mean**2 / np.maximum(mean - variance, 1e-12)), np.ceil(mean))
    prob = np.clip(mean / trials, 0.0, 1.0)
    pmf = stats.binom.pmf(observed, trials, prob)
    below = stats.binom.cdf(observed - 1, trials, prob)
    return below + 0.5 * pmf, 1.0 - below - 0.5 * pmf


def _betabinom_tails(k: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p tails of a beta-binomial, vectorized: the pmf by its ratio recursion up to the largest ``n``."""
    k, n = np.round(k), np.round(n)
    log_pmf0 = special.gammaln(n + b) + special.gammaln(a + b) - special.gammaln(n + a + b) - special.gammaln(b)
    pmf = np.exp(log_pmf0)
    below = np.zeros_like(pmf)
    at = np.where(k == 0, pmf, 0.0)
    for j in range(int(n.max(initial=0))):
        active = j < n
        # pmf(j + 1) / pmf(j) = (n - j)(j + a) / ((j + 1)(n - j - 1 + b))
        below = np.where(j < k, below + pmf, below)
        pmf = np.where(active, pmf * (n - j) * (j + a) / ((j + 1) * np.maximum(n - j - 1 + b, 1e-300)), 0.0)
        at = np.where(k == j + 1, pmf, at)
    return np.clip(below + 0.5 * at, 0.0, 1.0), np.clip(1.0 - below - 0.5 * at, 0.0, 1.0)


def _proportion_base_tails(
    observed: np.ndarray, trials: np.ndarray, p: np.ndarray, design_effect: np.ndarray,
    exact_max_trials: int = EXACT_BETABINOM_MAX_TRIALS,
) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p tails of successes out of ``trials`` with success probability ``p``, variance inflated by
    ``design_effect`` (>= 1) for clustering of trials within subjects.

    Exact beta-binomial up to ``exact_max_trials`` trials; beyond that a moment-matched negative
    binomial (variance above the mean) or binomial, accurate there and far faster.
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
        low[exact], high[exact] = _betabinom_tails(k, n, a, b)
    approx = ~exact
    if approx.any():
        k, m, v = observed[approx], mean[approx], variance[approx]
        over = v > m
        with np.errstate(over="ignore"):
            size = np.where(over, m**2 / np.maximum(v - m, 1e-300), np.inf)
        lo_nb, hi_nb = _nb_tails(k, m, size)
        lo_b, hi_b = _matched_binomial_tails(k, m, np.where(over, m * 0.5, v))
        low[approx] = np.where(over, lo_nb, lo_b)
        high[approx] = np.where(over, hi_nb, hi_b)
    return low, high


def _sigma_points(tau2: np.ndarray, n: int) -> np.ndarray:
    """Between-site SDs as (n, m): one column per equally weighted posterior point."""
    tau2 = np.asarray(tau2, dtype="float64")
    if tau2.ndim == 0:
        tau2 = np.full(n, float(tau2))
    return np.sqrt(np.maximum(tau2.reshape(n, -1), 0.0))


@lru_cache(maxsize=512)
def _laguerre(alpha_key: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-nodes and normalized weights of Gamma(shape) expectations, shape = alpha_key / 4 + 1."""
    alpha = alpha_key / 4.0
    nodes, weights = special.roots_genlaguerre(GAMMA_NODES, alpha)
    return np.log(nodes), weights / weights.sum()


def _log_gamma_nodes(shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature for E[f(log G)], G ~ Gamma(shape): (rows x nodes) log-nodes and weights.

    Generalized Gauss-Laguerre (shape rounded to a quarter) up to :data:`GAMMA_EXACT_MAX_SHAPE`;
    beyond, the Wilson-Hilferty cube-root normal transform with Gauss-Hermite nodes.
    """
    shape = np.asarray(shape, dtype="float64")
    log_nodes = np.empty((len(shape), GAMMA_NODES))
    weights = np.empty((len(shape), GAMMA_NODES))
    small = shape <= GAMMA_EXACT_MAX_SHAPE
    keys = np.round((np.maximum(shape, 1.0) - 1.0) * 4).astype("int64")
    for key in np.unique(keys[small]):
        rows = small & (keys == key)
        log_nodes[rows], weights[rows] = _laguerre(int(key))
    big = ~small
    if big.any():
        a = shape[big][:, None]
        cube = 1 - 1 / (9 * a) + _GAMMA_GH_NODES[None, :] / (3 * np.sqrt(a))
        log_nodes[big] = np.log(a) + 3 * np.log(np.maximum(cube, 1e-12))
        weights[big] = _GAMMA_GH_WEIGHTS[None, :]
    return log_nodes, weights


def _gamma_side_probability(shape: np.ndarray, centre: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """E[Phi((log G - centre) / spread)] for G ~ Gamma(shape) (0 where shape <= 0)."""
    out = np.zeros(len(shape))
    ok = shape > 0
    if ok.any():
        log_g, w = _log_gamma_nodes(shape[ok])
        z = (log_g - centre[ok, None]) / np.maximum(spread[ok, None], 1e-12)
        out[ok] = (w * special.ndtr(z)).sum(1)
    return out


def count_tails(
    observed: np.ndarray, expected: np.ndarray, base_variance: np.ndarray, tau2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p (lower, upper) tails of ``observed`` event counts.

    The count is negative binomial given the site's true rate (mean ``expected`` x g, variance
    ``base_variance`` scaled accordingly: Poisson plus subject frailty); the site's rate multiplier
    g is log-normal with log-variance ``tau2`` and mean 1. ``tau2`` may be (n,) or (n, m) for an
    equal-weight average over m values (the posterior quantiles of the between-site variance).

    The integral over g is taken on whichever side is smoother: over g by Gauss-Hermite when the
    count's own noise is wider than the between-site spread, else over the count's dual
    (``P(Y <= y | lambda) = P(Gamma(y + 1) > lambda)``, so the tail is an expectation over a Gamma
    variable of a normal CDF), which stays accurate when a large site's count pins its rate down.

    Args:
        observed: observed counts (events).
        expected: expected counts (events), > 0.
        base_variance: variance of the count at the expected rate (events^2), >= expected.
        tau2: between-site variance of the log rate (dimensionless), >= 0.
    """
    y = np.asarray(observed, dtype="float64")
    e = np.maximum(np.asarray(expected, dtype="float64"), 1e-300)
    size = _nb_size(e, np.maximum(np.asarray(base_variance, dtype="float64") - e, 0.0))
    sigma = _sigma_points(tau2, len(y))
    finite = np.isfinite(size)
    r = np.where(finite, size, 1.0)
    # Subject frailty on the dual side: log W, W ~ Gamma(r, r), taken as normal.
    log_w_mean = np.where(finite, special.digamma(r) - np.log(r), 0.0)
    log_w_var = np.where(finite, special.polygamma(1, r), 0.0)
    count_spread = special.polygamma(1, y + 1) + log_w_var
    low = np.zeros(len(y))
    for j in range(sigma.shape[1]):
        s = sigma[:, j]
        dual = s**2 > count_spread
        lo = np.empty(len(y))
        direct = ~dual
        if direct.any():
            offsets = s[direct, None] * _NODES[None, :] - s[direct, None] ** 2 / 2
            part, _ = _nb_tails(y[direct, None], e[direct, None] * np.exp(offsets), size[direct, None])
            lo[direct] = (part * _WEIGHTS[None, :]).sum(1)
        if dual.any():
            centre = np.log(e[dual]) - s[dual] ** 2 / 2 + log_w_mean[dual]
            spread = np.sqrt(s[dual] ** 2 + log_w_var[dual])
            at_or_below = _gamma_side_probability(y[dual] + 1, centre, spread)
            strictly_below = _gamma_side_probability(y[dual], centre, spread)
            lo[dual] = 0.5 * (at_or_below + strictly_below)
        low += lo / sigma.shape[1]
    low = np.clip(low, 0.0, 1.0)
    return low, 1.0 - low


def proportion_tails(
    observed: np.ndarray, trials: np.ndarray, expected: np.ndarray, base_variance: np.ndarray, tau2: np.ndarray,
    exact_max_trials: int = EXACT_BETABINOM_MAX_TRIALS,
) -> tuple[np.ndarray, np.ndarray]:
    """Mid-p (lower, upper) tails of ``observed`` successes out of ``trials``.

    Given the site's true proportion the count is beta-binomial (binomial variance times the
    within-subject design effect implied by ``base_variance``; exact up to ``exact_max_trials``
    trials, moment-matched beyond); the site's logit proportion is normal around the expected one
    with variance ``tau2`` ((n,) or (n, m) as in :func:`count_tails`). As for counts, the integral is
    taken over the logit by Gauss-Hermite when the count is noisier than the spread, else over the
    dual (``P(Bin(n, p) <= y) = P(Beta(y + 1, n - y) > p)`` on the design-effect-scaled counts).
    """
    y = np.asarray(observed, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    p0 = np.clip(np.asarray(expected, dtype="float64") / np.maximum(n, 1e-300), 1e-9, 1 - 1e-9)
    design = np.maximum(np.asarray(base_variance, dtype="float64") / (n * p0 * (1 - p0)), 1.0)
    sigma = _sigma_points(tau2, len(y))
    logit = np.log(p0 / (1 - p0))
    a = y / design + 0.5  # continuity-corrected effective successes and failures (mid-p)
    b = (n - y) / design + 0.5
    count_spread = special.polygamma(1, a) + special.polygamma(1, b)
    low = np.zeros(len(y))
    for j in range(sigma.shape[1]):
        s = sigma[:, j]
        # The logit is centred so the site's *mean* proportion is the expected one.
        shift = mean_shift("proportion", s, p0)
        dual = s**2 > count_spread
        lo = np.empty(len(y))
        direct = np.flatnonzero(~dual)
        if len(direct):
            part = np.zeros(len(direct))
            for x, w in zip(_NODES, _WEIGHTS):
                p = np.clip(special.expit(logit[direct] + s[direct] * x - shift[direct]), 1e-12, 1 - 1e-12)
                lo_k, _ = _proportion_base_tails(y[direct], n[direct], p, design[direct], exact_max_trials)
                part += w * lo_k
            lo[direct] = part
        rows = np.flatnonzero(dual)
        if len(rows):
            # P(logit p0 + u < log G_a - log G_b): quadrature over the smaller shape, the other normal.
            aa, bb, ss, cc = a[rows], b[rows], s[rows], logit[rows] - shift[rows]
            a_small = aa <= bb
            res = np.empty(len(rows))
            i = np.flatnonzero(a_small)
            res[i] = _gamma_side_probability(
                aa[i], cc[i] + special.digamma(bb[i]), np.sqrt(ss[i] ** 2 + special.polygamma(1, bb[i])))
            i = np.flatnonzero(~a_small)
            # P(log G_b < log G_a - u - c) with log G_a - u normal: 1 - P over G_b of the complement.
            res[i] = 1.0 - _gamma_side_probability(
                bb[i], special.digamma(aa[i]) - cc[i], np.sqrt(ss[i] ** 2 + special.polygamma(1, aa[i])))
            lo[rows] = res
        low += lo / sigma.shape[1]
    low = np.clip(low, 0.0, 1.0)
    return low, 1.0 - low


# --- the site likelihood and the fitted between-site spread --------------------------------------

@dataclass(frozen=True)
class SiteData:
    """What the model needs of each scored site (one KRI, one snapshot)."""

    family: str  # count or proportion
    observed: np.ndarray
    trials: np.ndarray  # denominator (trials for proportions; exposure for counts, unused)
    expected: np.ndarray
    base_variance: np.ndarray  # variance at the expected rate (sampling + subject level)

    def log_likelihood(self, offsets: np.ndarray) -> np.ndarray:
        """Log-likelihood (up to a per-site constant) at rate multipliers ``exp(offsets)`` (sites x k)."""
        y = self.observed[:, None]
        if self.family == "count":
            e = np.maximum(self.expected, 1e-300)
            size = _nb_size(e, np.maximum(self.base_variance - e, 0.0))[:, None]
            m = e[:, None] * np.exp(offsets)
            finite = np.isfinite(size)
            r = np.where(finite, size, 1.0)
            with np.errstate(over="ignore", invalid="ignore"):
                nb = y * np.log(m) - (y + r) * np.log1p(m / r)
            return np.where(finite, nb, y * np.log(m) - m)
        n = np.maximum(self.trials, 1e-300)
        p0 = np.clip(self.expected / n, 1e-9, 1 - 1e-9)
        design = np.maximum(self.base_variance / (n * p0 * (1 - p0)), 1.0)
        logit = np.log(p0 / (1 - p0))[:, None]
        p = special.expit(logit + offsets)
        # Effective binomial: the counts divided by the design effect (clustering within subjects).
        ys, fs = (self.observed / design)[:, None], ((self.trials - self.observed) / design)[:, None]
        return ys * np.log(np.clip(p, 1e-300, 1)) + fs * np.log(np.clip(1 - p, 1e-300, 1))

    def likelihood_normal(self) -> tuple[np.ndarray, np.ndarray]:
        """Centre and width of the likelihood in u (log rate or logit ratio), normal approximation."""
        if self.family == "count":
            e = np.maximum(self.expected, 1e-300)
            size = _nb_size(e, np.maximum(self.base_variance - e, 0.0))
            centre = np.log((self.observed + 0.5) / e)
            variance = 1 / (self.observed + 0.5) + np.where(np.isfinite(size), 1 / np.where(np.isfinite(size), size, 1.0), 0.0)
            return centre, np.sqrt(variance)
        p0 = self.reference_share()
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            design = np.maximum(np.nan_to_num(self.base_variance / (np.maximum(self.trials, 1e-300) * p0 * (1 - p0)),
                                              nan=1.0, posinf=1.0), 1.0)
        a = self.observed / design + 0.5
        b = (self.trials - self.observed) / design + 0.5
        return np.log(a / b) - np.log(p0 / (1 - p0)), np.sqrt(1 / a + 1 / b)

    def reference_share(self) -> np.ndarray:
        """Expected proportion per site (proportions; 0.5, unused, for counts)."""
        if self.family == "count":
            return np.full(len(self.observed), 0.5)
        return np.clip(self.expected / np.maximum(self.trials, 1e-300), 1e-9, 1 - 1e-9)

    def sampling_log_variance(self) -> np.ndarray:
        """Delta-method variance of the site's log rate (counts) or logit (proportions) given its effect."""
        if self.family == "count":
            return self.base_variance / np.maximum(self.expected, 1e-12) ** 2
        p0 = np.clip(self.expected / np.maximum(self.trials, 1e-300), 1e-9, 1 - 1e-9)
        return self.base_variance / np.maximum(self.trials * p0 * (1 - p0), 1e-12) ** 2


_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


def _norm_logpdf(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Normal log density (scipy's is several times slower on large arrays)."""
    z = (x - mean) / sd
    return -0.5 * z * z - np.log(sd) - _HALF_LOG_2PI


def _log_mean_exp(log_values: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(log_values, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(weights * np.exp(log_values - top), axis=axis))


def mean_shift(family: str, sigma: np.ndarray, p0: np.ndarray | float = 0.5) -> np.ndarray:
    """Centre of the site effect u with SD ``sigma`` so the site's mean rate (proportion) is the reference's.

    Counts: ``-sigma^2 / 2`` makes ``exp(u)`` mean-one. Proportions: the logit is shifted by
    ``-(1 - 2 p0) sigma^2 / 2`` (delta method), so ``E[expit(logit p0 + u)] = p0`` to second order.
    """
    sigma = np.asarray(sigma, dtype="float64")
    if family == "count":
        return sigma**2 / 2
    return (1 - 2 * np.asarray(p0, dtype="float64")) * sigma**2 / 2


def _adaptive_log_marginal(data: "SiteData", sd: np.ndarray) -> np.ndarray:
    """log of the likelihood integrated over u ~ N(-shift, sd^2), by adaptive Gauss-Hermite quadrature.

    The nodes sit around the normal approximation of the site's posterior of u (its likelihood's
    centre and width combined with the prior), so both a noisy small site and a precise large one
    (whose likelihood is far narrower than the between-site spread) are integrated accurately.
    ``sd``: (sites, k) prior SDs; returns (sites, k).
    """
    centre, width = data.likelihood_normal()
    sd = np.maximum(sd, 1e-4)
    prior_mean = -mean_shift(data.family, sd, data.reference_share()[:, None])
    precision = 1 / sd**2 + 1 / width[:, None] ** 2
    post_sd = 1 / np.sqrt(precision)
    post_mean = (centre[:, None] / width[:, None] ** 2 + prior_mean / sd**2) / precision
    u = post_mean[..., None] + post_sd[..., None] * _LL_NODES  # sites x k x nodes
    shape = u.shape
    ll = data.log_likelihood(u.reshape(shape[0], -1)).reshape(shape)
    log_ratio = (_norm_logpdf(u, prior_mean[..., None], sd[..., None])
                 - _norm_logpdf(u, post_mean[..., None], post_sd[..., None]))
    return _log_mean_exp(ll + log_ratio, _LL_WEIGHTS, axis=2)


def site_log_likelihoods(data: SiteData, reference_variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per site, the marginal log-likelihood at every :data:`TAU_GRID` value and under the outlier component.

    The reference's own uncertainty (``reference_variance``, log or logit scale) adds to the spread.
    Returns (sites x grid, sites).
    """
    total_sd = np.sqrt(TAU_GRID[None, :] ** 2 + reference_variance[:, None])  # sites x grid
    clean = _adaptive_log_marginal(data, total_sd)
    outlier = _adaptive_log_marginal(data, np.sqrt(OUTLIER_SD**2 + reference_variance)[:, None])[:, 0]
    return clean, outlier


@dataclass
class SpreadFit:
    """The fitted between-site spread of one KRI, per group (study and snapshot)."""

    tau2_points: np.ndarray  # groups x 3: posterior quantiles of tau^2 (tails average over them)
    tau2: np.ndarray  # groups: posterior median of tau^2
    clean_probability: np.ndarray  # sites: posterior probability the site belongs to the clean component
    contamination: np.ndarray  # groups: posterior mean share of atypical sites
    usable_sites: np.ndarray  # groups: sites that informed the fit


def prior_log_density(prior_tau2: np.ndarray, typical_sampling: np.ndarray) -> np.ndarray:
    """Log prior over :data:`TAU_GRID` per group: :data:`PRIOR_SITES` pseudo-sites whose spread is the prior's.

    Each pseudo-site contributes the expected normal log-likelihood of a site with sampling
    variance ``v`` whose true spread is ``tau0``: ``-(log(tau^2 + v) + (tau0^2 + v) / (tau^2 + v)) / 2``,
    largest at ``tau = tau0``.
    """
    v = np.maximum(typical_sampling, 1e-6)[:, None]
    total = TAU_GRID[None, :] ** 2 + v
    return -0.5 * PRIOR_SITES * (np.log(total) + (np.maximum(prior_tau2, 0.0)[:, None] + v) / total)


def fit_spread(
    data: SiteData, reference_variance: np.ndarray, group: np.ndarray, n_groups: int, usable: np.ndarray,
    prior_tau2: np.ndarray,
) -> SpreadFit:
    """Marginal-likelihood fit of the between-site spread per group, with the portfolio prior.

    ``usable`` sites inform the fit; every site gets a clean-component probability (at the fitted
    spread). ``prior_tau2``: per group, the portfolio's between-site variance.
    """
    n_sites = len(data.observed)
    clean = np.zeros((n_sites, len(TAU_GRID)))
    outlier = np.zeros(n_sites)
    rows = np.flatnonzero(usable)
    if len(rows):
        sub = SiteData(data.family, data.observed[rows], data.trials[rows], data.expected[rows],
                       data.base_variance[rows])
        c, o = site_log_likelihoods(sub, reference_variance[rows])
        clean[rows], outlier[rows] = c, o
    weights = usable.astype("float64")
    # log-likelihood per group over (tau, contamination share): sites x grid x shares, summed by group.
    eps = np.asarray(CONTAMINATION_GRID)
    mixed = np.logaddexp(np.log1p(-eps)[None, None, :] + clean[:, :, None],
                         np.log(eps)[None, None, :] + outlier[:, None, None])
    # Explicit width: a study with no sites yet (planned, start-up) has zero rows to infer it from.
    flat = (mixed * weights[:, None, None]).reshape(n_sites, len(TAU_GRID) * len(eps))
    loglik = np.column_stack([np.bincount(group, weights=flat[:, j], minlength=n_groups)
                              for j in range(flat.shape[1])]).reshape(n_groups, len(TAU_GRID), len(eps))
    sampling = data.sampling_log_variance() + reference_variance
    typical = np.full(n_groups, np.nan)
    if len(rows):
        medians = pd.Series(sampling[rows]).groupby(group[rows]).median()
        typical[medians.index.to_numpy()] = medians.to_numpy()
    # A study without usable sites takes the prior alone; its pseudo-sites get a fixed sampling variance
    # (not one from the other studies in the frame, so a partial refresh agrees with a full one).
    typical = np.where(np.isfinite(typical), typical, PRIOR_ONLY_SAMPLING_VARIANCE)
    log_post = (loglik + prior_log_density(prior_tau2, typical)[:, :, None]
                + np.log(np.asarray(CONTAMINATION_PRIOR))[None, None, :])
    log_post -= log_post.max(axis=(1, 2), keepdims=True)
    joint = np.exp(log_post)
    joint /= joint.sum(axis=(1, 2), keepdims=True)
    post = joint.sum(2)  # marginal over the contamination share
    cdf = np.cumsum(post, 1)
    points = np.stack([TAU_GRID[np.minimum(np.argmax(cdf >= q, axis=1), len(TAU_GRID) - 1)]
                       for q in TAU_POSTERIOR_QUANTILES], axis=1) ** 2
    at = np.minimum(np.argmax(cdf >= 0.5, axis=1), len(TAU_GRID) - 1)
    median = TAU_GRID[at] ** 2
    # The contamination share's posterior at the median spread; each site's clean probability under it.
    share_post = joint[np.arange(n_groups), at, :]
    share_post /= share_post.sum(1, keepdims=True)
    contamination = share_post @ eps
    clean_ll = clean[np.arange(n_sites), at[group]]
    log_clean = np.log1p(-contamination[group]) + clean_ll
    prob_clean = np.exp(log_clean - np.logaddexp(log_clean, np.log(contamination[group]) + outlier))
    prob_clean = np.where(usable, prob_clean, 1.0)
    return SpreadFit(tau2_points=points, tau2=median, clean_probability=prob_clean, contamination=contamination,
                     usable_sites=np.bincount(group, weights=weights, minlength=n_groups).astype("int64"))


def _grid_log_likelihood(data: SiteData) -> tuple[np.ndarray, np.ndarray]:
    """The posterior grid of site effects (1 x k) and each site's log-likelihood on it (sites x k)."""
    u = POSTERIOR_GRID[None, :]
    return u, data.log_likelihood(np.broadcast_to(u, (len(data.observed), len(POSTERIOR_GRID))))


def log_likelihood_ratio_kept(data: SiteData, tau2: np.ndarray, reference_variance: np.ndarray,
                              kept: float) -> np.ndarray:
    """Per site, log P(counts | the site reported only ``kept`` of its events) / P(counts | clean).

    Both hypotheses give the site its clean effect ``u ~ N(-shift, tau2 + reference variance)`` (log
    rate scale); the alternative multiplies its rate by ``kept``. Under the fitted model this is the
    Neyman-Pearson statistic for that one alternative: ranked sites by it, no test finds more sites
    that kept ``kept`` of their events at the same false-positive rate. Count family only. It is a
    yardstick for the evaluation (how much a test tuned to one removal level could gain there, and
    what it costs at the others), not a flag.
    """
    if data.family != "count":
        raise ValueError("the likelihood ratio for kept events is defined for count KRIs")
    if not 0 < kept < 1:
        raise ValueError(f"kept must be a share between 0 and 1, not {kept}")
    u, ll = _grid_log_likelihood(data)
    sd = np.sqrt(np.maximum(tau2 + reference_variance, 1e-8))[:, None]
    centre = -mean_shift("count", sd)
    return (special.logsumexp(ll + _norm_logpdf(u - np.log(kept), centre, sd), axis=1)
            - special.logsumexp(ll + _norm_logpdf(u, centre, sd), axis=1))


def site_posterior(data: SiteData, tau2: np.ndarray, reference_variance: np.ndarray,
                   contamination: np.ndarray) -> dict[str, np.ndarray]:
    """Posterior of each site's rate (or proportion) relative to its study's, under the mixture prior.

    Returns per site the posterior median and 90% interval of the ratio, and the posterior
    probabilities that it is below :data:`RATIO_BELOW` and above :data:`RATIO_ABOVE`.
    """
    u, ll = _grid_log_likelihood(data)
    clean_var = np.maximum(tau2 + reference_variance, 1e-8)[:, None]
    wide_var = (OUTLIER_SD**2 + reference_variance)[:, None]
    p0 = data.reference_share()[:, None]
    log_prior = np.logaddexp(
        np.log1p(-contamination[:, None]) + _norm_logpdf(
            u, -mean_shift(data.family, np.sqrt(clean_var), p0), np.sqrt(clean_var)),
        np.log(contamination[:, None]) + _norm_logpdf(
            u, -mean_shift(data.family, np.sqrt(wide_var), p0), np.sqrt(wide_var)))
    log_post = ll + log_prior
    log_post -= log_post.max(1, keepdims=True)
    post = np.exp(log_post)
    post /= post.sum(1, keepdims=True)
    cdf = np.cumsum(post, 1)
    if data.family == "count":
        ratio = np.exp(POSTERIOR_GRID)
    else:
        p0 = np.clip(data.expected / np.maximum(data.trials, 1e-300), 1e-9, 1 - 1e-9)[:, None]
        ratio = special.expit(np.log(p0 / (1 - p0)) + u) / p0
    ratio = np.broadcast_to(ratio, post.shape)
    rows = np.arange(len(post))

    def quantile(q: float) -> np.ndarray:
        return ratio[rows, np.minimum(np.argmax(cdf >= q, axis=1), post.shape[1] - 1)]

    return {
        "posterior_ratio": quantile(0.5),
        "posterior_ratio_low": quantile(0.05),
        "posterior_ratio_high": quantile(0.95),
        "prob_below": (post * (ratio < RATIO_BELOW)).sum(1),
        "prob_above": (post * (ratio > RATIO_ABOVE)).sum(1),
    }


# --- evidence for the portfolio prior, flags, display ----------------------------------------------

def implied_log_scale_tau2(
    family: str, observed: np.ndarray, trials: np.ndarray, expected: np.ndarray, base_variance: np.ndarray
) -> np.ndarray:
    """Per site, the between-site variance (log rate or logit scale) its residual implies.

    On the log (counts) or logit (proportions) scale the site's residual has variance
    ``tau2 + sampling variance`` (delta method); the implied ``tau2`` is the value at which the
    squared residual equals the chi-square(1) median times that variance. The median over sites is
    the portfolio prior's centre (the stored evidence of every study, see :mod:`analytics.kri.results`).
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


def cell_alpha(family_rate: float, tests: np.ndarray, effective_ratio: np.ndarray | float = 1.0) -> np.ndarray:
    """Per-test false-positive rate so a site with ``tests`` one-sided tests shows ``family_rate`` overall.

    ``effective_ratio`` is the share of the tests that count as independent (1 = Sidak); the
    patient-reshuffle permutation measures it per study (:mod:`analytics.kri.permutation`).
    """
    effective = np.maximum(np.asarray(tests, dtype="float64"), 1.0) * np.asarray(effective_ratio, dtype="float64")
    return 1.0 - (1.0 - family_rate) ** (1.0 / np.maximum(effective, 1e-3))


def signed_z(p_low: np.ndarray, p_high: np.ndarray) -> np.ndarray:
    """A signed normal score of the more extreme tail: negative when the site is low."""
    low = np.clip(p_low, 1e-300, 1.0)
    high = np.clip(p_high, 1e-300, 1.0)
    return np.where(low < high, -stats.norm.isf(np.minimum(low, 0.5)), stats.norm.isf(np.minimum(high, 0.5)))
