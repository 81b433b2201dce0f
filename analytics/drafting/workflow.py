"""From facts to a recorded draft: decide how it is written (template, model, or template after a
refusal or a failure), prepare what is sent, turn the model's answer into the document, check it
and record it with its model call.

The page runs the steps with the model's stream shown as it arrives; :func:`draft_document` runs
them in one go (CLI, tests, evaluation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analytics.core.records import RecordsStore
from analytics.core.settings import LlmSettings
from analytics.drafting import parsing
from analytics.drafting.checker import CheckResult
from analytics.drafting.deid import Identifiers, Pseudonymizer, leaks
from analytics.drafting.llm import CallResult, Endpoint, ModelCall, endpoint_of, request_parameters
from analytics.drafting.prompt import PROMPT_VERSION, build_messages
from analytics.drafting.service import Facts, check, render_template
from analytics.drafting.store import new_draft_id, record_draft, record_model_call

ORIGIN_LABELS = {
    "template": "Rendered from the document type's template (no model endpoint is configured).",
    "model": "Drafted by a language model from the facts below; every statement is checked against them.",
    "template_fallback": "Rendered from the template because the model could not be used",
}


@dataclass
class Plan:
    """How this draft will be written, and what would be sent.

    Attributes:
        mode: ``template`` (no endpoint), ``model``, or ``refused`` (an endpoint that may not be used).
        endpoint: the configured endpoint (None without one).
        messages: the chat messages (de-identified for a non-loopback endpoint).
        pseudonymizer: the placeholders used (None for loopback: nothing is replaced).
        reason: why a configured endpoint is not used (``refused``).
    """

    mode: str
    endpoint: Endpoint | None
    messages: list[dict[str, str]]
    pseudonymizer: Pseudonymizer | None
    reason: str = ""

    @property
    def deidentified(self) -> bool:
        return self.pseudonymizer is not None


def plan_draft(facts: Facts, settings: LlmSettings, identifiers: Identifiers) -> Plan:
    """Decide how the draft is written; prepare (and de-identify when needed) the messages."""
    endpoint = endpoint_of(settings)
    if endpoint is None:
        return Plan("template", None, [], None)
    document = facts.spec
    pseudonymizer = None if endpoint.loopback else Pseudonymizer(identifiers)
    messages = build_messages(facts.title, document.instructions, document.audience,
                              tuple(s.name for s in document.sections), document.required_sections,
                              list(facts.facts), facts.facts.notes, pseudonymizer)
    if not endpoint.loopback and not settings.allow_remote:
        return Plan("refused", endpoint, messages, pseudonymizer,
                    f"the endpoint {endpoint.display} is not on this machine and sending text to it is not allowed "
                    "(set allow_remote in the [llm] secrets or CRO_LLM_ALLOW_REMOTE=1)")
    if pseudonymizer is not None:
        left = leaks("\n".join(m["content"] for m in messages), identifiers)
        if left:  # never send what de-identification missed
            return Plan("refused", endpoint, messages, pseudonymizer,
                        f"{len(left)} identifier(s) could not be replaced before sending")
    return Plan("model", endpoint, messages, pseudonymizer)


def as_document(raw: str, title: str, pseudonymizer: Pseudonymizer | None) -> str:
    """The model's answer as the document: code fence and any title of its own removed, placeholders
    restored, the app's title first."""
    text = parsing.strip_fences(raw).strip()
    if pseudonymizer is not None:
        text = pseudonymizer.restore(text)
    text = re.sub(r"\A#\s+[^\n]*\n+", "", text)  # a title line of the model's own
    return f"# {title}\n\n{text.strip()}\n"


@dataclass(frozen=True)
class Drafted:
    """A finished draft before or after recording."""

    draft_id: str
    text: str
    origin: str
    check: CheckResult
    fallback_reason: str | None
    call: CallResult | None

    @property
    def notice(self) -> str:
        label = ORIGIN_LABELS[self.origin]
        return f"{label}: {self.fallback_reason}." if self.origin == "template_fallback" else label


def finish(facts: Facts, plan: Plan, result: CallResult | None, identifiers: Identifiers, blinded: bool,
           draft_id: str) -> Drafted:
    """The document from the model's result (or the template when there is none or it failed), checked."""
    if plan.mode == "template":
        text, origin, reason = render_template(facts), "template", None
    elif plan.mode == "refused":
        text, origin, reason = render_template(facts), "template_fallback", plan.reason
    elif result is None or not result.ok:
        why = result.error if result is not None else "no answer"
        text, origin, reason = render_template(facts), "template_fallback", f"{why}"
    else:
        text, origin, reason = as_document(result.text, facts.title, plan.pseudonymizer), "model", None
    return Drafted(draft_id, text, origin, check(text, facts, identifiers, blinded), reason, result)


def record(store: RecordsStore, facts: Facts, plan: Plan, settings: LlmSettings, drafted: Drafted, actor: str,
           scope: object) -> None:
    """Write the model call (when one was made) and the draft to the records store."""
    study_id = facts.study_ids[0] if facts.study_ids else "(none)"
    call_id = None
    if drafted.call is not None and plan.endpoint is not None:
        call_id = record_model_call(store, draft_id=drafted.draft_id, study_id=study_id,
                                    endpoint_host=plan.endpoint.display, loopback=plan.endpoint.loopback,
                                    deidentified=plan.deidentified, model_requested=settings.model,
                                    parameters=request_parameters(settings) | {"prompt_version": PROMPT_VERSION},
                                    messages=plan.messages, result=drafted.call, actor=actor, scope=scope)
    record_draft(store, draft_id=drafted.draft_id, study_ids=facts.study_ids, document_type=facts.doc_key,
                 subject=facts.subject, title=facts.title,
                 template_version=f"{facts.spec.template_version}/{PROMPT_VERSION}", facts=facts.facts.snapshot(),
                 origin=drafted.origin, text=drafted.text, check=drafted.check.as_json(), actor=actor, scope=scope,
                 call_id=call_id, fallback_reason=drafted.fallback_reason)


def draft_document(store: RecordsStore | None, facts: Facts, settings: LlmSettings, identifiers: Identifiers, *,
                   actor: str, scope, blinded: bool) -> Drafted:
    """Plan, call the model when there is one, finish, and record (when a store is given)."""
    plan = plan_draft(facts, settings, identifiers)
    result = ModelCall(settings, plan.messages).run() if plan.mode == "model" else None
    drafted = finish(facts, plan, result, identifiers, blinded, new_draft_id())
    if store is not None:
        record(store, facts, plan, settings, drafted, actor, scope)
    return drafted
