"""Enrollment, subjects and visit schedules of one study.

Sites screen subjects as Poisson processes from their activation date with Gamma-distributed rates
(drawn in the plan); screening stops when the study has randomized its target. Randomized subjects
follow the protocol visit schedule until completion, discontinuation or the as-of date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.generator import reference as ref
from analytics.generator.columns import choice_codes, group_ranges, lognormal_days
from analytics.generator.plan import ANOMALY_TYPES, DAYS_PER_MONTH, PortfolioPlan

STALL = ANOMALY_TYPES.index("enrollment_stall")
FABRICATED = ANOMALY_TYPES.index("fabricated_data")
SLOW_ENTRY = ANOMALY_TYPES.index("slow_data_entry")
DISCONTINUATION_BY_END = 0.18  # share of randomized subjects expected to discontinue early


@dataclass
class StudySubjects:
    """Subjects of one study; dates are float days since epoch (NaN = none)."""

    site: np.ndarray  # local site index within the study
    screening: np.ndarray
    consent: np.ndarray
    randomization: np.ndarray
    screen_failed: np.ndarray
    sf_reason: np.ndarray  # code into reference.SCREEN_FAILURE_REASONS, -1 none
    discontinuation: np.ndarray
    disc_reason: np.ndarray
    completed: np.ndarray
    exposure_end: np.ndarray  # last day on study known at the as-of date (NaN if never randomized)
    sex: np.ndarray  # 0 F, 1 M
    age: np.ndarray
    fabricated: np.ndarray  # bool: subject's data fabricated (anomaly)

    def __len__(self) -> int:
        return len(self.site)


@dataclass
class StudyVisits:
    """Visits of one study (screening visit plus treatment visits)."""

    subject: np.ndarray  # local subject index
    number: np.ndarray  # 0 = screening, 1..V treatment visits
    scheduled: np.ndarray
    window: np.ndarray
    actual: np.ndarray  # NaN = missed
    entry: np.ndarray  # NaN = not yet entered at the as-of date

    def __len__(self) -> int:
        return len(self.subject)


def simulate_subjects(plan: PortfolioPlan, study: int, sites: np.ndarray, rng: np.random.Generator) -> StudySubjects:
    """Screen and randomize subjects at the study's ``sites`` (global study-site indices)."""
    as_of = plan.as_of_day
    activation = plan.ss_activation[sites]
    window = np.where(np.isnan(activation), 0.0, as_of - activation)
    stalled = plan.ss_anomaly[sites] == STALL
    window[stalled] *= plan.ss_anomaly_magnitude[sites][stalled]
    counts = rng.poisson(plan.ss_rate[sites] * np.maximum(window, 0) / DAYS_PER_MONTH)
    site, _ = group_ranges(counts)
    screening = np.floor(np.nan_to_num(activation)[site] + rng.uniform(size=len(site)) * window[site])
    order = np.argsort(screening, kind="stable")
    site, screening = site[order], screening[order]

    # Screen-failure propensity varies by site (logit-normal around the study's rate).
    base = plan.study_sf_rate[study]
    site_logit = np.log(base / (1 - base)) + 0.45 * rng.standard_normal(len(sites))
    failed = rng.uniform(size=len(site)) < 1 / (1 + np.exp(-site_logit[site]))
    decision = screening + rng.integers(7, 29, len(site))
    # Screening closes once the target is randomized.
    randomized_before = np.cumsum(~failed) - (~failed)
    keep = randomized_before < plan.study_target[study]
    site, screening, failed, decision = site[keep], screening[keep], failed[keep], decision[keep]
    n = len(site)
    decided = decision <= as_of
    randomization = np.where(~failed & decided, decision, np.nan)
    screen_failed = failed & decided
    sf_reason = np.where(screen_failed, choice_codes(rng, [w for _, w in ref.SCREEN_FAILURE_REASONS], n), -1)

    duration = float(plan.study_visits[study] * plan.study_interval[study])
    hazard = -np.log(1 - DISCONTINUATION_BY_END) / duration
    site_hazard = hazard * np.exp(0.35 * rng.standard_normal(len(sites)))
    time_to_disc = rng.exponential(1 / site_hazard[site])
    stops_early = time_to_disc < duration
    discontinuation = randomization + np.where(stops_early, np.floor(time_to_disc), np.nan)
    discontinuation[discontinuation > as_of] = np.nan
    completed = (randomization + duration <= as_of) & np.isnan(discontinuation) & ~stops_early
    exposure_end = np.minimum(randomization + np.minimum(time_to_disc, duration), as_of)
    disc_reason = np.where(~np.isnan(discontinuation), choice_codes(rng, [w for _, w in ref.DISCONTINUATION_REASONS], n), -1)

    fabricated = np.zeros(n, dtype=bool)
    fab_sites = np.flatnonzero(plan.ss_anomaly[sites] == FABRICATED)
    for local in fab_sites:
        members = np.flatnonzero((site == local) & ~np.isnan(randomization))
        share = plan.ss_anomaly_magnitude[sites[local]]
        fabricated[members[rng.uniform(size=len(members)) < share]] = True

    age_center = 38.0 if plan.study_phase[study] == "Phase 1" else 60.0
    return StudySubjects(
        site=site,
        screening=screening,
        consent=screening - rng.integers(0, 4, n),
        randomization=randomization,
        screen_failed=screen_failed,
        sf_reason=sf_reason,
        discontinuation=discontinuation,
        disc_reason=disc_reason,
        completed=completed,
        exposure_end=exposure_end,
        sex=(rng.uniform(size=n) < 0.5).astype("int64"),
        age=np.clip(np.round(rng.normal(age_center, 11, n)), 18, 90).astype("int64"),
        fabricated=fabricated,
    )


