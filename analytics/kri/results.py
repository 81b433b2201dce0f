"""The KRI engine's stored results, as derived results of the registry (:mod:`analytics.core.derived`).

Two results, each per study:

* ``kri``: every method's cells and site scores at six monthly snapshots (``derived.kri_cells``,
  ``derived.kri_sites``), the calibrated site score's permutation p-value, each cell's site-level
  posterior, and the per-site evidence for the between-site variance (``derived.kri_variance_inputs``).
* ``atypical``: the atypical-data tests and combined score per site (``derived.atypical_sites``).

Sites are scored against their whole study, so a study's results depend on its own data with one
exception: a study with few sites borrows its between-site variance from the median over the
portfolio's studies (the *portfolio prior*). Refreshing some studies therefore uses the prior of
the whole portfolio (the stored evidence of the other studies plus the new), which makes their
results identical to a full refresh. The other studies keep the prior they were scored with unless
it moved by more than :data:`PRIOR_TOLERANCE` on the between-site standard deviation scale (log or
logit), in which case every study is rescored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.core import schema
from analytics.core.derived import EVIDENCE, DerivedResult, RefreshRun, stored_inputs
from analytics.core.scope import NO_FILTER
from analytics.kri.atypical import Pool, atypical_inputs, pool_medians, score_atypical
from analytics.kri.calibrated import fit_calibrated
from analytics.kri.engine import METHODS, KRIRun, run_engine
from analytics.kri.extract import snapshot_dates, subject_measures
from analytics.kri.persistence import persistence
from analytics.kri.sites import SiteIndex
from analytics.kri.specs import CATALOGUE

# Change of any KRI's prior between-site SD (log/logit scale; 0.05 ~ 5% in rate) that rescores every study.
PRIOR_TOLERANCE = 0.05


def _variance_inputs(run: KRIRun) -> pd.DataFrame:
    """Per site, snapshot and KRI: the implied between-site variance (NaN where not usable)."""
    sites = run.index.sites
    parts = [sites.assign(kri=kri, implied=fit.implied_tau2) for kri, fit in run.fits.items()]
    if not parts:
        return pd.DataFrame(columns=["snap", "study_id", "study_site_id", "kri", "implied"])
    return pd.concat(parts, ignore_index=True)


def variance_evidence(frame: pd.DataFrame) -> KRIRun:
    """The calibrated fits alone (no permutation, no flags): enough for the per-site variance evidence."""
    index = SiteIndex.from_frame(frame)
    fits = {spec.id: fit_calibrated(frame, index, spec) for spec in CATALOGUE}
    return KRIRun(method="calibrated", cells=pd.DataFrame(), sites=pd.DataFrame(), fits=fits, index=index)


def _priors(evidence: pd.DataFrame) -> dict[str, dict[int, float]]:
    """The pooled between-site variance per KRI and snapshot: the median of the usable evidence."""
    usable = evidence.dropna(subset=["implied"])
    medians = usable.groupby(["kri", "snap"])["implied"].median().clip(lower=0.0)
    priors: dict[str, dict[int, float]] = {}
    for (kri, snap), value in medians.items():
        priors.setdefault(str(kri), {})[int(snap)] = float(value)
    return priors


def _moved(old: dict, new: dict[str, dict[int, float]]) -> float:
    """The largest change of the between-site SD between two priors (inf when a KRI or snapshot is new)."""
    worst = 0.0
    for kri, snaps in new.items():
        for snap, value in snaps.items():
            before = (old.get(kri) or {}).get(str(snap))
            if before is None:
                return float("inf")
            worst = max(worst, abs(np.sqrt(max(value, 0.0)) - np.sqrt(max(before, 0.0))))
    return worst


def _measures(run: RefreshRun) -> pd.DataFrame:
    key = ("measures", run.study_ids)
    if key not in run.scratch:
        run.progress("extracting KRI measures")
        run.scratch[key] = subject_measures(run.warehouse, run.scope, NO_FILTER, snapshot_dates(run.as_of))
    return run.scratch[key]


def kri_evidence(run: RefreshRun) -> pd.DataFrame:
    """The per-site evidence for the portfolio prior of ``run.study_ids`` (each study's own data only)."""
    return _variance_inputs(variance_evidence(_measures(run)))


def plan_kri(run: RefreshRun) -> tuple[set[str], str]:
    """The studies to rescore: the stale ones, or all when the portfolio prior moved too far.

    Fixes the portfolio prior in ``run.inputs["prior"]`` (which :func:`compute_kri` then uses),
    except when every study is scored in one run, whose engine pools over the whole frame itself.
    An engine that scores studies apart (Spark) computes the evidence per study first and passes it
    in ``run.scratch[EVIDENCE]``.
    """
    evidence = run.scratch.get(EVIDENCE)
    if run.everything and evidence is None:
        return set(run.study_ids), ""
    if evidence is None:
        run.progress("estimating the portfolio prior")
        evidence = kri_evidence(run)
    others = run.con.execute(
        "SELECT snap, study_id, study_site_id, kri, implied FROM derived.kri_variance_inputs "
        "WHERE NOT list_contains($ids, study_id)", {"ids": list(run.study_ids)}).df()
    priors = _priors(pd.concat([others, evidence], ignore_index=True))
    run.inputs["prior"] = priors
    if run.everything:
        return set(run.study_ids), ""
    moved = max((_moved(stored.get("prior", {}), priors)
                 for stored in stored_inputs(run.con, "kri", run.study_ids)), default=0.0)
    if moved > PRIOR_TOLERANCE:
        return set(run.all_study_ids), (f"the portfolio prior's between-site SD moved by {moved:.3f} "
                                        f"(> {PRIOR_TOLERANCE}), so every study was rescored")
    return set(run.study_ids), ""


def _study_site_codes(cells: pd.DataFrame) -> pd.Series:
    """Each cell's site index within its own study (what the engine gives when it scores the study alone)."""
    codes = cells.groupby(["study_id", "snap", "study_site_id"], sort=True).ngroup()
    return (codes - codes.groupby(cells["study_id"]).transform("min")).astype("int64")


def _with_persistence(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells with persistence (months flagged, new flag, z history) on the latest snapshot's rows."""
    columns = {"months_flagged": pd.Series(dtype="Int64"), "new_flag": pd.Series(dtype="boolean"),
               "z_history": pd.Series(dtype="object")}
    if cells.empty:
        return cells.assign(**columns)
    latest = cells["snap"] == cells["snap"].max()
    current = cells[latest].merge(persistence(cells), on=["study_site_id", "kri"], how="left")
    current["months_flagged"] = current["months_flagged"].astype("Int64")
    current["new_flag"] = current["new_flag"].astype("boolean")
    current["z_history"] = [None if not isinstance(v, list) else [np.nan if x is None else x for x in v]
                            for v in current["z_history"]]
    return pd.concat([cells[~latest].assign(**{k: v.reindex(cells.index[~latest]) for k, v in columns.items()}),
                      current], ignore_index=True)


def compute_kri(run: RefreshRun) -> dict[str, pd.DataFrame]:
    """Every method's cells and sites for ``run.study_ids`` at the monthly snapshots."""
    frame = _measures(run)
    priors = run.inputs.get("prior")
    if frame.empty:  # no subject yet (a planned study scored alone): no site to score, nothing to store
        empty = pd.DataFrame(columns=["snap", "study_id", "study_site_id", "kri", "implied"])
        run.inputs["prior"] = priors if priors is not None else _priors(empty)
        return {name: pd.DataFrame(columns=[c.name for c in schema.table(name).columns])
                for name in ("kri_cells", "kri_sites", "kri_variance_inputs")}
    cells, sites, evidence = [], [], None
    for method in METHODS:
        run.progress(f"scoring KRIs ({method})")
        result = run_engine(frame, method, priors=priors if method == "calibrated" else None)
        method_sites = result.sites.copy()
        if method == "calibrated":
            evidence = _variance_inputs(result)
        cells.append(_with_persistence(result.cells.assign(site_code=_study_site_codes(result.cells)))
                     .assign(method=method))
        sites.append(method_sites.assign(method=method))
    if evidence is None:
        evidence = pd.DataFrame(columns=["snap", "study_id", "study_site_id", "kri", "implied"])
    run.inputs["prior"] = priors if priors is not None else _priors(evidence)
    return {"kri_cells": pd.concat(cells, ignore_index=True), "kri_sites": pd.concat(sites, ignore_index=True),
            "kri_variance_inputs": evidence}


def atypical_evidence(run: RefreshRun) -> pd.DataFrame:
    """The values the atypical tests' all-study medians are taken over, for ``run.study_ids``, given
    the medians already fixed in ``run.inputs["pool"]``."""
    pool = Pool(fixed=dict(run.inputs.get("pool") or {}))
    score_atypical(*atypical_inputs(run.warehouse, run.scope, NO_FILTER), pool=pool)
    return pool.evidence()


def plan_atypical(run: RefreshRun) -> tuple[set[str], str]:
    """Fix the all-study medians in ``run.inputs["pool"]`` unless every study is scored in one run.

    A refresh of some studies takes them over every study's data (one more pass of the tests), so
    its studies get what a full refresh gives them. An engine that scores studies apart hands every
    study's evidence in ``run.scratch[EVIDENCE]`` twice: the between-site variances first (they
    depend on the data alone), then the score inflations (which depend on those).
    """
    evidence = run.scratch.get(EVIDENCE)
    if evidence is None:
        if run.everything:
            return set(run.study_ids), ""
        run.progress("atypical-data medians over every study")
        every = RefreshRun(run.con, run.all_study_ids, run.all_study_ids, run.as_of, run.progress)
        evidence = atypical_evidence(every)
        run.inputs["pool"] = pool_medians(evidence)
    elif "pool" in run.inputs:
        run.inputs["pool"] = pool_medians(evidence)
    else:
        run.inputs["pool"] = {k: v for k, v in pool_medians(evidence).items() if k.endswith(":tau2")}
    return set(run.study_ids), ""


def compute_atypical(run: RefreshRun) -> dict[str, pd.DataFrame]:
    """The atypical-data tests of ``run.study_ids`` (each site against its own study)."""
    run.progress("atypical-data tests")
    pool = Pool(fixed=dict(run.inputs.get("pool") or {}))
    sites = score_atypical(*atypical_inputs(run.warehouse, run.scope, NO_FILTER), pool=pool)
    if not pool.fixed:  # one run over every study: record the medians it took, as a fixed pool is
        run.inputs["pool"] = pool_medians(pool.evidence())
    return {"atypical_sites": sites}


_ENGINE_MODULES = ("analytics.kri.engine", "analytics.kri.calibrated", "analytics.kri.models", "analytics.kri.specs",
                   "analytics.kri.extract", "analytics.kri.funnel", "analytics.kri.sites", "analytics.kri.permutation",
                   "analytics.kri.persistence")

KRI_RESULT = DerivedResult(
    name="kri",
    description="KRI cells and site scores, both methods, six monthly snapshots",
    tables=("kri_cells", "kri_sites", "kri_variance_inputs"),
    compute=compute_kri,
    code=(*_ENGINE_MODULES, "analytics.kri.results"),
    params=(("methods", METHODS), ("prior_tolerance", PRIOR_TOLERANCE)),
    plan=plan_kri,
    evidence=kri_evidence,
    evidence_table="kri_variance_inputs",
)

ATYPICAL_RESULT = DerivedResult(
    name="atypical",
    description="atypical-data tests per site",
    tables=("atypical_sites",),
    compute=compute_atypical,
    code=("analytics.kri.atypical", "analytics.kri.results"),
    plan=plan_atypical,
    evidence=atypical_evidence,
    evidence_columns=(("key", "VARCHAR"), ("study_id", "VARCHAR"), ("value", "DOUBLE")),
    evidence_stages=2,
    evidence_of_all=True,
)
