"""Who is enrolled: randomized subjects per demographic group against the diversity plan and the
condition's population, per study, country and site, with the forecast of where each group ends.

Groups are ``sex``, ``age_group`` (``schema.AGE_GROUPS`` from the age at consent), CDISC ``race`` and
``ethnicity``. The population share of a country is its row of ``main.condition_population`` for the
study's indication; a study's (or a level's) population share weights its countries by their
randomized subjects. The forecast of the end: the subjects still needed are spread over sites by
their expected share of the remaining randomizations (the Poisson-Gamma site forecast), and each
site's group mix is its Dirichlet posterior (its own subjects plus ``PRIOR_SUBJECTS`` pseudo-subjects
at the study's mix); simulations give the final counts' median and 80% interval, and the chance
that the final share meets the target share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.core.schema import AGE_GROUPS, DEMOGRAPHIC_DIMENSIONS

AGE_LOWER_BOUNDS = (18, 45, 65, 75)
NOT_REPORTED = "Not reported"
PRIOR_SUBJECTS = 10.0
GROUP_SIMS = 1_000


def age_group(age: pd.Series) -> pd.Series:
    """``schema.AGE_GROUPS`` label of each age (years); under 18 or missing is empty."""
    age = pd.to_numeric(age, errors="coerce")
    index = np.searchsorted(np.array(AGE_LOWER_BOUNDS), age.to_numpy(float), side="right") - 1
    labels = np.array(AGE_GROUPS, dtype=object)[np.clip(index, 0, len(AGE_GROUPS) - 1)]
    return pd.Series(np.where((index >= 0) & age.notna().to_numpy(), labels, None), index=age.index, dtype="object")


def group_long(subjects: pd.DataFrame) -> pd.DataFrame:
    """Randomized subjects in long form: ``study_id``, ``study_site_id``, ``country_code``, ``dimension``, ``category``."""
    randomized = subjects[subjects["randomization_date"].notna()].copy()
    randomized["age_group"] = age_group(randomized["age"])
    keys = ["study_id", "study_site_id", "country_code"]
    long = randomized.melt(id_vars=keys, value_vars=list(DEMOGRAPHIC_DIMENSIONS), var_name="dimension",
                           value_name="category")
    # A subject whose sex, age, race or ethnicity the data leave out still counts, as "Not reported",
    # so each dimension adds up to the randomized total.
    long["category"] = long["category"].astype("object").where(long["category"].notna(), NOT_REPORTED)
    return long


def _population(population: pd.DataFrame, indication: str, weights: pd.Series) -> pd.DataFrame:
    """Population share per (dimension, category) for countries weighted by ``weights`` (index: country)."""
    rows = population[population["indication"] == indication]
    if rows.empty or weights.sum() == 0:
        return pd.DataFrame(columns=["dimension", "category", "population_share"])
    w = (weights / weights.sum()).rename("weight")
    merged = rows.merge(w, left_on="country_code", right_index=True)
    merged["weighted"] = merged["population_share"] * merged["weight"]
    return merged.groupby(["dimension", "category"], as_index=False)["weighted"].sum().rename(
        columns={"weighted": "population_share"})


def _site_mix_posterior(counts: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draws (n x sites x groups) of each site's group probabilities: Dirichlet(site counts + prior at the study mix)."""
    study_mix = (counts.sum(axis=0) + 0.5) / (counts.sum() + 0.5 * counts.shape[1])
    concentration = counts + PRIOR_SUBJECTS * study_mix[None, :]
    gammas = rng.standard_gamma(np.broadcast_to(concentration, (n, *concentration.shape)))
    return gammas / gammas.sum(axis=2, keepdims=True)


