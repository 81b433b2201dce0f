"""The calibrated method's fit of one KRI: robust reference, fitted spread, tails and site posterior.

For every site (and snapshot) the expected count comes from the study's *other* sites, standardized
by the time-on-study profile for stratified KRIs. The reference is robust to other atypical sites:
each site contributes to its peers' reference with its posterior probability of being clean (from
the mixture model of :mod:`analytics.kri.models`), and the fit is repeated
:data:`ROBUST_ITERATIONS` times, so a few under-reporting sites no longer pull the reference down
and make clean sites look high. The between-site spread is fitted by marginal likelihood on the
sites that inform it; the reference's own sampling uncertainty is part of every site's variance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.kri.extract import treatment_days_by_bin
from analytics.kri.models import (
    SiteData,
    count_tails,
    fit_spread,
    implied_log_scale_tau2,
    log_likelihood_ratio_kept,
    pooled_variances,
    proportion_tails,
    site_posterior,
)
from analytics.kri.sites import SiteIndex
from analytics.kri.specs import KRISpec, stratum_columns

ROBUST_ITERATIONS = 2  # refits after reweighting the reference by each site's clean probability
TAIL_CHUNK = 40_000  # cells per batch in the tail integrals (bounds memory on large portfolios)


def sum_by(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Column-wise sums of ``values`` (rows x columns, or rows) by ``codes``."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n)
    return np.column_stack([np.bincount(codes, weights=values[:, j], minlength=n) for j in range(values.shape[1])])


def kri_inputs(frame: pd.DataFrame, spec: KRISpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-subject numerator and denominator matrices (rows x strata) for ``spec``."""
    if spec.stratified:
        numerator = frame[stratum_columns(spec.numerator)].to_numpy(dtype="float64")
        denominator = treatment_days_by_bin(frame[spec.denominator].to_numpy(dtype="float64"))
    else:
        numerator = frame[[spec.numerator]].to_numpy(dtype="float64")
        denominator = frame[[spec.denominator]].to_numpy(dtype="float64")
    return numerator, denominator


def directional_p(spec: KRISpec, p_low: np.ndarray, p_high: np.ndarray) -> np.ndarray:
    """The cell's p-value for its directions of concern (doubled when both tails are of concern)."""
    if spec.directions == ("low",):
        return p_low
    if spec.directions == ("high",):
        return p_high
    return np.minimum(1.0, 2.0 * np.minimum(p_low, p_high))


@dataclass
class KRIFit:
    """Site-level results of one KRI plus the study-level parameters the permutation reuses."""

    spec: KRISpec
    observed: np.ndarray
    denominator: np.ndarray
    expected: np.ndarray
    variance: np.ndarray  # sampling + subject-level variance at the expected rate (events^2)
    p_low: np.ndarray
    p_high: np.ndarray
    evaluable: np.ndarray
    subject_y: np.ndarray  # rows x strata numerator
    subject_d: np.ndarray  # rows x strata denominator (exposure days or trials)
    subject_dispersion: np.ndarray  # per group: phi (counts) or intra-subject rho (proportions)
    between_site_variance: np.ndarray  # per group: posterior median tau^2 (log-rate or logit scale)
    clean_probability: np.ndarray  # per site: posterior probability of the clean component
    reference_variance: np.ndarray  # per site: variance of the reference (log or logit scale)
    posterior: dict[str, np.ndarray] = field(default_factory=dict)  # per site, see models.site_posterior
    implied_tau2: np.ndarray | None = None  # per site: evidence for the portfolio prior (NaN where unusable)


@dataclass
class _Reference:
    expected: np.ndarray  # per site, from the other sites
    base: np.ndarray  # per site, variance at the expected rate
    reference_variance: np.ndarray  # per site
    dispersion: np.ndarray  # per group


