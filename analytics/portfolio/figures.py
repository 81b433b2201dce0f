"""Figures of the Overview: pure functions from the area's tables to Plotly figures."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analytics.display.theme import FLAG_COLORS, empty_figure

MAX_CHART_STUDIES = 25
STATUS_COLORS = {"Behind plan": FLAG_COLORS["red"], "On track": FLAG_COLORS["green"],
                 "Complete": FLAG_COLORS["blue"], "Not started": FLAG_COLORS["grey"], "No plan": FLAG_COLORS["grey"]}
AGE_COLORS = {"0-7 d": "#9ecae1", "8-30 d": "#4292c6", "31-90 d": "#f2a541", ">90 d": "#c73e1d"}


def worst_enrolling(overview: pd.DataFrame, limit: int = MAX_CHART_STUDIES) -> pd.DataFrame:
    """The ``limit`` studies with the largest shortfall against plan, in subjects (all when few)."""
    if len(overview) <= limit:
        return overview
    shortfall = overview["expected_now"].astype("float64") - overview["randomized"]
    return overview.assign(_shortfall=shortfall).sort_values("_shortfall", ascending=False).head(limit).drop(
        columns="_shortfall")


def _study_label(df: pd.DataFrame) -> pd.Series:
    return df["protocol_id"].fillna(df["study_id"]).astype(str)


def study_order(overview: pd.DataFrame) -> list[str]:
    """The order both Overview charts list their studies in (top to bottom: by protocol)."""
    charted = worst_enrolling(overview)
    return sorted(_study_label(charted).tolist())


def enrollment_figure(overview: pd.DataFrame) -> go.Figure:
    """Randomized versus plan-expected and target per study, one bar colour per enrollment status."""
    df = worst_enrolling(overview)
    fig = go.Figure()
    labels = _study_label(df)
    for status, color in STATUS_COLORS.items():
        part = df[df["enrollment_status"] == status]
        if part.empty:
            continue
        fig.add_bar(
            y=labels[part.index], x=part["randomized"], orientation="h", name=f"Randomized: {status.lower()}",
            marker_color=color, legendgroup="status",
            customdata=part[["study_id", "target_enrollment", "expected_now"]],
            hovertemplate="%{y} (%{customdata[0]})<br>randomized %{x:,} of %{customdata[1]:,} "
                          f"(plan expects %{{customdata[2]:,.0f}} by now)<br>{status}<extra></extra>",
        )
    fig.add_scatter(
        y=labels, x=df["expected_now"], mode="markers", name="Plan expects by now",
        marker=dict(symbol="line-ns-open", size=18, line_width=3, color="#1b1f24"),
        hovertemplate="%{y}: plan expects %{x:,.0f} by now<extra></extra>",
    )
    fig.add_scatter(
        y=labels, x=df["target_enrollment"], mode="markers", name="Target",
        marker=dict(symbol="diamond-open", size=10, color="#5c6b73"),
        hovertemplate="%{y}: target %{x:,}<extra></extra>",
    )
    title = "Enrollment against plan" + (f" (the {len(df)} studies furthest behind)" if len(overview) > len(df) else "")
    fig.update_layout(
        height=max(320, 28 * len(df) + 150), margin=dict(l=10, r=10, t=100, b=10), barmode="overlay",
        xaxis_title="Subjects randomized", yaxis_title=None,
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
        title=dict(text=title, y=0.99, yanchor="top"),
        yaxis=dict(categoryorder="array", categoryarray=study_order(overview)[::-1]),
    )
    return fig


def query_aging_figure(aging: pd.DataFrame, overview: pd.DataFrame) -> go.Figure:
    """Open queries per study by age bucket, for the studies the enrollment chart shows."""
    charted = worst_enrolling(overview)
    labels = dict(zip(charted["study_id"], _study_label(charted)))
    data = aging[aging["study_id"].isin(labels) & (aging["open_queries"] > 0)]
    if data.empty:
        return empty_figure("Open queries by age", "No open queries in the studies and sites chosen "
                            "(studies imported from SDTM carry no queries).")
    fig = go.Figure()
    for bucket, color in AGE_COLORS.items():
        part = data[data["age_bucket"].astype(str) == bucket]
        if part.empty:
            continue
        fig.add_bar(y=part["study_id"].map(labels), x=part["open_queries"], orientation="h", name=f"Open {bucket}",
                    marker_color=color, hovertemplate="%{y}: %{x:,} open " + bucket + "<extra></extra>")
    fig.update_layout(
        barmode="stack", height=max(320, 28 * len(labels) + 150), margin=dict(l=10, r=10, t=100, b=10),
        xaxis_title="Open queries (count)", title=dict(text="Open queries by age since opened", y=0.99, yanchor="top"),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
        yaxis=dict(categoryorder="array", categoryarray=study_order(overview)[::-1]),
    )
    return fig
