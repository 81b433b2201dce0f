"""The trial table every feasibility figure is computed from, and the selection of comparable trials.

One row per historical trial (``historical_trials``, reference data read with
:meth:`~analytics.core.warehouse.Warehouse.reference`), with what the benchmarks need:

* ``duration_months``: start to completion. Completed trials give it as an *event*; trials still
  running at the as-of date (recruiting, active, enrolling by invitation, suspended) are *censored*
  at the as-of date (they have run at least that long), never taken at their anticipated completion;
  terminated trials are censored at the date they stopped (they never completed). Not-yet-recruiting
  and withdrawn trials have no duration; trials of unknown status (the registry's "not verified")
  are left out of durations and counted (:data:`DURATION_EXCLUDED`);
* ``rate``: enrolled participants per site-month, ``enrollment / (sites x recruitment months)``,
  recruitment months from start to primary completion (completion when the record has none), for
  trials that ended (completed or terminated: their enrollment is actual) and list their sites. The
  recruitment period includes the last participant's primary follow-up, so the rate is a lower bound
  of the true recruitment rate, as in every registry-based estimate;
* ``actual_enrollment``: enrollment of ended trials (running trials show an anticipated figure);
* sites and countries as the records list them; the condition group; complexity features.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from analytics.core.caching import cached
from analytics.core.warehouse import Warehouse
from analytics.feasibility import MONTH_DAYS
from analytics.feasibility.complexity import complexity_features
from analytics.feasibility.conditions import condition_groups
from analytics.feasibility.places import country_code

ENDED = ("COMPLETED", "TERMINATED")
RUNNING = ("RECRUITING", "ACTIVE_NOT_RECRUITING", "ENROLLING_BY_INVITATION", "SUSPENDED")
DURATION_EXCLUDED = {"NOT_YET_RECRUITING": "not started", "WITHDRAWN": "withdrawn before enrolling",
                     "UNKNOWN": "status not verified by the sponsor", "NO_LONGER_AVAILABLE": "expanded access",
                     "AVAILABLE": "expanded access", "TEMPORARILY_NOT_AVAILABLE": "expanded access",
                     "APPROVED_FOR_MARKETING": "expanded access", "WITHHELD": "withheld"}
REGISTRY_URL = "https://clinicaltrials.gov/study/{nct}"
SYNTHETIC = "synthetic"
MIN_RECRUITMENT_MONTHS = 1.0  # shorter recruitment periods (date noise) count as one month

TRIAL_SQL = """
SELECT nct_id, title, status, phase, conditions, therapeutic_area, enrollment, start_date, completion_date,
       primary_completion_date, n_sites, countries, data_source, study_type, sponsor, sponsor_class, interventions,
       sex, min_age_years, max_age_years, healthy_volunteers, eligibility_criteria, primary_outcome,
       secondary_outcome, arm_count
FROM historical_trials
ORDER BY nct_id
"""  # in a fixed order: the model's calibration share is drawn by position, so a refit must see the same rows


def lead_sponsor_class(values: pd.Series) -> pd.Series:
    """The lead sponsor's class (classic CSV exports list every funder's class: the first is the lead's)."""
    return values.astype("string").str.split("|").str[0].str.strip().replace("", pd.NA)


def trial_url(nct_id: str, data_source: str | None) -> str | None:
    """The trial's ClinicalTrials.gov page (None for generated trials, which have no page)."""
    return None if data_source == SYNTHETIC else REGISTRY_URL.format(nct=nct_id)


