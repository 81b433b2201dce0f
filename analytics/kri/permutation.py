"""Site-score calibration by patient-reshuffle permutation within each study.

The site score (mean of ``-ln p`` over a site's evaluable KRI cells) combines correlated KRIs (AE and
SAE rates, late entry and open queries), so its null distribution is not a textbook one. Reshuffling
patients among the study's sites (keeping every site's size) gives pseudo-sites with the study's own
mix of patients and the same correlations between KRIs; scoring them with the fitted models (plus the
fitted benign between-site spread, which a reshuffle removes) gives the study's null distribution of
the site score. A site's calibrated p-value is its score's upper tail in that distribution.

All work is vectorized over permutations with ``numpy.bincount`` on per-subject aggregates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.kri.engine import KRIFit, KRIRun, SiteIndex, directional_p
from analytics.kri.models import count_tails, proportion_tails

DEFAULT_PERMUTATIONS = 20
# Pseudo-sites use moment-matched proportion tails (no exact beta-binomial): the null pool is large
# and only its upper quantiles matter, so speed wins over the last digit of small-site tails.
PERMUTATION_EXACT_MAX_TRIALS = 0


def _pseudo_site_logp(
    fit: KRIFit, rows: np.ndarray, labels: np.ndarray, n_sites: int, group: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``-ln p`` and evaluability of one KRI for permuted pseudo-sites (labels: permutations x subjects)."""
    spec = fit.spec
    n_perm = labels.shape[0]
    flat = (labels + n_sites * np.arange(n_perm)[:, None]).ravel()
    size = n_perm * n_sites
    y = np.tile(fit.subject_numerator[rows], n_perm)
    e = np.tile(fit.subject_expected[rows], n_perm)
    n = np.tile(fit.subject_denominator[rows], n_perm)
    observed = np.bincount(flat, weights=y, minlength=size)
    expected = np.bincount(flat, weights=e, minlength=size)
    trials = np.bincount(flat, weights=n, minlength=size)
    tau2 = fit.between_site_variance[group]
    dispersion = fit.subject_dispersion[group]
    if spec.family == "count":
        base = expected + dispersion * np.bincount(flat, weights=e**2, minlength=size)
        # Add the benign between-site spread the reshuffle removed (log-normal rate multiplier).
        g = np.exp(np.sqrt(tau2) * rng.standard_normal(size) - tau2 / 2)
        observed = rng.poisson(np.maximum(observed + (g - 1) * expected, 0.0)).astype("float64") \
            if tau2 > 0 else observed
        evaluable = expected >= spec.min_expected
    else:
        p = fit.study_rate[group]
        base = p * (1 - p) * (trials + dispersion * np.bincount(flat, weights=n * (n - 1), minlength=size))
        if tau2 > 0 and 0 < p < 1:
            logit = np.log(p / (1 - p)) + np.sqrt(tau2) * rng.standard_normal(size)
            shifted = 1 / (1 + np.exp(-logit))
            observed = np.clip(np.round(observed + (shifted - p) * trials), 0, trials)
        evaluable = (expected >= spec.min_expected) & (0 < p < 1)
    logp = np.zeros(size)
    rows_ok = np.flatnonzero(evaluable & (expected > 0))
    if len(rows_ok):
        if spec.family == "count":
            lo, hi = count_tails(observed[rows_ok], expected[rows_ok], base[rows_ok], np.full(len(rows_ok), tau2))
        else:
            lo, hi = proportion_tails(observed[rows_ok], trials[rows_ok], expected[rows_ok], base[rows_ok],
                                      np.full(len(rows_ok), tau2), PERMUTATION_EXACT_MAX_TRIALS)
        logp[rows_ok] = -np.log(np.clip(directional_p(spec, lo, hi), 1e-300, 1.0))
    return logp.reshape(n_perm, n_sites), evaluable.reshape(n_perm, n_sites)


def site_score_pvalues(
    run: KRIRun, snap: int, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0
) -> pd.Series:
    """Permutation p-value of every site's score at snapshot ``snap`` (index: site code).

    Args:
        run: a ``calibrated`` engine run (its fits hold the per-subject aggregates).
        snap: snapshot number to calibrate (normally the latest).
        permutations: reshuffles per study; the null pool is permutations x sites of the study.
        seed: random seed (results are reproducible for a seed).
    """
    if run.method != "calibrated" or run.index is None:
        raise ValueError("site-score permutation needs a calibrated engine run")
    index: SiteIndex = run.index
    sites = run.sites
    result = pd.Series(np.nan, index=np.arange(index.n_sites))
    rng = np.random.default_rng(seed)
    groups = np.unique(index.site_group[sites["snap"].to_numpy() == snap])
    row_order = np.argsort(index.row_group, kind="stable")
    row_groups = index.row_group[row_order]
    bounds = np.searchsorted(row_groups, np.arange(index.n_groups + 1))
    observed_score = sites["site_score"].to_numpy()
    for group in groups:
        rows = row_order[bounds[group]:bounds[group + 1]]
        site_codes = np.unique(index.row_site[rows])
        if len(site_codes) < 2:
            continue
        local = np.searchsorted(site_codes, index.row_site[rows])
        labels = np.stack([rng.permutation(local) for _ in range(permutations)])
        total = np.zeros((permutations, len(site_codes)))
        count = np.zeros((permutations, len(site_codes)))
        for fit in run.fits.values():
            logp, evaluable = _pseudo_site_logp(fit, rows, labels, len(site_codes), group, rng)
            total += logp
            count += evaluable
        null = np.where(count > 0, total / np.maximum(count, 1), np.nan).ravel()
        null = np.sort(null[np.isfinite(null)])
        scores = observed_score[site_codes]
        exceed = len(null) - np.searchsorted(null, scores, side="left")
        result.iloc[site_codes] = np.where(np.isfinite(scores), (1 + exceed) / (1 + len(null)), np.nan)
    return result
