"""Clinical data of one study: adverse events, protocol deviations, lab and vital-sign results.

* AEs: a front-loaded hazard (high in the first weeks on study, then a plateau) scaled by a
  Gamma-distributed subject frailty and mild site heterogeneity; onset times by inverting the
  cumulative hazard; skewed reporting lags.
* Lab and vital signs: per-test distributions with a between-subject random effect (within-subject
  correlation over visits), a few subjects with organ-toxicity shifts, CTCAE-style grades.
* Injected anomalies change the generating process for labelled sites only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.generator import reference as ref
from analytics.generator.columns import choice_codes, lognormal_days
from analytics.generator.enrollment import StudySubjects, StudyVisits
from analytics.generator.plan import ANOMALY_TYPES, DAYS_PER_MONTH, PortfolioPlan

AE_UNDER = ANOMALY_TYPES.index("ae_under_reporting")
AE_OVER = ANOMALY_TYPES.index("ae_over_reporting")
EXCESS_DEV = ANOMALY_TYPES.index("excess_important_deviations")
AE_EARLY_TAU = 45.0  # days: decay of the early AE hazard
AE_EARLY_EXCESS = 3.0  # early hazard is 1 + 3 = 4 times the plateau
DEVIATIONS_PER_SUBJECT_MONTH = 0.035
VITAL_ROUNDING_STEP = 5.0  # fabricated BP/pulse values favour terminal digits 0 and 5
FABRICATED_EFFECT_SHRINK = 0.25  # fabricated subjects' between-subject effects, as a share of the real ones


def ae_cumulative_hazard(t: np.ndarray) -> np.ndarray:
    """Unit cumulative AE hazard: equals 1 at one year on study, front-loaded."""
    raw = lambda x: AE_EARLY_EXCESS * AE_EARLY_TAU * (1 - np.exp(-x / AE_EARLY_TAU)) + x  # noqa: E731
    return raw(np.asarray(t, dtype="float64")) / raw(np.array(365.0))


@dataclass
class AdverseEvents:
    subject: np.ndarray
    term: np.ndarray
    serious: np.ndarray
    grade: np.ndarray
    onset: np.ndarray
    end: np.ndarray
    report: np.ndarray


def simulate_adverse_events(
    plan: PortfolioPlan, study: int, sites: np.ndarray, subjects: StudySubjects, rng: np.random.Generator
) -> AdverseEvents:
    as_of = plan.as_of_day
    randomized = ~np.isnan(subjects.randomization)
    exposure = np.where(randomized, subjects.exposure_end - subjects.randomization, 0.0)
    frailty = rng.gamma(2.0, 0.5, len(subjects))
    site_factor = np.exp(0.15 * rng.standard_normal(len(sites)))
    over = plan.ss_anomaly[sites] == AE_OVER
    site_factor[over] *= plan.ss_anomaly_magnitude[sites][over]
    mean = plan.study_ae_rate[study] * frailty * site_factor[subjects.site] * ae_cumulative_hazard(exposure)
    counts = rng.poisson(np.where(randomized, mean, 0.0))
    subject = np.repeat(np.arange(len(subjects)), counts)

    # Onset by inverse transform of the cumulative hazard on a daily grid.
    grid = np.arange(0, max(float(exposure.max(initial=0)), 1.0) + 2)
    cum = ae_cumulative_hazard(grid)
    u = rng.uniform(size=len(subject)) * ae_cumulative_hazard(exposure[subject])
    onset = subjects.randomization[subject] + np.floor(np.interp(u, cum, grid))

    n = len(subject)
    serious = rng.uniform(size=n) < plan.study_sae_share[study]
    grade = np.where(
        serious,
        rng.choice([3, 4, 5], size=n, p=[0.7, 0.25, 0.05]),
        rng.choice([1, 2, 3], size=n, p=[0.6, 0.33, 0.07]),
    )
    # A fatal AE would have to end the subject's visits, which are drawn before the AEs: the generator
    # writes none (grade 5 becomes 4), so a fatal event followed by visits is only an injected error.
    grade = np.minimum(grade, 4)
    term = choice_codes(rng, [w for _, _, w in ref.AE_TERMS], n)
    report_median = np.where(serious, 1.0, 4.0) * np.exp(0.3 * rng.standard_normal(len(sites)))[subjects.site[subject]]
    report = onset + np.floor(lognormal_days(rng, report_median, 1.0, n))
    end = onset + np.floor(lognormal_days(rng, 10.0, 0.9, n))
    end[end > as_of] = np.nan

    keep = report <= as_of  # not yet reported at the as-of date: the EDC does not know it
    under = plan.ss_anomaly[sites] == AE_UNDER
    removal = np.where(under, plan.ss_anomaly_magnitude[sites], 0.0)[subjects.site[subject]]
    keep &= rng.uniform(size=n) >= removal
    return AdverseEvents(subject[keep], term[keep], serious[keep], grade[keep], onset[keep], end[keep], report[keep])


def ae_outcomes(aes: AdverseEvents) -> list[str]:
    """SDTM AEOUT: resolved when the AE has an end date, else ongoing (no fatal AEs are generated)."""
    return np.where(np.isnan(aes.end), "NOT RECOVERED/NOT RESOLVED", "RECOVERED/RESOLVED").tolist()


def serious_criteria(aes: AdverseEvents, rng: np.random.Generator) -> list[str | None]:
    """The SAE details of each serious AE (criteria met, comma separated); None for non-serious AEs.

    Hospitalization is the usual criterion, grade 4 events are also life-threatening, and some are
    serious as medically important events only.
    """
    n = len(aes.subject)
    hospital = rng.uniform(size=n) < 0.8
    criteria: list[str | None] = []
    for serious, grade, hospitalized in zip(aes.serious, aes.grade, hospital):
        if not serious:
            criteria.append(None)
            continue
        met = (["life-threatening"] if grade >= 4 else []) + (["hospitalization"] if hospitalized else [])
        criteria.append(", ".join(met) if met else "medically important")
    return criteria


@dataclass
class Deviations:
    subject: np.ndarray
    category: np.ndarray
    important: np.ndarray
    description: list[str]
    occurred: np.ndarray
    reported: np.ndarray
    site_factor: np.ndarray | None = None  # per site: the rate multiplier the deviations were drawn with

    def __add__(self, other: "Deviations") -> "Deviations":
        return Deviations(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in
                            ("subject", "category", "important")), self.description + other.description,
                          np.concatenate([self.occurred, other.occurred]),
                          np.concatenate([self.reported, other.reported]), self.site_factor)


def _deviation_events(
    plan: PortfolioPlan, sites: np.ndarray, subjects: StudySubjects, rate: np.ndarray, start: np.ndarray,
    end: np.ndarray, rng: np.random.Generator,
) -> Deviations:
    """Deviations of each subject at ``rate`` per month between ``start`` and ``end`` (days)."""
    as_of = plan.as_of_day
    months = np.maximum(end - start, 0) / DAYS_PER_MONTH
    counts = rng.poisson(rate * months)
    subject = np.repeat(np.arange(len(subjects)), counts)
    n = len(subject)
    category = choice_codes(rng, [c[1] for c in ref.DEVIATION_CATEGORIES], n)
    p_important = np.array([c[2] for c in ref.DEVIATION_CATEGORIES])[category]
    boost = (plan.ss_anomaly[sites] == EXCESS_DEV)[subjects.site[subject]]
    p_important = np.where(boost, np.minimum(p_important * 2 + 0.2, 0.95), p_important)
    important = rng.uniform(size=n) < p_important
    occurred = np.floor(start[subject] + rng.uniform(size=n) * (end[subject] - start[subject]))
    reported = occurred + np.floor(lognormal_days(rng, 7.0, 0.8, n))
    keep = reported <= as_of
    template_pick = rng.integers(0, 1000, n)
    numbers = rng.integers(2, 15, size=(n, 3))
    description = []
    for i in np.flatnonzero(keep):
        templates = ref.DEVIATION_CATEGORIES[category[i]][3]
        description.append(
            templates[template_pick[i] % len(templates)].format(
                visit=numbers[i, 0], d=numbers[i, 1], n=numbers[i, 2], v=f"{numbers[i, 2] % 5 + 1}.0"
            )
        )
    return Deviations(subject[keep], category[keep], important[keep], description, occurred[keep], reported[keep])


def _deviation_window(plan: PortfolioPlan, subjects: StudySubjects) -> tuple[np.ndarray, np.ndarray]:
    """Each subject's time at risk of a deviation: consent to end of treatment (or of screening)."""
    end = np.where(np.isnan(subjects.exposure_end), np.minimum(subjects.screening + 21, plan.as_of_day),
                   subjects.exposure_end)
    return subjects.consent, end


