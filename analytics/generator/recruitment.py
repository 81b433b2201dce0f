"""Writes each generated study's eligibility criteria and its sites' pre-screening pools into the warehouse.

Each study draws from its own stream (``[seed, 100 + study index, 17]``), apart from the streams of
the rest of the study's data, so adding pools left every other generated table as it was. The
protocol text goes to ``main.study_eligibility``, the pools to ``main.prescreen_*``, and the truth
(each criterion's structure, each patient's status on each criterion) to ``truth.*``.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from analytics.generator.columns import insert
from analytics.generator.plan import PortfolioPlan
from analytics.generator.prescreening import simulate_pool
from analytics.generator.protocols import make_protocol
from analytics.generator.reference import CONDITION_POPULATION, HEALTHY_VOLUNTEERS

RECRUITMENT_STREAM = 17


def _arrow(frame) -> dict[str, pa.Array]:
    return {c: pa.array(frame[c].tolist() if frame[c].dtype == object else frame[c]) for c in frame.columns}


def write_prescreening(con, plan: PortfolioPlan, study: int, seed: int, study_id: str, site_ids: list[str],
                       per_site: float) -> None:
    """Criteria for study ``study`` and a pool of about ``per_site`` patients at each of its sites."""
    rng = np.random.default_rng([seed, 100 + study, RECRUITMENT_STREAM])
    indication, phase = plan.study_indication[study], plan.study_phase[study]
    protocol = make_protocol(rng, indication, phase)
    insert(con, "main.study_eligibility", {
        "study_id": pa.array([study_id]), "criteria_text": pa.array([protocol.text]),
        "min_age_years": pa.array([protocol.min_age], type=pa.float64()),
        "max_age_years": pa.array([protocol.max_age], type=pa.float64()),
        "sex": pa.array([protocol.sex]), "source": pa.array(["generator"]),
    })
    insert(con, "truth.eligibility_truth", {
        "study_id": pa.array([study_id] * len(protocol.criteria)),
        "number": pa.array([c.truth.number for c in protocol.criteria], type=pa.int32()),
        "structure": pa.array([json.dumps(c.truth.to_dict(), sort_keys=True) for c in protocol.criteria]),
    })
    if per_site <= 0 or not site_ids:
        return
    population = CONDITION_POPULATION.get(indication, HEALTHY_VOLUNTEERS)
    sizes = rng.poisson(per_site, len(site_ids))
    screening = plan.as_of_day - rng.integers(0, 30, len(site_ids))
    pool = simulate_pool(rng, protocol, study_id, site_ids, sizes, screening, population.female_share,
                         population.age_mean, population.age_sd)
    patients = pool.patients.assign(source="synthetic")
    insert(con, "main.prescreen_patients", _arrow(patients))
    for table, frame in (("prescreen_conditions", pool.conditions), ("prescreen_observations", pool.observations),
                         ("prescreen_medications", pool.medications)):
        if len(frame):
            site_of = dict(zip(patients["patient_id"], patients["study_site_id"]))
            frame = frame.assign(study_id=study_id, study_site_id=frame["patient_id"].map(site_of))
            insert(con, f"main.{table}", _arrow(frame))
    insert(con, "truth.prescreen_truth", _arrow(pool.truth_frame(protocol.criteria)))
