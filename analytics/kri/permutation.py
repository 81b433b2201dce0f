"""Patient-reshuffle permutation: the study's own null for multiplicity across KRIs and the site score.

A site's KRIs are correlated (AE and SAE rates share patients, so do late entry and open queries),
so neither Sidak over its tests nor a textbook distribution of a combined score is right. Within each
study (latest snapshot) the patients of the sites that are not flagged red are reassigned at random
to those sites' slots (every pseudo-site keeps a real site's size). Each pseudo-site is scored like a
real one: its expected counts come from the *other* pseudo-sites (leave-one-site-out, by stratum), its
variance from the fitted subject-level dispersion and the reference's own uncertainty. The reshuffle
has no between-site spread, and the pseudo-sites are scored without it, so their p-values are
uniform under the same model the real sites' are (no extra Poisson draw on top of resampled counts).

Two things come out of the pool of pseudo-sites (:data:`TARGET_PSEUDO_SITES` per study):

* the **effective share of independent tests** ``r``: the value at which flagging a cell at
  ``1 - (1 - A)^(1 / (r k))`` (``k`` one-sided tests at the site) flags the target share ``A`` of
  pseudo-sites; ``r = 1`` is Sidak, ``r < 1`` means the KRIs move together;
* the **site score's p-value**: the site's Fisher combination of its KRI p-values, ranked among
  the pseudo-sites' with as many evaluable KRIs, then judged against the study's trend of that
  rank with site size (:func:`size_adjusted_p`): pseudo-sites carry no institution, so benign
  differences that go with size (small clean sites entering data a little later) would otherwise
  make small sites' p-values lean low. Uniform for a clean site of any size.

All work is vectorized over permutations with ``numpy.bincount`` on per-subject aggregates. Each
study draws from its own random stream (seeded by the seed and the study id), so a study's results
do not depend on which other studies are scored with it (one at a time on Spark, or all at once).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from analytics.kri.calibrated import KRIFit, directional_p
from analytics.kri.models import _nb_tails, _proportion_base_tails, cell_alpha
from analytics.kri.sites import SiteIndex

TARGET_PSEUDO_SITES = 2000  # pseudo-sites per study in the null pool
MIN_PERMUTATIONS, MAX_PERMUTATIONS = 10, 250
MIN_POOL = 200  # fewer usable pseudo-sites than this: Sidak (r = 1)
MIN_COMPARABLE = 200  # pseudo-sites a site's score is ranked among (same number of evaluable KRIs, or near)
EFFECTIVE_RATIO_BOUNDS = (0.05, 1.5)
SIZE_TREND_PRIOR_SD = 0.6  # prior SD of the site score's level and slope per unit log site size (normal scale)
SIZE_TREND_CLIP = 2.5  # normal scores clipped here in the trend's fit (atypical sites that are not red)


@dataclass
class PermutationNull:
    """Per group (study at the calibrated snapshot): the multiplicity ratio and the site score null."""

    effective_ratio: dict[int, float]  # group -> r
    site_p: dict[int, float]  # site code -> permutation p-value of its site score
    pseudo_sites: dict[int, int]  # group -> pseudo-sites in the pool


def fisher_q(sum_log: np.ndarray, tests: np.ndarray) -> np.ndarray:
    """Independence p-value of a Fisher sum ``sum(-ln p)`` over ``tests`` p-values (NaN without tests)."""
    with np.errstate(invalid="ignore"):
        return np.where(tests > 0, stats.chi2.sf(2 * sum_log, 2 * np.maximum(tests, 1)), np.nan)


def marginal_dispersion(family: str, y: np.ndarray, n: np.ndarray, e: np.ndarray) -> float:
    """Subject-level dispersion around the *pool's* rate (moments), for reshuffled patients.

    A reshuffled pseudo-site mixes patients of different sites, so the differences between sites
    reappear as differences between its patients: the dispersion that describes a pseudo-site is
    the marginal one, not the within-site one the real sites are scored with (beside a site effect).
    """
    if family == "count":
        denominator = float((e**2).sum())
        return float(np.clip(((y - e) ** 2 - y).sum() / denominator, 0.0, 20.0)) if denominator > 0 else 0.0
    p = float(y.sum() / n.sum()) if n.sum() > 0 else 0.0
    pairs = float((p * (1 - p) * n * (n - 1)).sum())
    if pairs <= 0:
        return 0.0
    return float(np.clip((((y - n * p) ** 2) - n * p * (1 - p)).sum() / pairs, 0.0, 1.0))


def uniform_margin(p: np.ndarray, ok: np.ndarray, stratum: np.ndarray) -> np.ndarray:
    """The pseudo-sites' p-values of one KRI replaced by their mid-ranks within their size stratum (uniform).

    The permutation is there for the *dependence* between a site's KRIs; each KRI's margin is the
    model's (a clean real site's p-value is uniform at every size). The pseudo-sites' tails come
    from a simpler model (marginal dispersion, plain leave-one-out reference) whose margins are a
    few percent off for some KRIs (conservative for screen failures and deviations, and for small
    pseudo-sites, whose counts are discrete), which would shift the null of the combined score;
    ranking them among the pseudo-sites of the same size stratum keeps their order (the
    dependence) and makes each margin uniform at each size.
    """
    out = np.array(p, dtype="float64", copy=True)
    for value in np.unique(stratum[ok]):
        rows = np.flatnonzero(ok & (stratum == value))
        out[rows] = (stats.rankdata(p[rows], method="average") - 0.5) / len(rows)
    return out


def size_stratum(size: np.ndarray) -> np.ndarray:
    """Site-size strata for the pseudo-sites' margins: 1, 2, 3-4, 5-8, ... subjects (powers of two)."""
    return np.ceil(np.log2(np.maximum(size, 1))).astype("int64")


