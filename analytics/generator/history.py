"""Historical trials for feasibility benchmarks, shaped like ClinicalTrials.gov records.

Each trial is built the way a trial runs, so the benchmarks and the duration model have something
real to find:

* phase, therapeutic area and indication, lead sponsor class (industry runs most Phase 1 and 3
  trials), eligibility (sex, ages, healthy volunteers, inclusion and exclusion criteria as the
  registry's free text), arms, interventions, primary and secondary outcomes;
* enrollment log-normal around per-phase medians that follow the shared ClinicalTrials.gov exports
  (interventional studies: median 48/104/378/292 for phases 1-4), sites growing with enrollment,
  countries with sites;
* a trial-level enrollment rate per site-month with a phase level and multiplicative effects (area,
  sponsor class, healthy volunteers, number of criteria, arms, age limits, countries, start year)
  and a wide unexplained spread, as real rates have (UK HTA trials: IQR 0.43-2.79 a site-month);
* duration = activation ramp + recruitment (enrollment / (sites x rate)) + treatment and follow-up,
  which gives start-to-completion medians near 26/35/38/37.5 months for phases 1-4, as in the
  exports (``tests/test_generator.py`` checks both);
* status from the as-of date: trials past their completion are mostly COMPLETED (some TERMINATED
  early, a few WITHDRAWN with no enrollment); running ones are RECRUITING or ACTIVE_NOT_RECRUITING
  with the *anticipated* enrollment and an optimistic *anticipated* completion date, as registries
  hold them (so benchmarks must censor them, never read those dates);
* the record's last update: ended trials' records are updated some months after they end, running
  ones within the last year; but some records stop being updated while the trial runs (a constant
  hazard, :data:`STALE_PER_YEAR`, independent of how long the trial takes). A stale record keeps the
  status and the anticipated dates it had at its last update, so it may list a trial that has since
  finished as running, past its own anticipated completion; one unverified for two years shows
  UNKNOWN, as ClinicalTrials.gov displays it;
* locations: one row per site, in the trial's countries, a share of them at the institutions of the
  generated portfolio (so competition per candidate site has something to find).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from analytics.generator import reference as ref
from analytics.generator.columns import choice_codes, date_column, day_number, nullable_float, nullable_int
from analytics.generator.plan import DAYS_PER_MONTH
from analytics.generator.presets import Preset

PHASE_INDEX = {p[0]: i for i, p in enumerate(ref.HISTORICAL_PHASES)}
# Per phase (same order as reference.HISTORICAL_PHASES): share of industry sponsors, median
# recruitment rate per site-month, treatment + follow-up months after the last patient is in, share
# accepting healthy volunteers, mean inclusion / exclusion criteria, mean arms, mean secondary outcomes.
# The rates were set (on the large preset, seed 5) so start-to-completion medians follow the exports.
PHASE_SHAPE = {
    "PHASE1": (0.65, 0.65, 3.0, 0.45, 7, 11, 2.4, 3),
    "PHASE1|PHASE2": (0.50, 0.42, 6.0, 0.05, 7, 13, 2.6, 4),
    "PHASE2": (0.50, 0.49, 8.0, 0.03, 7, 13, 2.4, 5),
    "PHASE2|PHASE3": (0.40, 0.36, 10.0, 0.02, 7, 14, 2.3, 6),
    "PHASE3": (0.60, 0.37, 12.0, 0.02, 8, 15, 2.2, 8),
    "PHASE4": (0.30, 1.89, 9.0, 0.04, 6, 9, 2.0, 4),
}
OTHER_SPONSOR_CLASSES = (("OTHER", 0.78), ("OTHER_GOV", 0.07), ("NIH", 0.05), ("NETWORK", 0.06), ("FED", 0.04))
AREA_RATE_EFFECT = {"Oncology": -0.30, "Neurology": -0.20, "Cardiovascular": 0.10, "Metabolic": 0.20,
                    "Immunology": 0.0, "Infectious disease": 0.35, "Respiratory": 0.10}
RATE_SIGMA = 0.75  # unexplained log-rate spread between trials
INDUSTRY_RATE_EFFECT = 0.20
HEALTHY_VOLUNTEER_RATE_EFFECT = 0.70
PER_EXCLUSION_EFFECT = -0.025  # per exclusion criterion beyond the phase's mean
PER_INCLUSION_EFFECT = -0.02
PER_EXTRA_ARM_EFFECT = -0.06
UPPER_AGE_LIMIT_EFFECT = -0.15  # an upper age limit of 65 or less
PER_COUNTRY_EFFECT = -0.02
PER_YEAR_EFFECT = -0.015  # rates fall slowly over calendar time (more complex protocols, more competition)
REFERENCE_YEAR = 2012
ANTICIPATED_OPTIMISM = 0.30  # anticipated durations of running trials are exp(-0.30) ~ 0.74 of the real ones
TERMINATED_SHARE = 0.08
WITHDRAWN_SHARE = 0.02
STALE_PER_YEAR = 0.06  # hazard of a record no longer being updated while its trial runs (per year)
UNVERIFIED_DAYS = 2 * 365  # ClinicalTrials.gov shows a running record not verified for this long as UNKNOWN
ENDED_UPDATE_MONTHS = 6.0  # mean lag from a trial's end to its record's last update (results, status)
RUNNING_UPDATE_DAYS = 365  # a record kept up to date is updated at least this often
SITES_AT_PORTFOLIO_INSTITUTIONS = 0.35  # share of a trial's sites at one of the portfolio's institutions
FUTURE_START_DAYS = 240  # not-yet-recruiting trials start up to this long after the as-of date
SEX_RESTRICTED = {"Breast cancer": "FEMALE", "Prostate cancer": "MALE"}
OLDER_CONDITIONS = {"Alzheimer's disease": 50.0, "Parkinson's disease": 40.0, "Heart failure": 40.0,
                    "Atrial fibrillation": 40.0, "COPD": 40.0, "Prostate cancer": 40.0}
ACADEMIC_SPONSOR_KINDS = ("University", "University Hospital", "Research Foundation", "Cancer Institute",
                          "Medical College", "Clinical Trials Network")
PRIMARY_OUTCOMES = ("Change from baseline in {score} at week {week}", "Proportion of participants with {event}",
                    "Incidence of treatment-emergent adverse events", "Time to {event}",
                    "Maximum plasma concentration (Cmax)", "Overall response rate", "Progression-free survival")
SECONDARY_OUTCOMES = ("Area under the concentration-time curve (AUC)", "Change from baseline in quality of life (EQ-5D)",
                      "Overall survival", "Duration of response", "Number of participants with serious adverse events",
                      "Change from baseline in {score} at week {week}", "Time to treatment discontinuation",
                      "Patient global impression of change", "Hospitalization for any cause")
SCORES = ("disease activity score", "symptom score", "HbA1c", "FEV1", "systolic blood pressure", "ADAS-Cog",
          "PASI", "body weight")
EVENTS = ("clinical remission", "disease progression", "a major adverse cardiac event", "relapse",
          "sustained virologic response", "exacerbation")
INCLUSION = ("Age {low} years or older at screening", "Diagnosis of {condition} confirmed by the investigator",
             "Signed informed consent", "Adequate bone marrow, liver and kidney function",
             "Body mass index between 18 and 40 kg/m2", "Stable dose of background therapy for at least 4 weeks",
             "Willing to use effective contraception during the study", "ECOG performance status 0-1",
             "At least one measurable lesion or documented disease activity", "Able to complete study visits",
             "Inadequate response to at least one prior therapy", "Negative pregnancy test at screening")
EXCLUSION = ("Pregnant or breastfeeding", "Participation in another interventional trial within 30 days",
             "Known hypersensitivity to the study drug or its excipients", "Active infection requiring systemic therapy",
             "History of malignancy within 5 years", "Significant cardiovascular disease within 6 months",
             "eGFR below 30 mL/min/1.73 m2", "ALT or AST above 3 times the upper limit of normal",
             "Uncontrolled hypertension", "Positive test for HIV, hepatitis B or hepatitis C",
             "Major surgery within 4 weeks", "Use of prohibited medication", "Alcohol or drug abuse within 1 year",
             "QTcF above 450 ms", "Any condition that, in the investigator's opinion, makes the participant unsuitable",
             "Prior treatment with a drug of the same class", "Live vaccine within 4 weeks")


@dataclass(frozen=True)
class Institutions:
    """The portfolio's institutions a share of historical sites are drawn from."""

    names: Sequence[str]
    cities: Sequence[str]
    country: np.ndarray  # index into reference.COUNTRIES


