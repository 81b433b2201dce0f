"""Saved scenarios: the records store's ``feasibility_scenarios`` table, and their side-by-side comparison.

A scenario holds no trial data (its benchmark selection, inputs, assumptions and simulated results
are about a proposal, not about a study), so every user who may open the Feasibility page sees
every saved scenario. Saving again under the same id is a new version; removing one appends a
version with ``withdrawn`` set (the store never updates or deletes).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pandas as pd

from analytics.core.records import RecordsStore
from analytics.feasibility.scenario import ScenarioInputs

TABLE = "feasibility_scenarios"
# Rows of the comparison: (label, where the value is, key, unit)
COMPARISON_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("Proposal", "row", "proposal", ""),
    ("Target randomized", "inputs", "target", "participants"),
    ("Sites", "inputs", "sites", "sites"),
    ("Countries", "inputs", "countries", "countries"),
    ("First activation", "inputs", "start", "date"),
    ("Activation ramp", "inputs", "ramp_months", "months"),
    ("Planned enrollment period", "inputs", "planned_months", "months"),
    ("Screening rate (median)", "inputs", "screening_rate", "per site-month"),
    ("Screening rate, 10th-90th percentile", "inputs", "screening_rate_range", "per site-month"),
    ("Screen-failure rate", "inputs", "screen_failure", "share"),
    ("Randomization rate (median)", "results", "randomization_rate", "per site-month"),
    ("Participants to screen", "results", "screened_needed", "participants"),
    ("Enrollment period, P10", "results", "months_p10", "months"),
    ("Enrollment period, median", "results", "months_p50", "months"),
    ("Enrollment period, P90", "results", "months_p90", "months"),
    ("P(target by the planned date)", "results", "p_on_time", "probability"),
    ("Sites for P(on time) >= 0.8", "results", "sites_needed", "sites"),
    ("CRA effort", "results", "cra_days", "CRA days"),
    ("Average CRA staffing", "results", "fte", "FTE"),
)


def save_scenario(store: RecordsStore, actor: str, scope: object, name: str, proposal: str | None,
                  selection: Mapping[str, object], inputs: ScenarioInputs, assumptions: Mapping[str, float],
                  results: Mapping[str, object], scenario_id: str | None = None) -> str:
    """Append a scenario (a new one, or a new version of ``scenario_id``); its id."""
    if not name or not name.strip():
        raise ValueError("a saved scenario needs a name")
    scenario_id = scenario_id or uuid.uuid4().hex[:12]
    store.append(TABLE, {"scenario_id": scenario_id, "name": name.strip(), "proposal": (proposal or "").strip() or None,
                         "selection": dict(selection), "inputs": inputs.as_dict(), "assumptions": dict(assumptions),
                         "results": dict(results), "withdrawn": False}, actor=actor, scope=scope)
    return scenario_id


def withdraw_scenario(store: RecordsStore, actor: str, scope: object, scenario_id: str) -> None:
    """Remove a scenario from the comparison (a new version with ``withdrawn`` set)."""
    history = store.history(TABLE, scenario_id)
    if history.empty:
        raise KeyError(f"no saved scenario {scenario_id!r}")
    last = history.iloc[-1]
    store.append(TABLE, {c: last[c] for c in ("scenario_id", "name", "proposal", "selection", "inputs", "assumptions",
                                               "results")} | {"withdrawn": True}, actor=actor, scope=scope)


def saved_scenarios(store: RecordsStore) -> pd.DataFrame:
    """The latest version of every scenario not withdrawn, newest first."""
    current = store.current(TABLE)
    if current.empty:
        return current
    return current[~current["withdrawn"].astype(bool)].iloc[::-1].reset_index(drop=True)


def _value(row: pd.Series, where: str, key: str) -> object:
    if where == "row":
        return row.get(key)
    data = row.get(where) or {}
    if key == "screening_rate_range":
        return f"{data.get('screening_rate_p10', float('nan')):.2f}-{data.get('screening_rate_p90', float('nan')):.2f}"
    return data.get(key)


def comparison_table(scenarios: pd.DataFrame) -> pd.DataFrame:
    """Scenarios side by side: one row per figure, one column per scenario (its name and version)."""
    table = {"Figure": [r[0] for r in COMPARISON_ROWS], "Unit": [r[3] for r in COMPARISON_ROWS]}
    for _, row in scenarios.iterrows():
        label = f"{row['name']} (v{row['version']}, {row['actor']})"
        table[label] = [_value(row, where, key) for _, where, key, _ in COMPARISON_ROWS]
    return pd.DataFrame(table)
