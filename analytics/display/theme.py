"""Shared colours for flags and charts, and the empty-chart convention (the app theme itself is in .streamlit/config.toml)."""

from __future__ import annotations

import plotly.graph_objects as go

FLAG_COLORS: dict[str, str] = {
    "green": "#6a994e",
    "amber": "#f2a541",
    "red": "#c73e1d",
    "grey": "#c9ced6",
    "blue": "#1f4e79",
}


def empty_figure(title: str, reason: str, height: int = 320) -> go.Figure:
    """A chart that says why it is empty (never bare axes)."""
    fig = go.Figure()
    fig.add_annotation(text=reason, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#5c6b73"))
    fig.update_layout(height=height, title=dict(text=title), xaxis=dict(visible=False), yaxis=dict(visible=False),
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig
