"""The one KRI engine: runs every :class:`~analytics.kri.specs.KRISpec` with a chosen scoring method.

Input is the per-subject, per-snapshot measure frame of :mod:`analytics.kri.extract`; output is a
*cell* table with one row per snapshot, site and KRI (observed, expected, O/E, mid-p tails, signed
score, flag) and a *site* table (site score, its permutation p-value, flag counts, persistence).

Methods:

* ``calibrated``: leave-one-site-out expected counts standardized by the time-on-study profile;
  negative-binomial / beta-binomial mid-p tails with subject-level over-dispersion and a robust
  between-site variance; amber/red at per-cell false-positive rates chosen (Sidak) so a clean site
  gets any amber with probability :attr:`FlagPolicy.amber_site_rate` and any red with
  :attr:`FlagPolicy.red_site_rate`; a grey "insufficient" state when the expected count is small.
* ``funnel``: the gsm-style funnel z (see :mod:`analytics.kri.funnel`), for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.kri import funnel
from analytics.kri.sites import FLAG_AMBER, FLAG_INSUFFICIENT, FLAG_NAMES, FLAG_OK, FLAG_RED, SiteIndex
from analytics.kri.extract import treatment_days_by_bin
from analytics.kri.models import (
    INFLATION_ALPHA,
    PRIOR_SITES,
    cell_alpha,
    estimation_inflation,
    count_tails,
    proportion_tails,
    implied_log_scale_tau2,
    robust_between_site_variance,
    signed_z,
)
from analytics.kri.specs import CATALOGUE, KRISpec, stratum_columns

METHODS = ("calibrated", "funnel")


@dataclass(frozen=True)
class FlagPolicy:
    """Site-level false-positive targets the per-cell thresholds are derived from."""

    amber_site_rate: float = 0.10  # share of clean sites expected to show any amber cell
    red_site_rate: float = 0.01  # share of clean sites expected to show any red cell


DEFAULT_POLICY = FlagPolicy()


def _sum_by(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Column-wise sums of ``values`` (rows x columns) by ``codes``."""
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
    subject_numerator: np.ndarray  # per subject row, total over strata
    subject_denominator: np.ndarray
    subject_expected: np.ndarray  # per subject row, at the full-study rates
    subject_dispersion: np.ndarray  # per group: phi (counts) or intra-subject rho (proportions)
    between_site_variance: np.ndarray  # per group tau^2 (log-rate or logit scale)
    study_rate: np.ndarray  # per group, overall numerator / denominator
    implied_tau2: np.ndarray | None = None  # per site: evidence for tau^2 (NaN where unusable)


