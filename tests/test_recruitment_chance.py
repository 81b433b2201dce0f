"""The ranking's chance that an unknown criterion passes: learnt from the pool's own series of results,
never a decision (the criterion stays unknown), and calibrated on generated pools."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from analytics.generator.prescreening import simulate_pool
from analytics.generator.protocols import make_protocol
from analytics.recruitment import funnel
from analytics.recruitment.chance import MIN_PAIRS
from analytics.recruitment.matching import R, UNKNOWN, match
from analytics.recruitment.parser import parse_criteria
from analytics.recruitment.pool import Pool

SCREENING = pd.Timestamp("2026-11-01")
HBA1C = "4548-4"
CRITERIA = parse_criteria("Inclusion Criteria:\n* HbA1c between 7.0% and 10.0% within 3 months before screening")


def series_pool(slope: float, rng: np.random.Generator, pairs: int = 200) -> Pool:
    """``pairs`` patients with a recent HbA1c and one a year older (recent = 8.2 + slope (old - 8.2) + noise), and
    two patients with only a result 8 months old: 7.5% (in range) and 12.5% (far above)."""
    old = rng.normal(8.2, 1.5, pairs)
    recent = 8.2 + slope * (old - 8.2) + rng.normal(0, 1.5 * np.sqrt(max(1 - slope ** 2, 0.05)), pairs)
    rows = []
    for i in range(pairs):
        rows.append((f"P{i}", HBA1C, "LOINC", "HbA1c", round(recent[i], 1), "%", None, None, SCREENING - pd.Timedelta(days=30)))
        rows.append((f"P{i}", HBA1C, "LOINC", "HbA1c", round(old[i], 1), "%", None, None, SCREENING - pd.Timedelta(days=395)))
    rows += [("LOW", HBA1C, "LOINC", "HbA1c", 7.5, "%", None, None, SCREENING - pd.Timedelta(days=240)),
             ("HIGH", HBA1C, "LOINC", "HbA1c", 12.5, "%", None, None, SCREENING - pd.Timedelta(days=240))]
    people = pd.DataFrame({"patient_id": [f"P{i}" for i in range(pairs)] + ["LOW", "HIGH", "NONE"], "study_id": "ST",
                           "study_site_id": "S1", "sex": "F", "age": 60, "screening_date": SCREENING})
    observations = pd.DataFrame(rows, columns=["patient_id", "code", "code_system", "display", "value", "unit",
                                               "value_text", "ref_high", "effective_date"])
    observations["record_id"] = [f"O{i}" for i in range(len(observations))]
    return Pool(people, observations=observations)


def test_an_old_result_ranks_but_never_decides() -> None:
    result = match(series_pool(0.8, np.random.default_rng(1)), CRITERIA)
    at = {p: i for i, p in enumerate(result.pool.patients["patient_id"])}
    low, high, none = at["LOW"], at["HIGH"], at["NONE"]
    # All three stay unknown, with the old result as evidence (or none).
    assert result.passes[[low, high, none], 0].tolist() == [UNKNOWN] * 3
    assert result.reason[low, 0] == R["result outside the window"] and result.value[low, 0] == 7.5
    assert result.reason[none, 0] == R["no result"]
    # The pool's series say an old 7.5% is likely still in range, an old 12.5% unlikely; no result: the base rate.
    recent_in_range = ((result.passes[: len(at) - 3, 0]) == 1).mean()
    assert result.chance[low, 0] > recent_in_range > result.chance[high, 0]
    assert result.chance[high, 0] < 0.25 and abs(result.chance[none, 0] - recent_in_range) < 1e-9
    ranked = funnel.patient_summary(result)["patient_id"].tolist()
    assert ranked.index("LOW") < ranked.index("NONE") < ranked.index("HIGH")


def test_the_chance_comes_from_the_pool_not_from_an_assumed_course() -> None:
    # A pool whose old results say nothing about the recent ones: an old value no longer moves the chance.
    result = match(series_pool(0.0, np.random.default_rng(2), pairs=600), CRITERIA)
    at = {p: i for i, p in enumerate(result.pool.patients["patient_id"])}
    assert abs(result.chance[at["LOW"], 0] - result.chance[at["HIGH"], 0]) < 0.15
    # Too few pairs to learn from: the base rate for everyone left unknown.
    few = match(series_pool(0.8, np.random.default_rng(3), pairs=MIN_PAIRS - 1), CRITERIA)
    assert few.chance[-3, 0] == few.chance[-2, 0] == few.chance[-1, 0]


def test_on_generated_pools_the_chance_of_an_old_result_is_calibrated_and_discriminates() -> None:
    truth, chance, listed = [], [], []
    for k, indication in enumerate(["Type 2 diabetes", "Breast cancer", "NASH", "Heart failure"]):
        rng = np.random.default_rng([7, k])  # not an evaluation seed
        protocol = make_protocol(rng, indication, "Phase 3")
        simulated = simulate_pool(rng, protocol, "ST", ["S1", "S2"], np.array([300, 300]), np.array([20_758, 20_758]),
                                  0.5, 60, 12)
        result = match(Pool(simulated.patients, simulated.conditions, simulated.observations, simulated.medications),
                       parse_criteria(protocol.text))
        old = (result.passes == UNKNOWN) & (result.reason == R["result outside the window"])
        truth += simulated.passes[old].tolist()
        chance += result.chance[old].tolist()
        decided = result.passes != UNKNOWN
        assert ((result.passes == 1) == simulated.passes)[decided].all()  # the chance changed no decision
        listed.append(np.isfinite(result.chance[result.from_records[None, :].repeat(len(result.pool), 0)]).all())
    truth, chance = np.array(truth), np.array(chance)
    assert len(truth) > 200 and all(listed)
    assert roc_auc_score(truth, chance) > 0.75
    assert abs(chance.mean() - truth.mean()) < 0.05
