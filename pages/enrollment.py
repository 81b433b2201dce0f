"""Enrollment: Poisson-Gamma forecasts with honest intervals beside Prophet and linear, and the timelines."""

from __future__ import annotations

import streamlit as st

from analytics.display import exports
from analytics.display.formats import as_of_label
from analytics.enrollment import figures, service, tables
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.session import current_context

ctx = current_context()
st.title("Enrollment")
st.caption(f"Forecasts of randomization from each study's sites, fitted on the data up to the as-of date "
           f"({as_of_label(ctx.as_of)}). Final decisions on sites and timelines stay with the study team.")
fresh = service.freshness(ctx.warehouse, ctx.scope, ctx.filters)
if not fresh.ok:
    st.warning(fresh.message(ctx.warehouse.path), icon=":material/update:")

summaries = service.study_summaries(ctx.warehouse, ctx.scope, ctx.filters)
if summaries.empty:
    st.info("No study in the current scope and filters has an enrollment forecast stored yet.")
    st.stop()
portfolio = tables.portfolio_table(summaries)
st.subheader("Studies, least likely to finish on time first")
st.dataframe(portfolio, hide_index=True, height="content" if len(portfolio) <= 25 else "auto", key="forecasts",
             column_config=tables.PORTFOLIO_CONFIG)
st.caption("P(on time): the chance the target is randomized by the planned last-patient-in date, from 10,000 "
           "simulations of every site (active sites at their fitted rates; sites not yet active at their planned "
           "dates with the delays and drop-outs seen so far). Sites to add: the fewest new sites, activated by the "
           "date shown, that bring it to 80%.")
c1, c2 = st.columns(2)
download_button(ctx, "Download the forecasts (CSV)", lambda: exports.to_csv(portfolio), "enrollment_forecasts.csv",
                "text/csv", key="download_forecasts_csv", container=c1)
download_button(ctx, "Download the forecasts (Excel)", lambda: exports.to_excel({"Forecasts": portfolio}),
                "enrollment_forecasts.xlsx", exports.EXCEL_MIME, key="download_forecasts_xlsx", container=c2)

st.subheader("One study")
study = widgets.selectbox(ctx, "forecast_study")
if study is None:
    st.stop()
row = summaries.set_index("study_id").loc[study]
forecast = service.study_forecast(ctx.warehouse, ctx.scope, ctx.filters, study)
st.plotly_chart(figures.fan_chart(forecast, row, f"{row['protocol_id']}: randomized subjects, actual and forecast"),
                key="fan")
st.caption("The shaded fan is the Poisson-Gamma forecast (50, 80 and 90% intervals). Prophet (weekly counts of the "
           "whole study) and a straight line through the last 90 days are shown beside it for comparison: neither "
           "knows about sites, so neither sees sites that are still to open or that have stopped.")

left, right = st.columns(2)
with left:
    timeline = service.study_timeline(ctx.warehouse, ctx.scope, ctx.filters, study)
    st.plotly_chart(figures.timeline_chart(timeline), key="timeline")
with right:
    sites = service.site_forecasts(ctx.warehouse, ctx.scope, ctx.filters, study)
    st.plotly_chart(figures.site_contribution_chart(sites, "What each site adds to the rest of enrollment"),
                    key="site_contribution")
# Full width: the 10-90% interval is two dates and is cut off in a half-width column.
st.markdown("**Timeline**")
st.dataframe(tables.timeline_table(timeline), hide_index=True, key="timeline_table")
st.markdown("**Sites**")
st.dataframe(tables.site_table(sites), hide_index=True, key="site_forecasts", column_config=tables.SITE_CONFIG)

stages, reasons = service.funnel(ctx.warehouse, ctx.scope, ctx.filters, study)
st.plotly_chart(figures.funnel_chart(stages, reasons, study, name=row["protocol_id"]), key="screening_funnel")

st.subheader("Who is enrolled")
dimension = widgets.segmented(ctx, "group")
demographics = service.study_demographics(ctx.warehouse, ctx.scope, ctx.filters, study)
st.plotly_chart(figures.demographics_chart(demographics, study, dimension), key="demographics")
st.caption("Shares of randomized subjects now and forecast at the end of enrollment, against the study's diversity "
           "plan (where it has one) and the condition's population in the study's countries (the population shares "
           "of generated studies are the generator's own assumptions, not epidemiology).")
