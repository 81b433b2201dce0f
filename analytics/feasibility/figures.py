"""Pure figure builders for the Feasibility page (plotly): every colour has a legend entry, axes carry units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analytics.display.theme import empty_figure
from analytics.feasibility.benchmarks import KaplanMeier, Measure
from analytics.feasibility.scenario import ScenarioResult

COLORS = {"curve": "#1f4e79", "band": "rgba(31,78,121,0.18)", "naive": "#c73e1d", "model": "#1f4e79",
          "baseline": "#9aa5b1", "recruiting": "#c73e1d", "starting": "#f2a541", "low": "#9aa5b1", "high": "#1f4e79",
          "target": "#6a994e", "planned": "#5c6b73"}
HEIGHT = 340


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=10, r=10, t=60, b=10),
                      xaxis_title=x, yaxis_title=y, legend=dict(orientation="h", y=-0.25))
    return fig


def km_figure(km: KaplanMeier | None, completed_only_median: float) -> go.Figure:
    """Share of comparable trials completed by months since start (Kaplan-Meier, 95% band)."""
    title = "Time to completion (Kaplan-Meier)"
    if km is None:
        return empty_figure(title, "No comparable trial has completed yet, so no duration can be estimated.")
    x = np.concatenate([[0.0], km.times])
    done, lower, upper = (np.concatenate([[0.0], 1 - s]) for s in (km.survival, km.upper, km.lower))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=lower, mode="lines", line=dict(width=0, shape="hv"), showlegend=False,
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=upper, mode="lines", line=dict(width=0, shape="hv"), fill="tonexty",
                             fillcolor=COLORS["band"], name="95% band"))
    fig.add_trace(go.Scatter(x=x, y=done, mode="lines", line=dict(color=COLORS["curve"], shape="hv", width=2),
                             name=f"Completed ({km.events:,} trials; {km.censored:,} running or stopped, censored)"))
    if np.isfinite(completed_only_median):
        fig.add_vline(x=completed_only_median, line=dict(color=COLORS["naive"], dash="dot"))
        fig.add_trace(go.Scatter(x=[completed_only_median], y=[0.5], mode="markers",
                                 marker=dict(color=COLORS["naive"], symbol="line-ns-open", size=14),
                                 name=f"Median of completed trials only ({completed_only_median:.0f} months, biased short)"))
    fig.add_hline(y=0.5, line=dict(color=COLORS["planned"], dash="dash", width=1))
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, title, "Months since start", "Share of trials completed")


def distribution_figure(trials: pd.DataFrame, measure: Measure, quantiles: pd.Series) -> go.Figure:
    """Histogram of one measure over the comparable trials, with its P10/P50/P90."""
    values = trials[measure.column].dropna().astype(float)
    values = values[values > 0]
    title = f"{measure.label} of comparable trials"
    if len(values) < 2:
        return empty_figure(title, "Fewer than two comparable trials carry this measure.")
    log_x = measure.key in ("enrollment", "rate", "sites")
    fig = go.Figure(go.Histogram(x=np.log10(values) if log_x else values, nbinsx=40, marker_color=COLORS["baseline"],
                                 name=f"Trials ({len(values):,})"))
    for name, dash in (("p10", "dot"), ("p50", "solid"), ("p90", "dot")):
        value = quantiles.get(name)
        if value is not None and np.isfinite(value) and value > 0:
            fig.add_vline(x=np.log10(value) if log_x else value, line=dict(color=COLORS["curve"], dash=dash))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=COLORS["curve"]),
                             name="P50 (solid), P10 and P90 (dotted)"))
    if log_x:
        ticks = [v for v in (0.01, 0.1, 1, 10, 100, 1000, 10000, 100000) if values.min() / 10 <= v <= values.max() * 10]
        fig.update_xaxes(tickvals=np.log10(ticks), ticktext=[f"{t:g}" for t in ticks])
    return _layout(fig, title, f"{measure.label} ({measure.unit}{', log scale' if log_x else ''})", "Trials")


def complexity_figure(association: pd.DataFrame, outcome_label: str, unit: str) -> go.Figure:
    """Median outcome among trials below and above each complexity feature's median."""
    shown = association.dropna(subset=["low_median", "high_median"])
    title = f"Protocol complexity and {outcome_label.lower()}"
    if shown.empty:
        return empty_figure(title, "The comparable trials carry too few complexity features (CSV exports have no "
                                   "eligibility text) to compare.")
    fig = go.Figure()
    fig.add_trace(go.Bar(y=shown["label"], x=shown["low_median"], orientation="h", marker_color=COLORS["low"],
                         name="Lower half (or without)", customdata=shown["split"],
                         hovertemplate="%{y}: %{x:.2f} (%{customdata})<extra></extra>"))
    fig.add_trace(go.Bar(y=shown["label"], x=shown["high_median"], orientation="h", marker_color=COLORS["high"],
                         name="Upper half (or with)", customdata=shown["split"],
                         hovertemplate="%{y}: %{x:.2f} (%{customdata})<extra></extra>"))
    fig.update_layout(barmode="group")
    return _layout(fig, title, f"Median {outcome_label.lower()} ({unit})", "", height=60 + 34 * len(shown) + 80)


