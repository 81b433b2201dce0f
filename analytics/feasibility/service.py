"""What the Feasibility page reads, cached: choices for its filters, benchmarks, competition, the stored model.

Historical trials are reference data (no access scope); the candidate sites and the portfolio's
screen-failure history are trial data and go through the user's scope.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import streamlit as st

from analytics.core import derived
from analytics.core.caching import cached
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.core.warehouse import Warehouse
from analytics.feasibility.benchmarks import KaplanMeier, benchmark_table, kaplan_meier, measure_trials, \
    MEASURES_BY_KEY
from analytics.feasibility.competition import by_candidate_site, by_country, competing_sites, competing_trials
from analytics.feasibility.conditions import GROUP_NAMES, condition_group
from analytics.feasibility.model import FEATURES, TARGETS, feature_frame
from analytics.feasibility.places import country_name
from analytics.feasibility.results import FEASIBILITY_MODEL_RESULT, load_model, reader_fingerprint
from analytics.feasibility.scenario import ScenarioInputs, ScenarioResult, run_scenario
from analytics.feasibility.trials import SYNTHETIC, TrialSelection, as_of_label, select, trial_table

SOURCE_LABELS = {"ctgov": "ClinicalTrials.gov records", SYNTHETIC: "Generated history (synthetic)"}
DEFAULT_SCREEN_FAILURE = 0.25  # when no visible study of the condition group has screening data


# --- choices for the page's parameters -----------------------------------------------------------


def source_choices(wh: Warehouse) -> dict[str, str]:
    """Data sources present, real records first (they are the benchmark when imported)."""
    present = set(trial_table(wh)["data_source"].dropna())
    return {s: SOURCE_LABELS.get(s, s) for s in sorted(present, key=lambda s: (s == SYNTHETIC, s))}


def _values(wh: Warehouse, column: str) -> list[str]:
    return sorted(str(v) for v in trial_table(wh)[column].dropna().unique())


def study_type_choices(wh: Warehouse) -> dict[str, str]:
    return {v: v.replace("_", " ").capitalize() for v in _values(wh, "study_type")}


def phase_choices(wh: Warehouse) -> dict[str, str]:
    return {v: v.replace("EARLY_PHASE1", "Early Phase 1").replace("PHASE", "Phase ").replace("|", " / ")
            .replace("NA", "Not applicable") for v in _values(wh, "phase")}


def group_choices(wh: Warehouse) -> dict[str, str]:
    present = set(trial_table(wh)["group"].dropna())
    return {g: g for g in GROUP_NAMES if g in present}


def country_choices(wh: Warehouse) -> dict[str, str]:
    codes = {c for cs in trial_table(wh)["country_list"] for c in cs}
    return dict(sorted(((c, country_name(c)) for c in codes), key=lambda kv: kv[1]))


def sponsor_class_choices(wh: Warehouse) -> dict[str, str]:
    return {v: v.replace("_", " ").title().replace("Nih", "NIH").replace("Fed", "US federal")
            for v in _values(wh, "sponsor_class")}


def year_choices(wh: Warehouse) -> dict[str, str]:
    years = trial_table(wh)["start_year"].dropna().astype(int)
    return {str(y): str(y) for y in range(int(years.min()), int(years.max()) + 1)} if len(years) else {}


def status_choices(wh: Warehouse) -> dict[str, str]:
    return {v: v.replace("_", " ").capitalize() for v in _values(wh, "status")}


def selection_from(params: Mapping[str, object]) -> TrialSelection:
    """The page's validated parameters as a :class:`TrialSelection`."""
    def year(name: str) -> int | None:
        value = params.get(name)
        return int(value) if value else None

    return TrialSelection(
        source=params.get("source") or None, study_type=params.get("study_type") or None,
        phases=tuple(params.get("phase") or ()), groups=tuple(params.get("group") or ()),
        condition=params.get("condition") or None, countries=tuple(params.get("countries") or ()),
        sponsor_classes=tuple(params.get("sponsor_class") or ()), start_from=year("from_year"),
        start_to=year("to_year"), statuses=tuple(params.get("status") or ()))


# --- benchmarks ------------------------------------------------------------------------------------


@cached
def source_as_of(wh: Warehouse, source: str | None) -> tuple[str, int]:
    """How the page names the as-of date(s) of a source's trials, and how many of its records carry no
    export date (loaded before exports were dated: read as of the warehouse's date)."""
    trials = trial_table(wh)
    chosen = trials[trials["data_source"] == source]
    return as_of_label(chosen["as_of_date"]), int(chosen["export_as_of"].isna().sum())



@cached
def comparable(wh: Warehouse, selection: TrialSelection) -> pd.DataFrame:
    return select(trial_table(wh), selection)


@cached
def benchmarks(wh: Warehouse, selection: TrialSelection) -> pd.DataFrame:
    return benchmark_table(comparable(wh, selection))


@cached
def duration_curve(wh: Warehouse, selection: TrialSelection) -> KaplanMeier | None:
    behind = measure_trials(comparable(wh, selection), MEASURES_BY_KEY["duration"])
    return kaplan_meier(behind["duration_months"], behind["completed"])


# --- competition -----------------------------------------------------------------------------------


@cached
def candidate_sites(wh: Warehouse, scope: AccessScope, countries: tuple[str, ...]) -> pd.DataFrame:
    """The portfolio's institutions the user may see, in ``countries`` (all when none)."""
    sql = ("SELECT site_id, name, city, country_code FROM sites "
           "WHERE len($countries) = 0 OR list_contains($countries, country_code) ORDER BY name")
    return wh.query(scope, sql, {"countries": list(countries)}, NO_FILTER)


