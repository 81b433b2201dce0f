"""Data-quality results as derived results of the registry (:mod:`analytics.core.derived`).

* ``quality_findings``: every edit check's findings and the SDTM conformance issues stored at import,
  per study (``derived.quality_findings``);
* ``quality_signals``: the unusual-pattern signals and the site ranking (``derived.quality_signals``,
  ``derived.quality_sites``). They read the stored atypical-data tests, so the registry lists them after
  those, and the atypical module's source is part of their version.

Both read through the refresh's unblinded scope (the dosing check reads exposure dates; no finding
ever names a treatment).
"""

from __future__ import annotations

import pandas as pd

from analytics.core.derived import DerivedResult, RefreshRun
from analytics.core.scope import NO_FILTER
from analytics.quality.anomalies import score_sites, signal_inputs
from analytics.quality.engine import run_checks

SIGNAL_COLUMNS = ("study_id", "study_site_id", "signal", "test_code", "statistic", "site_value", "peer_value", "z",
                  "p", "explanation")
SITE_COLUMNS = ("study_id", "study_site_id", "signals", "combined_p", "score", "isolation_score", "top_explanation")


def compute_findings(run: RefreshRun) -> dict[str, pd.DataFrame]:
    """The findings of ``run.study_ids``."""
    run.progress("edit checks and SDTM conformance")
    return {"quality_findings": run_checks(run.warehouse, run.scope, NO_FILTER)}


def compute_signals(run: RefreshRun) -> dict[str, pd.DataFrame]:
    """The signals and site ranking of ``run.study_ids`` (each site against its own study)."""
    run.progress("unusual data patterns")
    signals, sites = score_sites(*signal_inputs(run.warehouse, run.scope, NO_FILTER))
    signals = signals.reindex(columns=list(SIGNAL_COLUMNS)) if len(signals) else pd.DataFrame(columns=SIGNAL_COLUMNS)
    sites = sites.reindex(columns=list(SITE_COLUMNS)) if len(sites) else pd.DataFrame(columns=SITE_COLUMNS)
    return {"quality_signals": signals, "quality_sites": sites}


FINDINGS_RESULT = DerivedResult(
    name="quality_findings",
    description="edit-check findings and SDTM conformance issues",
    tables=("quality_findings",),
    compute=compute_findings,
    code=("analytics.quality.specs", "analytics.quality.engine", "analytics.quality.results"),
)

SIGNALS_RESULT = DerivedResult(
    name="quality_signals",
    description="unusual data patterns per site, ranked and explained",
    tables=("quality_signals", "quality_sites"),
    compute=compute_signals,
    code=("analytics.quality.anomalies", "analytics.kri.atypical", "analytics.quality.results"),
)