def build_trial_table(raw: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The trial table from ``historical_trials`` rows (see the module docstring)."""
    trials = raw.copy().reset_index(drop=True)
    for column in ("start_date", "completion_date", "primary_completion_date"):
        trials[column] = pd.to_datetime(trials[column])
    as_of_ts = pd.Timestamp(as_of)
    status = trials["status"].astype("string").fillna("UNKNOWN")
    trials["status"] = status
    trials["phase"] = trials["phase"].astype("string").fillna("NA")
    trials["study_type"] = trials["study_type"].astype("string").fillna("INTERVENTIONAL")
    trials["sponsor_class"] = lead_sponsor_class(trials["sponsor_class"]).fillna("UNKNOWN")
    trials["group"] = condition_groups(trials["conditions"], trials["title"])
    trials["start_year"] = trials["start_date"].dt.year.astype("Int64")
    trials["country_list"] = trials["countries"].astype("string").str.split("|").map(
        lambda c: tuple(dict.fromkeys(code for code in (country_code(x) for x in c) if code))
        if isinstance(c, list) else ())
    trials["n_countries"] = trials["country_list"].map(len).astype(float).where(trials["n_sites"].notna())
    trials["n_sites"] = pd.to_numeric(trials["n_sites"], errors="coerce").astype(float)
    trials["enrollment"] = pd.to_numeric(trials["enrollment"], errors="coerce").astype(float)

    started = trials["start_date"].notna() & (trials["start_date"] <= as_of_ts)
    # Potential follow-up: how long a trial could have run by the as-of date (the censoring time).
    trials["follow_up_months"] = ((as_of_ts - trials["start_date"]).dt.days / MONTH_DAYS).where(started)
    ended = status.isin(ENDED) & trials["completion_date"].notna() & started
    running = status.isin(RUNNING) & started
    completed = (status == "COMPLETED") & ended
    end = trials["completion_date"].where(ended, as_of_ts).where(ended | running)
    months = (end - trials["start_date"]).dt.days / MONTH_DAYS
    trials["duration_months"] = months.where(months > 0)
    trials["completed"] = completed & trials["duration_months"].notna()
    trials["censored"] = (ended | running) & ~completed & trials["duration_months"].notna()

    recruitment_end = trials["primary_completion_date"].fillna(trials["completion_date"])
    recruitment = ((recruitment_end - trials["start_date"]).dt.days / MONTH_DAYS).clip(lower=MIN_RECRUITMENT_MONTHS)
    has_rate = ended & (trials["n_sites"] >= 1) & (trials["enrollment"] > 0) & recruitment.notna()
    trials["recruitment_months"] = recruitment.where(has_rate)
    trials["rate"] = (trials["enrollment"] / (trials["n_sites"] * recruitment)).where(has_rate)
    trials["actual_enrollment"] = trials["enrollment"].where(ended & (trials["enrollment"] > 0))
    trials["url"] = [trial_url(n, s) for n, s in zip(trials["nct_id"], trials["data_source"])]
    features = complexity_features(trials)
    # The features replace the raw columns they read (healthy_volunteers becomes 0/1).
    return pd.concat([trials.drop(columns=["eligibility_criteria", *features.columns.intersection(trials.columns)]),
                      features], axis=1)


@cached
def trial_table(wh: Warehouse) -> pd.DataFrame:
    """Every historical trial of the warehouse with its measures (reference data: no access scope)."""
    return build_trial_table(wh.reference(TRIAL_SQL), wh.as_of())


@dataclass(frozen=True)
class TrialSelection:
    """The page's filters: which historical trials are comparable (empty = no narrowing)."""

    source: str | None = None  # data_source
    study_type: str | None = None
    phases: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    condition: str | None = None  # free text, matched in conditions and titles (case-insensitive)
    countries: tuple[str, ...] = ()  # alpha-2 codes: any site in any of them
    sponsor_classes: tuple[str, ...] = ()
    start_from: int | None = None  # start year, inclusive
    start_to: int | None = None
    statuses: tuple[str, ...] = ()

    def describe(self) -> list[tuple[str, str]]:
        """(filter, value) pairs of what narrows the selection, for summaries."""
        labels = {"source": "Source", "study_type": "Study type", "phases": "Phase", "groups": "Condition group",
                  "condition": "Condition contains", "countries": "Countries", "sponsor_classes": "Sponsor class",
                  "start_from": "Start year from", "start_to": "Start year to", "statuses": "Status"}
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, (), ""):
                continue
            out.append((labels[f.name], ", ".join(value) if isinstance(value, tuple) else str(value)))
        return out


def select(trials: pd.DataFrame, selection: TrialSelection) -> pd.DataFrame:
    """The comparable trials: rows of ``trials`` that every filter of ``selection`` keeps."""
    keep = np.ones(len(trials), dtype=bool)
    if selection.source:
        keep &= (trials["data_source"] == selection.source).to_numpy()
    if selection.study_type:
        keep &= (trials["study_type"] == selection.study_type).to_numpy()
    if selection.phases:
        keep &= trials["phase"].isin(selection.phases).to_numpy()
    if selection.groups:
        keep &= trials["group"].isin(selection.groups).to_numpy()
    if selection.condition:
        needle = selection.condition.strip().lower()
        text = (trials["conditions"].astype("string").fillna("") + " " + trials["title"].astype("string").fillna(""))
        keep &= text.str.lower().str.contains(needle, regex=False).fillna(False).to_numpy(dtype=bool)
    if selection.countries:
        wanted = set(selection.countries)
        keep &= trials["country_list"].map(lambda c: bool(wanted.intersection(c))).to_numpy(dtype=bool)
    if selection.sponsor_classes:
        keep &= trials["sponsor_class"].isin(selection.sponsor_classes).to_numpy()
    years = trials["start_year"]
    if selection.start_from is not None:
        keep &= (years >= selection.start_from).fillna(False).to_numpy(dtype=bool)
    if selection.start_to is not None:
        keep &= (years <= selection.start_to).fillna(False).to_numpy(dtype=bool)
    if selection.statuses:
        keep &= trials["status"].isin(selection.statuses).to_numpy()
    return trials.loc[keep]
