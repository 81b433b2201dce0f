"""Recruitment: pre-screen a site's patients against the protocol, criterion by criterion with the evidence,
for a coordinator to confirm; and which criteria cost the most patients."""

from __future__ import annotations

import streamlit as st

from analytics.core.records import RecordsError
from analytics.core.settings import SettingsError
from analytics.display import exports
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.session import current_context
from analytics.recruitment import decisions, figures, funnel, proposals, service, tables
from analytics.recruitment.criteria import NEEDS_REVIEW, criteria_version

ctx = current_context()
st.title("Recruitment")
st.caption("The pre-screen proposes; qualified research staff decide. Each patient is checked against every criterion "
           "from their records: passes, fails, or unknown (missing, old or unconvertible results, and what only the "
           "screening visit can confirm). Unknown never excludes anyone.")
fresh = service.freshness(ctx.warehouse, ctx.scope, ctx.filters)
if not fresh.ok:
    st.warning(fresh.message(ctx.warehouse.path), icon=":material/update:")

studies = service.recruitment_studies(ctx.warehouse, ctx.scope, ctx.filters)
if studies.empty:
    st.info("No study in the chosen sponsors and studies has eligibility criteria stored. Criteria come with generated "
            "studies, or load them as study_eligibility.csv (see the import contract).")
    st.stop()
study = widgets.selectbox(ctx, "recruit_study")
if study is None:
    st.stop()

try:
    store = decisions.records_store()
    reviews = decisions.current_reviews(store, study)
except (RecordsError, SettingsError) as exc:
    store, reviews = None, None
    st.warning(f"The records store cannot be read, so decisions cannot be shown or recorded: {exc}")
criteria = decisions.apply_reviews(service.stored_criteria(ctx.warehouse, ctx.scope, ctx.filters, study), reviews)
version = criteria_version(criteria)
allowed_studies = set(studies["study_id"])

# --- criteria ------------------------------------------------------------------------------------
st.subheader("Criteria")
statuses = [c.status for c in criteria]
m1, m2, m3, m4 = st.columns(4)
m1.metric("Criteria", f"{len(criteria):,}")
m2.metric("Structured", f"{statuses.count('structured'):,}", help="Evaluated from each patient's records.")
m3.metric("Confirmed at screening", f"{statuses.count('administrative'):,}",
          help="Consent, willingness, another trial: asked at the visit, never read from records.")
m4.metric("Need review", f"{statuses.count(NEEDS_REVIEW):,}",
          help="Kept as text: judgement, open-ended wording, or terms outside the vocabularies. Unknown for every "
               "patient until a person accepts a structure.")
criteria_frame = tables.criteria_table(criteria)
st.dataframe(criteria_frame, hide_index=True, key="criteria")

review_needed = [c for c in criteria if c.status == NEEDS_REVIEW]
endpoint = proposals.llm_endpoint()
with st.expander(f"Criteria that need review ({len(review_needed)})"):
    if not endpoint.configured:
        st.caption("No model endpoint is configured, so no structure is proposed. With `CRO_LLM_BASE_URL` and "
                   "`CRO_LLM_MODEL` set, a model proposes one for each criterion here; every number and unit it uses "
                   "must appear in the sentence, and nothing is used until you accept it.")
    for criterion in review_needed:
        st.markdown(f"**{criterion.number}. {criterion.text}**")
        st.caption(criterion.note)
        if not endpoint.configured or store is None:
            continue
        key = f"proposal_{criterion.key}"
        if st.button("Ask the model for a structure", key=f"ask_{criterion.key}"):
            try:
                st.session_state[key] = proposals.propose(criterion, endpoint)
            except proposals.ProposalError as exc:
                st.error(str(exc))
        proposal = st.session_state.get(key)
        if proposal is None:
            continue
        st.write("Proposal: " + ("; ".join(a.describe() for a in proposal.atoms) or "no parts")
                 + (f" ({proposal.why_not})" if proposal.why_not else ""))
        for refusal in proposal.refused:
            st.caption(f"Refused: {refusal}")
        if proposal.usable and st.button("Accept this structure", key=f"accept_{criterion.key}"):
            decisions.record_review(store, study_id=study, criterion=criterion, atoms=proposal.atoms,
                                    combine=proposal.combine, negated=proposal.negated, decision=decisions.ACCEPTED,
                                    source=f"model {proposal.model}", reason="accepted on the Recruitment page",
                                    actor=ctx.user.user_id, allowed_studies=allowed_studies, scope=ctx.scope)
            st.session_state.pop(key, None)
            st.rerun()

# --- waterfall and what if ------------------------------------------------------------------------
st.subheader("Which criteria cost the most patients")
steps, counts = service.waterfall(ctx.warehouse, ctx.scope, ctx.filters, study, criteria)
total = int(steps["before"].iloc[0]) if len(steps) else 0
relax_key = widgets.selectbox(ctx, "relax", placeholder="Choose a criterion to relax")
by_key = {c.key: c for c in criteria}
replacement, relaxed_steps, relaxed_counts = None, None, None
if relax_key in by_key:
    target = by_key[relax_key]
    atom = target.atoms[0]
    c1, c2, c3 = st.columns(3)
    drop = c3.toggle("Drop the criterion instead", key="relax_drop")
    if not drop:
        value = c1.number_input(f"New threshold ({atom.comparator}{' lower bound' if atom.value_high else ''})",
                                value=float(atom.value), key=f"relax_value_{relax_key}")
        high = (c2.number_input("New upper bound", value=float(atom.value_high), key=f"relax_high_{relax_key}")
                if atom.value_high is not None else None)
        replacement = funnel.relaxed(target, value, high)
    relaxed_steps, relaxed_counts = service.waterfall(ctx.warehouse, ctx.scope, ctx.filters, study, criteria,
                                                      relax_key, replacement)
