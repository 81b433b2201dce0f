"""Figures of the RBM heatmap page: pure functions from the stored KRI tables to Plotly figures."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from analytics.display.formats import p_value
from analytics.display.theme import FLAG_COLORS, empty_figure
from analytics.kri.sites import FLAG_AMBER, FLAG_INSUFFICIENT, FLAG_OK, FLAG_RED
from analytics.kri.specs import KRISpec

# Every colour the heatmap uses, with its legend entry (in legend order).
FLAG_STYLE: dict[int, tuple[str, str]] = {
    FLAG_RED: ("Red: strong signal", FLAG_COLORS["red"]),
    FLAG_AMBER: ("Amber: signal", FLAG_COLORS["amber"]),
    FLAG_OK: ("No signal", "#a9d3a0"),
    FLAG_INSUFFICIENT: ("Insufficient data", FLAG_COLORS["grey"]),
}
ROW_HEIGHT = 24  # px per site row
FUNNEL_LIMITS = ((0.95, "95% limits", "dash"), (0.998, "99.8% limits", "dot"))


def _hover_texts(part: pd.DataFrame, site_labels: Mapping[str, str]) -> list[str]:
    """One hover text per cell, built column-wise (a heatmap has thousands of cells)."""
    sites = part["study_site_id"].map(lambda s: site_labels.get(s, s))
    change = part["z_change"] if "z_change" in part else pd.Series(np.nan, index=part.index)
    trend = np.select([change > 0.3, change < -0.3, change.notna()], ["rising", "falling", "steady"],
                      "not enough snapshots")
    state = part["flag"].map(lambda f: FLAG_STYLE[int(f)][0].split(":")[0])
    direction = part["direction"].fillna("").map(lambda d: f" ({d})" if d else "")
    months = part["months_flagged"].fillna(0).astype(int).astype(str)
    new = np.where(part["new_flag"].fillna(False).astype(bool), " (new)", "")
    scored = (sites + "<br><b>" + part["kri_name"] + "</b>: " + state + direction
              + "<br>observed " + part["observed"].map("{:,.0f}".format) + ", expected "
              + part["expected"].map(lambda v: "—" if pd.isna(v) else f"{v:,.1f}")
              + " (O/E " + part["o_e"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}") + ")"
              + "<br>p " + part["p"].map(p_value) + "; flagged " + months + " month(s) in a row" + new
              + "; trend " + trend + "<br>click for the drill-down")
    grey = (sites + "<br>" + part["kri_name"] + ": insufficient data (expected count "
            + part["expected"].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}") + ")")
    return np.where(part["flag"] == FLAG_INSUFFICIENT, grey, scored).tolist()


def heatmap_figure(cells: pd.DataFrame, site_order: list[str], site_labels: Mapping[str, str],
                   kri_names: Mapping[str, str]) -> go.Figure:
    """Sites (rows, in ``site_order``) by KRIs (columns) as clickable squares, one colour per flag state.

    Each cell is a square marker (a click on a marker selects its point, with the site and KRI in
    ``customdata``); strength within a state is shown by opacity (|z|).
    """
    grid = cells[cells["study_site_id"].isin(set(site_order))]
    if grid.empty:
        return empty_figure("Sites by key risk indicator", "No scored site in the chosen studies and sites.")
    fig = go.Figure()
    for flag, (name, color) in FLAG_STYLE.items():
        part = grid[grid["flag"] == flag]
        strength = np.clip(part["z"].abs().fillna(0.0) / 4.0, 0.0, 1.0)
        fig.add_scatter(
            x=part["kri_name"], y=part["study_site_id"], mode="markers", name=name,
            marker=dict(symbol="square", size=ROW_HEIGHT - 4, color=color,
                        opacity=(0.55 + 0.45 * strength) if flag > FLAG_OK else 1.0, line=dict(width=0)),
            customdata=np.column_stack([part["study_site_id"], part["kri"]]) if len(part) else None,
            hovertext=_hover_texts(part, site_labels) if len(part) else None,
            hoverinfo="text",
        )
    columns = list(kri_names.values())
    fig.update_layout(
        height=max(360, ROW_HEIGHT * len(site_order) + 190), margin=dict(l=10, r=10, t=180, b=10),
        legend=dict(orientation="v", x=1.01, xanchor="left", y=1.0, yanchor="top", title_text="Flag"),
        xaxis=dict(side="top", categoryorder="array", categoryarray=columns, tickangle=-45, title=None,
                   showgrid=False, automargin=True),
        yaxis=dict(categoryorder="array", categoryarray=list(site_order), autorange="reversed",
                   tickvals=list(site_order), ticktext=[site_labels.get(s, s) for s in site_order],
                   showgrid=False, title=None),
        clickmode="event+select", dragmode=False,
        plot_bgcolor="#ffffff",
    )
    return fig


def funnel_figure(funnel: pd.DataFrame, spec: KRISpec, focus: str, site_labels: Mapping[str, str]) -> go.Figure:
    """Every site of a study for one KRI: rate against denominator, with exact sampling limits.

    The limits are the Poisson (counts) or binomial (proportions) quantiles around the study's
    overall rate at each denominator; the flags come from the engine, which also allows for
    over-dispersion between subjects and sites, so a point just outside a limit need not be flagged.
    """
    ok = funnel[funnel["denominator"] > 0]
    title = f"{spec.name}: every site of the study"
    if ok.empty or ok["observed"].sum() == 0 and ok["expected"].sum() == 0:
        return empty_figure(title, "No site of this study has data for this KRI yet.")
    shown_scale = spec.denominator_display_scale
    overall = ok["observed"].sum() / ok["denominator"].sum()
    fig = go.Figure()
    grid = np.unique(np.geomspace(max(ok["denominator"].min() * 0.8, 1.0), ok["denominator"].max() * 1.2, 160))
    for coverage, label, dash in FUNNEL_LIMITS:
        low_q, high_q = (1 - coverage) / 2, 1 - (1 - coverage) / 2
        if spec.family == "count":
            lower = stats.poisson.ppf(low_q, overall * grid) / grid
            upper = stats.poisson.ppf(high_q, overall * grid) / grid
        else:
            n = np.maximum(np.round(grid), 1)
            p = min(max(overall, 0.0), 1.0)
            lower, upper = stats.binom.ppf(low_q, n, p) / n, stats.binom.ppf(high_q, n, p) / n
        for bound, show in ((lower, True), (upper, False)):
            fig.add_scatter(x=grid / shown_scale, y=bound * spec.scale, mode="lines", name=label, showlegend=show,
                            line=dict(color="#5c6b73", dash=dash, width=1, shape="hv"), legendgroup=label,
                            hoverinfo="skip")
    fig.add_hline(y=overall * spec.scale, line=dict(color="#1b1f24", width=1), annotation_text="study rate",
                  annotation_position="top left")
    for flag, (name, color) in FLAG_STYLE.items():
        part = ok[ok["flag"] == flag]
        if part.empty:
            continue
        focused = part["study_site_id"] == focus
        fig.add_scatter(
            x=part["denominator"] / shown_scale, y=part["rate"], mode="markers", name=name,
            marker=dict(color=color, size=np.where(focused, 16, 9), line=dict(width=np.where(focused, 2.5, 0.5),
                                                                              color="#1b1f24")),
            text=[site_labels.get(s, s) for s in part["study_site_id"]],
            hovertemplate="%{text}<br>%{x:,.1f} " + spec.denominator_label + "<br>%{y:.3g} " + spec.unit
                          + "<extra></extra>",
        )
    row = ok[ok["study_site_id"] == focus]
    if len(row):
        fig.add_annotation(x=float(row["denominator"].iloc[0] / shown_scale), y=float(row["rate"].iloc[0]),
                           text="this site", showarrow=True, arrowhead=2, ax=30, ay=-30)
    fig.update_layout(
        height=380, margin=dict(l=10, r=10, t=90, b=10), title=dict(text=title, y=0.98, yanchor="top"),
        xaxis_title=spec.denominator_label.capitalize(), yaxis_title=spec.unit.capitalize(),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
    )
    return fig


def cumulative_figure(history: pd.DataFrame, spec: KRISpec) -> go.Figure:
    """Observed minus expected events at each monthly snapshot (cumulative since the site started)."""
    title = "Observed minus expected, monthly snapshots"
    if history.empty or history["expected"].isna().all():
        return empty_figure(title, "No snapshot of this site has an expected count for this KRI.")
    fig = go.Figure()
    fig.add_scatter(x=history["cutoff"], y=history["observed_minus_expected"], mode="lines+markers",
                    name="Observed − expected", line=dict(color=FLAG_COLORS["blue"]),
                    hovertemplate="%{x|%d %b %Y}: %{y:+.1f}<extra></extra>")
    fig.add_hline(y=0, line=dict(color="#5c6b73", dash="dot"), annotation_text="as expected",
                  annotation_position="bottom right")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=90, b=10), title=dict(text=title, y=0.98, yanchor="top"),
                      yaxis_title=f"Observed − expected ({'events' if spec.family == 'count' else 'count'})",
                      xaxis=dict(title="Snapshot date", tickformat="%d %b %Y", tickvals=list(history["cutoff"])),
                      showlegend=True, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig
