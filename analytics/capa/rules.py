"""Run rules for control charts: Western Electric rules 1-4 and the Nelson trend rule, declared once.

Every rule is a :class:`RuleSpec` run by one engine, :func:`apply_rules`, on a chart's standardized
values (``z``: distance from the centre line in units of the point's own sigma, Laney-adjusted when
the chart is over-dispersed) and plotted values (for the trend rule):

* ``zone`` rules: at least ``needed`` of the last ``window`` consecutive points beyond ``beyond``
  sigma on the same side, the latest point among them (WE1: 1 of 1 beyond 3; WE2: 2 of 3 beyond 2;
  WE3: 4 of 5 beyond 1; WE4: 8 of 8 on one side of the centre);
* ``trend`` rules: ``window`` points in a row each higher (or each lower) than the one before;
* ``cusum`` rules: a one-sided cumulative sum of the standardized values, ``S_t = max(0, S_(t-1) +
  z_t - reference)`` (``-z_t`` for the low side), breaks when ``S_t`` exceeds ``decision`` sigma, and
  starts again from 0 after it breaks. A Shewhart point rule needs one month far out; a sustained
  rise of 1-2 sigma a month, too small to break it, adds up in the sum within a few months (Page's
  CUSUM; the ``reference`` is half the shift it is tuned to, and ``decision`` sets how often a stable
  chart breaks it by chance, its in-control average run length, chosen on the calibration seeds).

A point *breaks* a rule when the pattern completes at it; ``direction`` says on which side ("high"
or "low"). Points that are not evaluable (too small a denominator) are skipped: a run continues
across them, as a run of months continues across a month with no data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


RULE_KINDS = ("zone", "trend", "cusum")


@dataclass(frozen=True)
class RuleSpec:
    """One run rule.

    Attributes:
        id: stable id (column names, URLs), e.g. ``we1``.
        name: display name.
        description: what breaks it, in a quality manager's words.
        kind: ``zone``, ``trend`` or ``cusum``.
        window: points in the pattern (``cusum``: 1, the sum carries the history).
        needed: zone rules: how many of the ``window`` points must lie beyond ``beyond``.
        beyond: zone rules: distance from the centre in sigma (0 = on that side of the centre).
        reference: cusum rules: the allowance subtracted from each point, in sigma.
        decision: cusum rules: the sum, in sigma, at which the rule breaks.
    """

    id: str
    name: str
    description: str
    kind: str
    window: int
    needed: int = 0
    beyond: float = 0.0
    reference: float = 0.0
    decision: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"{self.id}: kind must be one of {RULE_KINDS}, not {self.kind!r}")
        if self.kind == "zone" and not 1 <= self.needed <= self.window:
            raise ValueError(f"{self.id}: needed must be between 1 and window")
        if self.kind == "cusum" and not (self.reference >= 0 and self.decision > 0):
            raise ValueError(f"{self.id}: a cusum rule needs reference >= 0 and decision > 0")


RULES: tuple[RuleSpec, ...] = (
    RuleSpec("we1", "WE rule 1", "One point beyond the 3-sigma limits.", "zone", 1, 1, 3.0),
    RuleSpec("we2", "WE rule 2", "Two of three points in a row beyond 2 sigma on the same side.", "zone", 3, 2, 2.0),
    RuleSpec("we3", "WE rule 3", "Four of five points in a row beyond 1 sigma on the same side.", "zone", 5, 4, 1.0),
    RuleSpec("we4", "WE rule 4", "Eight points in a row on the same side of the centre line.", "zone", 8, 8, 0.0),
    RuleSpec("trend", "Nelson trend", "Six points in a row each higher, or each lower, than the one before.",
             "trend", 6),
    RuleSpec("cusum", "CUSUM", "The running total of each month's excess over expected (less an allowance of "
             "1 sigma a month) passes 2 sigma: a lasting rise too small for one month to pass the limits, such as "
             "three months in a row 1.7 sigma above expected.", "cusum", 1, reference=1.0, decision=2.0),
)
# The rules that raise a signal (the others mark patterns worth a look). Measured on the calibration seeds'
# stable deviation months (false breaks per 100 months, Poisson deviates): WE1 0.26, WE2 0.31, WE3 0.31,
# WE4 0.21, trend 0.05, CUSUM 0.67 (overlapping). WE3, WE4 and the trend rule need four to eight months to
# complete, so they cannot flag a shift within two months, and only add false signals; the CUSUM holds the
# sustained shifts WE1 misses (in-control average run length 257 months for normal points, simulated).
SIGNAL_RULES = ("we1", "we2", "cusum")
RULES_BY_ID = {r.id: r for r in RULES}
SIDES = (("high", 1.0), ("low", -1.0))


def _zone(z: np.ndarray, spec: RuleSpec, sign: float) -> np.ndarray:
    beyond = sign * z > spec.beyond
    hits = pd.Series(beyond.astype(float)).rolling(spec.window, min_periods=spec.window).sum().to_numpy()
    return (hits >= spec.needed) & beyond


def _trend(values: np.ndarray, spec: RuleSpec, sign: float) -> np.ndarray:
    steps = np.r_[False, sign * np.diff(values) > 0]
    run = pd.Series(steps.astype(float)).rolling(spec.window - 1, min_periods=spec.window - 1).sum().to_numpy()
    return run >= spec.window - 1


def _cusum(z: np.ndarray, spec: RuleSpec, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """The one-sided sum after each point and whether it breaks there (the sum restarts after a break)."""
    sums = np.zeros(len(z))
    hits = np.zeros(len(z), dtype=bool)
    running = 0.0
    for i, value in enumerate(sign * z):
        running = max(0.0, running + value - spec.reference)
        sums[i] = running
        if running > spec.decision:
            hits[i], running = True, 0.0
    return hits, sums


def apply_rules(z: Sequence[float], values: Sequence[float], evaluable: Sequence[bool],
                rules: Sequence[RuleSpec] = RULES) -> pd.DataFrame:
    """Which rules each point breaks, and on which side.

    Returns one row per input point with a boolean column per rule and side (``we1_high``,
    ``we1_low``, ...), plus ``rules_high`` / ``rules_low`` (ids of the rules broken on that side,
    comma separated, empty when none), and for each ``cusum`` rule its sum after each point
    (``<id>_sum_high`` / ``<id>_sum_low``; a point not judged carries the sum on). Non-evaluable
    points break nothing.
    """
    z = np.asarray(z, dtype="float64")
    values = np.asarray(values, dtype="float64")
    ok = np.asarray(evaluable, dtype=bool) & np.isfinite(z) & np.isfinite(values)
    index = np.flatnonzero(ok)
    out = pd.DataFrame(index=range(len(z)))
    for side, sign in SIDES:
        broken = [[] for _ in range(len(z))]
        for spec in rules:
            column = np.zeros(len(z), dtype=bool)
            if spec.kind == "cusum":
                hit, sums = _cusum(z[index], spec, sign)
                carried = np.full(len(z), np.nan)
                carried[index] = sums
                out[f"{spec.id}_sum_{side}"] = pd.Series(carried).ffill().fillna(0.0).to_numpy()
            elif spec.kind == "zone":
                hit = _zone(z[index], spec, sign)
            else:
                hit = _trend(values[index], spec, sign)
            if len(index):
                column[index] = hit
            out[f"{spec.id}_{side}"] = column
            for i in np.flatnonzero(column):
                broken[i].append(spec.id)
        out[f"rules_{side}"] = [", ".join(b) for b in broken]
    return out


def signal_onsets(flagged: Sequence[bool], evaluable: Sequence[bool]) -> np.ndarray:
    """Points where a signal starts: flagged, and the evaluable point before was not flagged."""
    flagged = np.asarray(flagged, dtype=bool)
    ok = np.asarray(evaluable, dtype=bool)
    onsets = np.zeros(len(flagged), dtype=bool)
    previous = False
    for i in range(len(flagged)):
        if not ok[i]:
            continue
        onsets[i] = flagged[i] and not previous
        previous = bool(flagged[i])
    return onsets