def _reference(y: np.ndarray, d: np.ndarray, site_y: np.ndarray, site_d: np.ndarray, weight: np.ndarray,
               index: SiteIndex, spec: KRISpec, tau2_site: np.ndarray) -> _Reference:
    """Expected counts from the other sites (each weighted by its clean probability) and their variances."""
    G, S = index.n_groups, index.n_sites
    wy, wd = site_y * weight[:, None], site_d * weight[:, None]
    group_y, group_d = sum_by(index.site_group, wy, G), sum_by(index.site_group, wd, G)
    with np.errstate(divide="ignore", invalid="ignore"):
        overall_rate = group_y.sum(1) / group_d.sum(1)
        stratum_rate = np.where(group_d > 0, group_y / group_d, overall_rate[:, None])
        other_y = group_y[index.site_group] - wy
        other_d = group_d[index.site_group] - wd
        other_overall = other_y.sum(1) / other_d.sum(1)
        other_rate = np.where(other_d > 1e-9, other_y / other_d, other_overall[:, None])
    other_rate = np.where(np.isfinite(other_rate), other_rate, np.nan)
    expected = np.where(site_d > 0, site_d * other_rate, 0.0).sum(1)
    expected[~np.isfinite(other_overall) | (other_d.sum(1) <= 1e-9)] = np.nan  # no other site to compare with

    observed, trials = site_y.sum(1), site_d.sum(1)
    subject_y, subject_n = y.sum(1), d.sum(1)
    rates = np.nan_to_num(stratum_rate[index.row_group])
    subject_e = (d * rates).sum(1)
    full_site_e = np.bincount(index.row_site, weights=subject_e, minlength=S)
    with np.errstate(divide="ignore", invalid="ignore"):
        loso_to_full = np.where(full_site_e > 0, expected / full_site_e, 1.0)

    # Subject-level over-dispersion is estimated *within* sites (residuals around the site's own
    # rate), so between-site differences and atypical sites do not leak into it.
    if spec.family == "count":
        # Var(y_i) = e_i + phi e_i^2 (negative binomial frailty).
        with np.errstate(divide="ignore", invalid="ignore"):
            own_ratio = np.where(full_site_e > 0, observed / full_site_e, 0.0)
        within_e = subject_e * own_ratio[index.row_site]
        # Fitting the site's own rate absorbs part of each subject's deviation: a subject carrying
        # share h of its site's expectation keeps only (1 - h) of its variance in the residual.
        with np.errstate(divide="ignore", invalid="ignore"):
            leverage = np.where(full_site_e[index.row_site] > 0, subject_e / full_site_e[index.row_site], 1.0)
        kept = leverage < 0.95  # a site of one subject says nothing about spread between subjects
        residual = np.where(kept, (subject_y - within_e) ** 2 / np.where(kept, 1 - leverage, 1.0), 0.0)
        excess = sum_by(index.row_group, np.where(kept, residual - subject_y, 0.0), G)
        with np.errstate(divide="ignore", invalid="ignore"):
            dispersion = np.clip(excess / sum_by(index.row_group, np.where(kept, within_e**2, 0.0), G), 0.0, 20.0)
        dispersion = np.nan_to_num(dispersion)
        site_e2 = np.bincount(index.row_site, weights=subject_e**2, minlength=S)
        base = expected + dispersion[index.site_group] * loso_to_full**2 * site_e2
        # The reference's relative variance: the other sites' sampling, subject and site-level spread.
        site_var_full = full_site_e + dispersion[index.site_group] * site_e2 + tau2_site * full_site_e**2
        scale = full_site_e
    else:
        # Var(y_i) = n_i p q (1 + (n_i - 1) rho): trials cluster within subjects.
        with np.errstate(divide="ignore", invalid="ignore"):
            own_p = np.where(trials > 0, observed / trials, 0.0)[index.row_site]
        own_pq = own_p * (1 - own_p)
        resid = (subject_y - subject_n * own_p) ** 2 - subject_n * own_pq
        pairs = subject_n * (subject_n - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dispersion = sum_by(index.row_group, resid, G) / sum_by(index.row_group, own_pq * pairs, G)
        dispersion = np.clip(np.nan_to_num(dispersion), 0.0, 1.0)
        p_loso = np.clip(np.nan_to_num(expected / np.where(trials > 0, trials, 1)), 0, 1)
        site_pairs = np.bincount(index.row_site, weights=pairs, minlength=S)
        base = p_loso * (1 - p_loso) * (trials + dispersion[index.site_group] * site_pairs)
        p_full = np.clip(np.nan_to_num(overall_rate[index.site_group]), 1e-9, 1 - 1e-9)
        pq = p_full * (1 - p_full)
        site_var_full = pq * (trials + dispersion[index.site_group] * site_pairs) + tau2_site * (trials * pq) ** 2
        scale = trials * pq  # logit-scale variance = Var(count) / (n p q)^2
    w2 = weight**2
    group_var = np.bincount(index.site_group, weights=w2 * site_var_full, minlength=G)
    group_scale = np.bincount(index.site_group, weights=weight * scale, minlength=G)
    with np.errstate(divide="ignore", invalid="ignore"):
        reference_variance = (group_var[index.site_group] - w2 * site_var_full) / (
            group_scale[index.site_group] - weight * scale) ** 2
    reference_variance = np.clip(np.nan_to_num(reference_variance, nan=0.0, posinf=0.0), 0.0, 4.0)
    return _Reference(expected=expected, base=base, reference_variance=reference_variance, dispersion=dispersion)


def _evaluable(spec: KRISpec, expected: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(evaluable: may flag, scored: has tails) per site."""
    evaluable = np.isfinite(expected) & (expected >= spec.min_expected)
    scored = np.isfinite(expected) & (expected > 0)
    if spec.family == "proportion":
        p_loso = np.nan_to_num(expected / np.where(trials > 0, trials, 1))
        evaluable &= (p_loso > 0) & (p_loso < 1)
        scored &= (trials > 0) & (expected < trials)
    return evaluable, scored


def _recentred(data: SiteData, usable: np.ndarray, group: np.ndarray, n_groups: int) -> SiteData:
    """The sites' expectations moved by their group's precision-weighted median log (logit) ratio."""
    centre, width = data.likelihood_normal()
    offset = np.zeros(n_groups)
    rows = np.flatnonzero(usable & np.isfinite(centre))
    if len(rows):
        frame = pd.DataFrame({"g": group[rows], "r": centre[rows], "w": 1 / (width[rows] ** 2 + 0.05)})
        frame = frame.sort_values(["g", "r"])
        cumulative = frame.groupby("g")["w"].cumsum()
        half = frame.groupby("g")["w"].transform("sum") / 2
        medians = frame[cumulative >= half].groupby("g")["r"].first()
        offset[medians.index.to_numpy()] = medians.to_numpy()
    shift = offset[group]
    if data.family == "count":
        factor = np.exp(shift)
        extra = np.maximum(data.base_variance - data.expected, 0.0)
        return SiteData("count", data.observed, data.trials, data.expected * factor,
                        data.expected * factor + extra * factor**2)
    p0 = data.reference_share()
    p1 = 1 / (1 + (1 - p0) / p0 * np.exp(-shift))
    scale = (p1 * (1 - p1)) / (p0 * (1 - p0))
    return SiteData("proportion", data.observed, data.trials, data.trials * p1, data.base_variance * scale)


def fit_calibrated(frame: pd.DataFrame, index: SiteIndex, spec: KRISpec,
                   prior: dict[int, float] | None = None) -> KRIFit:
    """Robust expected counts, fitted spread, mid-p tails and posterior of ``spec`` for every site.

    ``prior``: the portfolio's between-site variance per snapshot, when the frame holds only some
    of the portfolio's studies (otherwise it is pooled over the frame's studies).
    """
    y, d = kri_inputs(frame, spec)
    G, S = index.n_groups, index.n_sites
    site_y, site_d = sum_by(index.row_site, y, S), sum_by(index.row_site, d, S)
    observed, trials = site_y.sum(1), site_d.sum(1)
    weight = np.ones(S)
    tau2_site = np.zeros(S)
    prior_tau2: np.ndarray | None = None
    for iteration in range(ROBUST_ITERATIONS + 1):
        ref = _reference(y, d, site_y, site_d, weight, index, spec, tau2_site)
        evaluable, scored = _evaluable(spec, ref.expected, trials)
        data = SiteData(spec.family, observed, trials, np.where(scored, ref.expected, 1.0),
                        np.where(scored, ref.base, 1.0))
        if iteration == 0:
            # The unweighted reference still contains every atypical site: when many under-report, the
            # clean sites sit above it. The first fit is centred on the sites' median instead, so the
            # clean sites are found as the majority and the atypical ones as outliers.
            data = _recentred(data, evaluable, index.site_group, G)
        if prior_tau2 is None:
            # The evidence for the portfolio prior comes from the first, unweighted pass: it depends on
            # the data alone (not on the prior), so a partial refresh pools exactly what a full one does.
            implied = np.where(evaluable, implied_log_scale_tau2(spec.family, observed, trials, ref.expected,
                                                                 ref.base), np.nan)
            pooled = pooled_variances(implied, index.site_group, evaluable, index.group_snap) if evaluable.any() else {}
            pooled.update({int(k): float(v) for k, v in (prior or {}).items()})
            prior_tau2 = np.array([pooled.get(int(s), 0.0) for s in index.group_snap])
        spread = fit_spread(data, ref.reference_variance, index.site_group, G, evaluable, prior_tau2)
        weight = spread.clean_probability
        tau2_site = spread.tau2[index.site_group]

    p_low = np.full(S, np.nan)
    p_high = np.full(S, np.nan)
    rows = np.flatnonzero(scored)
    tau2_points = spread.tau2_points[index.site_group] + ref.reference_variance[:, None]
    for start in range(0, len(rows), TAIL_CHUNK):
        r = rows[start:start + TAIL_CHUNK]
        if spec.family == "count":
            lo, hi = count_tails(observed[r], ref.expected[r], ref.base[r], tau2_points[r])
        else:
            lo, hi = proportion_tails(observed[r], trials[r], ref.expected[r], ref.base[r], tau2_points[r])
        p_low[r], p_high[r] = lo, hi
    posterior = {name: np.full(S, np.nan) for name in
                 ("posterior_ratio", "posterior_ratio_low", "posterior_ratio_high", "prob_below", "prob_above")}
    for start in range(0, len(rows), TAIL_CHUNK):
        r = rows[start:start + TAIL_CHUNK]
        sub = SiteData(spec.family, observed[r], trials[r], ref.expected[r], ref.base[r])
        for name, values in site_posterior(sub, tau2_site[r], ref.reference_variance[r],
                                                  spread.contamination[index.site_group[r]]).items():
            posterior[name][r] = values
    return KRIFit(
        spec=spec, observed=observed, denominator=trials, expected=ref.expected, variance=ref.base,
        p_low=p_low, p_high=p_high, evaluable=evaluable, subject_y=y, subject_d=d,
        subject_dispersion=ref.dispersion, between_site_variance=spread.tau2,
        clean_probability=weight, reference_variance=ref.reference_variance, posterior=posterior,
        implied_tau2=np.where(np.isfinite(implied), implied, np.nan),
    )


def kept_likelihood_ratio(fit: KRIFit, site_group: np.ndarray, kept: float) -> np.ndarray:
    """Per site of a count KRI's fit, :func:`~analytics.kri.models.log_likelihood_ratio_kept` at the
    fitted between-site variance (NaN where the site is not scored)."""
    out = np.full(len(fit.observed), np.nan)
    rows = np.flatnonzero(np.isfinite(fit.p_low))
    sub = SiteData(fit.spec.family, fit.observed[rows], fit.denominator[rows], fit.expected[rows], fit.variance[rows])
    out[rows] = log_likelihood_ratio_kept(sub, fit.between_site_variance[site_group[rows]],
                                          fit.reference_variance[rows], kept)
    return out