def simulate_deviations(
    plan: PortfolioPlan, study: int, sites: np.ndarray, subjects: StudySubjects, rng: np.random.Generator
) -> Deviations:
    start, end = _deviation_window(plan, subjects)
    site_factor = np.exp(0.35 * rng.standard_normal(len(sites)))
    excess = plan.ss_anomaly[sites] == EXCESS_DEV
    site_factor[excess] *= plan.ss_anomaly_magnitude[sites][excess]
    events = _deviation_events(plan, sites, subjects, DEVIATIONS_PER_SUBJECT_MONTH * site_factor[subjects.site],
                               start, end, rng)
    events.site_factor = site_factor
    return events


def simulate_deviation_shift(
    plan: PortfolioPlan, study: int, sites: np.ndarray, subjects: StudySubjects, base: Deviations,
    rng: np.random.Generator,
) -> Deviations:
    """The extra deviations of a study whose rate shifts up from a day on (none without a shift).

    Drawn from their own stream on top of the base deviations, so a study's other data do not depend
    on whether it has a shift: after the shift day the rate is ``factor`` times the base rate.
    """
    day = plan.study_deviation_shift_day[study]
    factor = plan.study_deviation_shift_factor[study]
    start, end = _deviation_window(plan, subjects)
    if np.isnan(day) or factor <= 1 or base.site_factor is None:
        return _deviation_events(plan, sites, subjects, np.zeros(len(subjects)), start, start, rng)
    rate = DEVIATIONS_PER_SUBJECT_MONTH * (factor - 1) * base.site_factor[subjects.site]
    return _deviation_events(plan, sites, subjects, rate, np.maximum(start, day), np.maximum(end, day), rng)