def _criteria_text(rng: np.random.Generator, n_inclusion: np.ndarray, n_exclusion: np.ndarray,
                   condition: Sequence[str], min_age: np.ndarray) -> list[str]:
    """Eligibility criteria as the registry writes them: two headed bullet lists."""
    texts = []
    for k_in, k_ex, cond, low in zip(n_inclusion, n_exclusion, condition, min_age):
        inc = [INCLUSION[i % len(INCLUSION)].format(low=int(low), condition=cond)
               for i in rng.permutation(max(int(k_in), len(INCLUSION)))[: int(k_in)]]
        exc = [EXCLUSION[i % len(EXCLUSION)] + ("" if i < len(EXCLUSION) else f" (criterion {i + 1})")
               for i in rng.permutation(max(int(k_ex), len(EXCLUSION)))[: int(k_ex)]]
        texts.append("Inclusion Criteria:\n\n" + "\n".join(f"* {c}" for c in inc)
                     + "\n\nExclusion Criteria:\n\n" + "\n".join(f"* {c}" for c in exc))
    return texts


def _outcomes(rng: np.random.Generator, counts: np.ndarray, pool: Sequence[str]) -> list[str | None]:
    out: list[str | None] = []
    for k in counts:
        if k <= 0:
            out.append(None)
            continue
        picks = rng.choice(len(pool), size=int(k), replace=int(k) > len(pool))
        out.append("|".join(pool[p].format(score=SCORES[rng.integers(len(SCORES))], week=int(rng.choice((12, 24, 52))),
                                           event=EVENTS[rng.integers(len(EVENTS))]) for p in picks))
    return out