elif relax_key:
    st.caption("That criterion belongs to another protocol; choose one of this protocol's.")
st.plotly_chart(figures.waterfall_figure(steps, total, "Patients left after each criterion, in protocol order",
                                         relaxed_steps), key="waterfall")
cols = st.columns(3)
for column, category in zip(cols, funnel.CATEGORIES):
    delta = None if relaxed_counts is None else relaxed_counts[category] - counts[category]
    column.metric(category, f"{counts[category]:,}", delta=None if delta is None else f"{delta:+,} if relaxed",
                  delta_color="off")
st.caption("Unknown never removes a patient: the bars count only patients whose records fail a criterion. "
           "'Fail only this one' is what dropping that criterion alone would gain.")
cost = tables.cost_table(steps, total)
st.dataframe(cost, hide_index=True, key="criteria_cost")
waterfall_export = tables.waterfall_table(steps, total)
e1, e2 = st.columns(2)
download_button(ctx, "Download the waterfall (CSV)", lambda: exports.to_csv(waterfall_export), "criteria_waterfall.csv",
                "text/csv", key="download_waterfall_csv", container=e1)
download_button(ctx, "Download criteria and waterfall (Excel)",
                lambda: exports.to_excel({"Criteria": criteria_frame, "Waterfall": waterfall_export, "Cost": cost}),
                "criteria_waterfall.xlsx", exports.EXCEL_MIME, key="download_waterfall_xlsx", container=e2)

# --- candidates (patient level) -------------------------------------------------------------------
st.subheader("Candidates")
if not service.patient_level_allowed(ctx.scope):
    st.info("Pre-screening pools list individual patients; your role sees the counts above only.")
    st.stop()
result = service.matches(ctx.warehouse, ctx.scope, ctx.filters, study, criteria)
if len(result.pool) == 0:
    st.info("No pre-screening patients at the chosen sites for this protocol.")
    st.stop()
summary = funnel.patient_summary(result)
labels = service.site_labels(ctx.warehouse, ctx.scope, ctx.filters, study)
st.plotly_chart(figures.categories_figure(summary, labels, "Pre-screen result by site"), key="categories")
current = decisions.current_decisions(store, [study]) if store is not None else None
candidates = tables.candidates_table(summary, labels, current)
st.dataframe(candidates, hide_index=True, key="candidates")
st.caption("Ranked: eligible on records first, then possible candidates by the estimated chance that their unknown "
           "criteria pass (learnt from this pool's own series of results: an old result predicts the current one), "
           "then the rest by criteria failed. The chance only orders the list: an unknown stays unknown until a "
           "person checks it. Choose a patient below to see the evidence and record a decision.")
d1, d2 = st.columns(2)
download_button(ctx, "Download the candidates (CSV)", lambda: exports.to_csv(candidates), "prescreen_candidates.csv",
                "text/csv", key="download_candidates_csv", container=d1)
download_button(ctx, "Download the candidates (Excel)", lambda: exports.to_excel({"Candidates": candidates}),
                "prescreen_candidates.xlsx", exports.EXCEL_MIME, key="download_candidates_xlsx", container=d2)

patient = widgets.selectbox(ctx, "patient", placeholder="Choose a patient")
if patient is None:
    st.stop()
positions = summary.index[summary["patient_id"] == patient]
if not len(positions):
    st.info("That patient is not in this protocol's pools at the chosen sites.")
    st.stop()
row = summary.loc[positions[0]]
position = int(result.pool.patients.index[result.pool.patients["patient_id"] == patient][0])
st.markdown(f"**{patient}**: {row['category']} ({int(row['failed'])} failed, {int(row['unknown_records'])} unknown "
            f"from records, {int(row['unknown_visit'])} to confirm at the visit)")
st.caption(f"Link to this view: `{ctx.share_link()}`")
st.dataframe(tables.evidence_table(result, position), hide_index=True, key="evidence")
if store is not None:
    with st.form("decision", clear_on_submit=True):
        choice = st.radio("Decision", (decisions.CONFIRMED, decisions.NOT_A_CANDIDATE), horizontal=True)
        reason = st.text_input("Reason (kept with the decision)")
        if st.form_submit_button("Record the decision"):
            try:
                decisions.record_decision(
                    store, study_id=study, study_site_id=str(row["study_site_id"]), patient_id=patient, decision=choice,
                    reason=reason, prescreen_result=str(row["category"]), unknown_criteria=int(row["unknown_records"]),
                    criteria_version=version, actor=ctx.user.user_id, allowed_studies=allowed_studies, scope=ctx.scope)
                st.success("Recorded.")
            except decisions.DecisionError as exc:
                st.error(str(exc))
    history = decisions.current_decisions(store, [study])
    history = history[history["patient_id"].isin(set(summary["patient_id"]))] if not history.empty else history
    st.dataframe(tables.decisions_table(history), hide_index=True, key="decisions")