@dataclass
class Measurements:
    visit: np.ndarray  # local visit index
    test: np.ndarray  # index into reference.LAB_TESTS
    value: np.ndarray
    grade: np.ndarray  # -1 = not graded


def _grade(values: np.ndarray, tests: np.ndarray) -> np.ndarray:
    low = np.array([t.ref_low if t.ref_low is not None else np.nan for t in ref.LAB_TESTS])[tests]
    high = np.array([t.ref_high if t.ref_high is not None else np.nan for t in ref.LAB_TESTS])[tests]
    direction = np.array([t.graded for t in ref.LAB_TESTS])[tests]
    grade = np.full(len(values), -1)
    hi = direction == "high"
    ratio = values[hi] / high[hi]
    grade[hi] = np.searchsorted(np.array(ref.HIGH_GRADE_CUTS), ratio, side="left")
    lo = direction == "low"
    ratio = values[lo] / low[lo]
    grade[lo] = np.searchsorted(-np.array(ref.LOW_GRADE_CUTS), -ratio, side="left")
    return grade


def simulate_measurements(
    plan: PortfolioPlan, study: int, subjects: StudySubjects, visits: StudyVisits, rng: np.random.Generator
) -> Measurements:
    """Vital signs at every attended visit; labs at screening and every second treatment visit."""
    tests = ref.LAB_TESTS
    vital_idx = np.array([i for i, t in enumerate(tests) if t.domain == "VS"])
    lab_idx = np.array([i for i, t in enumerate(tests) if t.domain == "LB"])
    attended = np.flatnonzero(~np.isnan(visits.actual))
    lab_visit = attended[(visits.number[attended] % 2) == 0]
    visit = np.concatenate([np.repeat(attended, len(vital_idx)), np.repeat(lab_visit, len(lab_idx))])
    test = np.concatenate([np.tile(vital_idx, len(attended)), np.tile(lab_idx, len(lab_visit))])
    order = np.lexsort((test, visit))
    visit, test = visit[order], test[order]
    subject = visits.subject[visit]
    n, n_tests = len(visit), len(tests)

    center = np.array([t.center for t in tests])
    between = np.array([t.between_sd for t in tests])
    within = np.array([t.within_sd for t in tests])
    log_scale = np.array([t.log_scale for t in tests])
    # Subjects beyond 3 SD of the population (and values beyond 4 SD of a subject's own) would breach
    # physiological limits in large portfolios; trials' eligibility criteria exclude them anyway.
    effect = np.clip(rng.standard_normal((len(subjects), n_tests)), -3.0, 3.0) * between
    # Invented values sit near the textbook normal: fabricated subjects are implausibly typical.
    effect[subjects.fabricated] *= FABRICATED_EFFECT_SHRINK
    # A few subjects develop organ toxicity on treatment (heavier in oncology).
    oncology = ref.THERAPEUTIC_AREAS[plan.study_ta[study]].code == "ONC"
    shift = np.zeros((len(subjects), n_tests))
    liver = rng.uniform(size=len(subjects)) < (0.06 if oncology else 0.03)
    marrow = rng.uniform(size=len(subjects)) < (0.15 if oncology else 0.02)
    code = {t.code: i for i, t in enumerate(tests)}
    shift[liver, code["ALT"]], shift[liver, code["AST"]], shift[liver, code["BILI"]] = 1.6, 1.2, 0.5
    shift[marrow, code["HGB"]], shift[marrow, code["WBC"]], shift[marrow, code["PLAT"]] = -0.3, -0.6, -0.7

    fabricated = subjects.fabricated[subject]
    noise_sd = within[test] * np.where(fabricated, 0.15, 1.0)
    z = effect[subject, test] + noise_sd * np.clip(rng.standard_normal(n), -4.0, 4.0)
    z += np.where(visits.number[visit] > 0, shift[subject, test] * rng.uniform(0.3, 1.0, n), 0.0)
    value = np.where(log_scale[test], center[test] * np.exp(z), center[test] + z)

    decimals = np.array([t.decimals for t in tests])[test]
    value = np.round(value * 10.0**decimals) / 10.0**decimals
    rounded_vital = fabricated & np.isin(test, [code["SYSBP"], code["DIABP"], code["PULSE"]])
    rounded_vital &= rng.uniform(size=n) < 0.85
    value[rounded_vital] = np.round(value[rounded_vital] / VITAL_ROUNDING_STEP) * VITAL_ROUNDING_STEP
    value = _copy_vitals_between_fabricated_subjects(value, subject, visits.number[visit], test, subjects, vital_idx)
    return Measurements(visit=visit, test=test, value=value, grade=_grade(value, test))


def _copy_vitals_between_fabricated_subjects(
    value: np.ndarray,
    subject: np.ndarray,
    visit_number: np.ndarray,
    test: np.ndarray,
    subjects: StudySubjects,
    vital_idx: np.ndarray,
) -> np.ndarray:
    """Fabricated subjects at a site share one template's vital-sign vectors (copied records)."""
    fab = np.flatnonzero(subjects.fabricated)
    if len(fab) < 2:
        return value
    template = pd.Series(fab).groupby(subjects.site[fab]).transform("min").to_numpy()
    template_of = dict(zip(fab, template))
    frame = pd.DataFrame({"subject": subject, "visit": visit_number, "test": test, "value": value})
    source = frame[np.isin(frame["subject"], template) & np.isin(frame["test"], vital_idx)]
    copies = frame[np.isin(frame["subject"], fab) & ~np.isin(frame["subject"], template) & np.isin(frame["test"], vital_idx)]
    copies = copies.assign(template=copies["subject"].map(template_of)).reset_index()
    matched = copies.merge(source, left_on=["template", "visit", "test"], right_on=["subject", "visit", "test"],
                           suffixes=("", "_template"))
    value = value.copy()
    value[matched["index"].to_numpy()] = matched["value_template"].to_numpy()
    return value
