"""Drafting: documents drafted from the warehouse's numbered facts by a model or by their template,
checked number by number, reviewed, edited, signed and exported, with the document's audit trail."""

from __future__ import annotations

import streamlit as st

from analytics.drafting import export, pack, service, store, views, workflow
from analytics.drafting.context import SubjectUnavailable
from analytics.drafting.facts import FactSet
from analytics.drafting.llm import ModelCall
from analytics.drafting.page_params import SUBJECT_PARAMS
from analytics.drafting.specs import SUBJECT_KINDS
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.session import current_context

NOTICE_KEY = "_drafting_notice"

ctx = current_context()
st.title("Drafting assistant")
st.caption("Documents drafted from numbered facts of the warehouse: every number, date and identifier is checked "
           "against the fact its sentence cites. Drafts, edits and signatures are kept in an append-only, "
           "hash-chained trail.")

llm, settings_problem = views.llm_settings()
if settings_problem:
    st.warning(f"The model settings could not be read ({settings_problem}); documents use their templates.")
level, message = views.endpoint_status(llm)
getattr(st, level)(message, icon=":material/smart_toy:")
records, store_problem = views.records_store()
if store_problem:
    st.error(f"The records store cannot be used, so drafts cannot be saved: {store_problem}")

left, middle, right = st.columns([2, 3, 1.4])
with left:
    doc_key = widgets.selectbox(ctx, "doc")
document = service.spec(doc_key)
subject_param = SUBJECT_PARAMS[document.subject_kind]
with middle:
    subject = widgets.selectbox(ctx, subject_param, placeholder=f"Choose a {SUBJECT_KINDS[document.subject_kind].lower()}")
with right:
    period = int(widgets.selectbox(ctx, "period"))
st.caption(f"For {document.audience}." + (" Patient-facing: plain language at about grade 8, no promise of benefit "
                                          "or pressure, marked for ethics committee review."
                                          if document.patient_facing else ""))

facts = None
if subject is None:
    st.info(f"No {SUBJECT_KINDS[document.subject_kind].lower()} is available to you for this document.")
else:
    try:
        facts = service.document_facts(ctx.warehouse, ctx.scope, doc_key, subject, period)
    except SubjectUnavailable as problem:
        st.info(str(problem))

if facts is not None:
    with st.expander(f"Facts ({len(facts.facts)}): what the draft may state", expanded=ctx.param("draft") is None):
        st.dataframe(facts.facts.table(), hide_index=True, width="stretch")
        for note in facts.facts.notes:
            st.caption(note)
    if st.button("Draft the document", type="primary", disabled=records is None, key="draft_button"):
        identifiers = service.known_identifiers(ctx.warehouse, ctx.scope, facts.study_ids)
        plan = workflow.plan_draft(facts, llm, identifiers)
        result = None
        if plan.mode == "model":
            call = ModelCall(llm, plan.messages)
            with st.container(border=True):
                st.caption("The model's draft as it arrives (placeholders are restored when it is complete):")
                st.write_stream(call.stream())
            result = call.result
        drafted = workflow.finish(facts, plan, result, identifiers, ctx.scope.blinded, store.new_draft_id())
        workflow.record(records, facts, plan, llm, drafted, ctx.user.user_id, ctx.scope)
        st.session_state[NOTICE_KEY] = (drafted.draft_id, drafted.origin, drafted.notice)
        ctx.navigate(draft=drafted.draft_id)

draft_id = ctx.param("draft")
if draft_id is None or records is None:
    st.stop()
state = store.load_draft(records, draft_id)
if state is None:
    st.info("This draft is not in the records store.")
    st.stop()

st.divider()
st.subheader(str(state.draft["title"]))
notice = st.session_state.pop(NOTICE_KEY, None)
origin = str(state.draft["origin"])
if notice and notice[0] == draft_id and notice[1] == "template_fallback":
    st.warning(notice[2], icon=":material/warning:")
elif origin == "template_fallback":
    st.warning(f"{workflow.ORIGIN_LABELS[origin]}: {state.draft['fallback_reason']}.", icon=":material/warning:")
else:
    st.caption(workflow.ORIGIN_LABELS[origin])
checker = state.checker
summary = (f"{checker['hard']} hard and {checker['soft']} soft violation(s) in {checker['sentences_checked']} "
           f"sentences ({checker['numbers_checked']} numbers checked).")
if checker["hard"]:
    st.error(f"Faithfulness check: {summary} Highlighted below; hover a mark for the reason.")
elif checker["soft"]:
    st.warning(f"Faithfulness check passed with notes: {summary}")
else:
    st.success(f"Faithfulness check passed: every one of {checker['numbers_checked']} numbers in "
               f"{checker['sentences_checked']} sentences matches a fact its sentence cites.")
if checker.get("readability_grade") is not None:
    st.caption(f"Reading level (Flesch-Kincaid): grade {checker['readability_grade']} (target about 8).")
violations = checker["violations"]
with st.container(border=True):
    st.markdown(views.highlighted_markdown(state.text, violations), unsafe_allow_html=True)
if violations:
    st.dataframe(views.violations_table(violations), hide_index=True, width="stretch")

