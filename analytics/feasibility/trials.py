"""The trial table every feasibility figure is computed from, and the selection of comparable trials.

One row per historical trial (``historical_trials``, reference data read with
:meth:`~analytics.core.warehouse.Warehouse.reference`), with what the benchmarks need:

* ``duration_months``: start to completion. Completed trials give it as an *event*; trials still
  running at the as-of date (recruiting, active, enrolling by invitation, suspended) are *censored*
  at the as-of date (they have run at least that long), never taken at their anticipated completion,
  or at the record's last update when that is earlier (:func:`observed_until`); terminated trials are
  censored at the date they stopped (they never completed). Not-yet-recruiting
  and withdrawn trials have no duration; trials of unknown status (the registry's "not verified":
  running when last verified, more than two years before) are censored at their record's last
  update like stale running records (:data:`UNKNOWN_RULES`; left out and counted when the record
  carries no last update, :data:`DURATION_EXCLUDED`). ``still_running`` marks the trials censored
  while running (running or unverified), ``censored`` those and the terminated ones;
* the as-of date bounds what is known: each record's own (``as_of_date``: the date of the export
  it came from, ``historical_trials.export_as_of``; exports downloaded on different days know
  different things), the warehouse's for records loaded before exports were dated
  (:func:`record_as_of`), or one date for all where a caller gives one;
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
                     "UNKNOWN": "status not verified and no last update", "NO_LONGER_AVAILABLE": "expanded access",
                     "AVAILABLE": "expanded access", "TEMPORARILY_NOT_AVAILABLE": "expanded access",
                     "APPROVED_FOR_MARKETING": "expanded access", "WITHHELD": "withheld"}
REGISTRY_URL = "https://clinicaltrials.gov/study/{nct}"
SYNTHETIC = "synthetic"
MIN_RECRUITMENT_MONTHS = 1.0  # shorter recruitment periods (date noise) count as one month

TRIAL_SQL = """
SELECT nct_id, title, status, phase, conditions, therapeutic_area, enrollment, start_date, completion_date,
       primary_completion_date, n_sites, countries, data_source, study_type, sponsor, sponsor_class, interventions,
       sex, min_age_years, max_age_years, healthy_volunteers, eligibility_criteria, primary_outcome,
       secondary_outcome, arm_count, last_update_date, export_file, export_as_of
FROM historical_trials
ORDER BY nct_id
"""  # in a fixed order: the model's calibration share is drawn by position, so a refit must see the same rows


def lead_sponsor_class(values: pd.Series) -> pd.Series:
    """The lead sponsor's class (classic CSV exports list every funder's class: the first is the lead's)."""
    return values.astype("string").str.split("|").str[0].str.strip().replace("", pd.NA)


def trial_url(nct_id: str, data_source: str | None) -> str | None:
    """The trial's ClinicalTrials.gov page (None for generated trials, which have no page)."""
    return None if data_source == SYNTHETIC else REGISTRY_URL.format(nct=nct_id)


