"""What a sponsor reads: readable headers, no raw values, and a legend for every colour, on every page and role.

Each page is opened as each role that may open it, and again with every declared parameter that
opens more of the page (a drill-down site, a study) set to its first allowed value, so drill-downs
are checked too. New pages are covered with no edit here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.frame.identity import load_users
from analytics.frame.pages import pages_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")
USERS = load_users()
VIEWS = [(user, page) for user in sorted(USERS) if not USERS[user].disabled for page in pages_for(USERS[user].role)]
RAW_HEADER = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")
RAW_CELLS = {"None", "nan", "NaN", "<NA>", "NaT", "null"}
MAX_DECIMALS = 2


def _views(user: str, page, monkeypatch) -> list[AppTest]:
    monkeypatch.setenv("CRO_USER", user)
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(page.path)
    at.run()
    runs = [at]
    ctx = at.session_state["_cro_page_context"]
    unset = {p.name: next(iter(ctx.choices.get(p.name, {})), None) for p in page.params
             if ctx.params.get(p.name) in (None, ()) and p.kind == "one"}
    unset = {k: v for k, v in unset.items() if v is not None}
    if unset:
        deeper = AppTest.from_file(APP, default_timeout=120)
        for name, value in unset.items():
            deeper.query_params[name] = value
        deeper.switch_page(page.path)
        deeper.run()
        runs.append(deeper)
    return runs


def _problems_in_table(frame: pd.DataFrame) -> list[str]:
    problems = [f"raw column header {c!r}" for c in frame.columns if RAW_HEADER.match(str(c))]
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            shown = values.dropna().astype(str)
            raw = shown[shown.isin(RAW_CELLS)]
            if len(raw):
                problems.append(f"column {column!r} shows {raw.iloc[0]!r}")
        elif pd.api.types.is_float_dtype(values):
            finite = values[np.isfinite(values.astype("float64"))]
            long = finite[(finite - finite.round(MAX_DECIMALS)).abs() > 1e-9]
            if len(long):
                problems.append(f"column {column!r} shows {long.iloc[0]!r} (more than {MAX_DECIMALS} decimals)")
    return problems


def _colour(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _legend_problems(spec: dict) -> list[str]:
    legend: set[str] = set()
    used: dict[str, str] = {}
    for trace in spec.get("data", []):
        colours = {_colour((trace.get("marker") or {}).get("color")), _colour((trace.get("line") or {}).get("color"))}
        colours.discard(None)
        if trace.get("showlegend", True) is not False and trace.get("name"):
            legend |= colours
        for colour in colours:
            used.setdefault(colour, trace.get("name") or trace.get("type", "trace"))
    if len(used) <= 1 and len(spec.get("data", [])) <= 1:
        return []  # one series in one colour: the title and axes say what it is, the colour carries nothing
    return [f"colour {c} ({name}) has no legend entry" for c, name in used.items() if c not in legend]


@pytest.mark.parametrize(("user", "page"), VIEWS, ids=[f"{u}-{p.key}" for u, p in VIEWS])
def test_every_table_and_chart_reads_clean(user, page, app_env, monkeypatch) -> None:
    problems, checked = [], 0
    for at in _views(user, page, monkeypatch):
        assert not at.exception, [e.value for e in at.exception]
        checked += len(at.dataframe) + len(at.get("plotly_chart"))
        for i, table in enumerate(at.dataframe):
            problems += [f"table {i} ({table.key or 'no key'}): {p}" for p in _problems_in_table(table.value)]
        for i, chart in enumerate(at.get("plotly_chart")):
            spec = json.loads(chart.proto.spec)
            title = ((spec.get("layout") or {}).get("title") or {}).get("text", f"chart {i}")
            problems += [f"{title}: {p}" for p in _legend_problems(spec)]
    assert checked > 0, "the page showed no table or chart to check"
    assert problems == [], "\n".join(dict.fromkeys(problems))
