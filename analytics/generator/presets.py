"""Size presets of the synthetic portfolio."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """How big a generated portfolio is.

    ``screened_subjects`` and ``study_sites`` are targets the generator scales study sizes to; the
    realized counts vary with the seed because enrollment is a random process.
    """

    name: str
    sponsors: int
    studies: int
    study_sites: int
    screened_subjects: int
    historical_trials: int
    as_of: dt.date = dt.date(2026, 11, 1)
    first_fpi: dt.date = dt.date(2020, 6, 1)
    anomaly_share: float = 0.18  # share of study-sites that get one labelled anomaly
    last_fpi_offset_days: int = 120  # planned first patients in fall between first_fpi and as_of + this
    data_errors_per_check: int = 0  # labelled data errors of each edit check's kind (generator/data_errors.py)
    shift_share: float = 0.2  # share of studies with a deviation-rate shift, and of sponsors with a CAPA-closure shift
    prescreen_per_site: float = 0.0  # mean patients in each site's pre-screening pool (0: no pools)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", sponsors=2, studies=4, study_sites=60, screened_subjects=900, historical_trials=400,
                   prescreen_per_site=25),
    "demo": Preset("demo", sponsors=3, studies=12, study_sites=300, screened_subjects=6_000,
                   historical_trials=3_000, data_errors_per_check=4, prescreen_per_site=40),
    "large": Preset("large", sponsors=25, studies=300, study_sites=8_000, screened_subjects=100_000,
                    historical_trials=20_000, data_errors_per_check=40, prescreen_per_site=10),
    # Evaluation of the RBM engine (analytics.evaluation.rbm): many mid-size studies, more anomalies.
    "eval": Preset("eval", sponsors=4, studies=40, study_sites=1_200, screened_subjects=24_000,
                   historical_trials=50, anomaly_share=0.25),
    # Back-test of the enrollment forecasts (analytics.evaluation.enrollment): every study has finished
    # enrolling by the as-of date, so each can be cut at any share of its target and the rest is known.
    "enrollment": Preset("enrollment", sponsors=4, studies=40, study_sites=1_200, screened_subjects=20_000,
                         historical_trials=50, first_fpi=dt.date(2011, 1, 1), last_fpi_offset_days=-8 * 365),
    # Evaluation of the CAPA trends (analytics.evaluation.capa): larger studies started years before the
    # as-of date, so each control chart has a long stable stretch, and half of them an injected shift.
    "capa": Preset("capa", sponsors=4, studies=20, study_sites=2_000, screened_subjects=36_000,
                   historical_trials=50, first_fpi=dt.date(2020, 6, 1), last_fpi_offset_days=-540, shift_share=0.5),
}