@cached
def competition(wh: Warehouse, scope: AccessScope, selection: TrialSelection) -> dict[str, pd.DataFrame]:
    """Competing trials, per country and per candidate site (see :mod:`analytics.feasibility.competition`)."""
    trials = competing_trials(trial_table(wh), selection)
    sites = wh.reference("SELECT nct_id, facility, city, country, recruitment_status FROM historical_trial_sites "
                         "WHERE list_contains($ids, nct_id)", {"ids": trials["nct_id"].tolist()})
    located = competing_sites(sites, trials)
    candidates = candidate_sites(wh, scope, selection.countries)
    return {"trials": trials, "countries": by_country(trials, located, selection.countries),
            "sites": by_candidate_site(candidates, located, trials)}


# --- the portfolio's own screen failure ------------------------------------------------------------


@cached
def portfolio_screen_failure(wh: Warehouse, scope: AccessScope, groups: tuple[str, ...]) -> tuple[float, int]:
    """Median screen-failure share of the visible studies in ``groups`` (all when none), and how many studies."""
    rows = wh.query(scope, """
        SELECT st.study_id, st.indication, st.title,
               avg((su.status = 'Screen failure')::INT) AS failure, count(*) AS screened
        FROM studies st JOIN subjects su USING (study_id)
        GROUP BY ALL
    """, None, NO_FILTER)
    if rows.empty:
        return DEFAULT_SCREEN_FAILURE, 0
    rows["group"] = [condition_group(i, t) for i, t in zip(rows["indication"], rows["title"])]
    if groups:
        rows = rows[rows["group"].isin(groups)]
    rows = rows[rows["screened"] >= 20]
    if rows.empty:
        return DEFAULT_SCREEN_FAILURE, 0
    return float(rows["failure"].median()), int(len(rows))


# --- the stored model ------------------------------------------------------------------------------


def model_freshness(wh: Warehouse) -> derived.Freshness:
    return derived.portfolio_freshness(wh, FEASIBILITY_MODEL_RESULT, reader_fingerprint(wh))


@cached
def model_metrics(wh: Warehouse, source: str | None) -> pd.DataFrame:
    return wh.reference("SELECT * FROM feasibility_model_metrics WHERE data_source = $s ORDER BY target, method",
                        {"s": source or ""})


@cached
def cv_predictions(wh: Warehouse, source: str | None, target: str) -> pd.DataFrame:
    return wh.reference("SELECT * FROM feasibility_cv_predictions WHERE data_source = $s AND target = $t",
                        {"s": source or "", "t": target})


@st.cache_resource(show_spinner=False, max_entries=16)
def _stored_models(wh: Warehouse, source: str) -> dict[str, object]:
    rows = wh.reference("SELECT target, model FROM feasibility_models WHERE data_source = $s", {"s": source})
    return {t: load_model(bytes(b)) for t, b in zip(rows["target"], rows["model"])}


def model_choices(wh: Warehouse, source: str | None) -> pd.DataFrame:
    """Per target: which method a user gets (model or phase median) and why (rows: target, method, reason)."""
    if not source or "code changed" in model_freshness(wh).stale.values():
        return pd.DataFrame(columns=["target", "method", "reason"])
    return pd.DataFrame([{"target": t, "method": p.method, "reason": p.reason()}
                         for t, p in _stored_models(wh, source).items()], columns=["target", "method", "reason"])


def predict(wh: Warehouse, source: str | None, protocol: Mapping[str, object]) -> pd.DataFrame:
    """The stored models' 80% interval and median for one protocol (rows: target; natural units)."""
    if not source or "code changed" in model_freshness(wh).stale.values():
        return pd.DataFrame()  # a model pickled by other code is not loaded (the page says it is stale)
    models = _stored_models(wh, source)
    frame = feature_frame(pd.DataFrame([{k: protocol.get(k, np.nan) for k in
                                         ("phase", "group", "sponsor_class", "enrollment", "n_sites", "n_countries",
                                          "start_year", *FEATURES)}]))
    rows = []
    for target, model in models.items():
        p = model.predict(frame).iloc[0]
        rows.append({"target": target, "label": TARGETS[target][1], "unit": TARGETS[target][2], "method": model.method,
                     "lo": float(np.exp(p["lo"])), "mid": float(np.exp(p["mid"])), "hi": float(np.exp(p["hi"]))})
    return pd.DataFrame(rows)


# --- saved scenarios -----------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=4)
def records_store(url: str):
    """One records store per database URL and process (opening it upgrades the database to head)."""
    from analytics.core.records import RecordsStore

    return RecordsStore(url)


def open_store():
    """The configured records store, or None with the reason when it cannot be opened."""
    from analytics.core.records import RecordsError
    from analytics.core.settings import SettingsError, load_settings

    try:
        return records_store(load_settings().records_url), ""
    except (RecordsError, SettingsError) as error:
        return None, str(error)


def scenario_choices() -> dict[str, str]:
    """Saved scenarios (id -> name) for the page's comparison parameter."""
    from analytics.feasibility.saved import saved_scenarios

    store, _ = open_store()
    if store is None:
        return {}
    saved = saved_scenarios(store)
    return {} if saved.empty else dict(zip(saved["scenario_id"], saved["name"] + " (v" + saved["version"].astype(str) + ")"))


@cached
def scenario(inputs: ScenarioInputs) -> ScenarioResult:
    """The simulated scenario (cached on its inputs: moving another widget does not re-simulate)."""
    return run_scenario(inputs)