def observed_until(last_update: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Until when a record's status is known: its last update, or the as-of date when that is earlier or unknown.

    A registry record says what was true when it was last updated. A trial still listed as running
    whose record stopped being updated years ago (ClinicalTrials.gov shows "unknown status" only
    once the status has gone two years unverified) is known to have run until that update, not until
    the as-of date. Censoring it there is what the record supports; excluding it would drop trials
    that had run at least that long, the bias that dropping running trials has. A record long past
    its own anticipated completion is censored the same way: the anticipated date is the sponsor's
    forecast, not an observation (generated calibration seeds: ``eval feasibility --calibrate``).
    """
    updated = pd.to_datetime(last_update)
    return updated.where(updated.notna() & (updated < as_of), as_of)


def record_as_of(raw: pd.DataFrame, warehouse_as_of: dt.date) -> pd.Series:
    """Each record's as-of date: its export's (``export_as_of``), else the warehouse's.

    A record says nothing after its export was downloaded, so two exports imported into one warehouse
    keep their own dates. Records loaded before exports were dated (schema 12) carry none: they are
    read as of the warehouse's date, as before, until their export is imported again.
    """
    fallback = pd.Timestamp(warehouse_as_of)
    if "export_as_of" not in raw:
        return pd.Series(fallback, index=raw.index)
    return pd.to_datetime(raw["export_as_of"]).fillna(fallback)


def as_of_label(dates: pd.Series) -> str:
    """How a page names the as-of date(s) of some trials: one date, or the range when exports differ."""
    days = pd.to_datetime(dates).dropna()
    if days.empty:
        return "no date"
    first, last = days.min(), days.max()
    if first == last:
        return f"as of {last:%d %b %Y}"
    return f"as of each record's export ({first:%d %b %Y} to {last:%d %b %Y})"


STALE_RULES = ("censor", "exclude", "as_of")  # running records past their anticipated completion, not updated since
UNKNOWN_RULES = ("censor", "exclude")  # records of unknown status: censored at their last update, or left out


def build_trial_table(raw: pd.DataFrame, as_of: dt.date | pd.Series, stale_rule: str = "censor",
                      unknown_rule: str = "censor") -> pd.DataFrame:
    """The trial table from ``historical_trials`` rows (see the module docstring).

    ``as_of``: the date up to which the records are known, one for all or one per row of ``raw``
    (each record's export date).
    ``stale_rule`` (compared on calibration seeds only): what a running record whose anticipated
    completion has passed since its last update gives: ``censor`` at the last update (the default,
    :func:`observed_until`), ``exclude`` it from durations, or censor it at the ``as_of`` date
    (every record read as current, as before the registry's last update was stored).
    ``unknown_rule`` (calibration seeds too): a record of unknown status with a last update is
    ``censor``-ed there as a running trial (the default), or ``exclude``-d from durations.
    """
    trials = raw.copy().reset_index(drop=True)
    for column in ("last_update_date", "export_as_of"):  # rows from before the registry (or exports) carried them
        if column not in trials:
            trials[column] = pd.NaT
    if "export_file" not in trials:
        trials["export_file"] = pd.Series(pd.NA, index=trials.index, dtype="string")
    for column in ("start_date", "completion_date", "primary_completion_date", "last_update_date"):
        trials[column] = pd.to_datetime(trials[column])
    as_of_ts = (pd.Series(pd.to_datetime(as_of).to_numpy(), index=trials.index) if isinstance(as_of, pd.Series)
                else pd.Series(pd.Timestamp(as_of), index=trials.index))
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
    ended = status.isin(ENDED) & trials["completion_date"].notna() & started
    running = status.isin(RUNNING) & started
    # Unknown status: running when last verified; what the record says holds until its last update.
    unverified = (status == "UNKNOWN") & started & trials["last_update_date"].notna()
    if unknown_rule == "censor":
        running |= unverified
    completed = (status == "COMPLETED") & ended
    # A running trial is known up to its record's last update; an ended one could have run to the as-of date.
    observed = observed_until(trials["last_update_date"], as_of_ts).where(running, as_of_ts)
    overdue = running & (trials["last_update_date"] < trials["completion_date"]) & (trials["completion_date"] < as_of_ts)
    if stale_rule == "as_of":
        observed = as_of_ts.copy()
    elif stale_rule == "exclude":
        running &= ~overdue
    # Potential follow-up: how long a trial could have been seen to run (the censoring time).
    trials["follow_up_months"] = ((observed - trials["start_date"]).dt.days / MONTH_DAYS).where(started)
    end = trials["completion_date"].where(ended, observed).where(ended | running)
    months = (end - trials["start_date"]).dt.days / MONTH_DAYS
    trials["duration_months"] = months.where(months > 0)
    trials["completed"] = completed & trials["duration_months"].notna()
    trials["censored"] = (ended | running) & ~completed & trials["duration_months"].notna()
    trials["still_running"] = running & trials["duration_months"].notna()

    recruitment_end = trials["primary_completion_date"].fillna(trials["completion_date"])
    recruitment = ((recruitment_end - trials["start_date"]).dt.days / MONTH_DAYS).clip(lower=MIN_RECRUITMENT_MONTHS)
    has_rate = ended & (trials["n_sites"] >= 1) & (trials["enrollment"] > 0) & recruitment.notna()
    trials["recruitment_months"] = recruitment.where(has_rate)
    trials["rate"] = (trials["enrollment"] / (trials["n_sites"] * recruitment)).where(has_rate)
    trials["actual_enrollment"] = trials["enrollment"].where(ended & (trials["enrollment"] > 0))
    trials["as_of_date"] = as_of_ts
    trials["url"] = [trial_url(n, s) for n, s in zip(trials["nct_id"], trials["data_source"])]
    features = complexity_features(trials)
    # The features replace the raw columns they read (healthy_volunteers becomes 0/1).
    return pd.concat([trials.drop(columns=["eligibility_criteria", *features.columns.intersection(trials.columns)]),
                      features], axis=1)


def stored_trial_table(raw: pd.DataFrame, warehouse_as_of: dt.date) -> pd.DataFrame:
    """The trial table of ``historical_trials`` rows as the warehouse stores them (:data:`TRIAL_SQL`):
    each record known up to its own export's date (:func:`record_as_of`). What the page's benchmarks,
    Kaplan-Meier curves and the stored model all read."""
    return build_trial_table(raw, record_as_of(raw, warehouse_as_of))


@cached
def trial_table(wh: Warehouse) -> pd.DataFrame:
    """Every historical trial of the warehouse with its measures (reference data: no access scope)."""
    return stored_trial_table(wh.reference(TRIAL_SQL), wh.as_of())


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
