"""The one KRI engine: runs every :class:`~analytics.kri.specs.KRISpec` with a chosen scoring method.

Input is the per-subject, per-snapshot measure frame of :mod:`analytics.kri.extract`; output is a
*cell* table with one row per snapshot, site and KRI (observed, expected, O/E, mid-p tails, signed
score, site-level posterior, flag) and a *site* table (site score, its permutation p-value, flag
counts).

Methods:

* ``calibrated``: a hierarchical model per KRI (:mod:`analytics.kri.calibrated`): expected counts
  from the study's other sites, standardized by the time-on-study profile and weighted by each
  peer's probability of being clean; negative-binomial / beta-binomial mid-p tails with
  subject-level over-dispersion and a between-site spread fitted by marginal likelihood; a
  posterior of each site's rate relative to its study's. Amber and red at per-cell rates chosen so
  a clean site shows any amber with probability :attr:`FlagPolicy.amber_site_rate` and any red
  with :attr:`FlagPolicy.red_site_rate`, with the dependence between a site's KRIs measured by
  patient-reshuffle permutation (:mod:`analytics.kri.permutation`) rather than assumed away; a
  grey "insufficient" state when the expected count is small.
* ``funnel``: the gsm-style funnel z (see :mod:`analytics.kri.funnel`), for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.kri import funnel
from analytics.kri.calibrated import KRIFit, fit_calibrated, kri_inputs
from analytics.kri.models import cell_alpha, signed_z
from analytics.kri.permutation import PermutationNull, permutation_null
from analytics.kri.sites import FLAG_AMBER, FLAG_INSUFFICIENT, FLAG_NAMES, FLAG_OK, FLAG_RED, SiteIndex
from analytics.kri.specs import CATALOGUE, KRISpec

METHODS = ("calibrated", "funnel")
POSTERIOR_COLUMNS = ("posterior_ratio", "posterior_ratio_low", "posterior_ratio_high", "prob_below", "prob_above")
__all__ = ["DEFAULT_POLICY", "FLAG_AMBER", "FLAG_INSUFFICIENT", "FLAG_NAMES", "FLAG_OK", "FLAG_RED", "FlagPolicy",
           "KRIRun", "METHODS", "run_engine"]


@dataclass(frozen=True)
class FlagPolicy:
    """Site-level false-positive targets the per-cell thresholds are derived from."""

    amber_site_rate: float = 0.10  # share of clean sites expected to show any amber cell
    red_site_rate: float = 0.01  # share of clean sites expected to show any red cell


DEFAULT_POLICY = FlagPolicy()


@dataclass
class KRIRun:
    """The output of one engine run (all snapshots)."""

    method: str
    cells: pd.DataFrame  # snap, study_id, study_site_id, kri, observed, denominator, expected, ...
    sites: pd.DataFrame  # snap, study_id, study_site_id, site score, flag counts, site_p
    fits: dict[str, KRIFit] = field(default_factory=dict)
    index: SiteIndex | None = None
    null: PermutationNull | None = None


def run_engine(
    frame: pd.DataFrame,
    method: str = "calibrated",
    specs: tuple[KRISpec, ...] = CATALOGUE,
    policy: FlagPolicy = DEFAULT_POLICY,
    priors: dict[str, dict[int, float]] | None = None,
    seed: int = 0,
) -> KRIRun:
    """Score every KRI in ``specs`` for every site and snapshot of ``frame`` with ``method``.

    ``priors``: per KRI, the portfolio's between-site variance per snapshot (calibrated method), for
    a frame that holds only some of the portfolio's studies. ``seed``: the permutation's seed.
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
                **{name: fit.posterior[name] for name in POSTERIOR_COLUMNS},
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
    null = None
    if method == "calibrated":
        null = _flag_calibrated(cells, spec_of, fits, index, policy, seed)
    else:
        funnel.flag_funnel(cells, spec_of)
    sites = _site_table(cells, method, index)
    sites["site_p"] = np.nan
    if null is not None:
        codes = np.fromiter(null.site_p.keys(), dtype="int64", count=len(null.site_p))
        sites.loc[codes, "site_p"] = np.fromiter(null.site_p.values(), dtype="float64", count=len(codes))
    return KRIRun(method=method, cells=cells, sites=sites, fits=fits, index=index, null=null)


