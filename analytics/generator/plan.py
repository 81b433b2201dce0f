"""Portfolio plan: sponsors, studies, institutions, study-sites and the anomaly plan.

Everything about a study that is decided before its first patient lives here, drawn from one
portfolio-level random stream so the plan is identical for a seed whatever is generated later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.generator import reference as ref
from analytics.generator.columns import choice_codes, day_number
from analytics.generator.presets import Preset

DAYS_PER_MONTH = 30.4375

ANOMALY_TYPES: tuple[str, ...] = (
    "ae_under_reporting",
    "ae_over_reporting",
    "fabricated_data",
    "slow_data_entry",
    "query_backlog",
    "excess_important_deviations",
    "enrollment_stall",
    "capa_recurrence",
)
# relative frequency of each anomaly type among anomalous sites
ANOMALY_WEIGHTS = (0.30, 0.08, 0.10, 0.12, 0.12, 0.12, 0.08, 0.08)
AE_UNDER_REPORTING_LEVELS = (0.5, 0.75, 1.0)
ANOMALY_MAGNITUDE = {
    "ae_over_reporting": 2.5,  # AE hazard multiplier
    "fabricated_data": 0.6,  # share of the site's subjects fabricated
    "slow_data_entry": 4.0,  # entry-lag multiplier
    "query_backlog": 5.0,  # query answer-time multiplier
    "excess_important_deviations": 3.0,  # deviation-rate multiplier (importance doubled)
    "enrollment_stall": 0.45,  # share of the site's window after which it stops enrolling
    "capa_recurrence": 1.0,
}
# Process shifts from a date on (ground truth for the CAPA control charts, analytics.capa): a study's
# deviation rate rises (e.g. an amendment made a procedure hard to follow), and a sponsor's CAPAs
# start taking longer to close (its QA team changed). Labelled in truth.anomalies with start_date.
SHIFT_TYPES: tuple[str, ...] = ("deviation_shift", "capa_closure_shift")
DEVIATION_SHIFT_FACTORS = (1.5, 2.0, 3.0)  # deviation-rate multiplier after the shift
CLOSURE_SHIFT_FACTORS = (2.0, 3.0)  # CAPA closure-time multiplier after the shift
SHIFT_BASELINE_DAYS = 730  # a shift starts at least this long after the study's (sponsor's) first activation
SHIFT_MIN_AFTER_DAYS = 120  # ... and at least this long before the as-of date


@dataclass
class PortfolioPlan:
    """Column arrays describing the portfolio before enrollment is simulated."""

    preset: Preset
    sponsor_ids: list[str]
    sponsor_names: list[str]
    # studies (index s)
    study_ids: list[str]
    protocol_ids: list[str]
    study_sponsor: np.ndarray
    study_phase: list[str]
    study_ta: np.ndarray  # index into reference.THERAPEUTIC_AREAS
    study_indication: list[str]
    study_target: np.ndarray
    study_fpi: np.ndarray  # planned FPI, days since epoch
    study_enroll_days: np.ndarray  # planned enrollment period, days
    study_interval: np.ndarray  # days between visits
    study_visits: np.ndarray  # planned visits after randomization
    study_follow_up: np.ndarray  # days of follow-up after the last treatment visit
    study_blinded: np.ndarray
    study_planned_rate: np.ndarray  # screened subjects per site-month the sponsor's plan assumes
    study_site_rate: np.ndarray  # realized mean screened subjects per site-month (before drift)
    study_trend: np.ndarray  # log-rate change per year of a site's open time
    study_diversity_plan: np.ndarray  # bool: the study has enrollment targets per group
    study_sf_rate: np.ndarray
    study_ae_rate: np.ndarray  # AEs per subject-year
    study_sae_share: np.ndarray
    # institutions (index i)
    institution_ids: list[str]
    institution_names: list[str]
    institution_country: np.ndarray  # index into reference.COUNTRIES
    institution_city: list[str]
    institution_quality: np.ndarray  # latent site quality, standard normal
    # study-sites (index k), sorted by study
    ss_study: np.ndarray
    ss_institution: np.ndarray
    ss_number: list[str]
    ss_ids: list[str]
    ss_investigator: list[str]
    ss_selection: np.ndarray  # site selected: start-up starts
    ss_planned_activation: np.ndarray
    ss_activation: np.ndarray  # NaN when not activated by the as-of date
    ss_never: np.ndarray  # bool: the site never activates
    ss_planned_enrollment: np.ndarray
    ss_rate: np.ndarray  # screened subjects per month while open
    ss_anomaly: np.ndarray  # index into ANOMALY_TYPES, -1 for none
    ss_anomaly_magnitude: np.ndarray
    # process shifts (NaN day = none)
    study_deviation_shift_day: np.ndarray
    study_deviation_shift_factor: np.ndarray
    sponsor_closure_shift_day: np.ndarray
    sponsor_closure_shift_factor: np.ndarray

    @property
    def as_of_day(self) -> int:
        return day_number(self.preset.as_of)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str], size: int) -> list[str]:
    return [options[i] for i in rng.integers(0, len(options), size)]


def make_plan(preset: Preset, seed: int) -> PortfolioPlan:
    """Draw the portfolio plan for ``preset`` and ``seed``."""
    rng = np.random.default_rng([seed, 0])
    n_studies = preset.studies
    as_of = day_number(preset.as_of)

    sponsor_order = rng.permutation(len(ref.SPONSOR_NAMES))[: preset.sponsors]
    sponsor_names = [ref.SPONSOR_NAMES[i] for i in sponsor_order]
    sponsor_ids = [f"SP{i + 1:02d}" for i in range(preset.sponsors)]
    # Sponsors differ in size: a few large pharma, a tail of biotechs.
    sponsor_weights = rng.gamma(1.2, 1.0, preset.sponsors)
    study_sponsor = np.sort(choice_codes(rng, sponsor_weights, n_studies))
    study_sponsor[: preset.sponsors] = np.arange(min(preset.sponsors, n_studies))  # everyone has a study
    study_sponsor = np.sort(study_sponsor)

    phases = list(ref.PHASE_SHARES)
    phase_code = choice_codes(rng, list(ref.PHASE_SHARES.values()), n_studies)
    study_phase = [phases[i] for i in phase_code]
    ta = choice_codes(rng, [t.weight for t in ref.THERAPEUTIC_AREAS], n_studies)
    indication = [
        ref.THERAPEUTIC_AREAS[t].indications[rng.integers(len(ref.THERAPEUTIC_AREAS[t].indications))] for t in ta
    ]
    design = np.array([ref.PHASE_DESIGN[p] for p in study_phase], dtype="float64")
    median_target, enroll_months, interval, visits, blinded_share, follow_up = design.T
    reality = ref.ENROLLMENT_REALITY

    fpi = rng.uniform(day_number(preset.first_fpi), as_of + preset.last_fpi_offset_days, n_studies)
    enroll_days = enroll_months * DAYS_PER_MONTH * np.exp(0.2 * rng.standard_normal(n_studies))
    sf_rate = np.array([ref.THERAPEUTIC_AREAS[t].screen_failure_rate for t in ta])
    sf_rate = np.clip(sf_rate * np.exp(0.15 * rng.standard_normal(n_studies)), 0.05, 0.6)

    # Scale study sizes so the expected number screened by the as-of date matches the preset.
    raw_target = median_target * np.exp(0.45 * rng.standard_normal(n_studies))
    # Enrollment really takes about twice the plan (ENROLLMENT_REALITY), hence the 1.9.
    share_elapsed = np.clip((as_of - fpi) / (1.9 * enroll_days), 0.0, 1.0)
    expected_screened = raw_target / (1 - sf_rate) * np.maximum(share_elapsed, 0.03)
    scale = preset.screened_subjects / expected_screened.sum()
    target = np.maximum(np.round(raw_target * scale), 12).astype("int64")

    site_weight = target.astype("float64") ** 0.75
    n_sites = np.maximum(np.round(site_weight / site_weight.sum() * preset.study_sites), 3).astype("int64")

    blinded = rng.uniform(size=n_studies) < blinded_share
    # Realized rates fall short of the plan's (optimistic feasibility), a tail of studies badly so.
    performance = reality["performance_median"] * np.exp(reality["performance_sigma"] * rng.standard_normal(n_studies))
    performance[rng.uniform(size=n_studies) < reality["badly_late_share"]] *= reality["badly_late_factor"]
    trend = reality["trend_mean_per_year"] + reality["trend_sd_per_year"] * rng.standard_normal(n_studies)
    diversity_plan = np.array([p == "Phase 3" for p in study_phase]) | (
        np.array([p == "Phase 2" for p in study_phase]) & (rng.uniform(size=n_studies) < ref.DIVERSITY_PLAN_PHASE2_SHARE))
    ae_rate = np.array([ref.THERAPEUTIC_AREAS[t].ae_rate_per_year for t in ta]) * np.exp(
        0.25 * rng.standard_normal(n_studies)
    )
    sae_share = np.array([ref.THERAPEUTIC_AREAS[t].sae_share for t in ta]) * np.exp(
        0.2 * rng.standard_normal(n_studies)
    )

    study_ids = [f"ST{i + 1:03d}" for i in range(n_studies)]
    protocol_ids = [
        f"{sponsor_names[sp][:3].upper()}-{ref.THERAPEUTIC_AREAS[t].code}-{phase[-1]}{i + 1:02d}"
        for i, (sp, t, phase) in enumerate(zip(study_sponsor, ta, study_phase))
    ]

    # Institutions: a pool smaller than the number of study-sites, so sites have a history.
    n_inst = max(int(preset.study_sites * 0.55), int(n_sites.max()) + 5)
    country = choice_codes(rng, [c[3] for c in ref.COUNTRIES], n_inst)
    city = [ref.CITIES[ref.COUNTRIES[c][0]][rng.integers(len(ref.CITIES[ref.COUNTRIES[c][0]]))] for c in country]
    kinds = _pick(rng, ref.INSTITUTION_KINDS, n_inst)
    surnames = _pick(rng, ref.LAST_NAMES, n_inst)
    inst_names = [f"{s} {k}, {c}" for s, k, c in zip(surnames, kinds, city)]
    inst_ids = [f"I{i + 1:05d}" for i in range(n_inst)]
    quality = rng.standard_normal(n_inst)

    ss_study = np.repeat(np.arange(n_studies), n_sites)
    ss_inst = np.concatenate([rng.choice(n_inst, size=k, replace=False) for k in n_sites])
    rank = np.concatenate([np.arange(k) for k in n_sites])
    ss_number = [f"{1001 + r}" for r in rank]
    ss_ids = [f"{study_ids[s]}-{num}" for s, num in zip(ss_study, ss_number)]
    investigators = [
        f"Dr. {f} {l}" for f, l in zip(_pick(rng, ref.FIRST_NAMES, len(ss_study)), _pick(rng, ref.LAST_NAMES, len(ss_study)))
    ]

    # Staggered activation planned from a month before FPI over ~55% of enrollment; start-up takes
    # longer than planned (country and site effects), and some selected sites never activate.
    n_ss = len(ss_study)
    stagger = rng.uniform(0, 0.55, n_ss) * enroll_days[ss_study]
    planned_activation = fpi[ss_study] - 30 + stagger
    selection = planned_activation - reality["planned_start_up_days"] * np.exp(0.15 * rng.standard_normal(n_ss))
    country_effect = reality["country_start_up_sigma"] * rng.standard_normal(len(ref.COUNTRIES))
    start_up = reality["start_up_median_days"] * np.exp(
        country_effect[country[ss_inst]] + reality["start_up_sigma"] * rng.standard_normal(n_ss))
    activation = selection + start_up
    never = rng.uniform(size=n_ss) < reality["never_activated_share"]
    activation[never] = np.nan
    activation[activation > as_of] = np.nan
    # The plan's rate: the target spread over the planned site-months up to the planned LPI.
    planned_open = np.maximum(fpi[ss_study] + enroll_days[ss_study] - planned_activation, 0) / DAYS_PER_MONTH
    planned_site_months = np.bincount(ss_study, weights=planned_open, minlength=n_studies)
    planned_rate = target / (1 - sf_rate) / np.maximum(planned_site_months, 1.0)
    site_rate = planned_rate * performance

    inst_quality = quality[ss_inst]
    rate = site_rate[ss_study] * rng.gamma(1.3, 1 / 1.3, n_ss) * np.exp(0.3 * inst_quality)
    rate[rng.uniform(size=n_ss) < reality["no_patient_share"]] = 0.0  # sites that never find a patient
    planned_enrollment = np.maximum(np.round(
        planned_rate[ss_study] * (1 - sf_rate[ss_study]) * planned_open * rng.uniform(0.8, 1.25, n_ss)), 1)

    anomaly = np.full(n_ss, -1)
    magnitude = np.zeros(n_ss)
    eligible = ~np.isnan(activation)
    chosen = eligible & (rng.uniform(size=n_ss) < preset.anomaly_share)
    anomaly[chosen] = choice_codes(rng, ANOMALY_WEIGHTS, int(chosen.sum()))
    # Every anomaly type is labelled somewhere when the portfolio has anomalies at all.
    for code in np.setdiff1d(np.arange(len(ANOMALY_TYPES)), anomaly[chosen]) if chosen.sum() >= len(ANOMALY_TYPES) else ():
        spare = np.flatnonzero(eligible & (anomaly < 0))
        if len(spare):  # the busiest clean site, so the anomaly has data to show in
            anomaly[spare[np.argmax(rate[spare])]] = code
    for code, name in enumerate(ANOMALY_TYPES):
        rows = anomaly == code
        if name == "ae_under_reporting":
            magnitude[rows] = rng.choice(AE_UNDER_REPORTING_LEVELS, size=int(rows.sum()))
        else:
            magnitude[rows] = ANOMALY_MAGNITUDE[name]

    deviation_day, deviation_factor, closure_day, closure_factor = _process_shifts(
        preset, rng, as_of, ss_study, activation, study_sponsor, fpi, enroll_days, interval * visits)

    return PortfolioPlan(
        preset=preset,
        sponsor_ids=sponsor_ids,
        sponsor_names=sponsor_names,
        study_ids=study_ids,
        protocol_ids=protocol_ids,
        study_sponsor=study_sponsor,
        study_phase=study_phase,
        study_ta=ta,
        study_indication=indication,
        study_target=target,
        study_fpi=fpi,
        study_enroll_days=enroll_days,
        study_interval=interval.astype("int64"),
        study_visits=visits.astype("int64"),
        study_follow_up=follow_up.astype("int64"),
        study_blinded=blinded,
        study_planned_rate=planned_rate,
        study_site_rate=site_rate,
        study_trend=trend,
        study_diversity_plan=diversity_plan,
        study_sf_rate=sf_rate,
        study_ae_rate=ae_rate,
        study_sae_share=sae_share,
        institution_ids=inst_ids,
        institution_names=inst_names,
        institution_country=country,
        institution_city=city,
        institution_quality=quality,
        ss_study=ss_study,
        ss_institution=ss_inst,
        ss_number=ss_number,
        ss_ids=ss_ids,
        ss_investigator=investigators,
        ss_selection=selection,
        ss_planned_activation=planned_activation,
        ss_activation=activation,
        ss_never=never,
        ss_planned_enrollment=planned_enrollment,
        ss_rate=rate,
        ss_anomaly=anomaly,
        ss_anomaly_magnitude=magnitude,
        study_deviation_shift_day=deviation_day,
        study_deviation_shift_factor=deviation_factor,
        sponsor_closure_shift_day=closure_day,
        sponsor_closure_shift_factor=closure_factor,
    )


def _shift_days(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """A start day between ``first + SHIFT_BASELINE_DAYS`` and ``last`` for chosen units (NaN otherwise)."""
    low = first + SHIFT_BASELINE_DAYS
    room = last - low
    u = rng.uniform(size=len(first))
    return np.where(chosen & (room > 30), np.floor(low + u * np.maximum(room, 0)), np.nan)


def _process_shifts(
    preset: Preset, rng: np.random.Generator, as_of: int, ss_study: np.ndarray, activation: np.ndarray,
    study_sponsor: np.ndarray, fpi: np.ndarray, enroll_days: np.ndarray, duration: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which studies get a deviation-rate shift and which sponsors a CAPA-closure shift, from when, how strong.

    Drawn after everything else in the plan, so adding shifts changed no other planned value.
    """
    n_studies, n_sponsors = len(fpi), preset.sponsors
    first = np.full(n_studies, np.nan)
    active = ~np.isnan(activation)
    np.fmin.at(first, ss_study[active], activation[active])
    # Deviations happen while subjects are on study: the shift falls before the study's expected end.
    study_end = np.minimum(as_of - SHIFT_MIN_AFTER_DAYS, fpi + 1.9 * enroll_days + duration)
    chosen = rng.uniform(size=n_studies) < preset.shift_share
    deviation_day = _shift_days(rng, first, study_end, chosen & ~np.isnan(first))
    if preset.shift_share > 0 and np.isnan(deviation_day).all():  # every shift type somewhere
        deviation_day = _shift_days(rng, first, study_end, ~np.isnan(first) & (first == np.nanmin(first)))
    deviation_factor = np.where(np.isnan(deviation_day), 1.0,
                                rng.choice(DEVIATION_SHIFT_FACTORS, size=n_studies))
    sponsor_first = np.full(n_sponsors, np.nan)
    np.fmin.at(sponsor_first, study_sponsor[~np.isnan(first)], first[~np.isnan(first)])
    sponsor_last = np.full(n_sponsors, float(as_of - SHIFT_MIN_AFTER_DAYS))
    chosen = rng.uniform(size=n_sponsors) < preset.shift_share
    closure_day = _shift_days(rng, sponsor_first, sponsor_last, chosen & ~np.isnan(sponsor_first))
    if preset.shift_share > 0 and np.isnan(closure_day).all():
        biggest = np.bincount(study_sponsor, minlength=n_sponsors).argmax()
        closure_day = _shift_days(rng, sponsor_first, sponsor_last, np.arange(n_sponsors) == biggest)
    closure_factor = np.where(np.isnan(closure_day), 1.0, rng.choice(CLOSURE_SHIFT_FACTORS, size=n_sponsors))
    return deviation_day, deviation_factor, closure_day, closure_factor
