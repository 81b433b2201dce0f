"""What people decide, kept in the records store: a coordinator's confirm or reject of each candidate, and a
person's acceptance of a proposed structure for a criterion that needed review.

Both are append-only tables (:mod:`analytics.core.records_schema`): a changed mind is a new version
with who and when, and every write is audited. Only *accepted* structures change matching: a model's
proposal is a proposal until a person accepts it. The store does not apply the access scope, so every
read here is narrowed to the studies the caller's scope may see, and every write is refused for a study
outside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache

import pandas as pd

from analytics.core.records import AppendedRecord, RecordsStore
from analytics.core.settings import load_settings
from analytics.recruitment.criteria import Atom, Criterion, atom_from_dict, atom_to_dict

DECISIONS, REVIEWS = "prescreen_decisions", "criterion_reviews"
CONFIRMED, NOT_A_CANDIDATE = "Candidate confirmed", "Not a candidate"
ACCEPTED, REJECTED = "Accepted", "Rejected"
MIN_REASON_CHARS = 5


class DecisionError(ValueError):
    """A decision that cannot be recorded (no reason, a study or patient outside the scope, an unknown value)."""


@lru_cache(maxsize=4)
def _store(url: str) -> RecordsStore:
    return RecordsStore(url)


def records_store() -> RecordsStore:
    """The configured records store (opened and upgraded once per URL and process)."""
    return _store(load_settings().records_url)


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < MIN_REASON_CHARS:
        raise DecisionError("give the reason (a few words at least): it is kept with the decision")
    return text


def record_decision(store: RecordsStore, *, study_id: str, study_site_id: str, patient_id: str, decision: str,
                    reason: str, prescreen_result: str, unknown_criteria: int, criteria_version: str, actor: str,
                    allowed_studies: Iterable[str], scope: object = None) -> AppendedRecord:
    """Append a coordinator's decision on one patient (refused outside the caller's studies)."""
    if decision not in (CONFIRMED, NOT_A_CANDIDATE):
        raise DecisionError(f"decision must be {CONFIRMED!r} or {NOT_A_CANDIDATE!r}, not {decision!r}")
    if study_id not in set(allowed_studies):
        raise DecisionError(f"study {study_id} is not available to you")
    row = {"study_id": study_id, "study_site_id": study_site_id, "patient_id": patient_id, "decision": decision,
           "reason": _reason(reason), "prescreen_result": prescreen_result, "unknown_criteria": int(unknown_criteria),
           "criteria_version": criteria_version}
    return store.append(DECISIONS, row, actor=actor, scope=scope)


def current_decisions(store: RecordsStore, study_ids: Iterable[str]) -> pd.DataFrame:
    """The latest decision on each patient of these studies."""
    ids = sorted(set(study_ids))
    if not ids:
        return pd.DataFrame(columns=["study_id", "patient_id", "decision", "reason", "actor", "recorded_at"])
    return store.current(DECISIONS, where={"study_id": ids})


def record_review(store: RecordsStore, *, study_id: str, criterion: Criterion, atoms: tuple[Atom, ...], combine: str,
                  negated: bool, decision: str, source: str, reason: str | None, actor: str,
                  allowed_studies: Iterable[str], scope: object = None) -> AppendedRecord:
    """Append a person's acceptance (or rejection) of a structure for ``criterion``."""
    if decision not in (ACCEPTED, REJECTED):
        raise DecisionError(f"decision must be {ACCEPTED!r} or {REJECTED!r}")
    if study_id not in set(allowed_studies):
        raise DecisionError(f"study {study_id} is not available to you")
    if decision == ACCEPTED and not atoms:
        raise DecisionError("an accepted structure needs at least one part")
    structure = json.dumps({"atoms": [atom_to_dict(a) for a in atoms], "combine": combine, "negated": negated},
                           sort_keys=True)
    row = {"study_id": study_id, "criterion_key": criterion.key, "decision": decision, "structure": structure,
           "source": source, "reason": (reason or "").strip() or None}
    return store.append(REVIEWS, row, actor=actor, scope=scope)


def current_reviews(store: RecordsStore, study_id: str) -> pd.DataFrame:
    return store.current(REVIEWS, where={"study_id": study_id})


def apply_reviews(criteria: list[Criterion], reviews: pd.DataFrame) -> list[Criterion]:
    """The criteria with every accepted structure applied (a rejected latest review leaves the parse as it was)."""
    if reviews is None or reviews.empty:
        return list(criteria)
    accepted = reviews[reviews["decision"] == ACCEPTED].set_index("criterion_key")
    out = []
    for criterion in criteria:
        if criterion.key not in accepted.index:
            out.append(criterion)
            continue
        row = accepted.loc[criterion.key]
        data = json.loads(row["structure"])
        atoms = tuple(atom_from_dict(a) for a in data["atoms"])
        source = "model" if str(row["source"]).startswith("model") else "person"
        out.append(replace(criterion.with_structure(atoms, data.get("combine", "any"), bool(data.get("negated")), source),
                           note=f"Structure accepted by {row['actor']}"))
    return out
