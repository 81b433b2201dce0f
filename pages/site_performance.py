"""Site performance: scorecards against study peers, trends, and a ranking for site selection."""

from __future__ import annotations

import streamlit as st

from analytics.display.formats import as_of_label
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.session import current_context
from analytics.sites import figures, performance as sp

ctx = current_context()
st.title("Site performance")
st.caption(f"Each site against the other sites of its study. {as_of_label(ctx.as_of)}. "
           "Percentiles: 100 = best in the study. Choose studies, countries or sites in the sidebar.")

cards = sp.site_scorecards(ctx.warehouse, ctx.scope, ctx.filters)
if cards.empty:
    st.info("No sites in the current scope and filters.")
    st.stop()
cards = sp.with_sparklines(cards, sp.enrollment_sparklines(ctx.warehouse, ctx.scope, ctx.filters))
table = sp.scorecard_table(cards)
st.dataframe(table, hide_index=True, width="stretch", column_config=sp.SCORECARD_CONFIG, key="scorecards")
st.caption("Sites that have enrolled nobody, or have fewer than three metrics, get no overall percentile and are "
           "listed after the sites that could be assessed.")
download_button(ctx, "Export scorecards (CSV)",
                lambda table=table: table.drop(columns=["Randomized per month (12 m)"]).to_csv(index=False),
                "site_scorecards.csv", "text/csv", key="export_scorecards")

st.subheader("Site selection for a new study")
if not ctx.choices.get("area"):
    st.info("No therapeutic areas in scope.")
    st.stop()
c1, c2 = st.columns(2)
area = widgets.selectbox(ctx, "area", c1, placeholder="Choose a therapeutic area")
countries = widgets.multiselect(ctx, "rank_country", c2, placeholder="All countries")
if area is None:
    st.info("Choose a therapeutic area to rank institutions by their history in it.")
    st.stop()
ranking = sp.site_selection_ranking(ctx.warehouse, ctx.scope, area, countries)
if ranking.empty:
    st.info("No institution has history in this therapeutic area and country.")
else:
    st.caption("Enrollment rate (randomized per site-month) shrunk toward the area mean: institutions with little "
               "history sit near it. Bars: 80% credible interval.")
    st.plotly_chart(figures.ranking_figure(ranking), key="site_selection_ranking")
    st.dataframe(sp.ranking_table(ranking.head(50)), hide_index=True, width="stretch")
