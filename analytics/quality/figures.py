"""Plotly figures of the Data Quality page (pure: frames in, figures out; every colour has a legend)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analytics.display.theme import FLAG_COLORS, empty_figure
from analytics.quality.specs import CATEGORIES, SEVERITIES

SEVERITY_COLORS = {"Critical": FLAG_COLORS["red"], "Major": FLAG_COLORS["amber"], "Minor": FLAG_COLORS["grey"]}
CATEGORY_COLORS = dict(zip(CATEGORIES, ("#1f4e79", "#6a994e", "#c73e1d", "#f2a541", "#7d5ba6", "#5c6b73")))


def summary_figure(summary: pd.DataFrame) -> go.Figure:
    """Open findings by category, stacked by severity."""
    if summary["findings"].sum() == 0:
        return empty_figure("Open findings by category and severity", "No open findings in the chosen studies.")
    fig = go.Figure()
    for severity in SEVERITIES:
        part = summary[summary["severity"] == severity]
        fig.add_bar(y=part["category"], x=part["findings"], name=severity, orientation="h",
                    marker_color=SEVERITY_COLORS[severity],
                    hovertemplate="%{y}: %{x:,} " + severity.lower() + " findings<extra></extra>")
    fig.update_layout(barmode="stack", title="Open findings by category and severity", height=320,
                      xaxis_title="Open findings (count)", yaxis=dict(title="", categoryorder="array",
                                                                     categoryarray=list(reversed(CATEGORIES))),
                      legend=dict(title="Severity", orientation="h", y=-0.25), margin=dict(l=10, r=10, t=50, b=10))
    return fig


def trend_figure(trend: pd.DataFrame) -> go.Figure:
    """Open findings per month of the record they concern, by category."""
    if trend.empty:
        return empty_figure("Findings over time", "No open finding with a record date in the chosen period.")
    fig = go.Figure()
    for category in CATEGORIES:
        part = trend[trend["category"] == category]
        if len(part):
            fig.add_bar(x=part["month"], y=part["findings"], name=category, marker_color=CATEGORY_COLORS[category],
                        hovertemplate="%{x|%b %Y}: %{y:,} findings<extra>" + category + "</extra>")
    fig.update_layout(barmode="stack", title="Findings over time (month of the record's date)", height=320,
                      xaxis_title="Month of the visit, onset or collection", yaxis_title="Open findings (count)",
                      legend=dict(title="Category", orientation="h", y=-0.3), margin=dict(l=10, r=10, t=50, b=10))
    return fig


def aging_figure(aging: pd.DataFrame) -> go.Figure:
    """Open queries by age at the as-of date."""
    if aging["queries"].sum() == 0:
        return empty_figure("Open queries by age", "No open query in the chosen studies (SDTM imports carry none).")
    colors = [FLAG_COLORS["green"], FLAG_COLORS["blue"], FLAG_COLORS["amber"], FLAG_COLORS["red"], FLAG_COLORS["red"]]
    fig = go.Figure(go.Bar(x=aging["bucket"], y=aging["queries"], marker_color=colors[:len(aging)],
                           hovertemplate="%{x}: %{y:,} open queries<extra></extra>", showlegend=False))
    fig.update_layout(title="Open queries by age", height=300, xaxis_title="Days open at the as-of date",
                      yaxis_title="Open queries (count)", margin=dict(l=10, r=10, t=50, b=10))
    return fig


def entry_lag_figure(lags: pd.DataFrame) -> go.Figure:
    """Visits by days from the visit to its first eCRF entry."""
    if lags["visits"].sum() == 0:
        return empty_figure("Data-entry lag", "No visit with an eCRF entry date in the chosen studies.")
    fig = go.Figure(go.Bar(x=lags["lag"], y=lags["visits"], marker_color=FLAG_COLORS["blue"], showlegend=False,
                           hovertemplate="%{x}: %{y:,} visits<extra></extra>"))
    fig.update_layout(title="Data-entry lag (visit to first eCRF entry)", height=300, xaxis_title="Days after the visit",
                      yaxis_title="Visits (count)", margin=dict(l=10, r=10, t=50, b=10))
    return fig


def ranking_figure(sites: pd.DataFrame, top: int = 15) -> go.Figure:
    """The sites with the strongest combined evidence of unusual patterns."""
    if sites.empty:
        return empty_figure("Sites with unusual data patterns", "No site has enough lab or vital-sign data to compare.")
    shown = sites.head(top).iloc[::-1]
    labels = shown["study_id"] + " site " + shown["site_number"].astype(str)
    fig = go.Figure(go.Bar(y=labels, x=shown["score"], orientation="h", marker_color=FLAG_COLORS["blue"],
                           customdata=shown["study_site_id"], showlegend=False,
                           hovertemplate="%{y}: -log10 p = %{x:.1f}<extra></extra>"))
    fig.update_layout(title=f"Sites with the most unusual data patterns (top {len(shown)})", height=80 + 24 * len(shown),
                      xaxis_title="Combined evidence (-log10 p; 2 = p 0.01)", yaxis_title="",
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig
