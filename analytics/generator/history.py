"""Historical trials for feasibility benchmarks, shaped like ClinicalTrials.gov records.

Enrollment, duration and site counts are log-normal around per-phase medians that follow the shared
ClinicalTrials.gov exports (interventional studies, start to completion date: median enrollment
48/104/378/292 and about 26/35/38/37.5 months for phases 1-4; ``tests/test_generator.py`` checks it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from analytics.generator import reference as ref
from analytics.generator.columns import choice_codes, date_column, day_number
from analytics.generator.plan import DAYS_PER_MONTH
from analytics.generator.presets import Preset

STATUS_DONE = ("COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "TERMINATED", "WITHDRAWN")
STATUS_RUNNING = ("RECRUITING", "ACTIVE_NOT_RECRUITING", "NOT_YET_RECRUITING")


def historical_trials(preset: Preset, seed: int) -> dict[str, pa.Array]:
    """Columns of ``main.historical_trials`` for ``preset``."""
    rng = np.random.default_rng([seed, 1])
    n = preset.historical_trials
    phase = choice_codes(rng, [p[1] for p in ref.HISTORICAL_PHASES], n)
    median_enroll, median_months, median_sites = (np.array([p[i] for p in ref.HISTORICAL_PHASES])[phase] for i in (2, 3, 4))
    enrollment = np.maximum(np.round(median_enroll * np.exp(0.95 * rng.standard_normal(n))), 1).astype("int64")
    months = np.maximum(median_months * np.exp(ref.HISTORICAL_MONTHS_SIGMA * rng.standard_normal(n)), 1.0)
    n_sites = np.maximum(np.round(median_sites * np.exp(1.0 * rng.standard_normal(n))), 1).astype("int64")
    start = rng.uniform(day_number(preset.as_of) - 20 * 365, day_number(preset.as_of) - 30, n)
    completion = start + months * DAYS_PER_MONTH
    month_precision_start = rng.uniform(size=n) < 0.4
    month_precision_end = rng.uniform(size=n) < 0.4
    # Month-precision dates are stored as the first of the month, with the precision recorded.
    ta = choice_codes(rng, [t.weight for t in ref.THERAPEUTIC_AREAS], n)
    indications = [ref.THERAPEUTIC_AREAS[t].indications[int(rng.integers(len(ref.THERAPEUTIC_AREAS[t].indications)))] for t in ta]
    done = completion < day_number(preset.as_of)
    status = np.where(done, np.array(STATUS_DONE)[rng.integers(0, len(STATUS_DONE), n)],
                      np.array(STATUS_RUNNING)[rng.integers(0, len(STATUS_RUNNING), n)])
    country_weights = np.array([c[3] for c in ref.COUNTRIES])
    n_countries = np.minimum(np.maximum(1, np.round(np.sqrt(n_sites) * rng.uniform(0.5, 1.2, n))), len(ref.COUNTRIES)).astype(int)
    countries = [
        "|".join(ref.COUNTRIES[c][1] for c in rng.choice(len(ref.COUNTRIES), size=k, replace=False, p=country_weights / country_weights.sum()))
        for k in n_countries
    ]
    phase_label = [ref.HISTORICAL_PHASES[p][0] for p in phase]
    titles = [f"A {p.replace('|', '/').title().replace('Phase', 'Phase ')} Study in {ind}" for p, ind in zip(phase_label, indications)]
    return {
        "nct_id": pa.array([f"NCT9{i:07d}" for i in rng.permutation(n)]),
        "title": pa.array(titles),
        "status": pa.array(status.tolist()),
        "phase": pa.array(phase_label),
        "conditions": pa.array(indications),
        "therapeutic_area": pa.array([ref.THERAPEUTIC_AREAS[t].name for t in ta]),
        "enrollment": pa.array(enrollment),
        "start_date": date_column(_first_of_month(start, month_precision_start)),
        "start_date_precision": pa.array(np.where(month_precision_start, "month", "day").tolist()),
        "completion_date": date_column(_first_of_month(completion, month_precision_end)),
        "completion_date_precision": pa.array(np.where(month_precision_end, "month", "day").tolist()),
        "n_sites": pa.array(n_sites),
        "countries": pa.array(countries),
        "data_source": pa.array(["synthetic"] * n),
    }


def _first_of_month(days: np.ndarray, month_precision: np.ndarray) -> np.ndarray:
    d = np.floor(days).astype("int64").astype("datetime64[D]")
    first = d.astype("datetime64[M]").astype("datetime64[D]")
    return np.where(month_precision, first.astype("int64"), d.astype("int64")).astype("float64")
