"""Site performance: scorecards against study peers, trends, and a ranking for site selection."""

from __future__ import annotations

import streamlit as st

from analytics.sites import performance as sp
from analytics.frame.session import current_context

ctx = current_context("site_performance")
st.title("Site performance")
st.caption(f"Each site against the other sites of its study, data as of {ctx.as_of:%d %b %Y}. "
           "Percentiles: 100 = best in the study.")

cards = sp.site_scorecards(ctx.warehouse, ctx.scope, ctx.filters)
if cards.empty:
    st.info("No sites in the current scope and filters.")
    st.stop()
cards = sp.with_sparklines(cards, sp.enrollment_sparklines(ctx.warehouse, ctx.scope, ctx.filters))

studies = sorted(cards["study_id"].unique())
study = st.query_params.get("perf_study")
if study is not None and study not in studies:
    st.warning(f"Study {study!r} is not in your scope or filters; showing all studies.")
    study = None
study = st.selectbox("Study", studies, index=studies.index(study) if study else None,
                     placeholder="All studies in scope")
if study and st.query_params.get("perf_study") != study:
    st.query_params["perf_study"] = study
view = cards[cards["study_id"] == study] if study else cards

columns = ["study_id", "site_number", "site_name", "country_code", "status", "overall_pct", "randomized_by_month",
           *sp.METRICS]
config = {m: st.column_config.NumberColumn(label, format="%.2f") for m, (label, _) in sp.METRICS.items()}
config.update({"study_id": "Study", "site_number": "Site", "site_name": "Institution", "country_code": "Country",
               "status": "Status"})
config["overall_pct"] = st.column_config.ProgressColumn("Overall percentile", min_value=0, max_value=100, format="%d")
config["randomized_by_month"] = st.column_config.LineChartColumn("Randomized per month (12 m)")
st.dataframe(view[columns], hide_index=True, width="stretch", column_config=config)
st.download_button("Export scorecards (CSV)", key="export_scorecards",
                   data=lambda: view.drop(columns=["randomized_by_month"]).to_csv(index=False).encode(),
                   file_name="site_scorecards.csv", mime="text/csv")

st.subheader("Site selection for a new study")
areas = sp.therapeutic_areas(ctx.warehouse, ctx.scope)
if not areas:
    st.info("No therapeutic areas in scope.")
    st.stop()
c1, c2 = st.columns(2)
area = c1.selectbox("Therapeutic area", areas, key="perf_area")
countries = sorted(cards["country_code"].dropna().unique())
chosen = c2.multiselect("Countries", countries, key="perf_countries")
ranking = sp.site_selection_ranking(ctx.warehouse, ctx.scope, area, tuple(chosen))
if ranking.empty:
    st.info("No institution has history in this therapeutic area and country.")
else:
    st.caption("Enrollment rate (randomized per site-month) shrunk toward the area mean; institutions with "
               "little history sit near it. Interval: 80% credible.")
    st.plotly_chart(sp.ranking_figure(ranking), key="site_selection_ranking")
    st.dataframe(ranking[["site_id", "site_name", "country_code", "studies", "randomized", "site_months", "rate",
                          "posterior_mean", "lower", "upper"]].head(50), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.2f")
                                for c in ("site_months", "rate", "posterior_mean", "lower", "upper")})