def _flag_calibrated(cells: pd.DataFrame, spec_of: dict[str, KRISpec], fits: dict[str, KRIFit], index: SiteIndex,
                     policy: FlagPolicy, seed: int) -> PermutationNull:
    """Per-cell flags at permutation-calibrated false-positive rates over the site's one-sided tests."""
    kri = cells["kri"]
    code = cells["site_code"].to_numpy()
    n_dirs = kri.map({k: len(s.directions) for k, s in spec_of.items()}).to_numpy()
    evaluable = cells["evaluable"].to_numpy(dtype=bool)
    tests = np.bincount(code, weights=np.where(evaluable, n_dirs, 0), minlength=index.n_sites)[code]
    p_low, p_high = cells["p_low"].to_numpy(), cells["p_high"].to_numpy()
    low_ok = kri.map({k: "low" in s.directions for k, s in spec_of.items()}).to_numpy(dtype=bool)
    high_ok = kri.map({k: "high" in s.directions for k, s in spec_of.items()}).to_numpy(dtype=bool)
    p_concern_low = np.where(low_ok, p_low, 1.0)
    p_concern_high = np.where(high_ok, p_high, 1.0)
    p_worst = np.fmin(p_concern_low, p_concern_high)
    scored = np.isfinite(p_low) & np.isfinite(p_high)
    p_cell = np.where(scored, np.fmin(1.0, p_worst * np.where(low_ok & high_ok, 2.0, 1.0)), np.nan)

    # Sites already red under Sidak stay out of the permutation pool (they would widen the null).
    last = int(index.group_snap.max()) if index.n_groups else 0
    sidak_red = evaluable & (p_worst < cell_alpha(policy.red_site_rate, tests))
    excluded = np.bincount(code, weights=sidak_red, minlength=index.n_sites) > 0
    logp = np.where(evaluable & scored, -np.log(np.clip(p_cell, 1e-300, 1.0)), 0.0)
    sum_log = np.bincount(code, weights=logp, minlength=index.n_sites)
    n_cells = np.bincount(code, weights=evaluable & scored, minlength=index.n_sites)
    null = permutation_null(fits, index, last, excluded, policy.amber_site_rate, sum_log, n_cells, seed)

    # One multiplicity ratio per study (measured at the latest snapshot) for every snapshot.
    study_of_group = index.sites.groupby(index.site_group)["study_id"].first()
    ratio_by_study = {study_of_group[g]: r for g, r in null.effective_ratio.items()}
    ratio = cells["study_id"].map(ratio_by_study).fillna(1.0).to_numpy()
    amber_alpha = cell_alpha(policy.amber_site_rate, tests, ratio)
    red_alpha = cell_alpha(policy.red_site_rate, tests, ratio)
    flag = np.where(p_worst < red_alpha, FLAG_RED, np.where(p_worst < amber_alpha, FLAG_AMBER, FLAG_OK))
    flag = np.where(evaluable, flag, FLAG_INSUFFICIENT)
    cells["flag"] = flag.astype("int64")
    cells["direction"] = np.where(flag > 0, np.where(p_concern_low < p_concern_high, "low", "high"), "")
    cells["z"] = np.where(scored, signed_z(np.nan_to_num(p_low, nan=1.0), np.nan_to_num(p_high, nan=1.0)), np.nan)
    cells["p"] = p_cell
    cells["tests_at_site"] = tests.astype("int64")
    cells["amber_alpha"] = np.where(evaluable, amber_alpha, np.nan)
    cells["red_alpha"] = np.where(evaluable, red_alpha, np.nan)
    return null


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