def fit_calibrated(frame: pd.DataFrame, index: SiteIndex, spec: KRISpec,
                   prior: dict[int, float] | None = None) -> KRIFit:
    """Leave-one-site-out expected counts, dispersion and mid-p tails of ``spec`` for every site.

    ``prior``: the portfolio's pooled between-site variance per snapshot, when the frame holds
    only some of the portfolio's studies (otherwise it is pooled over the frame's studies).
    """
    y, d = kri_inputs(frame, spec)
    G, S = index.n_groups, index.n_sites
    site_y, site_d = _sum_by(index.row_site, y, S), _sum_by(index.row_site, d, S)
    group_y, group_d = _sum_by(index.site_group, site_y, G), _sum_by(index.site_group, site_d, G)
    with np.errstate(divide="ignore", invalid="ignore"):
        overall_rate = group_y.sum(1) / group_d.sum(1)
        stratum_rate = np.where(group_d > 0, group_y / group_d, overall_rate[:, None])
        other_y = group_y[index.site_group] - site_y
        other_d = group_d[index.site_group] - site_d
        loso_overall = other_y.sum(1) / other_d.sum(1)
        loso_rate = np.where(other_d > 0, other_y / other_d, loso_overall[:, None])
    loso_rate = np.where(np.isfinite(loso_rate), loso_rate, np.nan)
    expected = np.where(site_d > 0, site_d * loso_rate, 0.0).sum(1)
    expected[~np.isfinite(loso_overall)] = np.nan  # no other site to compare with

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
        excess = _sum_by(index.row_group, np.where(kept, residual - subject_y, 0.0), G)
        with np.errstate(divide="ignore", invalid="ignore"):
            dispersion = np.clip(excess / _sum_by(index.row_group, np.where(kept, within_e**2, 0.0), G), 0.0, 20.0)
        dispersion = np.nan_to_num(dispersion)
        site_e2 = np.bincount(index.row_site, weights=subject_e**2, minlength=S)
        base = expected + dispersion[index.site_group] * loso_to_full**2 * site_e2
    else:
        # Var(y_i) = n_i p q (1 + (n_i - 1) rho): trials cluster within subjects.
        with np.errstate(divide="ignore", invalid="ignore"):
            own_p = np.where(trials > 0, observed / trials, 0.0)[index.row_site]
        own_pq = own_p * (1 - own_p)
        resid = (subject_y - subject_n * own_p) ** 2 - subject_n * own_pq
        pairs = subject_n * (subject_n - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dispersion = _sum_by(index.row_group, resid, G) / _sum_by(index.row_group, own_pq * pairs, G)
        dispersion = np.clip(np.nan_to_num(dispersion), 0.0, 1.0)
        p_loso = np.clip(np.nan_to_num(expected / np.where(trials > 0, trials, 1)), 0, 1)
        site_pairs = np.bincount(index.row_site, weights=pairs, minlength=S)
        base = p_loso * (1 - p_loso) * (trials + dispersion[index.site_group] * site_pairs)

    evaluable = np.isfinite(expected) & (expected >= spec.min_expected)
    if spec.family == "proportion":
        p_loso = np.nan_to_num(expected / np.where(trials > 0, trials, 1))
        evaluable &= (p_loso > 0) & (p_loso < 1)
    implied = implied_log_scale_tau2(spec.family, observed, trials, expected, base)
    tau2, usable_sites = robust_between_site_variance(implied, index.site_group, G, evaluable, index.group_snap,
                                                      pooled=prior)
    predictive_tau2 = tau2 * estimation_inflation(usable_sites + PRIOR_SITES, INFLATION_ALPHA)
    site_tau2 = predictive_tau2[index.site_group]

    p_low = np.full(S, np.nan)
    p_high = np.full(S, np.nan)
    # Tails for every site with an expectation (the site score and rankings use them); only
    # evaluable cells can flag.
    scored = np.isfinite(expected) & (expected > 0)
    if spec.family == "proportion":
        scored &= (trials > 0) & (expected < trials)
    rows = np.flatnonzero(scored)
    if len(rows):
        if spec.family == "count":
            lo, hi = count_tails(observed[rows], expected[rows], base[rows], site_tau2[rows])
        else:
            lo, hi = proportion_tails(observed[rows], trials[rows], expected[rows], base[rows], site_tau2[rows])
        p_low[rows], p_high[rows] = lo, hi
    return KRIFit(
        spec=spec, observed=observed, denominator=trials, expected=expected, variance=base,
        p_low=p_low, p_high=p_high, evaluable=evaluable, subject_numerator=subject_y,
        subject_denominator=subject_n, subject_expected=subject_e, subject_dispersion=dispersion,
        between_site_variance=predictive_tau2, study_rate=np.nan_to_num(overall_rate),
        implied_tau2=np.where(evaluable & np.isfinite(implied), implied, np.nan),
    )


def directional_p(spec: KRISpec, p_low: np.ndarray, p_high: np.ndarray) -> np.ndarray:
    """The cell's p-value for its directions of concern (doubled when both tails are of concern)."""
    if spec.directions == ("low",):
        return p_low
    if spec.directions == ("high",):
        return p_high
    return np.minimum(1.0, 2.0 * np.minimum(p_low, p_high))


@dataclass
class KRIRun:
    """The output of one engine run (all snapshots)."""

    method: str
    cells: pd.DataFrame  # snap, study_id, study_site_id, kri, observed, denominator, expected, ...
    sites: pd.DataFrame  # snap, study_id, study_site_id, site score, flag counts
    fits: dict[str, KRIFit] = field(default_factory=dict)
    index: SiteIndex | None = None


def run_engine(
    frame: pd.DataFrame,
    method: str = "calibrated",
    specs: tuple[KRISpec, ...] = CATALOGUE,
    policy: FlagPolicy = DEFAULT_POLICY,
    priors: dict[str, dict[int, float]] | None = None,
) -> KRIRun:
    """Score every KRI in ``specs`` for every site and snapshot of ``frame`` with ``method``.

    ``priors``: per KRI, the portfolio's pooled between-site variance per snapshot (calibrated
    method), for a frame that holds only some of the portfolio's studies.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    index = SiteIndex.from_frame(frame)
    parts, fits = [], {}
    for spec in specs:
        if method == "calibrated":
            fit = fit_calibrated(frame, index, spec, (priors or {}).get(spec.id))
            fits[spec.id] = fit
            part = pd.DataFrame({
                "observed": fit.observed, "denominator": fit.denominator, "expected": fit.expected,
                "p_low": fit.p_low, "p_high": fit.p_high, "evaluable": fit.evaluable,
            })
        else:
            y, d = kri_inputs(frame, spec)
            part = funnel.funnel_scores(y.sum(1), d.sum(1), index, spec)
        part["kri"] = spec.id
        part["site_code"] = np.arange(index.n_sites)
        parts.append(part)
    cells = pd.concat(parts, ignore_index=True)
    cells = pd.concat([index.sites.iloc[cells["site_code"].to_numpy()].reset_index(drop=True), cells], axis=1)
    spec_of = {s.id: s for s in specs}
    cells["scale"] = cells["kri"].map({s.id: s.scale for s in specs})
    with np.errstate(divide="ignore", invalid="ignore"):
        cells["rate"] = cells["observed"] / cells["denominator"] * cells["scale"]
        cells["expected_rate"] = cells["expected"] / cells["denominator"] * cells["scale"]
        cells["o_e"] = cells["observed"] / cells["expected"]
    if method == "calibrated":
        _flag_calibrated(cells, spec_of, policy)
    else:
        funnel.flag_funnel(cells, spec_of)
    sites = _site_table(cells, method, index)
    return KRIRun(method=method, cells=cells, sites=sites, fits=fits, index=index)


def _flag_calibrated(cells: pd.DataFrame, spec_of: dict[str, KRISpec], policy: FlagPolicy) -> None:
    """Per-cell flags at Sidak-adjusted false-positive rates over the site's evaluable one-sided tests."""
    n_dirs = cells["kri"].map({k: len(s.directions) for k, s in spec_of.items()}).to_numpy()
    evaluable = cells["evaluable"].to_numpy(dtype=bool)
    tests = pd.Series(np.where(evaluable, n_dirs, 0)).groupby(cells["site_code"].to_numpy()).transform("sum")
    amber_alpha = cell_alpha(policy.amber_site_rate, tests.to_numpy())
    red_alpha = cell_alpha(policy.red_site_rate, tests.to_numpy())
    p_low, p_high = cells["p_low"].to_numpy(), cells["p_high"].to_numpy()
    low_ok = cells["kri"].map({k: "low" in s.directions for k, s in spec_of.items()}).to_numpy(dtype=bool)
    high_ok = cells["kri"].map({k: "high" in s.directions for k, s in spec_of.items()}).to_numpy(dtype=bool)
    p_concern_low = np.where(low_ok, p_low, 1.0)
    p_concern_high = np.where(high_ok, p_high, 1.0)
    p_worst = np.fmin(p_concern_low, p_concern_high)
    flag = np.where(p_worst < red_alpha, FLAG_RED, np.where(p_worst < amber_alpha, FLAG_AMBER, FLAG_OK))
    flag = np.where(evaluable, flag, FLAG_INSUFFICIENT)
    cells["flag"] = flag.astype("int64")
    cells["direction"] = np.where(flag > 0, np.where(p_concern_low < p_concern_high, "low", "high"), "")
    scored = np.isfinite(p_low) & np.isfinite(p_high)
    cells["z"] = np.where(scored, signed_z(np.nan_to_num(p_low, nan=1.0), np.nan_to_num(p_high, nan=1.0)), np.nan)
    cells["p"] = np.where(scored, np.fmin(1.0, p_worst * np.where(low_ok & high_ok, 2.0, 1.0)), np.nan)
    cells["tests_at_site"] = tests.to_numpy()


def _site_table(cells: pd.DataFrame, method: str, index: SiteIndex) -> pd.DataFrame:
    """One row per site and snapshot: flag counts and the combined site score."""
    sites = index.sites.copy()
    code = cells["site_code"].to_numpy()
    flag = cells["flag"].to_numpy()
    sites["red"] = np.bincount(code, weights=flag == FLAG_RED, minlength=index.n_sites).astype("int64")
    sites["amber"] = np.bincount(code, weights=flag == FLAG_AMBER, minlength=index.n_sites).astype("int64")
    sites["evaluable"] = np.bincount(code, weights=flag >= FLAG_OK, minlength=index.n_sites).astype("int64")
    if method == "calibrated":
        # Fisher-style: mean -ln p over evaluable cells (each ~Exp(1) for a clean site).
        logp = np.where(flag >= FLAG_OK, -np.log(np.clip(cells["p"].to_numpy(), 1e-300, 1.0)), 0.0)
        total = np.bincount(code, weights=logp, minlength=index.n_sites)
        sites["site_score"] = np.where(sites["evaluable"] > 0, total / np.maximum(sites["evaluable"], 1), np.nan)
    else:
        # gsm's site risk score: the sum of flag weights (amber 1, red 2).
        sites["site_score"] = np.bincount(code, weights=np.maximum(flag, 0), minlength=index.n_sites)
    sites["any_amber"] = (sites["red"] + sites["amber"]) > 0
    sites["any_red"] = sites["red"] > 0
    return sites