def _pseudo_sums(values: np.ndarray, shuffled: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (rows, or rows x columns) over every pseudo-site: (permutations x sites)[ x columns]."""
    gathered = values[shuffled]  # permutations x rows[ x columns], rows in shuffled order
    return np.add.reduceat(gathered, starts, axis=1).reshape((-1,) + values.shape[1:])


def _pseudo_tails(fit: KRIFit, rows: np.ndarray, shuffled: np.ndarray, starts: np.ndarray,
                  group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tails (low, high) and evaluability of one KRI for the pseudo-sites.

    ``shuffled``: per permutation, the pool's rows in random order; consecutive blocks starting at
    ``starts`` (the pool sites' sizes) form the pseudo-sites.
    """
    spec = fit.spec
    y = fit.subject_y[rows]
    d = fit.subject_d[rows]
    size = shuffled.shape[0] * len(starts)
    pseudo_y = _pseudo_sums(y, shuffled, starts)
    pseudo_d = _pseudo_sums(d, shuffled, starts)
    # Every permutation uses the whole pool once, so the pool totals are those of one permutation.
    pool_y, pool_d = y.sum(0), d.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        other_y, other_d = pool_y[None, :] - pseudo_y, pool_d[None, :] - pseudo_d
        other_overall = other_y.sum(1) / other_d.sum(1)
        rate = np.where(other_d > 1e-9, other_y / other_d, other_overall[:, None])
    rate = np.nan_to_num(rate)
    expected = (pseudo_d * rate).sum(1)
    observed, trials = pseudo_y.sum(1), pseudo_d.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pool_rate = np.where(pool_d > 0, pool_y / pool_d, 0.0)
    subject_e = (d * pool_rate[None, :]).sum(1)
    dispersion = marginal_dispersion(spec.family, y.sum(1), d.sum(1), subject_e)
    if spec.family == "count":
        e2 = _pseudo_sums(subject_e**2, shuffled, starts)
        e_full = _pseudo_sums(subject_e, shuffled, starts)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(e_full > 0, expected / e_full, 1.0)
        base = expected + dispersion * ratio**2 * e2
        pool_e, pool_v = subject_e.sum(), (subject_e + dispersion * subject_e**2).sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            ref_var = np.nan_to_num((pool_v - (e_full + dispersion * e2)) / (pool_e - e_full) ** 2)
        evaluable = np.isfinite(expected) & (expected >= spec.min_expected)
        low, high = np.full(size, np.nan), np.full(size, np.nan)
        ok = np.flatnonzero(evaluable & (expected > 0))
        variance = base[ok] + np.maximum(ref_var[ok], 0.0) * expected[ok] ** 2
        extra = np.maximum(variance - expected[ok], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            nb_size = np.where(extra > 1e-12 * expected[ok] ** 2, expected[ok] ** 2 / np.maximum(extra, 1e-300), np.inf)
        low[ok], high[ok] = _nb_tails(observed[ok], expected[ok], nb_size)
        return low, high, evaluable
    n = d.sum(1)
    pairs = _pseudo_sums(n * (n - 1), shuffled, starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.clip(np.nan_to_num(expected / np.where(trials > 0, trials, 1)), 0.0, 1.0)
    evaluable = (expected >= spec.min_expected) & (p > 0) & (p < 1) & (trials > 0)
    low, high = np.full(size, np.nan), np.full(size, np.nan)
    ok = np.flatnonzero(evaluable)
    pq = p[ok] * (1 - p[ok])
    base = pq * (trials[ok] + dispersion * pairs[ok])
    other_n, other_pairs = pool_d.sum() - trials[ok], (n * (n - 1)).sum() - pairs[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        p_var = np.nan_to_num(pq * (other_n + dispersion * other_pairs) / other_n**2)
    design = (base + trials[ok] ** 2 * p_var) / np.maximum(trials[ok] * pq, 1e-300)
    low[ok], high[ok] = _proportion_base_tails(observed[ok], trials[ok], p[ok], np.maximum(design, 1.0))
    return low, high, evaluable


def _site_score_p(null_q: np.ndarray, null_cells: np.ndarray, q: np.ndarray, cells: np.ndarray,
                  codes: np.ndarray) -> dict[int, float]:
    """Each site's score ranked among pseudo-sites with (about) as many evaluable KRIs.

    A small site has few, discrete KRI p-values, so its combined score has a different null than a
    large site's: it is compared with pseudo-sites of the same number of evaluable cells, widening
    to neighbouring numbers until :data:`MIN_COMPARABLE` pseudo-sites are in the comparison.
    """
    ok = np.isfinite(null_q)
    null_q, null_cells = null_q[ok], null_cells[ok]
    out: dict[int, float] = {}
    if not len(null_q):
        return out
    for k in np.unique(cells[np.isfinite(q)]):
        width = 0
        while True:
            pool = np.abs(null_cells - k) <= width
            if pool.sum() >= MIN_COMPARABLE or width > null_cells.max(initial=0):
                break
            width += 1
        reference = np.sort(null_q[pool])
        rows = np.flatnonzero((cells == k) & np.isfinite(q))
        # Mid-rank among the pseudo-sites and the site itself: ties (small sites have few, discrete
        # p-values) count half, so a clean site's p-value is uniform rather than pushed up.
        below = np.searchsorted(reference, q[rows], side="left")
        tied = np.searchsorted(reference, q[rows], side="right") - below
        for code, count, ties in zip(codes[rows], below, tied):
            out[int(code)] = float((count + (ties + 1) / 2) / (1 + len(reference)))
    return out


def size_adjusted_p(site_p: np.ndarray, log_size: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The site score's p-values judged against the study's trend with site size, leaving each site out.

    Pseudo-sites mix the patients of every institution, so they carry none of the benign
    differences that go with a site's size (an institution that enrols more also enters data
    faster and raises fewer queries): small clean sites score a little worse than pseudo-sites of
    their size, and their p-values lean low. On the normal scale ``z = Phi^-1(1 - p)`` the study's
    sites give a line in log size: Bayesian with known unit variance (the permutation's scale),
    both coefficients with prior SD :data:`SIZE_TREND_PRIOR_SD` around 0, each site weighted by
    ``weight`` (0 for red sites; otherwise its probability of being clean) and its score clipped at
    :data:`SIZE_TREND_CLIP`, so atypical sites barely move the line. Each site is judged against
    the line fitted *without* it and standardized by its predictive SD ``sqrt(1 + x' V x)``: a
    clean site's p-value is uniform at every size, and a site cannot explain itself away. Only the
    site score uses this; the KRIs' expected counts (what the heatmap calls expected) stay the study's.
    """
    p = np.asarray(site_p, dtype="float64")
    usable = np.isfinite(p)
    out = p.copy()
    w = np.where(usable, np.nan_to_num(weight), 0.0)
    if not usable.any():
        return out
    z = stats.norm.isf(np.clip(np.where(usable, p, 0.5), 1e-300, 1.0))
    centre = float(np.average(log_size, weights=w)) if w.sum() > 0 else float(log_size[usable].mean())
    x = np.column_stack([np.ones(len(p)), log_size - centre])
    clipped = np.clip(z, -SIZE_TREND_CLIP, SIZE_TREND_CLIP)
    precision = (x * w[:, None]).T @ x + np.eye(2) / SIZE_TREND_PRIOR_SD**2
    moment = (x * w[:, None]).T @ clipped
    # The line without the site itself: a weighted rank-one downdate of the normal equations.
    without = precision[None] - w[:, None, None] * np.einsum("si,sj->sij", x, x)
    coef = np.linalg.solve(without, (moment[None] - w[:, None] * x * clipped[:, None])[..., None])[..., 0]
    spread = np.einsum("si,sij,sj->s", x, np.linalg.inv(without), x)
    adjusted = (z - (x * coef).sum(1)) / np.sqrt(1 + spread)
    out[usable] = stats.norm.sf(adjusted[usable])
    return out


def clean_weight(fits: dict[str, KRIFit], codes: np.ndarray) -> np.ndarray:
    """Per site, its lowest probability of being clean over the KRIs it is evaluable on (1 without any)."""
    return np.min([np.where(fit.evaluable[codes], np.nan_to_num(fit.clean_probability[codes], nan=1.0), 1.0)
                   for fit in fits.values()] + [np.ones(len(codes))], axis=0)


def _effective_ratio(min_p: np.ndarray, tests: np.ndarray, rate: float) -> float:
    """The share r of a site's tests that count as independent, matched at the family ``rate``."""
    usable = tests > 0
    if usable.sum() < MIN_POOL:
        return 1.0
    m, k = min_p[usable], tests[usable]

    def excess(r: float) -> float:
        return float(np.mean(m < cell_alpha(rate, k, r))) - rate

    lo, hi = EFFECTIVE_RATIO_BOUNDS
    if excess(lo) < 0:  # even the most liberal ratio flags too few: the tests are very dependent
        return lo
    if excess(hi) > 0:
        return hi
    return float(optimize.brentq(excess, lo, hi, xtol=1e-3))


def study_stream(seed: int, study_id: str) -> np.random.Generator:
    """The random stream of one study's reshuffles (independent of the other studies scored)."""
    return np.random.default_rng([seed, zlib.crc32(study_id.encode("utf-8"))])


def permutation_null(
    fits: dict[str, KRIFit], index: SiteIndex, snap: int, excluded: np.ndarray, amber_rate: float,
    site_sum_log: np.ndarray, site_tests: np.ndarray, seed: int = 0,
) -> PermutationNull:
    """Reshuffle the patients of every study at ``snap`` and score the pseudo-sites with every KRI.

    Args:
        fits: the calibrated fits (per-subject aggregates, dispersion).
        index: the run's site index.
        snap: the snapshot calibrated (normally the latest).
        excluded: per site, True when its patients stay out of the pool (flagged red).
        amber_rate: the family false-positive rate ``r`` is matched at.
        site_sum_log: per site, its Fisher sum ``sum(-ln p)`` over evaluable cells.
        site_tests: per site, the number of evaluable cells in that sum.
        seed: random seed (results are reproducible for a seed; each study has its own stream).
    """
    row_order = np.argsort(index.row_group, kind="stable")
    bounds = np.searchsorted(index.row_group[row_order], np.arange(index.n_groups + 1))
    ratios: dict[int, float] = {}
    site_p: dict[int, float] = {}
    pool_sizes: dict[int, int] = {}
    for group in np.flatnonzero(index.group_snap == snap):
        rows = row_order[bounds[group]:bounds[group + 1]]
        rows = rows[~excluded[index.row_site[rows]]]
        site_codes = np.unique(index.row_site[rows])
        if len(site_codes) < 3:
            continue
        sizes = np.bincount(np.searchsorted(site_codes, index.row_site[rows]), minlength=len(site_codes))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        n_perm = int(np.clip(np.ceil(TARGET_PSEUDO_SITES / len(site_codes)), MIN_PERMUTATIONS, MAX_PERMUTATIONS))
        # A random order of the pool's patients per permutation; the sites' sizes cut it into pseudo-sites.
        rng = study_stream(seed, str(index.sites["study_id"].iat[int(np.flatnonzero(index.site_group == group)[0])]))
        shuffled = np.argsort(rng.random((n_perm, len(rows))), axis=1)
        size = n_perm * len(site_codes)
        min_p = np.ones(size)
        tests = np.zeros(size)
        sum_log = np.zeros(size)
        cells = np.zeros(size)
        stratum = size_stratum(np.tile(sizes, n_perm))
        for fit in fits.values():
            low, high, evaluable = _pseudo_tails(fit, rows, shuffled, starts, group)
            ok = evaluable & np.isfinite(low) & np.isfinite(high)
            dirs = fit.spec.directions
            if "low" in dirs:
                min_p = np.where(ok, np.fmin(min_p, low), min_p)
            if "high" in dirs:
                min_p = np.where(ok, np.fmin(min_p, high), min_p)
            tests += ok * len(dirs)
            p = uniform_margin(directional_p(fit.spec, np.nan_to_num(low, nan=1.0), np.nan_to_num(high, nan=1.0)), ok,
                               stratum)
            sum_log += np.where(ok, -np.log(np.clip(p, 1e-300, 1.0)), 0.0)
            cells += ok
        ratios[int(group)] = _effective_ratio(min_p, tests, amber_rate)
        pool_sizes[int(group)] = int((tests > 0).sum())
        codes = np.flatnonzero(index.site_group == group)
        ranked = _site_score_p(fisher_q(sum_log, cells), cells, fisher_q(site_sum_log[codes], site_tests[codes]),
                               site_tests[codes], codes)
        # Every site of the study (red ones too) is sized by its own patients, as its pseudo-site slot is.
        study_rows = row_order[bounds[group]:bounds[group + 1]]
        log_size = np.log(np.bincount(index.row_site[study_rows], minlength=index.n_sites)[codes].clip(min=1))
        adjusted = size_adjusted_p(np.array([ranked.get(int(code), np.nan) for code in codes]), log_size,
                                   np.where(excluded[codes], 0.0, clean_weight(fits, codes)))
        site_p.update({int(code): float(value) for code, value in zip(codes, adjusted) if np.isfinite(value)})
    return PermutationNull(effective_ratio=ratios, site_p=site_p, pseudo_sites=pool_sizes)
