"""Overview: the portfolio at a glance, with links into the detailed pages."""

from __future__ import annotations

from urllib.parse import urlencode

import plotly.express as px
import streamlit as st

from analytics.portfolio import overview as portfolio
from analytics.frame.navigation import links_for
from analytics.frame.session import current_context

ctx = current_context("overview")
wh, scope, filters = ctx.warehouse, ctx.scope, ctx.filters

st.title("Portfolio overview")
st.caption(portfolio.as_of_label(ctx.as_of))
links = links_for(ctx.user.role, exclude="overview")
if links:
    for column, page in zip(st.columns(len(links)), links):
        column.page_link(page.path, label=page.title, icon=page.icon, query_params=ctx.filter_params())

overview = portfolio.study_overview(wh, scope, filters)
if overview.empty:
    st.info("No studies match the current filters.")
    st.stop()
milestones = portfolio.milestones_at_risk(wh, scope, filters)
overview = portfolio.with_risk_signals(overview, portfolio.risk_signals(wh, scope, filters))
kpi = portfolio.portfolio_kpis(overview, milestones)

cols = st.columns(7)
cols[0].metric("Studies", kpi["studies"], help="Studies visible to you that match the filters")
cols[1].metric("Behind enrollment plan", kpi["behind_plan"],
               help=f"Randomized below {portfolio.BEHIND_PLAN_RATIO:.0%} of what the plan expects by now")
cols[2].metric("Randomized", f"{kpi['randomized']:,}")
cols[3].metric("Sites with a red risk flag", kpi["red_sites"],
               help="Sites with at least one key risk indicator flagged red by the calibrated engine "
                    "(a clean site shows any red with 1% probability); see the RBM heatmap")
cols[4].metric("Open queries", f"{kpi['open_queries']:,}", f"{kpi['queries_open_30d']:,} open > 30 days",
               delta_color="inverse")
cols[5].metric("Overdue CAPAs", kpi["overdue_capas"], help="Open CAPAs past their current due date")
cols[6].metric("Milestones overdue", kpi["milestones_overdue"])

left, right = st.columns([3, 2])
with left:
    st.plotly_chart(portfolio.enrollment_figure(overview), key="enrollment_vs_plan")
with right:
    aging = portfolio.query_aging(wh, scope, filters)
    charted = portfolio.worst_enrolling(overview)["study_id"]
    aging = aging[aging["study_id"].isin(charted)]
    fig = px.bar(aging, x="open_queries", y="study_id", color="age_bucket", orientation="h",
                 labels={"open_queries": "Open queries", "study_id": "", "age_bucket": "Age"})
    fig.update_layout(height=max(300, 28 * len(charted) + 120), margin=dict(l=10, r=10, t=80, b=10),
                      title=dict(text="Open queries by age", y=0.99, yanchor="top"),
                      legend=dict(orientation="h", y=1.01, yanchor="bottom", x=0),
                      yaxis=dict(categoryorder="category descending"))
    st.plotly_chart(fig, key="query_aging")

st.subheader("Studies")
table = overview[[
    "study_id", "protocol_id", "sponsor_name", "phase", "therapeutic_area", "status", "enrollment_status",
    "randomized", "expected_now", "target_enrollment", "pct_of_target", "active_sites", "sites", "red_sites",
    "flagged_sites", "open_queries", "queries_open_30d", "overdue_visits", "open_capas", "overdue_capas",
]]
rbm_page = next((p for p in links if p.key == "rbm"), None)
if rbm_page:  # a per-study link into the heatmap, keeping the other filters
    base = {k: v for k, v in ctx.filter_params().items() if k != "study"}
    table = table.assign(risk_view=[
        f"./{rbm_page.url_path}?{urlencode({**base, 'study': study}, doseq=True)}" for study in table["study_id"]])
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "study_id": "Study", "protocol_id": "Protocol", "sponsor_name": "Sponsor", "phase": "Phase",
        "therapeutic_area": "Area", "status": "Status", "enrollment_status": "Enrollment",
        "randomized": "Randomized", "expected_now": "Plan by now", "target_enrollment": "Target",
        "pct_of_target": st.column_config.ProgressColumn("% of target", format="percent", min_value=0, max_value=1),
        "active_sites": "Active sites", "sites": "Sites", "red_sites": "Red-flag sites",
        "flagged_sites": "Flagged sites", "open_queries": "Open queries",
        "queries_open_30d": "Queries > 30 d", "overdue_visits": "Visits not entered > 10 d",
        "open_capas": "Open CAPAs", "overdue_capas": "Overdue CAPAs",
        "risk_view": st.column_config.LinkColumn("Risk view", display_text="Open heatmap"),
    },
    key="study_table",
)
if filters.country_codes or filters.study_site_ids:
    st.caption("With a country or site filter, a study's target and plan are the chosen sites' share of its "
               "planned enrollment.")
if overview["data_source"].eq("sdtm").any():
    st.caption("Studies imported from SDTM carry no operational data (queries, eCRF entry dates, CAPAs): "
               "those cells are empty rather than zero.")
st.download_button("Download the study table (CSV)", table.drop(columns="risk_view", errors="ignore").to_csv(index=False).encode(), "portfolio_overview.csv",
                   "text/csv", key="download_overview")

st.subheader("Milestones at risk")
if milestones.empty:
    st.success("No milestone is overdue or due within 90 days without being reached.")
else:
    st.dataframe(
        milestones[["study_id", "protocol_id", "milestone", "planned_date", "days_late", "risk"]],
        hide_index=True,
        column_config={"study_id": "Study", "protocol_id": "Protocol", "milestone": "Milestone",
                       "planned_date": st.column_config.DateColumn("Planned"), "days_late": "Days late", "risk": "Risk"},
        key="milestone_table",
    )
