"""Pure figure builders for enrollment: each takes the tidy frames and returns a plotly figure.

Every coloured trace has a legend entry (interval bands are legend entries of their own), and axis
titles carry units. Colours come from :data:`COLORS`, so a legend and a figure cannot disagree.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLORS = {
    "actual": "#1f1f1f",
    "plan": "#7f7f7f",
    "poisson_gamma": "#1f77b4",
    "prophet": "#ff7f0e",
    "linear": "#2ca02c",
    "target": "#d62728",
    "pending": "#9467bd",
    "active": "#1f77b4",
    "dropped": "#bcbd22",
    "failure": "#d62728",
    "current": "#1f77b4",
    "forecast": "#aec7e8",
    "population": "#2ca02c",
}
BAND_OPACITY = {"q05-q95": 0.15, "q10-q90": 0.25, "q25-q75": 0.4}
BAND_LABELS = {"q05-q95": "90% interval", "q10-q90": "80% interval", "q25-q75": "50% interval"}
SERIES_LABELS = {"actual": "Actual", "plan": "Plan", "poisson_gamma": "Poisson-Gamma", "prophet": "Prophet",
                 "linear": "Linear extrapolation"}
INVISIBLE = "rgba(0,0,0,0)"


def _rgba(hex_color: str, alpha: float) -> str:
    value = hex_color.lstrip("#")
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _band(fig: go.Figure, frame: pd.DataFrame, low: str, high: str, color: str, name: str, group: str) -> None:
    fig.add_trace(go.Scatter(x=frame["date"], y=frame[low], mode="lines", line={"color": INVISIBLE, "width": 0},
                             showlegend=False, hoverinfo="skip", legendgroup=group))
    fig.add_trace(go.Scatter(x=frame["date"], y=frame[high], mode="lines", line={"color": INVISIBLE, "width": 0},
                             fill="tonexty", fillcolor=color, name=name, legendgroup=group))


def fan_chart(forecast: pd.DataFrame, summary: pd.Series | None = None, title: str = "") -> go.Figure:
    """Cumulative randomized: actual, plan, the Poisson-Gamma fan (50/80/90%), Prophet and linear overlays.

    Args:
        forecast: one study's rows of ``derived.enrollment_forecast``.
        summary: the study's row of ``derived.enrollment_study_summary`` (target, planned LPI); optional.
    """
    fig = go.Figure()
    pg = forecast[forecast["series"] == "poisson_gamma"].sort_values("date")
    for band in ("q05-q95", "q10-q90", "q25-q75"):
        if len(pg):
            low, high = band.split("-")
            _band(fig, pg, low, high, _rgba(COLORS["poisson_gamma"], BAND_OPACITY[band]),
                  f"Poisson-Gamma {BAND_LABELS[band]}", f"pg-{band}")
    for series, dash in (("prophet", "dot"), ("linear", "dashdot")):
        part = forecast[forecast["series"] == series].sort_values("date")
        if len(part):
            _band(fig, part, "q10", "q90", _rgba(COLORS[series], 0.15), f"{SERIES_LABELS[series]} 80% interval", series)
            fig.add_trace(go.Scatter(x=part["date"], y=part["q50"], mode="lines", name=f"{SERIES_LABELS[series]} median",
                                     line={"color": COLORS[series], "dash": dash}, legendgroup=series))
    if len(pg):
        fig.add_trace(go.Scatter(x=pg["date"], y=pg["q50"], mode="lines", name="Poisson-Gamma median",
                                 line={"color": COLORS["poisson_gamma"], "width": 2}))
    plan = forecast[forecast["series"] == "plan"].sort_values("date")
    if len(plan):
        fig.add_trace(go.Scatter(x=plan["date"], y=plan["q50"], mode="lines", name="Plan",
                                 line={"color": COLORS["plan"], "dash": "dash"}))
    actual = forecast[forecast["series"] == "actual"].sort_values("date")
    if len(actual):
        fig.add_trace(go.Scatter(x=actual["date"], y=actual["q50"], mode="lines", name="Actual",
                                 line={"color": COLORS["actual"], "width": 2, "shape": "hv"}))
    if summary is not None and pd.notna(summary.get("target")):
        dates = forecast["date"]
        fig.add_trace(go.Scatter(x=[dates.min(), dates.max()], y=[summary["target"]] * 2, mode="lines",
                                 name="Target", line={"color": COLORS["target"], "dash": "dot", "width": 1}))
        if pd.notna(summary.get("planned_lpi")):
            fig.add_trace(go.Scatter(x=[summary["planned_lpi"]] * 2, y=[0, summary["target"]], mode="lines",
                                     name="Planned last patient in", line={"color": COLORS["plan"], "width": 1}))
    fig.update_layout(title=title or "Cumulative randomized: actual, plan and forecasts",
                      xaxis_title="Date", yaxis_title="Randomized subjects (cumulative count)",
                      # Tall enough for the dozen legend entries (at the default height the last were cut off).
                      legend_title_text="Series", hovermode="x unified", height=560)
    return fig


def site_contribution_chart(site_forecast: pd.DataFrame, title: str = "") -> go.Figure:
    """Expected further randomizations per site to the median forecast LPI, coloured by site state."""
    frame = site_forecast.sort_values("expected_by_lpi")
    # Sites by name where the frame carries them (a page joins the names in), else by id.
    labels = (frame["site_name"] + " (" + frame["site_number"].astype(str) + ")") if "site_name" in frame else frame[
        "study_site_id"]
    fig = go.Figure()
    for state in ("active", "pending", "dropped"):
        part = frame[frame["state"] == state]
        if part.empty:
            continue
        fig.add_trace(go.Bar(
            x=part["expected_by_lpi"], y=labels[part.index], orientation="h", name=f"{state.title()} site",
            marker_color=COLORS[state],
            customdata=part[["randomized", "p_enrolls_nobody", "rate_mean"]].to_numpy(),
            hovertemplate="%{y}: %{x:.1f} more expected<br>randomized so far %{customdata[0]}<br>"
                          "P(enrolls nobody) %{customdata[1]:.0%}<br>rate %{customdata[2]:.2f}/month<extra></extra>"))
    fig.update_layout(title=title or "Per-site contribution to the remaining enrollment",
                      xaxis_title="Further randomizations to the median LPI (subjects)",
                      yaxis_title=None, legend_title_text="Site state", barmode="stack",
                      height=max(320, 24 * len(frame) + 140))
    return fig


def funnel_chart(funnel: pd.DataFrame, reasons: pd.DataFrame, study_id: str, study_site_id: str | None = None,
                 name: str | None = None) -> go.Figure:
    """Screened, consented and randomized, and screen failures by reason, for a study or one of its sites."""
    def select(frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame[frame["study_id"] == study_id]
        return rows[rows["study_site_id"].isna()] if study_site_id is None else rows[rows["study_site_id"] == study_site_id]

    stages, failures = select(funnel), select(reasons).sort_values("count")
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "funnel"}, {"type": "xy"}]],
                        subplot_titles=("Screening funnel", "Screen failures by reason"))
    fig.add_trace(go.Funnel(y=stages["stage"].astype(str), x=stages["count"], name="Subjects per stage",
                            marker={"color": COLORS["current"]}, textinfo="value+percent initial"), row=1, col=1)
    fig.add_trace(go.Bar(x=failures["count"], y=failures["reason"], orientation="h", name="Screen failures",
                         marker_color=COLORS["failure"]), row=1, col=2)
    fig.update_xaxes(title_text="Screen failures (subjects)", row=1, col=2)
    fig.update_yaxes(title_text="Reason", row=1, col=2)
    where = name or (study_id if study_site_id is None else study_site_id)
    fig.update_layout(title=f"Screening funnel: {where} (subjects)", legend_title_text="Count")
    return fig


def timeline_chart(timeline: pd.DataFrame, title: str = "") -> go.Figure:
    """LPI, LPLV and database lock: planned, actual and forecast median with its 10-90% interval."""
    frame = timeline.copy()
    fig = go.Figure()
    # Quantiles beyond the simulated horizon are empty: the interval runs to the horizon, marked "after".
    horizon = frame["horizon_date"] if "horizon_date" in frame else pd.Series(pd.NaT, index=frame.index)
    beyond = frame["p90"].isna() & horizon.notna() & frame["actual_date"].isna()
    frame["p90"] = frame["p90"].where(~beyond, horizon)
    has_interval = frame["p10"].notna() & frame["p90"].notna()
    for _, row in frame[has_interval].iterrows():
        fig.add_trace(go.Scatter(x=[row["p10"], row["p90"]], y=[row["milestone"]] * 2, mode="lines",
                                 line={"color": COLORS["poisson_gamma"], "width": 6}, opacity=0.35,
                                 name="Forecast 10-90% interval", legendgroup="interval",
                                 showlegend=bool(_ == frame[has_interval].index[0])))
    fig.add_trace(go.Scatter(x=frame["p50"], y=frame["milestone"], mode="markers", name="Forecast median",
                             marker={"color": COLORS["poisson_gamma"], "size": 11}))
    fig.add_trace(go.Scatter(x=frame["p80"], y=frame["milestone"], mode="markers", name="Reached with 80% probability",
                             marker={"color": COLORS["poisson_gamma"], "size": 9, "symbol": "triangle-right"}))
    if beyond.any():
        fig.add_trace(go.Scatter(x=horizon[beyond], y=frame.loc[beyond, "milestone"], mode="markers",
                                 name="Later than the simulated horizon",
                                 marker={"color": COLORS["poisson_gamma"], "size": 12, "symbol": "arrow-right"}))
    fig.add_trace(go.Scatter(x=frame["planned_date"], y=frame["milestone"], mode="markers", name="Planned",
                             marker={"color": COLORS["plan"], "size": 11, "symbol": "diamond"}))
    reached = frame[frame["actual_date"].notna()]
    if len(reached):
        fig.add_trace(go.Scatter(x=reached["actual_date"], y=reached["milestone"], mode="markers", name="Actual",
                                 marker={"color": COLORS["actual"], "size": 12, "symbol": "star"}))
    # The legend goes under the chart: beside it, it squeezes the dates in a half-width column.
    fig.update_layout(title=title or "Milestones: forecast against plan", xaxis_title="Date",
                      yaxis_title="Milestone", legend_title_text="Date",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25, "xanchor": "left", "x": 0})
    return fig


def demographics_chart(demographics: pd.DataFrame, study_id: str, dimension: str, level: str = "study",
                       level_id: str | None = None) -> go.Figure:
    """Share of randomized subjects per group now and forecast at the end, against target and population."""
    rows = demographics[(demographics["study_id"] == study_id) & (demographics["dimension"] == dimension)
                        & (demographics["level"] == level)]
    rows = rows[rows["level_id"] == (level_id or study_id)] if level != "study" or level_id else rows
    fig = go.Figure()
    fig.add_trace(go.Bar(x=rows["category"], y=rows["share"] * 100, name="Randomized so far",
                         marker_color=COLORS["current"]))
    fig.add_trace(go.Bar(x=rows["category"], y=rows["forecast_share_p50"] * 100, name="Forecast at end of enrollment",
                         marker_color=COLORS["forecast"]))
    if rows["target_share"].notna().any():
        fig.add_trace(go.Scatter(x=rows["category"], y=rows["target_share"] * 100, mode="markers",
                                 name="Diversity-plan target", marker={"color": COLORS["target"], "size": 12,
                                                                      "symbol": "line-ew-open", "line": {"width": 3}}))
    if rows["population_share"].notna().any():
        fig.add_trace(go.Scatter(x=rows["category"], y=rows["population_share"] * 100, mode="markers",
                                 name="Condition's population", marker={"color": COLORS["population"], "size": 10,
                                                                       "symbol": "diamond"}))
    fig.update_layout(title=f"Enrollment by {dimension.replace('_', ' ')}: {level_id or study_id}", barmode="group",
                      xaxis_title=dimension.replace("_", " ").capitalize(), yaxis_title="Share of randomized subjects (%)",
                      legend_title_text="Share")
    return fig
