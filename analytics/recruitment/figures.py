"""Pure figure builders for recruitment: the criteria waterfall and the pool by pre-screen result."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analytics.display.theme import empty_figure
from analytics.recruitment.funnel import CATEGORIES

COLORS = {"remaining": "#1f77b4", "removed": "#d62728", "relaxed": "#2ca02c", "Eligible on records": "#2ca02c",
          "Possible: to check": "#ff7f0e", "Not eligible": "#7f7f7f"}
MAX_LABEL = 70


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"


def waterfall_figure(steps: pd.DataFrame, total: int, title: str, relaxed: pd.DataFrame | None = None) -> go.Figure:
    """Patients left after each criterion (bars) and removed by it (red), in protocol order; optionally the
    same with one criterion relaxed, as a line."""
    if steps.empty or total == 0:
        return empty_figure(title, "No pre-screening patients in the chosen studies and sites.")
    labels = [f"{int(n)}. {_short(t)}" for n, t in zip(steps["number"], steps["text"])]
    fig = go.Figure()
    fig.add_bar(y=["Pool"] + labels, x=[total] + steps["after"].tolist(), orientation="h", name="Patients left",
                marker_color=COLORS["remaining"], hovertemplate="%{y}<br>%{x:,} patients left<extra></extra>")
    fig.add_bar(y=["Pool"] + labels, x=[0] + steps["removed"].tolist(), orientation="h",
                name="Removed by this criterion", marker_color=COLORS["removed"],
                hovertemplate="%{y}<br>%{x:,} patients removed<extra></extra>")
    if relaxed is not None and not relaxed.empty:
        relabels = [f"{int(n)}. {_short(t)}" for n, t in zip(relaxed["number"], relaxed["text"])]
        fig.add_scatter(y=["Pool"] + relabels, x=[total] + relaxed["after"].tolist(), mode="lines+markers",
                        name="Patients left, with the criterion relaxed", line_color=COLORS["relaxed"],
                        marker_color=COLORS["relaxed"])
    fig.update_layout(title=title, barmode="stack", height=max(360, 28 * (len(labels) + 1) + 120),
                      xaxis_title="Patients (count)", yaxis_title="", yaxis={"autorange": "reversed"},
                      legend={"orientation": "h", "y": -0.12}, margin={"l": 10, "r": 10, "t": 60, "b": 40})
    return fig


def categories_figure(summary: pd.DataFrame, labels: dict[str, str], title: str) -> go.Figure:
    """Patients per site by pre-screen result (stacked bars, one colour per result)."""
    if summary.empty:
        return empty_figure(title, "No pre-screening patients in the chosen studies and sites.")
    counts = summary.groupby(["study_site_id", "category"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=list(CATEGORIES), fill_value=0)
    sites = [labels.get(s, s) for s in counts.index]
    fig = go.Figure()
    # Horizontal bars: site names are long ("1002 Silva University Hospital, Denver (US)") and stay readable.
    for category in CATEGORIES:
        fig.add_bar(y=sites, x=counts[category].tolist(), name=category, marker_color=COLORS[category],
                    orientation="h", hovertemplate="%{y}<br>%{x:,} patients<extra>" + category + "</extra>")
    fig.update_layout(title=title, barmode="stack", xaxis_title="Patients (count)", yaxis_title="",
                      yaxis={"autorange": "reversed"}, legend={"orientation": "h", "y": 1.02, "yanchor": "bottom",
                                                              "x": 0}, height=max(320, 26 * len(sites) + 140),
                      margin={"l": 10, "r": 10, "t": 90, "b": 40})
    return fig
