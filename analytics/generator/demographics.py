"""Who is enrolled: sex, age, race and ethnicity of screened subjects, and the condition's population.

A study's subjects are drawn around the population with its condition in each site's country
(``reference.CONDITION_POPULATION`` and the country mixes), shifted the way trials usually are:
younger, with fewer Black, American Indian and Hispanic participants than the population. Sites
vary around their country (a Dirichlet race mix, logit-normal sex and ethnicity shares), and some
countries' sites mostly record race as NOT REPORTED. Phase 1 studies enroll healthy volunteers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from analytics.core import schema
from analytics.generator import reference as ref
from analytics.generator.plan import PortfolioPlan

RACE_CODES = np.array([schema.RACES.index(r) for r in ref.RACE_CATEGORIES])
NOT_REPORTED_RACE = schema.RACES.index("NOT REPORTED")
HISPANIC, NOT_HISPANIC, NOT_REPORTED_ETHNICITY = (schema.ETHNICITIES.index(e) for e in (
    "HISPANIC OR LATINO", "NOT HISPANIC OR LATINO", "NOT REPORTED"))
AGE_BOUNDS = (18, 45, 65, 75)  # lower bounds of schema.AGE_GROUPS


@dataclass
class Demographics:
    """Per subject: sex (0 F, 1 M), age (years), race and ethnicity (codes into the schema's terms)."""

    sex: np.ndarray
    age: np.ndarray
    race: np.ndarray
    ethnicity: np.ndarray


def condition_of(plan: PortfolioPlan, study: int) -> ref.ConditionPopulation:
    """The population a study draws from: its condition's, or healthy volunteers' in Phase 1."""
    if plan.study_phase[study] == "Phase 1":
        return ref.HEALTHY_VOLUNTEERS
    return ref.CONDITION_POPULATION[plan.study_indication[study]]


def population_race_mix(condition: ref.ConditionPopulation, country_code: str) -> np.ndarray:
    """Race shares (``reference.RACE_CATEGORIES`` order) of the condition's population in a country."""
    mix = np.asarray(ref.COUNTRY_RACE[country_code], dtype="float64").copy()
    mix[1] *= condition.black_rr
    mix[2] *= condition.asian_rr
    return mix / mix.sum()


def population_hispanic_share(condition: ref.ConditionPopulation, country_code: str) -> float:
    """Share Hispanic or Latino of the condition's population in a country."""
    base = ref.COUNTRY_HISPANIC.get(country_code, 0.01)
    odds = base / (1 - base) * condition.hispanic_rr
    return float(odds / (1 + odds))


def age_group_shares(mean: float, sd: float) -> np.ndarray:
    """Shares of ``schema.AGE_GROUPS`` for a normal age distribution truncated below at 18 years."""
    edges = np.array([*AGE_BOUNDS, np.inf], dtype="float64")
    cdf = ndtr((edges - mean) / sd)
    shares = np.diff(cdf)
    return shares / shares.sum()


def _tilt(shares: np.ndarray, odds: np.ndarray) -> np.ndarray:
    tilted = shares * odds
    return tilted / tilted.sum()


def simulate_demographics(plan: PortfolioPlan, study: int, sites: np.ndarray, subject_site: np.ndarray,
                          rng: np.random.Generator) -> Demographics:
    """Demographics of a study's subjects; ``subject_site`` is each subject's local site index."""
    condition = condition_of(plan, study)
    n_sites, n = len(sites), len(subject_site)
    country = [ref.COUNTRIES[c][0] for c in plan.institution_country[plan.ss_institution[sites]]]
    representation = np.array([ref.TRIAL_REPRESENTATION.get(r, 1.0) for r in ref.RACE_CATEGORIES])

    female_logit = np.log(max(condition.female_share, 1e-3) / max(1 - condition.female_share, 1e-3))
    site_female = 1 / (1 + np.exp(-(female_logit + 0.3 * rng.standard_normal(n_sites))))
    if condition.female_share in (0.0, 1.0):
        site_female[:] = condition.female_share
    sex = (rng.uniform(size=n) >= site_female[subject_site]).astype("int64")

    mean = condition.age_mean + (0.0 if condition is ref.HEALTHY_VOLUNTEERS else ref.TRIAL_AGE_SHIFT_YEARS)
    sd = condition.age_sd * ref.TRIAL_AGE_SD_FACTOR
    site_mean = mean + 2.0 * rng.standard_normal(n_sites)
    age = np.clip(np.round(rng.normal(site_mean[subject_site], sd)), 18, 95).astype("int64")

    race_mix = np.empty((n_sites, len(ref.RACE_CATEGORIES)))
    hispanic = np.empty(n_sites)
    not_recorded = np.empty(n_sites)
    for k, code in enumerate(country):  # per site of one study: tens of rows
        trial_mix = _tilt(population_race_mix(condition, code), representation)
        race_mix[k] = rng.dirichlet(ref.SITE_MIX_CONCENTRATION * trial_mix + 1e-3)
        share = population_hispanic_share(condition, code)
        odds = share / (1 - share) * ref.TRIAL_REPRESENTATION["HISPANIC OR LATINO"]
        hispanic[k] = 1 / (1 + np.exp(-(np.log(odds) + 0.4 * rng.standard_normal())))
        not_recorded[k] = ref.RACE_NOT_RECORDED.get(code, 0.01)
    cumulative = np.cumsum(race_mix, axis=1)[subject_site]
    drawn = (rng.uniform(size=n)[:, None] > cumulative).sum(axis=1)
    race = RACE_CODES[np.minimum(drawn, len(RACE_CODES) - 1)]
    unrecorded = rng.uniform(size=n) < not_recorded[subject_site]
    race = np.where(unrecorded, NOT_REPORTED_RACE, race)
    ethnicity = np.where(rng.uniform(size=n) < hispanic[subject_site], HISPANIC, NOT_HISPANIC)
    ethnicity = np.where(unrecorded, NOT_REPORTED_ETHNICITY, ethnicity)
    return Demographics(sex=sex, age=age, race=race.astype("int64"), ethnicity=ethnicity.astype("int64"))


def condition_population_rows() -> dict[str, list]:
    """Rows of ``main.condition_population``: every condition x country x group of the generator."""
    rows: dict[str, list] = {k: [] for k in ("indication", "country_code", "dimension", "category",
                                              "population_share", "source")}

    def add(indication: str, code: str, dimension: str, categories, shares) -> None:
        for category, share in zip(categories, shares):
            rows["indication"].append(indication)
            rows["country_code"].append(code)
            rows["dimension"].append(dimension)
            rows["category"].append(category)
            rows["population_share"].append(float(share))
            rows["source"].append(ref.POPULATION_SOURCE)

    for indication, condition in ref.CONDITION_POPULATION.items():
        for code, _, _, _ in ref.COUNTRIES:
            add(indication, code, "sex", ("F", "M"), (condition.female_share, 1 - condition.female_share))
            add(indication, code, "age_group", schema.AGE_GROUPS, age_group_shares(condition.age_mean, condition.age_sd))
            add(indication, code, "race", ref.RACE_CATEGORIES, population_race_mix(condition, code))
            hispanic = population_hispanic_share(condition, code)
            add(indication, code, "ethnicity", ("HISPANIC OR LATINO", "NOT HISPANIC OR LATINO"), (hispanic, 1 - hispanic))
    return rows


def diversity_targets(plan: PortfolioPlan, study: int, sites: np.ndarray) -> dict[str, list]:
    """A diversity plan: target shares equal to the condition's population in the study's countries
    (weighted by the sites' planned enrollment), rounded to whole percent; groups under 2% omitted."""
    condition = condition_of(plan, study)
    country = [ref.COUNTRIES[c][0] for c in plan.institution_country[plan.ss_institution[sites]]]
    weights = plan.ss_planned_enrollment[sites].astype("float64")
    weights = weights / weights.sum()
    race = sum(w * population_race_mix(condition, c) for w, c in zip(weights, country))
    hispanic = sum(w * population_hispanic_share(condition, c) for w, c in zip(weights, country))
    groups = {
        "sex": (("F", "M"), (condition.female_share, 1 - condition.female_share)),
        "age_group": (schema.AGE_GROUPS, age_group_shares(condition.age_mean, condition.age_sd)),
        "race": (ref.RACE_CATEGORIES, race),
        "ethnicity": (("HISPANIC OR LATINO", "NOT HISPANIC OR LATINO"), (hispanic, 1 - hispanic)),
    }
    rows: dict[str, list] = {"dimension": [], "category": [], "target_share": []}
    for dimension, (categories, shares) in groups.items():
        for category, share in zip(categories, shares):
            if share >= 0.02:
                rows["dimension"].append(dimension)
                rows["category"].append(category)
                rows["target_share"].append(round(float(share), 2))
    return rows
