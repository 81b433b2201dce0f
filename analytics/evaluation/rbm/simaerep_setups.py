"""simaerep's public simulation set-ups, reimplemented from their description.

* ``sim_test_data_study``: patients spread evenly over sites; each patient's maximum visit is
  Normal(20, 4) rounded; events at visit v are Poisson with a per-visit rate (default the
  front-loaded ``dgamma(seq(1, 20, 0.5), shape = 5, rate = 2) * 5 + 0.1``); outlier sites have
  their rate multiplied by ``1 - ur_rate``.
* the usability grid: 1,000 patients at 100 sites, a constant rate per visit, a share of sites
  under-reporting at a given rate, flags at the methods' defaults (simaerep: probability >= 0.95).
* a stand-in for the performance article's (non-public) portfolio: several studies of 20-150 sites
  with 5-30 patients per site on average (uneven, Gamma-Poisson), visit-varying rates scaled per
  study, patients enrolled over a year and the study cut at different stages, so some patients are
  still early in their visits.

Visits are 28 days apart for the engine, which sees days on treatment: visit v covers days
``[28 (v - 1), 28 v)`` and an event at visit v falls on a random day of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analytics.evaluation.rbm.portfolio import AEData, Events
from analytics.kri.specs import stratum_columns

VISIT_DAYS = 28
MAX_VISIT_MEAN, MAX_VISIT_SD = 20.0, 4.0
USABILITY_PATIENTS, USABILITY_SITES = 1000, 100
# The published grid is 10 x 10 x 10; the evaluation runs every third point of each axis (4 x 4 x 4).
USABILITY_AE_PER_VISIT = tuple(np.round(np.linspace(0.05, 2, 10)[[0, 3, 6, 9]], 4))
USABILITY_SHARE_UNDER = tuple(np.round(np.linspace(0.05, 0.75, 10)[[0, 3, 6, 9]], 4))
USABILITY_UR_RATE = tuple(np.round(np.linspace(0.05, 1.0, 10)[[0, 3, 6, 9]], 4))
PORTFOLIO_STUDIES = 8
PORTFOLIO_SITES = (20, 150)
PORTFOLIO_PATIENTS_PER_SITE = (5.0, 30.0)
PORTFOLIO_RATE_FACTOR = (0.1, 1.0)  # log-uniform scale of the default per-visit rates, per study
PORTFOLIO_STAGE = (0.5, 2.0)  # cut time as a multiple of the one-year enrollment period


def default_event_rates(n_visits: int) -> np.ndarray:
    """simaerep's default per-visit rates for visits 1..n (the last rate carried on)."""
    x = np.arange(1, 20.0001, 0.5)
    rates = stats.gamma.pdf(x, a=5, scale=0.5) * 5 + 0.1
    return np.concatenate([rates, np.full(max(n_visits - len(rates), 0), rates[-1])])[:n_visits]


def _assemble(study: np.ndarray, site: np.ndarray, visits: np.ndarray, rate_per_visit: np.ndarray,
              rng: np.random.Generator) -> AEData:
    """Patients and events as an :class:`AEData` (``rate_per_visit``: patients x visits, zero past a patient's visits)."""
    n = len(study)
    counts = rng.poisson(rate_per_visit)
    patient, visit0 = np.nonzero(counts)
    repeat = counts[patient, visit0]
    patient, visit0 = np.repeat(patient, repeat), np.repeat(visit0, repeat)
    day = visit0 * VISIT_DAYS + rng.integers(0, VISIT_DAYS, len(patient))
    exposure = visits * VISIT_DAYS
    patients = pd.DataFrame({
        "study_id": study, "study_site_id": site, "subject_id": [f"P{i:06d}" for i in range(n)], "snap": 0,
        "randomized": 1.0, "days_on_treatment": exposure.astype("float64"), "country_code": "XX",
        "visits": visits.astype("int64"), "days_since_randomization": exposure.astype("float64"),
    })
    for column in stratum_columns("ae") + stratum_columns("sae"):
        patients[column] = 0.0
    events = Events(patient.astype("int64"), day.astype("float64"), np.zeros(len(patient), dtype=bool),
                    (day - exposure[patient]).astype("float64"))
    visit_patient = np.repeat(np.arange(n), visits)
    visit_number = np.concatenate([np.arange(1, m + 1) for m in visits]) if n else np.zeros(0, dtype="int64")
    visit_day = visit_number * VISIT_DAYS - 1.0
    return AEData(patients, events, visit_patient, visit_number.astype("int64"), visit_day)


def _max_visits(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.maximum(np.round(rng.normal(MAX_VISIT_MEAN, MAX_VISIT_SD, n)), 1).astype("int64")


def usability_study(ae_per_visit: float, share_under: float, ur_rate: float,
                    rng: np.random.Generator, key: str) -> tuple[AEData, pd.Series]:
    """One study of the usability grid and its under-reporting sites (index: study_site_id, value: ur_rate)."""
    site_index = np.arange(USABILITY_PATIENTS) * USABILITY_SITES // USABILITY_PATIENTS
    visits = _max_visits(rng, USABILITY_PATIENTS)
    outlier = site_index < int(np.floor(share_under * USABILITY_SITES))
    columns = np.arange(1, visits.max() + 1)
    rate = np.where(columns[None, :] <= visits[:, None], ae_per_visit, 0.0) * np.where(outlier, 1 - ur_rate, 1.0)[:, None]
    sites = np.array([f"{key}-S{i:03d}" for i in site_index])
    data = _assemble(np.full(USABILITY_PATIENTS, key), sites, visits, rate, rng)
    under = pd.Series(ur_rate, index=pd.unique(sites[outlier]), dtype="float64")
    return data, under


def portfolio_standin(rng: np.random.Generator, key: str) -> AEData:
    """Clean studies of the performance-article stand-in (under-reporting is injected afterwards)."""
    studies, sites, visits_all, rates = [], [], [], []
    for s in range(PORTFOLIO_STUDIES):
        n_sites = int(rng.integers(PORTFOLIO_SITES[0], PORTFOLIO_SITES[1] + 1))
        mean = rng.uniform(*PORTFOLIO_PATIENTS_PER_SITE)
        sizes = 1 + rng.poisson(rng.gamma(2.0, (mean - 1) / 2.0, n_sites))
        n = int(sizes.sum())
        enrolled = rng.uniform(0, 365, n)
        cut = 365 * rng.uniform(*PORTFOLIO_STAGE)
        so_far = np.minimum(_max_visits(rng, n), np.floor((cut - enrolled) / VISIT_DAYS)).astype("int64")
        keep = so_far >= 1
        factor = np.exp(rng.uniform(*np.log(PORTFOLIO_RATE_FACTOR)))
        site_names = np.repeat([f"{key}-T{s}-S{i:03d}" for i in range(n_sites)], sizes)
        studies.append(np.full(int(keep.sum()), f"{key}-T{s}"))
        sites.append(site_names[keep])
        visits_all.append(so_far[keep])
        rates.append(factor)
    visits = np.concatenate(visits_all)
    study_of = np.concatenate(studies)
    max_v = int(visits.max())
    curve = default_event_rates(max_v)
    factor_of = np.concatenate([np.full(len(v), f) for v, f in zip(visits_all, rates)])
    columns = np.arange(1, max_v + 1)
    rate = np.where(columns[None, :] <= visits[:, None], curve[None, :], 0.0) * factor_of[:, None]
    return _assemble(study_of, np.concatenate(sites), visits, rate, rng)