def site_entry_lag_median(plan: PortfolioPlan, sites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Median days from visit to eCRF entry per site (better institutions are faster)."""
    quality = plan.institution_quality[plan.ss_institution[sites]]
    median = 3.0 * np.exp(-0.25 * quality + 0.35 * rng.standard_normal(len(sites)))
    slow = plan.ss_anomaly[sites] == SLOW_ENTRY
    median[slow] *= plan.ss_anomaly_magnitude[sites][slow]
    return median


def simulate_visits(
    plan: PortfolioPlan, study: int, sites: np.ndarray, subjects: StudySubjects, rng: np.random.Generator
) -> StudyVisits:
    """The screening visit of every subject and the treatment visits of randomized subjects."""
    as_of = plan.as_of_day
    interval = int(plan.study_interval[study])
    window_days = 3 if interval <= 14 else 7
    randomized = ~np.isnan(subjects.randomization)
    planned = int(plan.study_visits[study])
    span = np.where(randomized, subjects.exposure_end - subjects.randomization, -1)
    n_treatment = np.where(randomized, np.minimum(np.floor(span / interval) + 1, planned), 0).astype("int64")
    n_visits = n_treatment + 1
    subject, rank = group_ranges(n_visits)
    number = rank  # 0 = screening
    scheduled = np.where(
        number == 0, subjects.screening[subject], subjects.randomization[subject] + (number - 1) * interval
    )
    n = len(subject)
    fabricated = subjects.fabricated[subject]
    missed_rate = 0.03 * np.exp(0.5 * rng.standard_normal(len(sites)))[subjects.site[subject]]
    missed = (number > 0) & (rng.uniform(size=n) < missed_rate) & ~fabricated
    jitter = np.round(rng.normal(0, window_days / 2.5, n))
    out_of_window = rng.uniform(size=n) < 0.02
    jitter[out_of_window] += np.sign(jitter[out_of_window] + 0.5) * rng.integers(window_days + 1, 3 * window_days, out_of_window.sum())
    jitter[(number == 0) | fabricated] = 0  # fabricated visits are implausibly punctual
    actual = np.where(missed, np.nan, scheduled + jitter)
    actual = np.minimum(actual, as_of)

    lag_median = site_entry_lag_median(plan, sites, rng)[subjects.site[subject]]
    lag = np.floor(lognormal_days(rng, lag_median, 0.9, n))
    entry = actual + lag
    entry[entry > as_of] = np.nan
    return StudyVisits(
        subject=subject,
        number=number,
        scheduled=scheduled,
        window=np.full(n, window_days),
        actual=actual,
        entry=entry,
    )