def competition_figure(countries: pd.DataFrame) -> go.Figure:
    title = "Trials competing for the same patients, by country"
    if countries.empty:
        return empty_figure(title, "No trial of these condition groups is recruiting in these countries.")
    top = countries.head(20).iloc[::-1]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=top["country"], x=top["recruiting"], orientation="h", marker_color=COLORS["recruiting"],
                         name="Recruiting now"))
    fig.add_trace(go.Bar(y=top["country"], x=top["starting"], orientation="h", marker_color=COLORS["starting"],
                         name="Not yet recruiting"))
    fig.update_layout(barmode="stack")
    return _layout(fig, title, "Trials (count)", "", height=80 + 22 * len(top) + 80)


def model_figure(metrics: pd.DataFrame) -> go.Figure:
    """Cross-validated coverage of the 80% interval and error, model against the phase-median baseline."""
    title = "Cross-validated model against the phase median"
    if metrics.empty:
        return empty_figure(title, "No stored model for these trials (too few with a known outcome).")
    labels = {"duration": "Duration", "rate": "Rate"}
    fig = go.Figure()
    for method, name in (("model", "Model (conformal quantile boosting)"), ("baseline", "Phase median, 10th-90th")):
        rows = metrics[metrics["method"] == method].set_index("target")
        x, y, text = [], [], []
        for target in rows.index:
            x += [f"{labels[target]} coverage", f"{labels[target]} error"]
            y += [rows.at[target, "coverage_80"], rows.at[target, "median_abs_log_error"]]
            text += [f"{rows.at[target, 'coverage_80']:.0%}", f"{rows.at[target, 'median_abs_log_error']:.2f}"]
        fig.add_trace(go.Bar(x=x, y=y, name=name, marker_color=COLORS[method], text=text, textposition="outside"))
    fig.add_hline(y=0.8, line=dict(color=COLORS["target"], dash="dash"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=COLORS["target"], dash="dash"),
                             name="80% nominal coverage"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1.1])
    return _layout(fig, title, "Coverage of the 80% interval; median absolute error of the log prediction",
                   "Share (coverage) or log units (error)")


def scenario_figure(result: ScenarioResult) -> go.Figure:
    """Cumulative randomized by month: the simulation's 80% band and median, target and planned date."""
    fan = result.fan
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fan["month"], y=fan["q10"], mode="lines", line=dict(width=0), showlegend=False,
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=fan["month"], y=fan["q90"], mode="lines", line=dict(width=0), fill="tonexty",
                             fillcolor=COLORS["band"], name="80% band"))
    fig.add_trace(go.Scatter(x=fan["month"], y=fan["q50"], mode="lines", line=dict(color=COLORS["curve"], width=2),
                             name="Median"))
    fig.add_hline(y=result.inputs.target, line=dict(color=COLORS["target"], dash="dash"))
    fig.add_vline(x=result.inputs.planned_months, line=dict(color=COLORS["planned"], dash="dot"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=COLORS["target"], dash="dash"),
                             name=f"Target ({result.inputs.target:,})"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=COLORS["planned"], dash="dot"),
                             name=f"Planned last participant in (month {result.inputs.planned_months:g})"))
    return _layout(fig, f"Enrollment timeline: P(on time) {result.p_on_time:.0%}", "Months from first activation",
                   "Participants randomized (count)")


def sites_figure(result: ScenarioResult) -> go.Figure:
    curve = result.sites_curve
    fig = go.Figure(go.Scatter(x=curve["sites"], y=curve["p_on_time"], mode="lines", line=dict(color=COLORS["curve"]),
                               name="P(target by the planned date)"))
    fig.add_hline(y=0.8, line=dict(color=COLORS["target"], dash="dash"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=COLORS["target"], dash="dash"),
                             name="0.8"))
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, "Sites and P(on time)", "Sites (count)", "P(on time)")