def enrollment_by_group(subjects: pd.DataFrame, study: pd.Series, targets: pd.DataFrame, population: pd.DataFrame,
                        site_forecast: pd.DataFrame | None, remaining: int, seed: int = 0) -> pd.DataFrame:
    """One study's randomized subjects per group at study, country and site level, with the forecast end.

    Args:
        subjects: the study's screened subjects (:func:`~analytics.enrollment.data.read_subjects`).
        study: the study's row (``study_id``, ``indication``).
        targets: the study's diversity plan rows (``dimension``, ``category``, ``target_share``).
        population: ``main.condition_population`` rows.
        site_forecast: the Poisson-Gamma site forecast (``study_site_id``, ``share_of_remaining``);
            None when enrollment is complete or cannot be forecast (the end is then today's counts).
        remaining: randomizations still needed (count).
    """
    rng = np.random.default_rng(seed)
    long = group_long(subjects)
    site_country = subjects.drop_duplicates("study_site_id").set_index("study_site_id")["country_code"]
    if site_forecast is not None and len(site_forecast):
        site_country = pd.concat([site_country, site_forecast.set_index("study_site_id")["country_code"]])
        site_country = site_country[~site_country.index.duplicated()]
    sites = site_country.index.to_numpy()
    frames = []
    for dimension in DEMOGRAPHIC_DIMENSIONS:
        part = long[long["dimension"] == dimension]
        planned = targets[targets["dimension"] == dimension]
        categories = sorted(set(part["category"]) | set(planned["category"]))
        if not categories:
            continue
        counts = (part.groupby(["study_site_id", "category"]).size().unstack(fill_value=0)
                  .reindex(index=sites, columns=categories, fill_value=0))
        current = counts.to_numpy(float)
        future = np.zeros((GROUP_SIMS, len(sites), len(categories)))
        if site_forecast is not None and remaining > 0 and len(site_forecast):
            share = site_forecast.set_index("study_site_id")["share_of_remaining"].reindex(sites).fillna(0).to_numpy()
            if share.sum() > 0:
                allocation = rng.multinomial(remaining, share / share.sum(), size=GROUP_SIMS)  # sims x sites
                mix = _site_mix_posterior(current, rng, GROUP_SIMS)
                future = allocation[:, :, None] * mix
        final = current[None, :, :] + future
        levels = {"study": {study["study_id"]: np.ones(len(sites), bool)}, "country": {}, "site": {}}
        for code in pd.unique(site_country.dropna()):
            levels["country"][code] = (site_country == code).to_numpy()
        for k, site in enumerate(sites):
            levels["site"][site] = np.arange(len(sites)) == k
        target_share = planned.set_index("category")["target_share"]
        for level, members in levels.items():
            for level_id, mask in members.items():
                now = current[mask].sum(axis=0)
                total_now = now.sum()
                end = final[:, mask, :].sum(axis=1)  # sims x categories
                end_total = end.sum(axis=1, keepdims=True)
                end_share = np.divide(end, end_total, out=np.zeros_like(end), where=end_total > 0)
                country_weights = (part[part["study_site_id"].isin(sites[mask])].groupby("country_code").size())
                pop = _population(population, study.get("indication"), country_weights).set_index("category")
                pop = pop[pop["dimension"] == dimension]["population_share"] if len(pop) else pd.Series(dtype=float)
                for c, category in enumerate(categories):
                    t = target_share.get(category, np.nan)
                    frames.append({
                        "study_id": study["study_id"], "level": level, "level_id": level_id, "dimension": dimension,
                        "category": category, "randomized": int(now[c]),
                        "share": now[c] / total_now if total_now > 0 else np.nan,
                        "target_share": t, "population_share": pop.get(category, np.nan),
                        "forecast_count_p50": float(np.median(end[:, c])),
                        "forecast_count_p10": float(np.quantile(end[:, c], 0.1)),
                        "forecast_count_p90": float(np.quantile(end[:, c], 0.9)),
                        "forecast_share_p50": float(np.median(end_share[:, c])),
                        "p_meets_target": float(np.mean(end_share[:, c] >= t)) if pd.notna(t) else np.nan,
                    })
    return pd.DataFrame(frames)
