"""The review workflow: a reviewer's disposition of each finding, kept in the records store.

A disposition (query raised, not an issue, needs follow-up) with its reason is appended to
``review_dispositions`` (:mod:`analytics.core.records_schema`) with who and when, and audited in the
same transaction; a changed mind is a new version, never an overwrite. Findings are keyed by a hash
of the data they read (:mod:`analytics.quality.engine`), so a finding marked "not an issue" stays set
aside on the next run until its data change: then it has a new id and no disposition, and is shown.

The store does not apply the access scope: every read here is narrowed to the study ids the
caller's scope may see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

import pandas as pd

from analytics.core.records import AppendedRecord, RecordsStore
from analytics.core.records_schema import DISPOSITIONS

TABLE = "review_dispositions"
SET_ASIDE = "Not an issue"
QUERY_RAISED = "Query raised"
MIN_REASON_CHARS = 5
DISPOSITION_COLUMNS = ("finding_id", "study_id", "study_site_id", "disposition", "reason", "actor", "recorded_at",
                       "version")


@lru_cache(maxsize=4)
def records_store(url: str | None = None) -> RecordsStore:
    """The process's store for ``url`` (default: the configured records database); opened once."""
    return RecordsStore(url)


class ReviewError(ValueError):
    """A disposition that cannot be recorded (unknown value, no reason, a study outside the scope)."""


def record_disposition(store: RecordsStore, finding: Mapping[str, object], disposition: str, reason: str,
                       actor: str, allowed_studies: Iterable[str], scope: object = None) -> AppendedRecord:
    """Append a reviewer's ``disposition`` of ``finding`` (a row of ``quality_findings``) with its reason."""
    if disposition not in DISPOSITIONS:
        raise ReviewError(f"disposition must be one of {', '.join(DISPOSITIONS)}, not {disposition!r}")
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_CHARS:
        raise ReviewError("give the reason for the disposition (a few words at least): it is kept with the decision")
    study = str(finding["study_id"])
    if study not in set(allowed_studies):
        raise ReviewError(f"finding {finding['finding_id']} is not in a study available to you")
    site = finding.get("study_site_id")
    row = {"finding_id": str(finding["finding_id"]), "study_id": study,
           "study_site_id": None if site is None or pd.isna(site) else str(site),
           "disposition": disposition, "reason": reason}
    return store.append(TABLE, row, actor=actor, scope=scope)


def current_dispositions(store: RecordsStore, study_ids: Iterable[str]) -> pd.DataFrame:
    """The latest disposition of every reviewed finding of these studies."""
    ids = sorted(set(study_ids))
    if not ids:
        return pd.DataFrame(columns=list(DISPOSITION_COLUMNS))
    current = store.current(TABLE, where={"study_id": ids})
    if current.empty:
        return pd.DataFrame(columns=list(DISPOSITION_COLUMNS))
    return current[list(DISPOSITION_COLUMNS)].reset_index(drop=True)


def disposition_history(store: RecordsStore, finding_id: str, study_ids: Iterable[str]) -> pd.DataFrame:
    """Every disposition ever given to one finding, oldest first (empty outside the caller's studies)."""
    history = store.history(TABLE, finding_id)
    if history.empty:
        return pd.DataFrame(columns=list(DISPOSITION_COLUMNS))
    return history[history["study_id"].isin(set(study_ids))][list(DISPOSITION_COLUMNS)].reset_index(drop=True)


def set_aside_ids(dispositions: pd.DataFrame) -> list[str]:
    """Findings whose latest disposition is "not an issue" (hidden from the open list)."""
    return sorted(dispositions.loc[dispositions["disposition"] == SET_ASIDE, "finding_id"].astype(str))


def ids_with(dispositions: pd.DataFrame, disposition: str) -> list[str]:
    """Findings whose latest disposition is ``disposition``."""
    return sorted(dispositions.loc[dispositions["disposition"] == disposition, "finding_id"].astype(str))
