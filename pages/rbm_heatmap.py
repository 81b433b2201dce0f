"""RBM heatmap: sites x KRIs with calibrated flags, and a shareable drill-down per site and KRI."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.display import exports
from analytics.display.formats import as_of_label
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.session import current_context
from analytics.kri import figures, service, tables

ctx = current_context()
KRI_NAMES = service.kri_names()

st.title("RBM heatmap")
st.caption(f"Key risk indicators per site against the other sites of its study. {as_of_label(ctx.as_of)}; "
           "monthly snapshots end at that date.")
fresh = service.freshness(ctx.warehouse, ctx.scope, ctx.filters)
if not fresh.ok:
    st.warning(fresh.message(ctx.warehouse.path), icon=":material/update:")

method = widgets.segmented(ctx, "method")
cells, sites = service.kri_tables(ctx.warehouse, ctx.scope, ctx.filters, method)
if sites.empty:
    st.info("No site with scored data in the chosen studies and sites. Studies whose monitoring results are "
            "not stored yet, or whose data hold no subjects (a DM-only or operational import), have no rows here.")
    st.stop()

burden = service.alert_burden(cells, sites, method)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Sites scored", f"{burden['sites']:,}")
m2.metric("Sites flagged amber or red", f"{burden['flagged']:,}",
          help=f"A portfolio with no real issues would flag about {burden['expected_flagged']:.0f} of these "
               "sites by chance.")
m3.metric("Sites with a red flag", f"{burden['red']:,}", help=f"Expected by chance: {burden['expected_red']:.1f}.")
m4.metric("Amber or red expected by chance", f"{burden['expected_flagged']:.0f}",
          help="How many sites a study without problems would show flagged, at these thresholds.")

rows = int(widgets.select_slider(ctx, "rows"))
shown = sites.head(rows)
labels = service.site_labels(ctx.warehouse, ctx.scope, ctx.filters)
event = st.plotly_chart(figures.heatmap_figure(cells, list(shown["study_site_id"]), labels, KRI_NAMES),
                        width="stretch", on_select="rerun", selection_mode="points", key="heatmap")
points = getattr(getattr(event, "selection", None), "points", None) if event else None
if points:
    site, kri = (points[0].get("customdata") or [None, None])[:2]
    if site and (site, kri) != (ctx.param("focus"), ctx.param("kri")):
        ctx.navigate(focus=site, kri=kri)
st.caption(f"Rows: the {len(shown)} sites with the strongest combined evidence first (of {len(sites):,}). "
           "Amber and red are calibrated so a site without problems shows any amber with 10% and any red with 1% "
           "probability; grey cells have too few expected events to judge. Click a cell to open its drill-down.")

for note in tables.mostly_grey(cells[cells["study_site_id"].isin(set(shown["study_site_id"]))]):
    st.caption(note)
ranking = tables.site_ranking_table(sites, labels, method)
rollup = tables.country_rollup_table(service.country_rollup(ctx.warehouse, ctx.scope, ctx.filters, method))
e1, e2 = st.columns(2)
# Built on click: a portfolio's heatmap has thousands of rows and is not needed on every rerun.
download_button(ctx, "Download the heatmap (CSV)",
                lambda: exports.to_csv(tables.heatmap_table(cells, list(sites["study_site_id"]), labels)),
                "rbm_heatmap.csv", "text/csv", key="download_heatmap_csv", container=e1)
download_button(ctx, "Download heatmap, ranking and country roll-up (Excel)",
                lambda: exports.to_excel({"Heatmap": tables.heatmap_table(cells, list(sites["study_site_id"]), labels),
                                          "Site ranking": ranking, "Country roll-up": rollup}),
                "rbm_heatmap.xlsx", exports.EXCEL_MIME, key="download_heatmap_xlsx", container=e2)

with st.expander("What each KRI measures"):
    st.dataframe(tables.kri_catalogue_table(), hide_index=True, width="stretch")

with st.expander("Site ranking and flags"):
    st.dataframe(ranking, hide_index=True, width="stretch")
    download_button(ctx, "Download the site ranking (CSV)", lambda: exports.to_csv(ranking), "site_ranking.csv",
                    "text/csv", key="download_ranking")

with st.expander("Country roll-up"):
    if rollup.empty:
        st.info("No flagged site in any country of the chosen studies.")
    else:
        st.dataframe(rollup, hide_index=True, width="stretch")
        download_button(ctx, "Download the country roll-up (CSV)", lambda: exports.to_csv(rollup),
                        "country_rollup.csv", "text/csv", key="download_rollup")

# --- drill-down ---------------------------------------------------------------------------------
st.subheader("Drill-down")
c1, c2 = st.columns(2)
focus = widgets.selectbox(ctx, "focus", c1, placeholder="Choose a site")
kri_id = widgets.selectbox(ctx, "kri", c2)
if focus is None:
    st.info("Click a heatmap cell or choose a site to open its drill-down.")
    st.stop()
spec = service.kri_spec(kri_id)
st.caption(f"Link to this view: `{ctx.share_link()}`")
site_row = sites[sites["study_site_id"] == focus]
if site_row.empty:
    st.info("This site has no scored data yet.")
    st.stop()
study_id = site_row["study_id"].iloc[0]

left, right = st.columns(2)
with left:
    funnel = service.kri_funnel(ctx.warehouse, ctx.scope, ctx.filters, method, study_id, kri_id)
    st.plotly_chart(figures.funnel_figure(funnel, spec, focus, labels), width="stretch", key="funnel")
with right:
    history = service.kri_site_history(ctx.warehouse, ctx.scope, ctx.filters, method, focus, kri_id)
    st.plotly_chart(figures.cumulative_figure(history, spec), width="stretch", key="cumulative")
st.caption(f"{spec.definition} Funnel limits show the spread sampling alone would give around the study rate; "
           "the flags also allow for the usual differences between subjects and sites.")
focus_cell = cells[(cells["study_site_id"] == focus) & (cells["kri"] == kri_id)]
if method == "calibrated" and len(focus_cell) and pd.notna(focus_cell["prob_below"].iloc[0]):
    st.caption(tables.posterior_sentence(focus_cell.iloc[0], spec))

st.markdown("**Flag history**")
st.dataframe(tables.flag_history_table(history, spec), hide_index=True, width="stretch")

st.markdown(f"**Breakdown by {tables.BREAKDOWN_LABELS[spec.breakdown or 'ae_body_system']}**")
if ctx.scope.subject_level:
    breakdown = service.kri_breakdown(ctx.warehouse, ctx.scope, ctx.filters, focus, spec.breakdown or "ae_body_system")
    st.dataframe(tables.breakdown_table(breakdown), hide_index=True, width="stretch")
else:  # a category with one or two events at a site points at the subjects behind it
    st.caption("Not shown to your role: a site's counts by category can point at individual subjects.")

st.markdown("**Atypical-data tests**")
atypical = service.atypical_sites(ctx.warehouse, ctx.scope, ctx.filters)
row = atypical[atypical["study_site_id"] == focus]
if row.empty or pd.isna(row["atypical_p"].iloc[0]):
    st.info("Not enough vital-sign or lab data at this site for the atypical-data tests.")
else:
    st.dataframe(tables.atypical_table(row.iloc[0]), hide_index=True, width="stretch")
    st.caption("Each test compares the site with the other sites of its study; a small p means the site's data "
               "look unlike its peers' in that way (for example, values too alike or too many round numbers). "
               f"Combined over the tests: p {tables.format_p(row['atypical_p'].iloc[0])}"
               f" ({'atypical' if row['atypical_flag'].iloc[0] else 'typical'}).")
