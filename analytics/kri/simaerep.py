"""A simaerep-style baseline: AE under-reporting by visit-matched patient resampling.

Reimplemented from the published algorithm (openpharma simaerep, Koneswarakantha et al., Ther Innov
Regul Sci 2024; the "inframe" variant, its current default), not from its code, so the evaluation
can run it beside the calibrated engine and the gsm-style funnel on the same data:

* a site's statistic is its events per visit, each patient counted up to their last visit;
* each of :data:`DEFAULT_RESAMPLES` pseudo-sites replaces every patient of the site by a patient
  drawn at random from the whole study (any site, with replacement) with at least as many visits,
  truncated to the same visit; the pseudo-site's events per visit are computed the same way;
* the under-reporting tail is the share of pseudo-sites below the site (ties split), the
  over-reporting tail its mirror;
* multiplicity: simaerep's Benjamini-Hochberg-style adjustment within each study (``p x sites /
  rank``, capped at 1, without BH's monotone step), reported beside the unadjusted value. A site is flagged at adjusted
  probability >= 0.95, i.e. adjusted p <= :data:`FLAG_ALPHA`.

Vectorized per study: patients sorted by their number of visits make every eligible pool a suffix
of the sorted order, so a draw is one uniform integer per patient and resample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_RESAMPLES = 1000
FLAG_ALPHA = 0.05  # simaerep's usability default: flag at probability >= 0.95


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """simaerep's adjustment within one study: ``p x n / rank`` (ties take the highest rank), capped at 1."""
    p = np.asarray(p, dtype="float64")
    n = len(p)
    if n == 0:
        return p
    ranks = pd.Series(p).rank(method="max").to_numpy()
    positive = p[p > 0]
    # As simaerep does, a p of 0 expects a tenth of the smallest positive p in false positives.
    floor = positive.min() / 10 if len(positive) else 1.0 / (10 * n)
    return np.minimum(1.0, np.where(p > 0, p * n, floor) / ranks)


def simaerep_inframe(
    study: np.ndarray, site: np.ndarray, visits: np.ndarray, cumulative: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
) -> pd.DataFrame:
    """Under- and over-reporting tails of every site, with and without the multiplicity adjustment.

    Args:
        study: per patient, its study (any hashable codes).
        site: per patient, its site (codes unique across studies).
        visits: per patient, its number of visits so far (>= 1).
        cumulative: patients x max visits, events up to and including each visit (row i, column v - 1).
        resamples: pseudo-sites per site.
        seed: random seed.

    Returns:
        One row per site: ``site``, ``study``, ``events``, ``visits``, ``p_low`` (under-reporting tail),
        ``p_high``, ``z_low`` (how far below the pseudo-sites' mean, in their SDs: it orders sites the
        resampling cannot tell apart, e.g. several below every pseudo-site), ``p_low_adjusted``,
        ``p_high_adjusted``.
    """
    rng = np.random.default_rng(seed)
    visits = np.asarray(visits, dtype="int64")
    study = np.asarray(study)
    site = np.asarray(site)
    parts = []
    for key in pd.unique(study):
        rows = np.flatnonzero(study == key)
        order = rows[np.argsort(visits[rows], kind="stable")]
        m = visits[order]
        own = cumulative[order, m - 1]
        # The patients with at least m visits are the suffix starting at the first with m.
        start = np.searchsorted(m, m, side="left")
        n = len(order)
        uniform = rng.random((n, resamples), dtype=np.float32)
        draws = start[:, None] + (uniform * (n - start)[:, None].astype(np.float32)).astype(np.int64)
        draws = np.minimum(draws, n - 1)  # float32 rounding can reach n
        sorted_cumulative = np.ascontiguousarray(cumulative[order], dtype=np.float32)
        width = sorted_cumulative.shape[1]
        values = np.take(sorted_cumulative.ravel(), draws * width + (m - 1)[:, None])
        site_codes, local = np.unique(site[order], return_inverse=True)
        n_sites = len(site_codes)
        observed = np.bincount(local, weights=own, minlength=n_sites)
        by_site = np.argsort(local, kind="stable")
        starts = np.searchsorted(local[by_site], np.arange(n_sites))
        pseudo = np.add.reduceat(values[by_site], starts, axis=0, dtype=np.float64)
        below = (pseudo < observed[:, None] - 1e-9).mean(1)
        tied = (np.abs(pseudo - observed[:, None]) <= 1e-9).mean(1)
        p_low = below + 0.5 * tied
        p_high = 1.0 - below - 0.5 * tied
        spread = pseudo.std(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z_low = np.where(spread > 0, (pseudo.mean(1) - observed) / spread, 0.0)
        parts.append(pd.DataFrame({
            "site": site_codes, "study": key, "events": observed,
            "visits": np.bincount(local, weights=m, minlength=n_sites),
            "p_low": p_low, "p_high": p_high, "z_low": z_low,
            "p_low_adjusted": bh_adjust(p_low), "p_high_adjusted": bh_adjust(p_high),
        }))
    if not parts:
        return pd.DataFrame(columns=["site", "study", "events", "visits", "p_low", "p_high", "z_low", "p_low_adjusted",
                                     "p_high_adjusted"])
    return pd.concat(parts, ignore_index=True)


def cumulative_events(patient: np.ndarray, visit: np.ndarray, n_patients: int, max_visit: int) -> np.ndarray:
    """Patients x visits matrix of events up to each visit, from one row per event (visit numbers >= 1)."""
    counts = np.zeros((n_patients, max(max_visit, 1)))
    ok = (visit >= 1) & (visit <= max_visit)
    np.add.at(counts, (patient[ok], visit[ok] - 1), 1.0)
    return np.cumsum(counts, axis=1)
