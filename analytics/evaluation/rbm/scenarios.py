"""The AE under-reporting scenarios: declarative specs, the AE processes they simulate, the injections.

Every scenario starts from a generated portfolio (realistic site sizes, staggered activation, late
enrollment, discontinuations) or from simaerep's public simulator (:mod:`.simaerep_setups`). A
*misspecified* scenario keeps the generator's patients and their time on treatment but replaces
its adverse events with a process the engine does not assume: a larger between-site spread,
log-normal or zero-inflated patient frailty, country clusters. Under-reporting is then injected by
this module, never by the generator: at a share of each study's clean sites, events are removed
with probability 50%, 75% or 100% (all events, only those after a site-specific start date, or
only non-serious ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.evaluation.rbm.portfolio import AEData, Events, Portfolio

REMOVAL_LEVELS = (0.5, 0.75, 1.0)
LOGNORMAL_FRAILTY_SD = float(np.sqrt(np.log(1.5)))  # same coefficient of variation (0.71) as Gamma(2)
ZERO_SHARE = 0.10  # zero-inflated frailty: share of patients who never have an AE


@dataclass(frozen=True)
class AEScenario:
    """One AE under-reporting scenario.

    Attributes:
        name: key in the evaluation JSON (``scenarios/<name>``).
        description: what differs from the generator, in words.
        source: ``generator`` (the generator's own AEs), ``resimulated`` (the generator's patients,
            AEs from the process below), ``simaerep_portfolio`` (simaerep's simulator, portfolio stand-in).
        frailty: patient frailty of re-simulated AEs: ``gamma`` (shape 2, as the generator),
            ``lognormal`` (same CV) or ``zero_inflated`` (10% never have an AE, the rest Gamma).
        site_sd: SD of the log-normal site effect on the AE rate.
        country_sd: SD of a log-normal country effect shared by a country's sites (clustering).
        injection: ``uniform`` (every event), ``mid_study`` (events after a site-specific start in the
            middle of the site's time) or ``non_serious`` (serious events are kept).
        prevalence: range of the share of each study's clean sites injected per replicate.
        full_catalogue: score every KRI (default flags as a monitor sees them), not only AE and SAE.
    """

    name: str
    description: str
    source: str = "resimulated"
    frailty: str = "gamma"
    site_sd: float = 0.15
    country_sd: float = 0.0
    injection: str = "uniform"
    prevalence: tuple[float, float] = (0.10, 0.10)
    full_catalogue: bool = False


SCENARIOS: tuple[AEScenario, ...] = (
    AEScenario("generator", "the generator's own AEs (Gamma frailty, site SD 0.15), every KRI scored, "
               "10% of clean sites injected", source="generator", full_catalogue=True),
    AEScenario("site_sd_0.15", "re-simulated AEs as the generator makes them (site SD 0.15)"),
    AEScenario("site_sd_0.30", "between-site SD 0.30", site_sd=0.30),
    AEScenario("site_sd_0.50", "between-site SD 0.50", site_sd=0.50),
    AEScenario("lognormal_frailty", "log-normal patient frailty (CV 0.71), site SD 0.30", frailty="lognormal",
               site_sd=0.30),
    AEScenario("zero_inflated", "10% of patients never have an AE, site SD 0.30", frailty="zero_inflated",
               site_sd=0.30),
    AEScenario("review_misspecified", "the review's set-up: site SD 0.40, log-normal frailty, 10% of patients "
               "without AEs", frailty="lognormal_zero_inflated", site_sd=0.40),
    AEScenario("country_clusters", "country effect SD 0.30 shared by a country's sites, site SD 0.15",
               country_sd=0.30),
    AEScenario("mid_study_onset", "under-reporting starts in the middle of the site's time (25-75% through)",
               injection="mid_study"),
    AEScenario("non_serious_only", "only non-serious AEs are removed", injection="non_serious"),
    AEScenario("prevalence_2_5pct", "2-5% of each study's sites under-report", prevalence=(0.02, 0.05)),
    AEScenario("simaerep_portfolio", "simaerep's simulator as a stand-in for its performance article's "
               "portfolio: 20-150 sites, 5-30 patients per site, visit-varying rates, ongoing studies, 5% of "
               "sites under-report at a time", source="simaerep_portfolio", prevalence=(0.05, 0.05)),
)
SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}


def _frailty(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Mean-one patient frailties of the given kind."""
    if kind == "gamma":
        return rng.gamma(2.0, 0.5, n)
    if kind.startswith("lognormal"):
        value = np.exp(LOGNORMAL_FRAILTY_SD * rng.standard_normal(n) - LOGNORMAL_FRAILTY_SD**2 / 2)
    elif kind == "zero_inflated":
        value = rng.gamma(2.0, 0.5, n)
    else:
        raise ValueError(f"unknown frailty {kind!r}")
    if kind.endswith("zero_inflated"):
        value = np.where(rng.uniform(size=n) < ZERO_SHARE, 0.0, value / (1 - ZERO_SHARE))
    return value


def simulate_events(portfolio: Portfolio, scenario: AEScenario, rng: np.random.Generator) -> Events:
    """New AEs for the portfolio's patients under ``scenario``'s process (same hazard shape and study rates).

    Events are front-loaded as the generator's (its unit cumulative hazard), at the study's rate
    measured on the generator's own events, with the scenario's patient frailty, site and country
    effects; seriousness at the study's share; every event is reported by the as-of date.
    """
    from analytics.generator.clinical import ae_cumulative_hazard

    patients = portfolio.data.patients
    exposure = patients["days_on_treatment"].to_numpy(dtype="float64")
    site_codes, site_of = np.unique(patients["study_site_id"].to_numpy(), return_inverse=True)
    country_codes, country_of_site = np.unique(
        patients.groupby("study_site_id")["country_code"].first().reindex(site_codes).fillna("").to_numpy(),
        return_inverse=True)
    site_effect = np.exp(scenario.site_sd * rng.standard_normal(len(site_codes)) - scenario.site_sd**2 / 2)
    country_effect = np.exp(scenario.country_sd * rng.standard_normal(len(country_codes)) - scenario.country_sd**2 / 2)
    rate = patients["study_id"].map(portfolio.ae_rate).fillna(0.0).to_numpy()
    mean = (rate * _frailty(scenario.frailty, len(patients), rng) * site_effect[site_of]
            * country_effect[country_of_site][site_of] * ae_cumulative_hazard(exposure))
    counts = rng.poisson(np.where(exposure > 0, mean, 0.0))
    patient = np.repeat(np.arange(len(patients)), counts)
    grid = np.arange(0, max(float(exposure.max(initial=0)), 1.0) + 2)
    u = rng.uniform(size=len(patient)) * ae_cumulative_hazard(exposure[patient])
    day = np.floor(np.interp(u, ae_cumulative_hazard(grid), grid))
    day = np.minimum(day, np.maximum(exposure[patient] - 1, 0))
    serious = rng.uniform(size=len(patient)) < patients["study_id"].map(portfolio.sae_share).fillna(0.1).to_numpy()[patient]
    days_since = patients["days_since_randomization"].to_numpy(dtype="float64")
    calendar = day - days_since[patient]
    return Events(patient, day, serious, calendar)


def eligible_sites(data: AEData, truth: pd.DataFrame | None) -> pd.DataFrame:
    """Sites that can be injected or count as clean: a randomized patient, no generator label."""
    frame = data.patients
    sites = frame.groupby("study_site_id").agg(study_id=("study_id", "first"), randomized=("randomized", "sum"))
    sites = sites[sites["randomized"] > 0]
    if truth is not None and len(truth):
        sites = sites[~sites.index.isin(truth["study_site_id"])]
    return sites.reset_index()


def choose_injections(sites: pd.DataFrame, scenario: AEScenario, replicates: int,
                      rng: np.random.Generator) -> list[pd.Series]:
    """For each replicate, the injected sites and their removal level (index: study_site_id).

    Within each study the sites are shuffled and consecutive slices of the scenario's prevalence go
    to consecutive replicates, so a site is injected at most once per seed (while sites last).
    """
    out: list[dict[str, float]] = [dict() for _ in range(replicates)]
    for _, block in sites.groupby("study_id"):
        ids = rng.permutation(block["study_site_id"].to_numpy())
        per = rng.uniform(*scenario.prevalence) * len(ids)
        offset = rng.uniform()  # stochastic rounding: a small study gets a site in some replicates
        for r in range(replicates):
            for i in range(int(np.floor(r * per + offset)), int(np.floor((r + 1) * per + offset))):
                out[r][ids[i % len(ids)]] = float(rng.choice(REMOVAL_LEVELS))
    return [pd.Series(levels, dtype="float64") for levels in out]


def inject(data: AEData, levels: pd.Series, scenario: AEScenario, rng: np.random.Generator) -> Events:
    """The events left after removing each injected site's share (``levels``: study_site_id -> share)."""
    events = data.events
    site = data.patients["study_site_id"].to_numpy()[events.patient]
    removal = pd.Series(site).map(levels).fillna(0.0).to_numpy()
    at_risk = removal > 0
    if scenario.injection == "non_serious":
        at_risk &= ~events.serious
    elif scenario.injection == "mid_study":
        # Each injected site stops reporting fully at a point 25-75% through its time so far.
        first = (-data.patients["days_since_randomization"]).groupby(data.patients["study_site_id"]).min()
        start_share = pd.Series(rng.uniform(0.25, 0.75, len(levels)), index=levels.index)
        start_day = first.reindex(levels.index) * (1 - start_share)  # calendar day, <= 0
        at_risk &= events.calendar_day >= pd.Series(site).map(start_day).fillna(np.inf).to_numpy()
    elif scenario.injection != "uniform":
        raise ValueError(f"unknown injection {scenario.injection!r}")
    removed = at_risk & (rng.uniform(size=len(events)) < removal)
    return events.subset(~removed)
