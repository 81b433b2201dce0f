"""Figures of the CAPA trends page: pure functions from computed tables to Plotly figures."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analytics.capa.funnel import LIMITS
from analytics.capa.qtl import QTLSpec
from analytics.capa.rules import RULES_BY_ID, RuleSpec
from analytics.capa.spc import ControlChart
from analytics.display.theme import FLAG_COLORS, empty_figure

POINT_COLORS = {"concern": FLAG_COLORS["red"], "pattern": FLAG_COLORS["amber"], "favourable": FLAG_COLORS["green"],
                "ok": FLAG_COLORS["blue"], "not judged": FLAG_COLORS["grey"]}
CUSUM_HEIGHT = 230
AGING_COLORS = {"Not overdue": "#a9d3a0", "Overdue against the original date only": FLAG_COLORS["amber"],
                "Overdue (current due date)": FLAG_COLORS["red"]}
STATUS_COLORS = {"Breached": FLAG_COLORS["red"], "Approaching": FLAG_COLORS["amber"],
                 "Within limit": FLAG_COLORS["green"], "Too few subjects": FLAG_COLORS["grey"]}
HEIGHT = 380


def _rule_text(ids: str) -> str:
    return "<br>".join(f"{RULES_BY_ID[i].name}: {RULES_BY_ID[i].description}" for i in ids.split(", ") if i)


def _in_sentence(label: str) -> str:
    """A column label inside a sentence: "Subject-visits" -> "subject-visits", "CAPAs due" unchanged."""
    return label[0].lower() + label[1:] if label[1:2].islower() else label


def control_chart_figure(chart: ControlChart, subtitle: str = "") -> go.Figure:
    """Monthly values with the centre line, 2- and 3-sigma limits, and the points that break a rule."""
    spec = chart.spec
    points = chart.points
    title = spec.name + (f": {subtitle}" if subtitle else "")
    if not points["evaluable"].any():
        return empty_figure(title, f"No month has enough data to judge<br>({spec.denominator_label}: at least "
                                   f"{spec.min_denominator:,.0f})<br>in the chosen studies and dates.")
    scale = 100.0 if spec.family == "p" else 1.0
    y_title = f"{spec.unit[0].upper()}{spec.unit[1:]}"
    fig = go.Figure()
    fig.add_scatter(x=points["month"], y=points["value"] * scale, mode="lines", line=dict(color="#8a99a6", width=1),
                    name="Monthly value", hoverinfo="skip")
    judged = points["evaluable"]
    for column, name, dash in (("ucl", "3-sigma limits", "dash"), ("uwl", "2-sigma limits", "dot")):
        lower = "lcl" if column == "ucl" else "lwl"
        for i, col in enumerate((column, lower)):  # limits only where a month is judged
            fig.add_scatter(x=points["month"], y=points[col].where(judged) * scale, mode="lines", line=dict(color="#5c6b73", dash=dash,
                            width=1, shape="hvh"), name=name, legendgroup=name, showlegend=i == 0, hoverinfo="skip")
    if chart.risk_adjusted:  # the expected rate follows each month's mix of phases and studies
        fig.add_scatter(x=points["month"], y=points["centre"].where(judged) * scale, mode="lines",
                        line=dict(color="#1f4e79", width=1.5, shape="hvh"),
                        name=spec.expected_label, hoverinfo="skip")
    else:
        fig.add_hline(y=chart.centre * scale, line=dict(color="#1f4e79", width=1.5),
                      annotation_text=f"centre {chart.centre * scale:.1f}{'%' if spec.family == 'p' else ''}",
                      annotation_position="top left")
    state = np.select([~points["evaluable"], points["concern_flag"], points["pattern_flag"], points["favourable_flag"]],
                      ["not judged", "concern", "pattern", "favourable"], "ok")
    legend = {"concern": "Signal (worse)", "pattern": "Pattern only (worth a look, not a signal)",
              "favourable": "Signal (better)", "ok": "Within the rules",
              "not judged": f"Not judged (too few {_in_sentence(spec.denominator_label)})"}
    other = "low" if spec.concern == "high" else "high"
    for key, label in legend.items():
        part = points[state == key]
        if part.empty:
            continue
        rules = part[f"rules_{other}" if key == "favourable" else f"rules_{spec.concern}"]
        hover = [f"{m:%b %Y}: {v * scale:.2f} (expected {c * scale:.2f})<br>{int(n):,} / {int(d):,}"
                 + (f" ({e:.1f} expected)" if chart.risk_adjusted else "") + (f"<br>{_rule_text(r)}" if r else "")
                 for m, v, c, n, d, e, r in zip(part["month"], part["value"], part["centre"], part["numerator"],
                                                part["denominator"], part["expected"], rules)]
        fig.add_scatter(x=part["month"], y=part["value"] * scale, mode="markers", name=label,
                        marker=dict(color=POINT_COLORS[key], size=9 if key in ("concern", "pattern") else 7,
                                    symbol={"concern": "diamond", "pattern": "diamond-open"}.get(key, "circle"),
                                    line=dict(width=2) if key == "pattern" else None),
                        hovertext=hover, hoverinfo="text")
    if chart.baseline_months:
        base = points[points["baseline"]]["month"]
        fig.add_vrect(x0=base.min(), x1=base.max(), fillcolor="#dbe4ee", opacity=0.35, line_width=0,
                      annotation_text="baseline", annotation_position="top left")
    laney = f"Laney-adjusted (sigma x{chart.sigma_z:.2f})" if chart.laney else "no over-dispersion correction"
    kind = "risk-adjusted u-chart (observed against expected)" if chart.risk_adjusted else f"{spec.family}-chart"
    fig.update_layout(height=HEIGHT, title=dict(text=f"{title}<br><sup>{kind}, {laney}</sup>"),
                      # The month axis needs no title; one collided with a four-row legend below it.
                      yaxis_title=y_title, legend=dict(orientation="h", yanchor="top", y=-0.12),
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


def cusum_figure(chart: ControlChart, rule: RuleSpec) -> go.Figure:
    """The CUSUM rule's running total of monthly excess (in sigma, less its allowance) against its decision line."""
    spec = chart.spec
    points = chart.points[chart.points["evaluable"]]
    title = "Running total of excess (CUSUM)"
    column = f"{rule.id}_sum_{spec.concern}"
    if points.empty or column not in points:
        return empty_figure(title, "No month has enough data to judge in the chosen studies and dates.")
    broken = points[points[f"{rule.id}_{spec.concern}"]]
    direction = "above" if spec.concern == "high" else "below"
    fig = go.Figure()
    fig.add_scatter(x=points["month"], y=points[column], mode="lines+markers", line=dict(color="#1f4e79", width=1.5),
                    marker=dict(size=5, color="#1f4e79"), name=f"Running total (sigma {direction} expected)",
                    hovertemplate="%{x|%b %Y}: %{y:.2f} sigma<extra></extra>")
    fig.add_hline(y=rule.decision, line=dict(color=FLAG_COLORS["red"], dash="dash", width=1),
                  annotation_text=f"signal at {rule.decision:g} sigma", annotation_position="top left")
    if len(broken):
        fig.add_scatter(x=broken["month"], y=broken[column], mode="markers", name="Passes the line: signal",
                        marker=dict(color=FLAG_COLORS["red"], size=9, symbol="diamond"),
                        hovertemplate="%{x|%b %Y}: %{y:.2f} sigma, signal (the total restarts at 0)<extra></extra>")
    fig.update_layout(height=CUSUM_HEIGHT, title=dict(text=f"{title}<br><sup>each month adds its distance "
                                                           f"{direction} expected less {rule.reference:g} sigma; "
                                                           "never below 0</sup>"),
                      xaxis=dict(range=[chart.points["month"].min(), chart.points["month"].max()]),
                      yaxis_title="Sigma", legend=dict(orientation="h", yanchor="top", y=-0.15),
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def funnel_figure(sites: pd.DataFrame, curves: pd.DataFrame, pooled: float, phi: float,
                  labels: Mapping[str, str]) -> go.Figure:
    """Each site's deviation rate against its subject-visits, with 95% and 99.8% limits."""
    title = "Deviation rate by site against subject-visits"
    if sites.empty:
        return empty_figure(title, "No site with completed subject-visits in the chosen studies and dates.")
    fig = go.Figure()
    for level, _ in LIMITS:
        dash = "dash" if level == 0.95 else "dot"
        for i, side in enumerate(("upper", "lower")):
            fig.add_scatter(x=curves["visits"], y=curves[f"{side}_{level}"], mode="lines", name=f"{level:.1%} limits",
                            legendgroup=str(level), showlegend=i == 0, line=dict(color="#5c6b73", dash=dash, width=1),
                            hoverinfo="skip")
    fig.add_hline(y=pooled, line=dict(color="#1f4e79", width=1.5), annotation_text=f"pooled {pooled:.2f}")
    colors = {"above 99.8%": FLAG_COLORS["red"], "above 95%": FLAG_COLORS["amber"], "within": FLAG_COLORS["blue"],
              "below 95%": FLAG_COLORS["green"]}
    for position, color in colors.items():
        part = sites[sites["position"] == position]
        if part.empty:
            continue
        hover = [f"{labels.get(s, s)}<br>{int(d):,} deviations / {int(v):,} subject-visits = {r:.2f} per 100"
                 for s, d, v, r in zip(part["study_site_id"], part["deviations"], part["visits"], part["rate"])]
        fig.add_scatter(x=part["visits"], y=part["rate"], mode="markers", name=f"Site {position}",
                        marker=dict(color=color, size=8), hovertext=hover, hoverinfo="text")
    note = f"over-dispersion phi {phi:.2f}" if phi > 1 else "no over-dispersion"
    fig.update_layout(height=HEIGHT, title=dict(text=f"{title}<br><sup>{note}</sup>"), xaxis_type="log",
                      xaxis_title="Completed subject-visits (log scale)",
                      yaxis_title="Deviations per 100 subject-visits", legend=dict(orientation="h", y=-0.2),
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


def pareto_figure(ranked: pd.DataFrame, human: pd.Series | None) -> go.Figure:
    """Root causes by count with the cumulative share; "Human error" as a separate, hatched bar."""
    title = "Root causes of CAPAs (Pareto)"
    if ranked.empty and human is None:
        return empty_figure(title, "No CAPA with a root cause in the chosen studies and dates.")
    fig = go.Figure()
    fig.add_bar(x=ranked["cause"], y=ranked["capas"], name="CAPAs by root cause", marker_color=FLAG_COLORS["blue"],
                hovertemplate="%{x}: %{y} CAPAs<extra></extra>")
    fig.add_scatter(x=ranked["cause"], y=ranked["cumulative_share"] * 100, yaxis="y2", mode="lines+markers",
                    name="Cumulative share (excluding human error)", line=dict(color=FLAG_COLORS["amber"]))
    if human is not None:
        fig.add_bar(x=["Human error (shown apart)"], y=[human["capas"]], name="Human error: ask what lies beneath",
                    marker=dict(color=FLAG_COLORS["grey"], pattern_shape="/"),
                    hovertemplate=f"Human error: %{{y}} CAPAs ({human['share_of_all']:.0%} of all)<extra></extra>")
    fig.update_layout(height=HEIGHT, title=dict(text=title), xaxis_title="Root-cause category",
                      yaxis_title="CAPAs (count)",
                      yaxis2=dict(title="Cumulative share (%)", overlaying="y", side="right", range=[0, 105],
                                  tickvals=[0, 25, 50, 75, 100], showgrid=False),
                      legend=dict(orientation="h", y=-0.3), margin=dict(l=10, r=10, t=50, b=10), barmode="group")
    return fig


def aging_figure(aging: pd.DataFrame) -> go.Figure:
    """Open CAPAs per age bucket, coloured by overdue state."""
    title = "Open CAPAs by age"
    if aging.empty or aging["capas"].sum() == 0:
        return empty_figure(title, "No open CAPA in the chosen studies and dates.")
    fig = go.Figure()
    for state, color in AGING_COLORS.items():
        part = aging[aging["state"] == state]
        fig.add_bar(x=part["age_bucket"].astype(str), y=part["capas"], name=state, marker_color=color)
    fig.update_layout(barmode="stack", height=HEIGHT, title=dict(text=title), xaxis_title="Days since opened",
                      yaxis_title="Open CAPAs (count)", legend=dict(orientation="h", y=-0.25),
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def kaplan_meier_figure(curves: pd.DataFrame, by_label: str) -> go.Figure:
    """Share of CAPAs still open by days since opening, one step curve per group, open CAPAs censored."""
    title = f"CAPAs still open by days since opening ({by_label})"
    if curves.empty:
        return empty_figure(title, "Too few CAPAs in the chosen studies and dates for a curve.")
    fig = go.Figure()
    for group, part in curves.groupby("group", sort=False):
        fig.add_scatter(x=part["days"], y=part["share_open"] * 100, mode="lines", line_shape="hv", name=str(group),
                        hovertemplate=f"{group}<br>day %{{x:.0f}}: %{{y:.0f}}% still open<extra></extra>")
    fig.add_hline(y=50, line=dict(color="#5c6b73", dash="dot", width=1), annotation_text="median")
    fig.update_layout(height=HEIGHT + 40, title=dict(text=f"{title}<br><sup>Kaplan-Meier; CAPAs still open count "
                                                          "until today and then drop out (censored)</sup>"),
                      xaxis_title="Days since opened", yaxis_title="Still open (%)", yaxis_range=[0, 101],
                      legend=dict(orientation="h", y=-0.25), margin=dict(l=10, r=10, t=70, b=10))
    return fig


def themes_figure(themes: pd.DataFrame) -> go.Figure:
    """Events per text theme, split into first occurrences and possible recurrences."""
    title = "Quality-event themes found in the text"
    if themes.empty:
        return empty_figure(title, "No stored themes for the chosen studies (see the note above).")
    frame = themes.sort_values("events").tail(25)
    label = frame["study_id"] + " · " + frame["name"]
    fig = go.Figure()
    fig.add_bar(y=label, x=frame["events"] - frame["recurrences"], orientation="h", name="Events",
                marker_color=FLAG_COLORS["blue"])
    fig.add_bar(y=label, x=frame["recurrences"], orientation="h", name="Possible recurrences",
                marker_color=FLAG_COLORS["red"])
    fig.update_layout(barmode="stack", height=max(HEIGHT, 22 * len(frame) + 120), title=dict(text=title),
                      xaxis_title="Quality events (count)", yaxis_title="Study · theme (top terms)",
                      legend=dict(orientation="h", y=-0.15), margin=dict(l=10, r=10, t=50, b=10))
    return fig


def qtl_figure(register: pd.DataFrame, spec: QTLSpec, study_labels: Mapping[str, str]) -> go.Figure:
    """One QTL across studies: value with its 95% interval, the limit and the warning level."""
    title = spec.name
    rows = register[register["qtl_id"] == spec.id].sort_values("value")
    if rows.empty:
        return empty_figure(title, "No study in the chosen filters has data for this parameter.")
    fig = go.Figure()
    for status, color in STATUS_COLORS.items():
        part = rows[rows["status"] == status]
        if part.empty:
            continue
        fig.add_scatter(x=part["value"] * 100, y=[study_labels.get(s, s) for s in part["study_id"]], mode="markers",
                        name=status, marker=dict(color=color, size=10),
                        error_x=dict(type="data", symmetric=False, array=(part["high"] - part["value"]) * 100,
                                     arrayminus=(part["value"] - part["low"]) * 100, color=color),
                        hovertemplate="%{y}: %{x:.1f}%<extra></extra>")
    fig.add_vline(x=spec.limit * 100, line=dict(color=FLAG_COLORS["red"], width=2),
                  annotation_text=f"limit {spec.limit:.0%}")
    fig.add_vline(x=spec.warning * 100, line=dict(color=FLAG_COLORS["amber"], dash="dash", width=1),
                  annotation_text=f"warning {spec.warning:.0%}", annotation_position="bottom right")
    fig.update_layout(height=max(300, 28 * len(rows) + 140),
                      title=dict(text=f"{title}<br><sup>value with 95% interval per study</sup>"),
                      xaxis_title=f"{spec.numerator_label} (% of {_in_sentence(spec.denominator_label)})",
                      yaxis_title="Study", legend=dict(orientation="h", y=-0.2), margin=dict(l=10, r=10, t=70, b=10))
    return fig
