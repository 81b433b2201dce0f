"""How likely an unknown criterion is to pass, for ranking candidates: an estimate, never a decision.

The matcher leaves a criterion unknown whenever the records cannot decide it (no result, only results
older than the window, a unit it cannot convert, pregnancy not recorded, an incomplete list); it stays
unknown and goes to a person. To order the people a coordinator reads first, each unknown gets the
chance that it passes, estimated **from the pool itself** (nothing here reads how the pool was made):

* **A lab or score with only older results**: an old result predicts the current one (within-patient
  autocorrelation). The pool's own series teach how much: every patient with a result inside the
  window *and* an earlier one gives a pair (earlier value ``x``, later value ``y``, gap ``g`` in years).
  A least-squares fit ``y ~ 1 + x + g + x g`` (:data:`MIN_PAIRS` pairs or more; ``g`` centred on the
  pairs' mean gap and never taken outside the gaps seen; the shape assumes no particular course) and the spread of its residuals (their :data:`RESIDUAL_QUANTILES` quantiles, so
  skewed or mixed distributions keep their shape) give, for a patient whose latest result ``x`` is ``g``
  years before screening, the share of predicted values ``a + b x + c g + d x g + r`` that meet the
  threshold.
* **Anything else unknown** (no result at all, unit not convertible, fewer pairs, pregnancy not
  recorded, a list not stated complete): the share of the patients the records decided on that atom
  for whom it holds (age- and sex-based assumptions are not counted); :data:`NO_INFORMATION` when the
  records decided nobody.
* Atoms are combined as if independent (``all``: product; ``any``: one minus the product of the
  complements), then negation and the section turn the statement's chance into the chance the
  criterion passes. A decided criterion has chance 1 (passes) or 0 (fails); a criterion records cannot
  decide (needs review, confirmed at screening) has none (NaN): it is the same question for everyone.

Assumptions a person should know: results are missing or old at random with respect to their value
(a sicker patient tested more often would bias the estimate), and the relation between an earlier and
a later result is the same for patients with and without a recent one.
"""

from __future__ import annotations

import numpy as np

from analytics.recruitment.criteria import EXCLUSION, STRUCTURED, Atom, Criterion
from analytics.recruitment.matching import MET, NOT_MET, R, UNKNOWN, AtomResult, compare, lab_results, lab_window
from analytics.recruitment.pool import Pool

MIN_PAIRS = 30  # fewer earlier/later pairs in the pool: no course is fitted, the base rate is used
RESIDUAL_QUANTILES = 200
NO_INFORMATION = 0.5  # chance of an atom nobody in the pool is decided on
DAYS_PER_YEAR = 365.25


def _latest(before: np.ndarray, patient: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the most recent kept row per patient, and those patients."""
    rows = np.flatnonzero(keep)
    if not len(rows):
        return rows, rows
    ordered = rows[np.lexsort((before[rows], patient[rows]))]
    first = np.r_[True, patient[ordered][1:] != patient[ordered][:-1]]
    return ordered[first], patient[ordered[first]]


def _design(x: np.ndarray, gap_years: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(x), x, gap_years, x * gap_years])


def _course_chance(pool: Pool, atom: Atom, unknown_old: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For patients (positions ``unknown_old``) whose latest result is older than the window: the chance the
    atom holds at screening from the pool's fitted course, and a mask of those it could be computed for."""
    rows = lab_results(pool, atom)
    if rows.empty:
        return None
    rows = rows.loc[rows["converted"].notna()]
    patient = rows["pi"].to_numpy()
    before = rows["effective_date_before"].to_numpy(dtype="float64")
    value = rows["converted"].to_numpy(dtype="float64")
    in_window = (before >= 0) & (before <= lab_window(atom))
    later, later_patient = _latest(before, patient, in_window)
    if len(later) < MIN_PAIRS:
        return None
    later_before = np.full(len(pool), np.nan)
    later_before[later_patient] = before[later]
    later_value = np.full(len(pool), np.nan)
    later_value[later_patient] = value[later]
    earlier, earlier_patient = _latest(before, patient, before > np.nan_to_num(later_before[patient], nan=np.inf))
    if len(earlier) < MIN_PAIRS:
        return None
    x, y = value[earlier], later_value[earlier_patient]
    gap = (before[earlier] - later_before[earlier_patient]) / DAYS_PER_YEAR
    # Gaps centred on the pairs' mean (with one gap only, the least-norm fit ignores it) and never extrapolated.
    centre, lowest, highest = gap.mean(), gap.min(), gap.max()
    design = _design(x, gap - centre)
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coefficients
    spread = np.quantile(residuals, (np.arange(RESIDUAL_QUANTILES) + 0.5) / RESIDUAL_QUANTILES)
    old, old_patient = _latest(before, patient, before > lab_window(atom))
    old_value = np.full(len(pool), np.nan)
    old_value[old_patient] = value[old]
    old_gap = np.full(len(pool), np.nan)
    old_gap[old_patient] = before[old] / DAYS_PER_YEAR
    who = unknown_old & ~np.isnan(old_value)
    predicted = _design(old_value[who], np.clip(old_gap[who], lowest, highest) - centre) @ coefficients
    chance = np.full(len(pool), np.nan)
    chance[who] = compare(predicted[:, None] + spread[None, :], atom).mean(1)
    return chance, who


def atom_chance(pool: Pool, atom: Atom, result: AtomResult) -> np.ndarray:
    """Per patient, the chance the atom's statement holds: 1 or 0 where decided, an estimate where unknown."""
    chance = np.where(result.status == MET, 1.0, np.where(result.status == NOT_MET, 0.0, np.nan))
    unknown = result.status == UNKNOWN
    if not unknown.any():
        return chance
    from_records = (result.status != UNKNOWN) & (result.reason != R["assumed (sex or age)"])
    base = float((result.status[from_records] == MET).mean()) if from_records.any() else NO_INFORMATION
    if atom.kind in ("lab", "ecog"):
        old_only = unknown & (result.reason == R["result outside the window"])
        fitted = _course_chance(pool, atom, old_only) if old_only.any() else None
        if fitted is not None:
            course, who = fitted
            chance[who] = course[who]
    chance[unknown & np.isnan(chance)] = base
    return chance


def criterion_chance(criterion: Criterion, chances: list[np.ndarray], passes: np.ndarray) -> np.ndarray:
    """The chance each patient passes ``criterion``, from its atoms' chances (independent); decided cells are 1/0."""
    if criterion.status != STRUCTURED or not chances:
        return np.full(len(passes), np.nan)
    stack = np.stack(chances)
    statement = stack.prod(0) if criterion.combine != "any" else 1 - (1 - stack).prod(0)
    if criterion.negated:
        statement = 1 - statement
    chance = 1 - statement if criterion.section == EXCLUSION else statement
    return np.where(passes == UNKNOWN, chance, (passes == 1).astype("float64"))
