"""Overview: the portfolio at a glance, with links into the detailed pages."""

from __future__ import annotations

import streamlit as st

from analytics.display.formats import as_of_label
from analytics.frame.access import download_button
from analytics.frame.pages import links_for
from analytics.frame.session import current_context
from analytics.portfolio import figures, overview as portfolio

ctx = current_context()
wh, scope, filters = ctx.warehouse, ctx.scope, ctx.filters

st.title("Portfolio overview")
st.caption(as_of_label(ctx.as_of))
# Nine links in one row cut every title short at 1440 px ("Enrollme", "Site perfo"); five a row fit.
LINKS_PER_ROW = 5

links = links_for(ctx.user.role, exclude=ctx.page.key)
for start in range(0, len(links), LINKS_PER_ROW):
    for column, page in zip(st.columns(LINKS_PER_ROW), links[start:start + LINKS_PER_ROW]):
        column.page_link(page.path, label=page.title, icon=page.icon,
                         query_params={k: v for k, v in ctx.filter_params().items() if k in page.filters})

studies = portfolio.study_overview(wh, scope, filters)
if studies.empty:
    st.info("No studies match the current filters.")
    st.stop()
milestones = portfolio.milestones_at_risk(wh, scope, filters)
studies = portfolio.with_risk_signals(studies, portfolio.risk_signals(wh, scope, filters))
kpi = portfolio.portfolio_kpis(studies, milestones)

cols = st.columns(4)
cols[0].metric("Studies", f"{kpi['studies']:,}", help="Studies visible to you that match the filters")
cols[1].metric("Behind plan", kpi["behind_plan"],
               help=f"Randomized below {portfolio.BEHIND_PLAN_RATIO:.0%} of what the plan expects by now")
cols[2].metric("Randomized", f"{kpi['randomized']:,}")
cols[3].metric("Sites with red flags", kpi["red_sites"],
               help="Sites with at least one key risk indicator flagged red by the calibrated engine "
                    "(a site without problems shows any red with 1% probability); see the RBM heatmap")
cols = st.columns(4)
cols[0].metric("Open queries", f"{kpi['open_queries']:,}",
               help=f"{kpi['queries_open_30d']:,} of them open for more than 30 days")
cols[1].metric("Queries open > 30 days", f"{kpi['queries_open_30d']:,}")
cols[2].metric("Overdue CAPAs", kpi["overdue_capas"], help="Open CAPAs past their current due date")
cols[3].metric("Milestones overdue", kpi["milestones_overdue"],
               help="Planned milestones whose date has passed without being reached")

left, right = st.columns([3, 2])
with left:
    st.plotly_chart(figures.enrollment_figure(studies), key="enrollment_vs_plan")
with right:
    st.plotly_chart(figures.query_aging_figure(portfolio.query_aging(wh, scope, filters), studies), key="query_aging")

st.subheader("Studies")
table = portfolio.study_table(studies, ctx.filter_params(), links)
st.dataframe(table, hide_index=True, column_config=portfolio.STUDY_TABLE_CONFIG, key="study_table",
             height="content" if len(table) <= 25 else "auto")
notes = []
if filters.country_codes or filters.study_site_ids:
    notes.append("With a country or site filter, a study's target and plan are the chosen sites' share of its "
                 "planned enrollment.")
if studies["data_source"].eq("sdtm").any():
    notes.append("Studies imported from SDTM carry no operational data (queries, eCRF entry dates, CAPAs): "
                 "those cells are empty rather than zero.")
notes.append("% of target can pass 100%: sites may randomize beyond the target while screening closes.")
for note in notes:
    st.caption(note)
download_button(ctx, "Download the study table (CSV)",
                lambda table=table: table.drop(columns="Risk view", errors="ignore").to_csv(index=False),
                "portfolio_overview.csv", "text/csv", key="download_overview")

st.subheader("Milestones at risk")
if milestones.empty:
    st.success("No milestone is overdue, due within 90 days, or forecast to miss its plan.")
else:
    st.dataframe(portfolio.milestone_table(milestones), hide_index=True, key="milestone_table")
    st.caption("Overdue and due-soon milestones, and every last-patient-in, last-visit and database-lock milestone "
               f"the enrollment forecast gives less than a {portfolio.FORECAST_RISK:.0%} chance of meeting its plan.")
