"""Enrollment, subjects and visit schedules of one study.

Sites screen subjects as non-homogeneous Poisson processes from their activation date: a Gamma-
distributed base rate (drawn in the plan) times a ramp-up over the first weeks, a study-level drift
over the site's open time, calendar seasonality (holidays) and a study-level random walk of the log
rate (competing trials, amendments, drug supply). Screening stops when the study has randomized its
target. Randomized subjects follow the protocol visit schedule until completion, discontinuation or
the as-of date. Demographics vary by condition, country and site (see ``demographics.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.generator import reference as ref
from analytics.generator.columns import choice_codes, group_ranges, lognormal_days
from analytics.generator.demographics import simulate_demographics
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
    race: np.ndarray  # code into schema.RACES
    ethnicity: np.ndarray  # code into schema.ETHNICITIES
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


def screening_intensity(plan: PortfolioPlan, study: int, sites: np.ndarray, first_day: int, days: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Expected screenings per site and day (sites x days from ``first_day``), zero before activation."""
    reality = ref.ENROLLMENT_REALITY
    day = first_day + np.arange(days)
    activation = plan.ss_activation[sites]
    open_days = day[None, :] - np.nan_to_num(activation, nan=np.inf)[:, None]
    is_open = open_days >= 0
    open_days = np.where(is_open, open_days, 0.0)
    ramp = 1 - 0.5 * np.exp(-open_days / reality["ramp_days"])
    drift = np.exp(plan.study_trend[study] * open_days / 365.25)
    month_index = day.astype("datetime64[D]").astype("datetime64[M]")  # day numbers count from 1970-01-01
    calendar_month = month_index.astype("int64") % 12
    season = np.asarray(ref.SEASONALITY)[calendar_month]
    months_since_start = month_index.astype("int64") - month_index[0].astype("int64")
    walk = np.cumsum(reality["walk_sd_per_month"] * rng.standard_normal(int(months_since_start[-1]) + 1))
    calendar = season * np.exp(walk[months_since_start])
    rate = plan.ss_rate[sites] / DAYS_PER_MONTH
    intensity = rate[:, None] * ramp * drift * calendar[None, :] * is_open
    # An enrollment stall: the site stops screening after a share of its window up to the as-of date.
    stalled = plan.ss_anomaly[sites] == STALL
    if stalled.any():
        stop = activation + plan.ss_anomaly_magnitude[sites] * (plan.as_of_day - activation)
        intensity[stalled] *= day[None, :] < stop[stalled, None]
    return intensity


def simulate_screenings(intensity: np.ndarray, first_day: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(site, day) of every screening of a non-homogeneous Poisson process per site, by inversion."""
    cumulative = np.cumsum(intensity, axis=1)
    totals = cumulative[:, -1] if cumulative.shape[1] else np.zeros(len(intensity))
    counts = rng.poisson(totals)
    site, _ = group_ranges(counts)
    # Rows offset by the totals before them make one non-decreasing array to search.
    offsets = np.cumsum(totals) - totals
    flat = (cumulative + offsets[:, None]).ravel()
    position = np.searchsorted(flat, offsets[site] + rng.uniform(size=len(site)) * totals[site])
    day_index = position - site * intensity.shape[1]
    return site, (first_day + day_index).astype("float64")


def simulate_subjects(plan: PortfolioPlan, study: int, sites: np.ndarray, rng: np.random.Generator) -> StudySubjects:
    """Screen and randomize subjects at the study's ``sites`` (global study-site indices)."""
    as_of = plan.as_of_day
    activation = plan.ss_activation[sites]
    if np.isnan(activation).all():
        site, screening = np.zeros(0, dtype="int64"), np.zeros(0)
    else:
        first_day = int(np.floor(np.nanmin(activation)))
        intensity = screening_intensity(plan, study, sites, first_day, as_of - first_day + 1, rng)
        site, screening = simulate_screenings(intensity, first_day, rng)
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
        chosen = rng.uniform(size=len(members)) < share
        if len(members) and not chosen.any():
            chosen[-1] = True  # a site that fabricates does so at least once
        fabricated[members[chosen]] = True

    demographics = simulate_demographics(plan, study, sites, site, rng)
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
        sex=demographics.sex,
        age=demographics.age,
        race=demographics.race,
        ethnicity=demographics.ethnicity,
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
    # Visits keep to their protocol window and end with the subject's participation: a visit outside
    # either is a data error, which only the labelled injection (generator/data_errors.py) writes.
    jitter = np.clip(jitter, -window_days, window_days)
    actual = np.where(missed, np.nan, scheduled + jitter)
    actual = np.minimum(actual, as_of)
    left = subjects.discontinuation[subject]
    actual = np.where(~np.isnan(left) & (actual > left), left, actual)

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
