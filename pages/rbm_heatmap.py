"""RBM heatmap: sites x KRIs with calibrated flags, and a shareable drill-down per site and KRI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics.kri import service
from analytics.kri.atypical import TEST_LABELS, TESTS
from analytics.kri.engine import METHODS
from analytics.kri.sites import FLAG_NAMES
from analytics.frame.session import current_context

ctx = current_context("rbm")
METHOD_LABELS = {"calibrated": "Calibrated (engine)", "funnel": "gsm-style funnel z"}
KRI_NAMES = service.kri_names()

st.title("RBM heatmap")
st.caption(f"Key risk indicators per site against its study peers, data as of {ctx.as_of:%d %b %Y}. "
           "Monthly snapshots end at that date; the date filters do not apply here.")

method = st.segmented_control("Method", METHODS, format_func=METHOD_LABELS.get, default="calibrated",
                              key="method", bind="query-params") or "calibrated"
if method not in METHODS:
    st.warning(f"Unknown method {method!r}; showing the calibrated engine.")
    method = "calibrated"

cells, sites = service.kri_tables(ctx.warehouse, ctx.scope, ctx.filters, method)
if sites.empty:
    st.info("No site with screened subjects in the current scope and filters.")
    st.stop()

burden = service.alert_burden(cells, sites, method)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Sites scored", burden["sites"])
m2.metric("Sites flagged (amber or red)", burden["flagged"],
          delta=f"{burden['flagged'] - burden['expected_flagged']:+.0f} vs chance", delta_color="inverse",
          help=f"A study with no real issues would flag about {burden['expected_flagged']:.0f} of these sites by chance.")
m3.metric("Sites with a red flag", burden["red"],
          delta=f"{burden['red'] - burden['expected_red']:+.0f} vs chance", delta_color="inverse",
          help=f"Expected by chance: {burden['expected_red']:.1f}.")
m4.metric("Flagged by chance (clean study)", f"{burden['expected_flagged']:.0f}")

max_rows = st.select_slider("Sites shown (ordered by site score)", [25, 50, 100, 200], value=50, key="rows")
shown = sites.head(max_rows)
labels = [f"{r.study_id} · {r.site_number} · {r.site_name[:28]}" for r in shown.itertuples()]
order = {s: i for i, s in enumerate(shown["study_site_id"])}
kri_ids = list(KRI_NAMES)
grid = cells[cells["study_site_id"].isin(order)].copy()
grid["row"] = grid["study_site_id"].map(order)
grid["col"] = grid["kri"].map({k: i for i, k in enumerate(kri_ids)})

# Colour: grey = insufficient, green shades = ok, amber and red shaded by |z|.
magnitude = np.clip(grid["z"].abs().fillna(0) / 5, 0, 1) * 0.95
value = np.select([grid["flag"] < 0, grid["flag"] == 0, grid["flag"] == 1],
                  [0.0, 1 + magnitude, 2 + magnitude], 3 + magnitude)
z = np.full((len(shown), len(kri_ids)), np.nan)
z[grid["row"], grid["col"]] = value
text = np.full(z.shape, "", dtype=object)


def _trend(history: list | None) -> str:
    if not isinstance(history, list) or len(history) < 2 or history[-1] is None or history[-2] is None:
        return "n/a"
    change = history[-1] - history[-2]
    return "rising" if change > 0.3 else "falling" if change < -0.3 else "steady"


for r in grid.itertuples():
    p_text = "n/a" if pd.isna(r.p) else f"{r.p:.2g}"
    text[r.row, r.col] = (
        f"{r.kri_name}<br>observed {r.observed:,.0f} · expected {r.expected:,.1f}"
        f"<br>O/E {r.o_e:.2f} · p {p_text}<br>flag {FLAG_NAMES[r.flag]} {r.direction}"
        f"<br>flagged {int(r.months_flagged or 0)} month(s){' · new' if r.new_flag else ''} · trend {_trend(r.z_history)}"
    )
colorscale = [
    [0.0, "#d0d0d0"], [0.25, "#d0d0d0"], [0.25, "#eef7ee"], [0.5, "#9fd39f"],
    [0.5, "#ffe08a"], [0.75, "#f0a020"], [0.75, "#f4a6a6"], [1.0, "#b00020"],
]
fig = go.Figure(go.Heatmap(z=z, x=[KRI_NAMES[k] for k in kri_ids], y=labels, zmin=0, zmax=4,
                           colorscale=colorscale, showscale=False, text=text, hoverinfo="text", xgap=1, ygap=1))
points = grid[["row", "col"]].to_numpy()
fig.add_trace(go.Scatter(  # invisible markers at cell centres so a click selects a cell
    x=[KRI_NAMES[kri_ids[c]] for c in points[:, 1]], y=[labels[r] for r in points[:, 0]],
    mode="markers", marker={"opacity": 0, "size": 14}, hoverinfo="skip",
    customdata=np.column_stack([grid["study_site_id"], grid["kri"]]), showlegend=False))
fig.update_layout(height=max(320, 22 * len(shown) + 120), margin={"l": 10, "r": 10, "t": 30, "b": 10},
                  yaxis={"autorange": "reversed"}, xaxis={"side": "top"})
event = st.plotly_chart(fig, width="stretch", on_select="rerun", selection_mode="points", key="heatmap")
selected = getattr(getattr(event, "selection", None), "points", None) if event else None
if selected:
    custom = selected[0].get("customdata")
    if custom and (st.query_params.get("focus") != custom[0] or st.query_params.get("kri") != custom[1]):
        st.query_params["focus"], st.query_params["kri"] = custom[0], custom[1]
        st.rerun()

st.caption("Grey: insufficient data (expected count too small). Amber and red: calibrated so a clean site "
           "shows any amber with 10% and any red with 1% probability. Click a cell to drill down.")

with st.expander("Site ranking and flags", expanded=False):
    table = sites[["study_id", "site_number", "site_name", "country_code", "site_score", "site_p", "red", "amber",
                   "evaluable", "months_flagged", "new_flags"]]
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"site_p": st.column_config.NumberColumn("site p (permutation)", format="%.3g"),
                                "site_score": st.column_config.NumberColumn(format="%.2f")})

with st.expander("Country roll-up", expanded=False):
    rollup = service.country_rollup(ctx.warehouse, ctx.scope, ctx.filters, method)
    pivot = rollup.pivot_table(index="country_code", columns="kri_name", values="flagged", aggfunc="sum")
    st.dataframe(pivot, width="stretch")

# --- drill-down ---------------------------------------------------------------------------------
st.subheader("Drill-down")
site_options = list(sites["study_site_id"])
focus = st.query_params.get("focus")
if focus is not None and focus not in set(site_options):
    st.warning(f"Site {focus!r} is not in your current scope or filters; pick one below.")
    focus = None
kri_param = st.query_params.get("kri")
if kri_param is not None and kri_param not in KRI_NAMES:
    st.warning(f"Unknown KRI {kri_param!r}; pick one below.")
    kri_param = None
site_label = {r.study_site_id: f"{r.study_site_id} · {r.site_name}" for r in sites.itertuples()}
c1, c2 = st.columns(2)
focus = c1.selectbox("Site", site_options, index=site_options.index(focus) if focus else None,
                     format_func=site_label.get, placeholder="Choose a site")
kri_id = c2.selectbox("KRI", kri_ids, index=kri_ids.index(kri_param) if kri_param else 0,
                      format_func=KRI_NAMES.get)
if focus is None:
    st.info("Click a heatmap cell or choose a site to open its drill-down.")
    st.stop()
if st.query_params.get("focus") != focus or st.query_params.get("kri") != kri_id:
    st.query_params["focus"], st.query_params["kri"] = focus, kri_id
site_row = sites[sites["study_site_id"] == focus].iloc[0]
from urllib.parse import urlencode  # noqa: E402

share = urlencode({**ctx.filter_params(), "method": method, "focus": focus, "kri": kri_id}, doseq=True)
st.caption(f"This drill-down is in the page URL; share it as `?{share}`.")

left, right = st.columns(2)
funnel = service.kri_funnel(ctx.warehouse, ctx.scope, ctx.filters, method, site_row["study_id"], kri_id)
with left:
    st.markdown(f"**{KRI_NAMES[kri_id]}: funnel across {site_row['study_id']} sites**")
    ok = funnel[funnel["denominator"] > 0]
    colours = ok["flag"].map({-1: "#b0b0b0", 0: "#4c9a4c", 1: "#f0a020", 2: "#b00020"})
    ff = go.Figure(go.Scatter(x=ok["denominator"], y=ok["rate"], mode="markers", text=ok["study_site_id"],
                              marker={"color": colours, "size": np.where(ok["study_site_id"] == focus, 16, 8),
                                      "line": {"width": np.where(ok["study_site_id"] == focus, 2, 0)}},
                              hovertemplate="%{text}<br>denominator %{x:,.0f}<br>rate %{y:.3g}<extra></extra>"))
    if len(ok) and ok["expected"].sum() > 0:
        overall = ok["observed"].sum() / ok["denominator"].sum() * ok["scale"].iloc[0]
        ff.add_hline(y=overall, line_dash="dot", annotation_text="study rate")
    ff.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis_title="denominator",
                     yaxis_title=service.kri_spec(kri_id).unit)
    st.plotly_chart(ff, width="stretch", key="funnel")
with right:
    history = service.kri_site_history(ctx.warehouse, ctx.scope, ctx.filters, method, focus, kri_id)
    st.markdown("**Cumulative observed minus expected, monthly snapshots**")
    hf = go.Figure(go.Scatter(x=history["cutoff"], y=history["observed_minus_expected"], mode="lines+markers"))
    hf.add_hline(y=0, line_dash="dot")
    hf.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title="observed - expected")
    st.plotly_chart(hf, width="stretch", key="cumulative")

st.markdown("**Flag history**")
st.dataframe(history.assign(flag=history["flag"].map(FLAG_NAMES)), hide_index=True, width="stretch")

breakdown_kind = service.kri_spec(kri_id).breakdown or "ae_body_system"
st.markdown(f"**Breakdown: {breakdown_kind.replace('_', ' ')}**")
st.dataframe(service.kri_breakdown(ctx.warehouse, ctx.scope, ctx.filters, focus, breakdown_kind),
             hide_index=True, width="stretch")

st.markdown("**Atypical-data diagnostics**")
atypical = service.atypical_sites(ctx.warehouse, ctx.scope, ctx.filters)
row = atypical[atypical["study_site_id"] == focus]
if row.empty:
    st.info("No vital-sign or lab data at this site yet.")
else:
    r = row.iloc[0]
    diag = pd.DataFrame({"test": [TEST_LABELS[t] for t in TESTS], "p (study-rescaled)": [r[t] for t in TESTS]})
    st.dataframe(diag, hide_index=True, width="stretch")
    verdict = "insufficient data" if pd.isna(r["atypical_p"]) else (
        "ATYPICAL" if r["atypical_flag"] else "typical")
    st.write(f"Combined atypical-data p = {r['atypical_p']:.3g} ({verdict})" if not pd.isna(r["atypical_p"])
             else "Combined atypical-data score: insufficient data")
st.download_button("Download this site's KRI cells (JSON)", key="download_cells",
                   data=json.dumps(cells[cells["study_site_id"] == focus].drop(columns=["z_history"]).to_dict("records"),
                                   default=str),
                   file_name=f"kri_{focus}.json", mime="application/json")
