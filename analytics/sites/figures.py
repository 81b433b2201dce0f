"""Figures of the Site performance page: pure functions from its tables to Plotly figures."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


def ranking_figure(ranking: pd.DataFrame, top: int = 20) -> go.Figure:
    """The ``top`` institutions by shrunk enrollment rate with their credible intervals (forest plot).

    Raw rates (randomized per site-month) are shown beside the shrunk estimate, so a reader sees
    how much the model pulled small histories toward the area mean.
    """
    df = ranking.head(top).iloc[::-1]
    labels = df["site_name"] + " (" + df["country_code"].fillna("") + ")"
    fig = go.Figure()
    fig.add_scatter(
        x=df["posterior_mean"], y=labels, mode="markers", name="Shrunk rate (80% interval)",
        marker=dict(size=9, color="#1f4e79"),
        error_x=dict(type="data", symmetric=False, array=df["upper"] - df["posterior_mean"],
                     arrayminus=df["posterior_mean"] - df["lower"], color="#1f4e79", thickness=1.5),
        customdata=df[["studies", "randomized", "site_months"]],
        hovertemplate="%{y}<br>shrunk %{x:.2f} per site-month<br>%{customdata[0]} studies, "
                      "%{customdata[1]} randomized over %{customdata[2]:.0f} site-months<extra></extra>",
    )
    fig.add_scatter(x=df["rate"], y=labels, mode="markers", name="Raw rate",
                    marker=dict(symbol="x", size=7, color="#f18f01"),
                    hovertemplate="%{y}<br>raw %{x:.2f} per site-month<extra></extra>")
    fig.update_layout(
        height=max(300, 26 * len(df) + 120), margin=dict(l=10, r=10, t=80, b=10),
        title=dict(text=f"Top {len(df)} institutions for a new study", y=0.99, yanchor="top"),
        legend=dict(orientation="h", y=1.01, yanchor="bottom", x=0),
        xaxis_title="Randomized per site-month",
    )
    return fig
