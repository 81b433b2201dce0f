"""From matches to decisions a site and a planner make: the ranked candidate list, the criteria waterfall,
and "what if" one criterion were relaxed.

* **Ranking**: patients who pass every criterion records can decide, with nothing unknown, first; then
  those with no failed criterion, by the estimated chance that all their unknowns from records pass
  (:mod:`analytics.recruitment.chance`: an old result predicts the current one), then fewest unknowns;
  then those who fail, fewest failures first. The chance only orders the list: every unknown stays
  unknown, shown with its evidence, for a person to settle. Unknowns that only the screening visit can
  settle (consent, contraception, a criterion that needs review) are counted apart from unknowns that a
  record could settle (a missing or old lab).
* **Waterfall**: criteria in protocol order; each removes the remaining patients it definitely fails
  (unknown never removes anyone), so the bars show how many are left after each. Beside it, what each
  criterion costs on its own: patients it fails, and patients it alone fails (the gain of dropping it).
* **What if**: the same pool with one criterion's threshold moved (age <= 75 instead of 70) or the
  criterion dropped; only that criterion is evaluated again.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from analytics.recruitment.criteria import Criterion
from analytics.recruitment.matching import MET, NOT_MET, UNKNOWN, MatchResult, match

ELIGIBLE, POSSIBLE, EXCLUDED = "Eligible on records", "Possible: to check", "Not eligible"
CATEGORIES = (ELIGIBLE, POSSIBLE, EXCLUDED)


def patient_summary(result: MatchResult) -> pd.DataFrame:
    """One row per patient: category, rank, criteria failed, unknown (from records / at the visit), met, and the
    chance that every unknown from records passes (1 when none is open, 0 when a criterion fails)."""
    passes = result.passes
    record_criteria = result.from_records
    failed = (passes == NOT_MET).sum(1)
    unknown = passes == UNKNOWN
    unknown_records = (unknown & record_criteria[None, :]).sum(1)
    unknown_visit = (unknown & ~record_criteria[None, :]).sum(1)
    met = (passes == MET).sum(1)
    open_chances = np.where(unknown & record_criteria[None, :], result.chance, 1.0)
    chance = np.where(failed > 0, 0.0, np.nan_to_num(open_chances, nan=1.0).prod(1))
    category = np.where(failed > 0, EXCLUDED, np.where(unknown_records > 0, POSSIBLE, ELIGIBLE))
    patients = result.pool.patients
    frame = pd.DataFrame({
        "patient_id": patients["patient_id"].to_numpy(),
        "study_site_id": patients["study_site_id"].to_numpy(),
        "sex": patients["sex"].to_numpy(),
        "age": patients["age"].to_numpy(),
        "category": category,
        "failed": failed,
        "unknown_records": unknown_records,
        "unknown_visit": unknown_visit,
        "met": met,
        "chance": chance,
    })
    order = pd.Categorical(frame["category"], categories=CATEGORIES, ordered=True)
    frame = frame.assign(_order=order.codes, _chance=-frame["chance"].round(6)).sort_values(
        ["_order", "failed", "_chance", "unknown_records", "unknown_visit", "patient_id"], kind="stable").drop(
        columns=["_order", "_chance"])
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame.reset_index(drop=True)


def waterfall(result: MatchResult) -> pd.DataFrame:
    """Per criterion in protocol order: patients left before it, removed by it, left after it; and its own cost."""
    passes = result.passes
    n = len(result.pool)
    remaining = np.ones(n, dtype=bool)
    fails = passes == NOT_MET
    fail_count = fails.sum(1)
    rows = []
    for j, criterion in enumerate(result.criteria):
        removed = remaining & fails[:, j]
        rows.append({
            "number": criterion.number,
            "criterion_key": criterion.key,
            "section": criterion.section,
            "text": criterion.text,
            "kind": criterion.kind,
            "status": criterion.status,
            "before": int(remaining.sum()),
            "removed": int(removed.sum()),
            "after": int((remaining & ~fails[:, j]).sum()),
            "fails": int(fails[:, j].sum()),
            "only_this": int((fails[:, j] & (fail_count == 1)).sum()),
            "unknown": int((passes[:, j] == UNKNOWN).sum()),
        })
        remaining &= ~fails[:, j]
    return pd.DataFrame(rows, columns=["number", "criterion_key", "section", "text", "kind", "status", "before",
                                       "removed", "after", "fails", "only_this", "unknown"])


def relaxable(criteria: list[Criterion] | tuple[Criterion, ...]) -> list[Criterion]:
    """Criteria a planner can relax: structured, with one threshold (age, lab, score)."""
    return [c for c in criteria if c.status == "structured" and len(c.atoms) >= 1
            and len({(a.comparator, a.value, a.value_high) for a in c.atoms}) == 1 and c.atoms[0].comparator]


def relaxed(criterion: Criterion, value: float | None = None, value_high: float | None = None) -> Criterion:
    """``criterion`` with its threshold moved (every atom that shares it, e.g. ALT and AST)."""
    atoms = tuple(replace(a, value=a.value if value is None else float(value),
                          value_high=a.value_high if value_high is None else float(value_high)) for a in criterion.atoms)
    return replace(criterion, atoms=atoms, text=f"{criterion.text} [relaxed]")


def what_if(result: MatchResult, key: str, replacement: Criterion | None) -> MatchResult:
    """The matches with criterion ``key`` replaced (or dropped when ``replacement`` is None); others reused."""
    position = next(j for j, c in enumerate(result.criteria) if c.key == key)
    if replacement is None:
        keep = [j for j in range(len(result.criteria)) if j != position]
        return MatchResult(result.pool, tuple(result.criteria[j] for j in keep), result.statement[:, keep],
                           result.passes[:, keep], result.reason[:, keep], result.record[:, keep], result.value[:, keep],
                           result.unit[:, keep], result.day[:, keep], result.decided_by[:, keep], result.chance[:, keep])
    single = match(result.pool, [replacement])
    out = MatchResult(result.pool, result.criteria[:position] + (replacement,) + result.criteria[position + 1:],
                      result.statement.copy(), result.passes.copy(), result.reason.copy(), result.record.copy(),
                      result.value.copy(), result.unit.copy(), result.day.copy(), result.decided_by.copy(),
                      result.chance.copy())
    for name in ("statement", "passes", "reason", "record", "value", "unit", "day", "decided_by", "chance"):
        getattr(out, name)[:, position] = getattr(single, name)[:, 0]
    return out


def eligible_counts(result: MatchResult) -> dict[str, int]:
    """Patients per category."""
    summary = patient_summary(result)
    counts = summary["category"].value_counts()
    return {category: int(counts.get(category, 0)) for category in CATEGORIES}