document = service.spec(str(state.draft["document_type"]))
snapshot = FactSet.from_snapshot(state.facts)
edit_tab, sign_tab, export_tab, trail_tab = st.tabs(["Edit", "Sign", "Export", "Audit trail"])

with edit_tab:
    with st.form("edit_form"):
        new_text = st.text_area("Text (Markdown; cite facts as [F3])", state.text, height=360)
        reason = st.text_input("Reason for the change")
        if st.form_submit_button("Save the edit"):
            study_ids = tuple(state.draft["study_ids"] or ())
            identifiers = service.known_identifiers(ctx.warehouse, ctx.scope, study_ids)
            from analytics.drafting.checker import check_draft

            result = check_draft(new_text, snapshot, service.requirements(document, ctx.scope.blinded), identifiers,
                                 str(state.draft["title"]))
            try:
                store.record_edit(records, state, text=new_text, reason=reason, check=result.as_json(),
                                  actor=ctx.user.user_id, scope=ctx.scope)
                st.rerun()
            except ValueError as problem:
                st.warning(str(problem).capitalize() + ".")
    if len(state.edits):
        st.caption(f"{len(state.edits)} edit(s); the latest by {state.edits['actor'].iloc[-1]}: "
                   f"{state.edits['reason'].iloc[-1]}")

with sign_tab:
    may_approve = ctx.user.role.allows("approve_document")
    st.caption(f"Author: {state.author}. Authored is signed by the author; reviewed and approved by another person "
               "with the approve_document permission. Re-enter your user id to sign.")
    current = state.signatures_of_current_text()
    for r in current.itertuples():
        st.markdown(f"- **{r.printed_name}** ({r.signer_id}), {r.meaning}, {r.recorded_at:%Y-%m-%d %H:%M} UTC"
                    + (f": justified: {r.justification}" if r.justification else ""))
    older = len(state.signatures) - len(current)
    if older:
        st.caption(f"{older} signature(s) apply to an earlier text and no longer to this one.")
    with st.form("sign_form"):
        meaning = st.selectbox("Meaning of the signature", list(store.MEANINGS),
                               format_func=lambda m: f"{m}: {store.MEANINGS[m]}")
        entered = st.text_input("Your user id", help="Re-enter your identity to sign.")
        st.text_input("Printed name", ctx.user.name, disabled=True)
        justification = st.text_area("Justification (required: the text has open hard violations)"
                                     if state.hard_violations else "Justification (only with open hard violations)")
        if st.form_submit_button("Sign"):
            try:
                store.sign(records, state, signer_id=ctx.user.user_id, printed_name=ctx.user.name, entered_id=entered,
                           meaning=meaning, may_approve=may_approve, justification=justification, scope=ctx.scope)
                st.rerun()
            except store.SigningRefused as refused:
                st.error(f"Not signed: {refused}.")

with export_tab:
    view = pack.export_view(state)
    stem = f"{document.key}-{state.draft_id}"
    c1, c2, c3 = st.columns(3)
    download_button(ctx, "Markdown", lambda: export.to_markdown(view).encode(), f"{stem}.md", "text/markdown", key="md",
                    container=c1)
    download_button(ctx, "Word", lambda: export.to_docx(view), f"{stem}.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", key="docx", container=c2)
    download_button(ctx, "PDF", lambda: export.to_pdf(view), f"{stem}.pdf", "application/pdf", key="pdf", container=c3)
    if document.review_pack:
        st.markdown("**Sponsor review pack** (this update with its charts as images)")
        if st.button("Build the review pack", key="pack_button"):
            with st.spinner("Rendering the charts"):
                try:
                    figures = pack.review_pack_figures(ctx.warehouse, ctx.scope, tuple(state.draft["study_ids"]))
                    charts = pack.figure_images(figures)
                    st.session_state["_review_pack"] = (state.draft_id, pack.export_view(state, charts=charts))
                except RuntimeError as problem:
                    st.error(f"The charts could not be rendered: {problem}")
        built = st.session_state.get("_review_pack")
        if built and built[0] == state.draft_id:
            p1, p2 = st.columns(2)
            download_button(ctx, "Review pack (Word)", lambda: export.to_docx(built[1]), f"{stem}-pack.docx",
                            "application/vnd.openxmlformats-officedocument.wordprocessingml.document", key="pdocx",
                            container=p1)
            download_button(ctx, "Review pack (PDF)", lambda: export.to_pdf(built[1]), f"{stem}-pack.pdf",
                            "application/pdf", key="ppdf", container=p2)

with trail_tab:
    verification = store.verify_document(records, state.draft_id)
    if verification.ok:
        st.success(verification.describe(), icon=":material/verified:")
    else:
        st.error(f"The trail does not verify: {verification.describe()}", icon=":material/gpp_bad:")
    st.dataframe(store.trail_table(store.document_audit(records, state.draft_id)), hide_index=True, width="stretch")
    if len(state.calls):
        call = state.calls.iloc[-1]
        st.caption(f"Model call: {call['model_requested']} (reported: {call['model_reported'] or 'none'}) at "
                   f"{call['endpoint_host']}, {'de-identified' if call['deidentified'] else 'loopback, not de-identified'}"
                   f", outcome {call['outcome']}, {call['attempts']} attempt(s), {call['seconds']:.1f} s.")
