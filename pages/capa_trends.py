"""CAPA trends: quality events and CAPAs under statistical process control, backlog, root causes, cycle
time, recurrence found in the text, the QTL register, and CAPA actions recorded with who and when."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from analytics.capa import actions, cycle_time, data, exports, figures, metrics, qtl, service, spc, tables
from analytics.capa.funnel import funnel
from analytics.capa.rules import RULES_BY_ID
from analytics.core.records import RecordsError
from analytics.core.records_schema import CAPA_STATUSES
from analytics.core.settings import SettingsError, load_settings
from analytics.display.formats import count, share
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.session import current_context
from analytics.kri.service import site_labels

ctx = current_context()
wh, scope, filters, as_of = ctx.warehouse, ctx.scope, ctx.filters, ctx.as_of
can_manage = ctx.user.role.allows("manage_capa")

st.title("CAPA trends")
st.caption(f"Quality events and CAPAs of the studies you see, {dt.date.strftime(as_of, 'data as of %d %b %Y')}. "
           "Signals are prompts to look, not findings against a site.")

events = data.quality_events(wh, scope, filters)
capas = data.capas(wh, scope, filters)
labels = site_labels(wh, scope, filters)
studies = data.study_labels(wh, scope, filters)
head = metrics.headline(capas, as_of)
m = st.columns(6)
m[0].metric("CAPAs", count(head["capas"]), help=f"{count(len(events))} quality events in the chosen studies and dates.")
m[1].metric("Open", count(head["open"]))
m[2].metric("Overdue", count(head["overdue_current"]),
            help=f"Open past the current (extended) due date; {count(head['overdue_original'])} are past the "
                 "original due date.")
m[3].metric("Closed on time", share(head["on_time_share"]), help="Closed CAPAs closed by their current due date.")
m[4].metric("Extended", share(head["extension_rate"]), help="CAPAs whose due date was extended at least once.")
m[5].metric("Judged effective", share(head["effective_share"]),
            help=f"Of {count(head['checks'])} effectiveness checks.")

FLASH_KEY = "_capa_recorded"  # what the last action recorded, shown after the rerun that shows its effect
if FLASH_KEY in st.session_state:
    st.success(st.session_state.pop(FLASH_KEY), icon=":material/task_alt:")

view = widgets.segmented(ctx, "view")
st.caption(f"Link to this view: `{ctx.share_link()}`")


def _store():
    """The records store, or None with a message (the page still shows everything else)."""
    try:
        return service.records_store(load_settings().records_url)
    except (RecordsError, SettingsError) as error:
        st.error(f"The records store cannot be opened, so CAPA actions cannot be shown or recorded: {error}")
        return None


def _recorded(message: str) -> None:
    """After a write: rerun so every table shows it, and say what was recorded."""
    st.session_state[FLASH_KEY] = message
    st.rerun()


def _attempt(write, message) -> None:
    """Run one write; on success say what was recorded (``message`` of its result), else the refusal."""
    try:
        result = write()
    except ValueError as error:
        st.error(str(error))
    else:
        _recorded(message(result))


def _downloads(name: str, sheets: dict[str, pd.DataFrame], key: str) -> None:
    first = next(iter(sheets.values()))
    c1, c2, _ = st.columns([1, 1, 3])
    download_button(ctx, "Download CSV", lambda: exports.csv_bytes(first), f"{name}.csv", "text/csv", key=f"csv_{key}",
                    container=c1)
    download_button(ctx, "Download Excel", lambda: exports.excel_bytes(sheets), f"{name}.xlsx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key=f"xlsx_{key}", container=c2)


def _open_capa_form(key: str, signals: dict[str, tuple[str, str | None, str]], signal_type: str,
                    event_ids: dict[str, list[int]] | None = None) -> None:
    """A form that opens a CAPA from one of ``signals`` (signal id -> (study, site, description))."""
    if not can_manage or not signals:
        return
    store = _store()
    if store is None:
        return
    with st.expander("Open a CAPA from a signal"), st.form(f"open_{key}", clear_on_submit=True):
        signal = st.selectbox("Signal", list(signals), format_func=lambda s: signals[s][2])
        title = st.text_input("Title")
        owner = st.text_input("Owner")
        due = st.date_input("Due date", value=dt.date.today() + dt.timedelta(days=60), format="YYYY-MM-DD")
        description = st.text_area("Problem and planned action")
        if st.form_submit_button("Open CAPA"):
            study_id, site_id, _ = signals[signal]
            _attempt(lambda: actions.open_capa(
                store, ctx.user.user_id, scope, service.visible_studies(wh, scope), study_id=study_id,
                study_site_id=site_id, signal_type=signal_type, signal_id=signal, title=title, owner=owner,
                due_date=due, description=description, events=(event_ids or {}).get(signal, [])),
                lambda ref: f"Opened {ref}; it is listed under CAPA actions.")


if view == "trends":
    study = widgets.selectbox(ctx, "chart_study", placeholder="All chosen studies")
    subtitle = studies.get(study, "") if study else "all chosen studies"
    charts = {"deviations": spc.control_chart(data.monthly_deviations(wh, scope, filters, study),
                                              spc.CHARTS_BY_ID["deviations"],
                                              data.monthly_deviation_strata(wh, scope, filters, study)),
              "on_time": spc.control_chart(data.monthly_on_time(wh, scope, filters, study),
                                           spc.CHARTS_BY_ID["on_time"])}
    closure_strata = data.monthly_closure_strata(wh, scope, filters, study)
    charts["closures"] = spc.control_chart(data.monthly_closures(closure_strata, as_of), spc.CHARTS_BY_ID["closures"],
                                           closure_strata)
    cusum = RULES_BY_ID["cusum"]
    for row in (("deviations", "on_time"), ("closures",)):
        for column, chart in zip(st.columns(2), (charts[chart_id] for chart_id in row)):
            column.plotly_chart(figures.control_chart_figure(chart, subtitle), width="stretch",
                                key=f"chart_{chart.spec.id}")
            column.caption(chart.spec.definition)
            if cusum.id in chart.spec.rules and chart.points["evaluable"].any():  # under a chart with judged months
                column.plotly_chart(figures.cusum_figure(chart, cusum), width="stretch", key=f"cusum_{chart.spec.id}")
    st.caption("**How to read the charts.** A red diamond is a *signal*: the month is beyond the 3-sigma limit "
               "(WE rule 1), two of three months are beyond 2 sigma (WE rule 2), or the running total below "
               f"the chart passes its line (CUSUM: months each a little worse than expected add up, so a lasting "
               "change too small for one month to pass the limits still shows within about two months). An "
               "open amber diamond is a *pattern only*: WE rules 3 and 4 and the Nelson trend rule take four to "
               "eight months to complete and on stable data break more often by chance, so they are shown to "
               "look at, not counted as signals. "
               f"Rates come from {spc.CHARTS[0].baseline_points} judged months (shaded) and are held after them, so "
               "a later change shows against what came before. The deviation chart is risk-adjusted: each "
               "month's expected rate applies the baseline rate of each study's screening and treatment phases "
               "to the time subjects spent in them that month (a study that started later has its own first "
               "months as its baseline), so enrollment ramping up or treatment winding down moves the expected "
               "line and the limits rather than raising a signal. Its limits are the counts a month would "
               "reach by chance 2.3% and 0.13% of the time (Poisson, and after the baseline with the baseline "
               "rates' own uncertainty added, since they are estimated from a year of counts), so months with "
               "few expected deviations are not flagged for ordinary ups and downs. The closure chart follows the same CAPAs as the "
               "on-time chart, sooner: when closing slows, CAPAs due next month are mostly done and still "
               "close on time, but fewer of the open CAPAs close each month than their age would predict "
               "(expected closures from the baseline's rates for CAPAs under half, half to three quarters, "
               "three quarters to all, or more of the way through the time they were given).")
    signal_rows = {k: tables.signals_table(c) for k, c in charts.items()}
    with st.expander("Months that break a rule, and what each rule looks for"):
        for chart_id, table in signal_rows.items():
            st.markdown(f"**{spc.CHARTS_BY_ID[chart_id].name}**")
            if len(table):  # a statement, not a conditional expression: Streamlit's magic would print its value
                st.dataframe(table, hide_index=True, width="stretch")
            else:
                st.info("No month breaks a rule.")
        st.dataframe(tables.rules_table([c.spec for c in charts.values()]), hide_index=True, width="stretch")
        _downloads("capa_control_chart_signals", {spc.CHARTS_BY_ID[k].name[:31]: t for k, t in signal_rows.items()},
                   "signals")
    sites, curves, pooled, phi = funnel(data.site_deviation_rates(wh, scope, filters, study))
    st.plotly_chart(figures.funnel_figure(sites, curves, pooled, phi, labels), width="stretch", key="funnel")
    st.caption("Each site against the pooled rate of the sites shown; limits widen for sites with few subject-visits "
               "and allow for the usual spread between sites.")
    if study:
        chart_signals = {}
        for chart_id, chart in charts.items():
            for _, row in chart.signals.iterrows():
                signal_id = f"{chart_id}:{study}:{row['month']:%Y-%m}"
                chart_signals[signal_id] = (study, None, f"{chart.spec.name}, {row['month']:%b %Y}")
        for _, row in sites[sites["position"] == "above 99.8%"].iterrows():
            chart_signals[f"funnel:{row['study_site_id']}"] = (row["study_id"], row["study_site_id"],
                                                             f"Funnel: {labels.get(row['study_site_id'], row['study_site_id'])}")
        _open_capa_form("trends", chart_signals, "control_chart")
    elif can_manage:
        st.caption("Choose a study for the charts to open a CAPA from one of its signals.")

elif view == "backlog":
    grouping = widgets.selectbox(ctx, "group")
    st.plotly_chart(figures.aging_figure(metrics.aging(capas, as_of)), width="stretch", key="aging")
    performance = tables.performance_table(metrics.performance_by(capas, as_of, grouping), grouping, labels)
    st.dataframe(performance, hide_index=True, width="stretch")
    listing = tables.capa_table(capas, as_of, labels)
    with st.expander(f"All {len(listing):,} CAPAs"):
        st.dataframe(listing, hide_index=True, width="stretch")
    _downloads("capa_backlog", {"Performance": performance, "CAPAs": listing}, "backlog")

elif view == "causes":
    ranked, human = metrics.pareto(capas)
    st.plotly_chart(figures.pareto_figure(ranked, human), width="stretch", key="pareto")
    if human is not None:
        st.markdown(f"**Human error** is the root cause of {int(human['capas'])} CAPAs ({human['share_of_all']:.0%}). "
                    "It is shown apart because it rarely ends the analysis: below, what those CAPAs were about.")
        beneath = metrics.human_error_beneath(capas, events).rename(
            columns={"process": "Process", "theme_name": "Theme of the event text", "capas": "CAPAs"})
        st.dataframe(beneath, hide_index=True, width="stretch")
    else:
        beneath = pd.DataFrame()
    causes = ranked.assign(share=ranked["share"].map(share), cumulative_share=ranked["cumulative_share"].map(share)) \
        .rename(columns={"cause": "Root cause", "capas": "CAPAs", "share": "Share (without human error)",
                         "cumulative_share": "Cumulative"})
    _downloads("capa_root_causes", {"Root causes": causes, "Human error beneath": beneath}, "causes")

elif view == "cycle":
    grouping = widgets.selectbox(ctx, "group")
    column = metrics.GROUPINGS[grouping]
    top = capas[column].value_counts().head(8).index
    shown = capas[capas[column].isin(top)]
    if grouping == "site":
        shown = shown.assign(study_site_id=shown["study_site_id"].map(lambda s: labels.get(s, s)))
    curves, summary = cycle_time.kaplan_meier(shown, as_of, column)
    st.plotly_chart(figures.kaplan_meier_figure(curves, tables.GROUP_LABELS[grouping].lower()), width="stretch",
                    key="km")
    p = cycle_time.log_rank_p(shown, as_of, column)
    st.caption(f"The {len(top)} largest groups of {capas[column].nunique()}. Log-rank test of equal cycle times: "
               + ("not computable." if pd.isna(p) else f"p {p:.3f}."))
    _, overall = cycle_time.kaplan_meier(capas, as_of, "")
    table = tables.cycle_summary_table(pd.concat([overall, summary], ignore_index=True),
                                       tables.GROUP_LABELS[grouping])
    st.dataframe(table, hide_index=True, width="stretch")
    _downloads("capa_cycle_time", {"Cycle time": table}, "cycle")

elif view == "recurrence":
    fresh = service.themes_freshness(wh, scope, filters)
    if not fresh.ok:
        st.warning(fresh.message(wh.path), icon=":material/update:")
    stored = wh.query(scope, "SELECT * FROM capa_themes ORDER BY study_id, theme_id", None, filters.study_level())
    st.plotly_chart(figures.themes_figure(stored), width="stretch", key="themes")
    st.caption("Themes are found per study by clustering the words of event and CAPA descriptions; each is named by "
               "its most characteristic terms. A possible recurrence is an event like an earlier one at the same "
               "site within 12 months: it may mean the earlier CAPA did not work.")
    theme_table = tables.themes_table(stored, studies)
    recurrences = tables.recurrence_table(events, labels)
    st.markdown(f"**Possible recurrences** ({len(recurrences):,})")
    st.dataframe(recurrences, hide_index=True, width="stretch")
    with st.expander("All themes"):
        st.dataframe(theme_table, hide_index=True, width="stretch")
    _downloads("capa_recurrence", {"Possible recurrences": recurrences, "Themes": theme_table}, "recurrence")
    flagged = events[events["possible_recurrence"]]
    _open_capa_form("recurrence", {
        f"recurrence:{int(r.quality_event_id)}": (r.study_id, r.study_site_id if isinstance(r.study_site_id, str) else None,
                                                  f"QE-{int(r.quality_event_id)} repeats QE-{int(r.repeats_event_id)}")
        for r in flagged.itertuples()}, "recurrence",
        {f"recurrence:{int(r.quality_event_id)}": [int(r.quality_event_id), int(r.repeats_event_id)]
         for r in flagged.itertuples()})

elif view == "qtl":
    register = qtl.qtl_register(wh, scope, filters)
    store = _store()
    linked = service.linked_by_signal(store, service.visible_studies(wh, scope)) if store else {}
    spec = qtl.QTLS_BY_ID[widgets.selectbox(ctx, "qtl")]
    st.plotly_chart(figures.qtl_figure(register, spec, studies), width="stretch", key="qtl")
    table = tables.qtl_table(register, linked, studies)
    breached = int((register["status"] == "Breached").sum())
    st.markdown(f"**Register** ({breached} breach{'es' if breached != 1 else ''}). ICH E6(R3): each breach is "
                "evaluated for its root cause and a CAPA, and summarized in the clinical study report.")
    st.dataframe(table, hide_index=True, width="stretch")
    with st.expander("The parameters and their limits"):
        st.dataframe(tables.qtl_catalogue_table(), hide_index=True, width="stretch")
    _downloads("qtl_register", {"QTL register": table, "Parameters": tables.qtl_catalogue_table()}, "qtl")
    _open_capa_form("qtl", {r.signal_id: (r.study_id, None, f"{studies.get(r.study_id, r.study_id)}: {r.qtl} "
                                                            f"{r.value:.1%} ({r.status.lower()})")
                            for r in register[register["status"].isin(["Breached", "Approaching"])].itertuples()},
                    "qtl")

elif view == "actions":
    store = _store()
    visible = service.visible_studies(wh, scope)
    opened = actions.workbench_capas(store, visible) if store else pd.DataFrame()
    st.markdown("**CAPAs opened in the workbench**")
    if opened.empty:
        st.info("No CAPA has been opened here yet for the studies you see. Open one from a signal in the other views.")
    else:
        listing = tables.workbench_capas_table(opened, labels)
        st.dataframe(listing, hide_index=True, width="stretch")
        _downloads("workbench_capas", {"Workbench CAPAs": listing}, "actions")
    refs = list(opened["capa_ref"]) if len(opened) else []
    qms = [actions.qms_ref(i) for i in capas["capa_id"]]
    if store is not None and can_manage and (refs or qms):
        update, link, check = st.columns(3)
        with update.form("update_capa", clear_on_submit=True):
            st.markdown("**Status or due date**")
            ref = st.selectbox("CAPA", refs, key="update_ref")
            status = st.selectbox("Status", ["(unchanged)", *CAPA_STATUSES])
            due = st.date_input("New due date (extension)", value=None, format="YYYY-MM-DD")
            reason = st.text_input("Reason")
            if st.form_submit_button("Record") and ref:
                _attempt(lambda: actions.update_capa(store, ctx.user.user_id, scope, visible, ref, reason=reason,
                                                     status=None if status == "(unchanged)" else status,
                                                     due_date=due),
                         lambda version: f"{ref}: version {version} recorded.")
        with link.form("link_event", clear_on_submit=True):
            st.markdown("**Link a quality event**")
            ref = st.selectbox("CAPA", refs + qms, key="link_ref")
            event = st.selectbox("Event", list(ctx.choices.get("event", {})),
                                 format_func=lambda e: ctx.choices["event"].get(e, e))
            unlink = st.checkbox("Unlink instead")
            note = st.text_input("Note")
            if st.form_submit_button("Record") and ref and event:
                row = events[events["quality_event_id"] == int(event)]
                _attempt(lambda: actions.link_event(store, ctx.user.user_id, scope, visible, capa_ref=ref,
                                                    study_id=str(row["study_id"].iloc[0]), quality_event_id=int(event),
                                                    linked=not unlink, note=note),
                         lambda version: f"QE-{event} {'unlinked from' if unlink else 'linked to'} {ref} "
                                         f"(version {version}).")
        with check.form("effectiveness", clear_on_submit=True):
            st.markdown("**Effectiveness check**")
            ref = st.selectbox("CAPA", refs + qms, key="check_ref")
            when = st.date_input("Checked on", value=dt.date.today(), format="YYYY-MM-DD")
            result = st.radio("Result", ["Effective", "Not effective"], horizontal=True)
            method = st.text_input("How it was judged")
            evidence = st.text_area("Evidence")
            if st.form_submit_button("Record") and ref:
                study_of = (opened.set_index("capa_ref")["study_id"].get(ref) if ref in refs else
                            capas.set_index("capa_id")["study_id"].get(int(ref.removeprefix(actions.QMS_PREFIX))))
                _attempt(lambda: actions.record_check(store, ctx.user.user_id, scope, visible, capa_ref=ref,
                                                      study_id=str(study_of), check_date=when, result=result,
                                                      method=method, evidence=evidence),
                         lambda version: f"{ref}: effectiveness check recorded (version {version}).")
    elif not can_manage:
        st.caption("Your role reads CAPA actions; a quality manager records them.")
    if refs and store is not None:
        chosen = st.selectbox("History of a CAPA", refs, key="history_ref")
        st.dataframe(tables.history_table(actions.capa_history(store, chosen, visible)), hide_index=True,
                     width="stretch")

# --- drill-down: one event's history ----------------------------------------------------------------
st.subheader("Event drill-down")
event_id = widgets.selectbox(ctx, "event", placeholder="Choose a quality event")
if event_id is None:
    st.info("Choose a quality event to see its record, its CAPAs, its links and the events it repeats.")
    st.stop()
row = events[events["quality_event_id"] == int(event_id)].iloc[0]
st.dataframe(tables.event_summary(row, labels), hide_index=True, width="stretch")
own = capas[capas["quality_event_id"] == int(event_id)]
st.markdown("**CAPAs of this event (QMS)**")
if own.empty:
    st.info("No CAPA was opened for this event in the QMS.")
else:
    st.dataframe(tables.capa_table(own, as_of, labels), hide_index=True, width="stretch")
chain = events[(events["repeats_event_id"] == int(event_id)) & events["possible_recurrence"]]
if len(chain):
    st.markdown("**Later events that may repeat it**")
    st.dataframe(tables.recurrence_table(chain, labels), hide_index=True, width="stretch")
store = _store()
if store is not None:
    links = actions.event_links(store, service.visible_studies(wh, scope))
    mine = links[links["quality_event_id"] == int(event_id)] if len(links) else links
    if len(mine):
        st.markdown("**Workbench links**")
        st.dataframe(pd.DataFrame({"CAPA": mine["capa_ref"], "Linked": mine["linked"].map({True: "yes", False: "no"}),
                                   "By": mine["actor"], "When (UTC)": mine["recorded_at"].map(
                                       lambda t: f"{pd.Timestamp(t):%d %b %Y %H:%M}"),
                                   "Note": mine["note"].fillna("")}), hide_index=True, width="stretch")