def _age_groups(min_age: np.ndarray, max_age: np.ndarray) -> list[str]:
    groups = []
    for low, high in zip(min_age, max_age):
        high = np.inf if np.isnan(high) else high
        parts = [name for name, lo, hi in (("CHILD", 0, 17), ("ADULT", 18, 64), ("OLDER_ADULT", 65, np.inf))
                 if low <= hi and high >= lo]
        groups.append("|".join(parts))
    return groups


def generated_export_name(preset_name: str, seed: int) -> str:
    """What ``historical_trials.export_file`` calls a generated history (as the schema-12 migration spells it)."""
    return f"generated ({preset_name}, seed {seed})"


def historical_trials(preset: Preset, seed: int, institutions: Institutions | None = None,
                      truth: dict[str, np.ndarray] | None = None) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """Columns of ``main.historical_trials`` and ``main.historical_trial_sites`` for ``preset``.

    ``truth``, when given, receives what no registry shows (for evaluations): every trial's
    ``nct_id`` and true ``duration_months`` (start to completion, also of trials still running).
    """
    rng = np.random.default_rng([seed, 1])
    n = preset.historical_trials
    as_of = day_number(preset.as_of)
    phase = choice_codes(rng, [p[1] for p in ref.HISTORICAL_PHASES], n)
    phase_label = np.array([p[0] for p in ref.HISTORICAL_PHASES])[phase]
    shape = np.array([PHASE_SHAPE[p[0]] for p in ref.HISTORICAL_PHASES])[phase]
    industry_share, base_rate, follow_up_months, hv_share, mean_inc, mean_exc, mean_arms, mean_secondary = shape.T
    median_enroll, median_sites = (np.array([p[i] for p in ref.HISTORICAL_PHASES])[phase] for i in (2, 4))

    ta = choice_codes(rng, [t.weight for t in ref.THERAPEUTIC_AREAS], n)
    area = [ref.THERAPEUTIC_AREAS[t].name for t in ta]
    indications = [ref.THERAPEUTIC_AREAS[t].indications[int(rng.integers(len(ref.THERAPEUTIC_AREAS[t].indications)))]
                   for t in ta]
    industry = rng.uniform(size=n) < industry_share
    other_class = np.array([c for c, _ in OTHER_SPONSOR_CLASSES])[choice_codes(rng, [w for _, w in OTHER_SPONSOR_CLASSES], n)]
    sponsor_class = np.where(industry, "INDUSTRY", other_class)
    sponsor = np.where(industry, np.array(ref.SPONSOR_NAMES)[rng.integers(0, len(ref.SPONSOR_NAMES), n)],
                       [f"{ref.CITIES[ref.COUNTRIES[c][0]][0]} {ACADEMIC_SPONSOR_KINDS[k]}" for c, k in
                        zip(rng.integers(0, len(ref.COUNTRIES), n), rng.integers(0, len(ACADEMIC_SPONSOR_KINDS), n))])

    # Eligibility and design.
    healthy = rng.uniform(size=n) < hv_share
    sex = np.array([SEX_RESTRICTED.get(i, "ALL") for i in indications], dtype=object)
    min_age = np.array([OLDER_CONDITIONS.get(i, 18.0) for i in indications])
    min_age = np.where(rng.uniform(size=n) < 0.04, 12.0, min_age)
    max_age = rng.choice(np.array([np.nan, 65.0, 75.0, 80.0, 85.0]), size=n, p=[0.5, 0.2, 0.12, 0.1, 0.08])
    max_age = np.where(healthy, rng.choice(np.array([45.0, 55.0, 65.0]), size=n), max_age)
    n_inclusion = np.maximum(1, rng.poisson(mean_inc))
    n_exclusion = np.maximum(1, rng.negative_binomial(4, 4 / (4 + mean_exc)))
    arms = np.maximum(1, 1 + rng.poisson(mean_arms - 1))
    n_primary = 1 + rng.poisson(0.35, n)
    n_secondary = rng.poisson(mean_secondary)

    # Size: enrollment, sites growing with it, countries.
    log_enroll_z = rng.standard_normal(n)
    enrollment = np.maximum(np.round(median_enroll * np.exp(0.95 * log_enroll_z)), 1).astype("int64")
    sites_factor = np.where(industry, 1.3, 0.75)
    n_sites = np.maximum(np.round(median_sites * sites_factor * np.exp(0.75 * 0.95 * log_enroll_z
                                                                       + 0.6 * rng.standard_normal(n))), 1)
    n_sites = np.minimum(n_sites, np.maximum(enrollment // 2, 1)).astype("int64")
    n_countries = np.minimum(np.maximum(1, np.round(np.sqrt(n_sites) * rng.uniform(0.5, 1.2, n))),
                             len(ref.COUNTRIES)).astype(int)
    n_countries = np.minimum(n_countries, n_sites)
    country_weights = np.array([c[3] for c in ref.COUNTRIES])
    trial_countries = [rng.choice(len(ref.COUNTRIES), size=k, replace=False, p=country_weights / country_weights.sum())
                       for k in n_countries]

    # Start dates: the last 20 years, a few not started yet.
    start = rng.uniform(as_of - 20 * 365, as_of + FUTURE_START_DAYS, n)
    start_year = 1970 + start / 365.25

    # The rate and how long the trial takes.
    log_rate = (np.log(base_rate) + np.array([AREA_RATE_EFFECT[a] for a in area]) + INDUSTRY_RATE_EFFECT * industry
                + HEALTHY_VOLUNTEER_RATE_EFFECT * healthy + PER_EXCLUSION_EFFECT * (n_exclusion - mean_exc)
                + PER_INCLUSION_EFFECT * (n_inclusion - mean_inc) + PER_EXTRA_ARM_EFFECT * (arms - 2)
                + UPPER_AGE_LIMIT_EFFECT * (max_age <= 65) + PER_COUNTRY_EFFECT * (n_countries - 1)
                + PER_YEAR_EFFECT * (start_year - REFERENCE_YEAR) + RATE_SIGMA * rng.standard_normal(n))
    rate = np.exp(log_rate)
    ramp_months = np.minimum(1.5 + 0.6 * n_countries + 0.02 * n_sites, 14.0) * np.exp(0.3 * rng.standard_normal(n))
    # Sites open evenly over the ramp: enrollment = rate x sites x (recruitment - ramp / 2).
    recruitment_months = ramp_months / 2 + enrollment / (n_sites * rate)
    follow_up = follow_up_months * np.exp(0.35 * rng.standard_normal(n))
    months = recruitment_months + follow_up
    primary_months = recruitment_months + 0.8 * follow_up

    # Ended trials: terminated early (stopped part way) or withdrawn before enrolling anyone.
    fate = rng.uniform(size=n)
    terminated = fate < TERMINATED_SHARE
    withdrawn = (fate >= TERMINATED_SHARE) & (fate < TERMINATED_SHARE + WITHDRAWN_SHARE)
    stopped_at = rng.uniform(0.15, 0.8, n)
    months = np.where(terminated, recruitment_months * stopped_at + 1.0, months)
    primary_months = np.where(terminated, months, primary_months)
    months = np.where(withdrawn, rng.uniform(1, 12, n), months)
    primary_months = np.where(withdrawn, months, primary_months)
    completion = start + months * DAYS_PER_MONTH
    primary_completion = start + primary_months * DAYS_PER_MONTH
    actual_enrollment = np.where(terminated, np.maximum(np.round(enrollment * stopped_at), 1), enrollment)
    actual_enrollment = np.where(withdrawn, 0, actual_enrollment).astype("int64")

    done = completion < as_of
    not_started = start > as_of
    recruiting = ~done & ~not_started & (start + recruitment_months * DAYS_PER_MONTH > as_of)
    status = np.where(done, np.where(terminated, "TERMINATED", np.where(withdrawn, "WITHDRAWN", "COMPLETED")),
                      np.where(not_started, "NOT_YET_RECRUITING",
                               np.where(recruiting, "RECRUITING", "ACTIVE_NOT_RECRUITING")))
    # Running trials show the anticipated enrollment and optimistic anticipated dates, updated to lie ahead.
    optimism = np.exp(-ANTICIPATED_OPTIMISM + 0.15 * rng.standard_normal(n))
    ahead = as_of + rng.uniform(30, 400, n)
    anticipated = np.maximum(start + months * optimism * DAYS_PER_MONTH, ahead)
    anticipated_primary = np.minimum(np.maximum(start + primary_months * optimism * DAYS_PER_MONTH, ahead), anticipated)
    completion = np.where(done, completion, anticipated)
    primary_completion = np.where(done, primary_completion, anticipated_primary)
    enrollment_shown = np.where(done, actual_enrollment, enrollment)
    status, completion, primary_completion, enrollment_shown, last_update = _record_updates(
        np.random.default_rng([seed, 2]), as_of, start, months, recruitment_months, primary_months, optimism,
        status, completion, primary_completion, enrollment_shown, enrollment)

    month_precision_start = rng.uniform(size=n) < 0.4
    month_precision_end = rng.uniform(size=n) < 0.4
    titles = [f"A {p.replace('|', '/').title().replace('Phase', 'Phase ')} Study in {ind}"
              for p, ind in zip(phase_label, indications)]
    interventions = ["|".join([f"DRUG: Study drug {chr(65 + (i % 26))}{j + 1}" for j in range(max(a - 1, 1))]
                              + (["DRUG: Placebo"] if a >= 2 else []))
                     for i, a in enumerate(arms)]
    nct = np.array([f"NCT9{i:07d}" for i in rng.permutation(n)])
    if truth is not None:
        truth.update(nct_id=nct, duration_months=months)
    trials = {
        "nct_id": pa.array(nct.tolist()),
        "title": pa.array(titles),
        "status": pa.array(status.tolist()),
        "phase": pa.array(phase_label.tolist()),
        "conditions": pa.array(indications),
        "therapeutic_area": pa.array(area),
        "enrollment": pa.array(enrollment_shown.astype("int64")),
        "start_date": date_column(_first_of_month(start, month_precision_start)),
        "start_date_precision": pa.array(np.where(month_precision_start, "month", "day").tolist()),
        "completion_date": date_column(_first_of_month(completion, month_precision_end)),
        "completion_date_precision": pa.array(np.where(month_precision_end, "month", "day").tolist()),
        "n_sites": pa.array(n_sites),
        "countries": pa.array(["|".join(ref.COUNTRIES[c][1] for c in cs) for cs in trial_countries]),
        "data_source": pa.array(["synthetic"] * n),
        "study_type": pa.array(["INTERVENTIONAL"] * n),
        "primary_completion_date": date_column(_first_of_month(primary_completion, month_precision_end)),
        "primary_completion_date_precision": pa.array(np.where(month_precision_end, "month", "day").tolist()),
        "sponsor": pa.array(sponsor.tolist()),
        "sponsor_class": pa.array(sponsor_class.tolist()),
        "interventions": pa.array(interventions),
        "sex": pa.array(sex.tolist()),
        "min_age_years": nullable_float(min_age),
        "max_age_years": nullable_float(max_age),
        "age_groups": pa.array(_age_groups(min_age, max_age)),
        "healthy_volunteers": pa.array(healthy.tolist()),
        "eligibility_criteria": pa.array(_criteria_text(rng, n_inclusion, n_exclusion, indications, min_age)),
        "primary_outcome": pa.array(_outcomes(rng, n_primary, PRIMARY_OUTCOMES)),
        "secondary_outcome": pa.array(_outcomes(rng, n_secondary, SECONDARY_OUTCOMES)),
        "arm_count": nullable_int(arms),
        "last_update_date": date_column(np.floor(last_update)),
        "last_update_date_precision": pa.array(["day"] * n),
        # One generation is one "export": every record is known up to the generation's as-of date.
        "export_file": pa.array([generated_export_name(preset.name, seed)] * n),
        "export_as_of": date_column(np.full(n, float(as_of))),
    }
    return trials, _sites(rng, nct, n_sites, trial_countries, status, institutions)


def _record_updates(rng: np.random.Generator, as_of: float, start: np.ndarray, months: np.ndarray,
                    recruitment_months: np.ndarray, primary_months: np.ndarray, optimism: np.ndarray,
                    status: np.ndarray, completion: np.ndarray, primary_completion: np.ndarray,
                    enrollment_shown: np.ndarray, planned_enrollment: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each record's last update (day numbers), and the status, dates and enrollment of stale records.

    A record goes stale at an exponential time after the start (:data:`STALE_PER_YEAR`) when that
    comes before the trial ends and before the as-of date: it then shows what was known at that
    time (running, the planned enrollment, the anticipated dates forecast then), or UNKNOWN once
    unverified for :data:`UNVERIFIED_DAYS`. Drawn from their own stream, so the other columns of a
    seed do not change.
    """
    n = len(start)
    end = start + months * DAYS_PER_MONTH
    stale_at = start + rng.exponential(365.25 / STALE_PER_YEAR, n)
    ended_update = np.minimum(end + rng.exponential(ENDED_UPDATE_MONTHS * DAYS_PER_MONTH, n), as_of)
    recent_update = as_of - rng.uniform(0, RUNNING_UPDATE_DAYS, n)
    last_update = np.where(status == "NOT_YET_RECRUITING", recent_update,
                           np.where(end < as_of, ended_update, np.maximum(recent_update, start)))
    stale = (stale_at < end) & (stale_at < as_of) & (status != "NOT_YET_RECRUITING") & (status != "WITHDRAWN")
    shown = np.where(stale_at < start + recruitment_months * DAYS_PER_MONTH, "RECRUITING", "ACTIVE_NOT_RECRUITING")
    shown = np.where(as_of - stale_at > UNVERIFIED_DAYS, "UNKNOWN", shown)
    ahead = stale_at + rng.uniform(30, 400, n)
    forecast = np.maximum(start + months * optimism * DAYS_PER_MONTH, ahead)
    forecast_primary = np.minimum(np.maximum(start + primary_months * optimism * DAYS_PER_MONTH, ahead), forecast)
    return (np.where(stale, shown, status), np.where(stale, forecast, completion),
            np.where(stale, forecast_primary, primary_completion),
            np.where(stale, planned_enrollment, enrollment_shown), np.where(stale, stale_at, last_update))


SITE_STATUS = {"UNKNOWN": "UNKNOWN", "RECRUITING": "RECRUITING", "ACTIVE_NOT_RECRUITING": "ACTIVE_NOT_RECRUITING",
               "NOT_YET_RECRUITING": "NOT_YET_RECRUITING", "COMPLETED": "COMPLETED", "TERMINATED": "TERMINATED",
               "WITHDRAWN": "WITHDRAWN"}


def _sites(rng: np.random.Generator, nct: np.ndarray, n_sites: np.ndarray, trial_countries: list[np.ndarray],
           status: np.ndarray, institutions: Institutions | None) -> dict[str, pa.Array]:
    """One row per location: countries in turn, a share at the portfolio's institutions."""
    trial = np.repeat(np.arange(len(nct)), n_sites)
    number = np.concatenate([np.arange(1, k + 1) for k in n_sites]) if len(n_sites) else np.zeros(0, int)
    country = np.concatenate([np.resize(cs, k) for cs, k in zip(trial_countries, n_sites)]) if len(n_sites) else number
    total = len(trial)
    kinds = rng.integers(0, len(ref.INSTITUTION_KINDS), total)
    surnames = rng.integers(0, len(ref.LAST_NAMES), total)
    city_pick = rng.integers(0, 1 << 30, total)
    cities = [ref.CITIES[ref.COUNTRIES[c][0]][p % len(ref.CITIES[ref.COUNTRIES[c][0]])] for c, p in zip(country, city_pick)]
    facility = [f"{ref.LAST_NAMES[s]} {ref.INSTITUTION_KINDS[k]}, {city}" for s, k, city in zip(surnames, kinds, cities)]
    if institutions is not None and len(institutions.names):
        use_pool = rng.uniform(size=total) < SITES_AT_PORTFOLIO_INSTITUTIONS
        for c in np.unique(country):
            pool = np.flatnonzero(np.asarray(institutions.country) == c)
            rows = np.flatnonzero(use_pool & (country == c))
            if len(pool) == 0 or len(rows) == 0:
                continue
            picks = pool[rng.integers(0, len(pool), len(rows))]
            for row, pick in zip(rows, picks):
                facility[row] = institutions.names[pick]
                cities[row] = institutions.cities[pick]
    return {
        "nct_id": pa.array(nct[trial].tolist(), type=pa.string()),
        "site_number": pa.array(number.astype("int64")),
        "facility": pa.array(facility, type=pa.string()),
        "city": pa.array(cities, type=pa.string()),
        "country": pa.array([ref.COUNTRIES[c][1] for c in country], type=pa.string()),
        "recruitment_status": pa.array([SITE_STATUS[s] for s in status[trial]], type=pa.string()),
    }


def _first_of_month(days: np.ndarray, month_precision: np.ndarray) -> np.ndarray:
    d = np.floor(days).astype("int64").astype("datetime64[D]")
    first = d.astype("datetime64[M]").astype("datetime64[D]")
    return np.where(month_precision, first.astype("int64"), d.astype("int64")).astype("float64")
