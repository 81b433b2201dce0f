"""Data quality: edit-check findings and SDTM conformance, query and timeliness metrics, unusual site
patterns, and the review of each finding (disposition and reason, kept in the records store)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from analytics.core.records import RecordsError
from analytics.core.settings import load_settings
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.identity import SUBJECT_DATA
from analytics.frame.session import current_context
from analytics.quality import exports, figures, metrics, review, service, tables
from analytics.core.records_schema import DISPOSITIONS

ctx = current_context()
wh, scope, filters = ctx.warehouse, ctx.scope, ctx.filters
CHECK_NAMES = service.check_names()
may_review = ctx.user.role.allows("review_quality")
may_see_subjects = ctx.user.role.allows(SUBJECT_DATA) and ctx.scope.subject_level

st.title("Data quality")
st.caption("Edit checks and SDTM conformance findings, query and timeliness metrics, and sites whose data look "
           "unusual against the other sites of their study. A signal points to data worth a look; it is not a "
           f"verdict on a site. Data as of {ctx.as_of:%d %b %Y}.")
for fresh in service.freshness(wh, scope, filters):
    if not fresh.ok:
        st.warning(fresh.message(wh.path), icon=":material/update:")

studies = service.visible_studies(wh, scope, filters)
try:
    store = review.records_store(load_settings().records_url)
    dispositions = review.current_dispositions(store, studies)
except RecordsError as error:
    st.error(f"The records store cannot be opened, so dispositions are not shown: {error}")
    store, dispositions = None, pd.DataFrame(columns=list(review.DISPOSITION_COLUMNS))
hidden = tuple(review.set_aside_ids(dispositions))

# --- summary ----------------------------------------------------------------------------------------
summary = service.summary(wh, scope, filters, hidden)
by_severity = summary.groupby("severity")["findings"].sum()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Open findings", f"{int(summary['findings'].sum()):,}")
m2.metric("Critical", f"{int(by_severity.get('Critical', 0)):,}")
m3.metric("Set aside as not an issue", f"{len(hidden):,}",
          help="Findings a reviewer marked 'not an issue'; they come back only if the data they read change.")
m4.metric("Queries to raise", f"{len(review.ids_with(dispositions, review.QUERY_RAISED)):,}")
left, right = st.columns(2)
left.plotly_chart(figures.summary_figure(summary), width="stretch", key="summary")
right.plotly_chart(figures.trend_figure(service.trend(wh, scope, filters, hidden)), width="stretch", key="trend")

# --- findings ---------------------------------------------------------------------------------------
st.subheader("Findings")
f1, f2, f3, f4 = st.columns([1, 1.4, 1.6, 1])
severities = widgets.multiselect(ctx, "severity", f1, placeholder="All severities")
categories = widgets.multiselect(ctx, "category", f2, placeholder="All categories")
checks = widgets.multiselect(ctx, "check", f3, placeholder="All checks")
status = widgets.selectbox(ctx, "show", f4)
page = int(ctx.param("page") or 1)
rows, total = service.findings_page(wh, scope, filters, severities, categories, checks, status, hidden, page)
pages = max(1, math.ceil(total / service.PAGE_SIZE))
if total == 0:
    st.info("No finding matches: the chosen studies' data pass every check with these filters, or their findings "
            "are set aside. Studies without stored results yet show none (see any warning above).")
else:
    if page > pages:
        ctx.navigate(page="1")
    table = tables.findings_table(rows, dispositions, CHECK_NAMES)
    event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                         key="findings_table", column_config={"Finding": st.column_config.TextColumn(width="large"),
                                                              "Finding id": st.column_config.TextColumn(width="small")})
    n1, n2, n3 = st.columns([1, 3, 1])
    if n1.button("Previous page", disabled=page <= 1, key="previous_page"):
        ctx.navigate(page=str(page - 1))
    n2.caption(f"Page {page} of {pages:,} · {total:,} findings, most severe and newest first. "
               f"Link to this view: `{ctx.share_link()}`")
    if n3.button("Next page", disabled=page >= pages, key="next_page"):
        ctx.navigate(page=str(page + 1))

    selected = getattr(getattr(event, "selection", None), "rows", None) if event else None
    if selected:
        finding = rows.iloc[selected[0]]
        with st.container(border=True):
            st.markdown(f"**{finding['message']}**")
            st.caption(f"{CHECK_NAMES.get(finding['check_id'], finding['check_id'])} · {finding['category']} · "
                       f"{finding['severity']} · record {finding['table_name']} {finding['record_id']} · "
                       f"finding id {finding['finding_id']}")
            if store is not None:
                history = review.disposition_history(store, finding["finding_id"], studies)
                if len(history):
                    st.dataframe(tables.history_table(history), hide_index=True, width="stretch", key="history")
            if may_review and store is not None:
                with st.form("disposition", clear_on_submit=True):
                    choice = st.radio("Disposition", DISPOSITIONS, horizontal=True)
                    reason = st.text_area("Reason (kept with the decision)", max_chars=2000)
                    if st.form_submit_button("Record disposition"):
                        try:
                            review.record_disposition(store, finding.to_dict(), choice, reason, ctx.user.user_id,
                                                      studies, scope)
                            st.success("Recorded. A changed mind is a new version; nothing is overwritten.")
                            st.rerun()
                        except review.ReviewError as error:
                            st.error(str(error))
            elif not may_review:
                st.caption("Dispositions are given by data managers (your role reads them).")
            if may_see_subjects and isinstance(finding["subject_id"], str) and finding["subject_id"] in ctx.choices.get(
                    "subject", {}) and st.button("Open the subject's record", key="open_subject"):
                ctx.navigate(subject=finding["subject_id"])
    else:
        st.caption("Select a row to review the finding" + (" and open the subject's record." if may_see_subjects else "."))

    e1, e2, e3 = st.columns(3)
    exported = tables.export_table(service.export_findings(wh, scope, filters, severities, categories, checks, status,
                                                           hidden), dispositions, CHECK_NAMES)
    query_ids = tuple(review.ids_with(dispositions, review.QUERY_RAISED))
    queries = tables.export_table(service.export_findings(wh, scope, filters, (), (), (), "all", (), query_ids),
                                  dispositions, CHECK_NAMES) if query_ids else exported.iloc[0:0]
    download_button(ctx, "Findings (CSV)", lambda: exports.csv_bytes(exported), "findings.csv", "text/csv",
                    key="findings_csv", container=e1)
    download_button(ctx, "Findings and queries (Excel)",
                    lambda: exports.excel_bytes({"Findings": exported, "Queries": queries}), "data_quality.xlsx",
                    exports.EXCEL_MIME, key="findings_xlsx", container=e2)
    download_button(ctx, "Queries to raise (CSV)", lambda: exports.csv_bytes(queries), "queries.csv", "text/csv",
                    key="queries_csv", container=e3, disabled=queries.empty)

with st.expander("What each check looks for"):
    st.dataframe(tables.check_catalogue_table(), hide_index=True, width="stretch")
    st.caption("SDTM conformance rules (checked on the files when a study is imported): "
               + ", ".join(f"{k} {v.lower()}" for k, v in service.CONFORMANCE_NAMES.items()) + ".")

# --- subject drill-down -----------------------------------------------------------------------------
if may_see_subjects:
    st.subheader("Subject record")
    subject = widgets.selectbox(ctx, "subject", placeholder="Choose a subject with findings")
    if subject:
        record = service.subject_record(wh, scope, filters, subject)
        if record["subject"].empty:
            st.info("This subject is outside the chosen filters.")
        else:
            s = record["subject"].iloc[0]
            st.caption(" · ".join([subject, str(s["study_id"])] + [
                f"{label} {tables.value_text(s[column])}" for label, column in (
                    ("sex", "sex"), ("age", "age"), ("consent", "consent_date"), ("randomized", "randomization_date"),
                    ("discontinued", "discontinuation_date"), ("status", "status"))]))
            for name, frame in tables.subject_tables(record).items():
                st.markdown(f"**{name}**")
                if frame.empty:
                    st.caption(f"No {name.lower()} recorded.")
                else:
                    st.dataframe(frame, hide_index=True, width="stretch", key=f"subject_{name}")

# --- metrics ----------------------------------------------------------------------------------------
st.subheader("Queries and timeliness")
site_metrics = metrics.site_metrics(wh, scope, filters, ctx.as_of)
if site_metrics.empty:
    st.info("No eCRF pages, queries or entry dates in the chosen studies (SDTM imports carry none).")
else:
    head = metrics.headline(site_metrics)
    k1, k2, k3, k4 = st.columns(4)
    k1.metric("Open queries", f"{head['open_queries']:,.0f}")
    k2.metric("Queries per 100 data points", "—" if head["queries_per_100"] != head["queries_per_100"]
              else f"{head['queries_per_100']:.1f}")
    k3.metric("Overdue pages", f"{head['overdue_pages']:,.0f}",
              help=f"Pages not entered more than {metrics.ENTRY_DUE_DAYS} days after their visit.")
    # The unit goes in the label: a six-digit count with its unit overflowed the quarter-width value.
    k4.metric("SDV backlog (data points)", f"{head['sdv_backlog']:,.0f}",
              help="Entered data points not yet source-data verified.")
    a, b = st.columns(2)
    a.plotly_chart(figures.aging_figure(metrics.query_aging(wh, scope, filters, ctx.as_of)), width="stretch",
                   key="aging")
    b.plotly_chart(figures.entry_lag_figure(metrics.entry_lag_distribution(wh, scope, filters)), width="stretch",
                   key="entry_lag")
    with st.expander("Per site against the study's other sites"):
        st.dataframe(tables.site_metrics_table(site_metrics), hide_index=True, width="stretch")

# --- unusual patterns -------------------------------------------------------------------------------
st.subheader("Unusual data patterns")
ranked = service.ranked_sites(wh, scope, filters)
st.plotly_chart(figures.ranking_figure(ranked), width="stretch", key="ranking")
if len(ranked):
    st.dataframe(tables.site_ranking_table(ranked.head(50)), hide_index=True, width="stretch", key="ranking_table")
    focus = widgets.selectbox(ctx, "signal_site", placeholder="Choose a site to see all its signals")
    if focus:
        signals = service.site_signals(wh, scope, filters, focus)
        if signals.empty:
            st.info("No signal at this site: its data look like its peers'.")
        else:
            st.dataframe(tables.signals_table(signals), hide_index=True, width="stretch", key="site_signals")
    st.caption("Each site is compared with the other sites of its study (robust z per test, consistent shifts across "
               "tests, entry bursts, an IsolationForest over site profiles, and the RBM atypical-data tests); the "
               "combined p ranks sites for review.")
