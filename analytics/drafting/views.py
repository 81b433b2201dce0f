"""What the Drafting page shows besides the engine's results: the draft with its violations
highlighted, the violations as a table, the endpoint's status in words, and the store and settings
the page uses (opened once per process)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from analytics.core.records import RecordsError, RecordsStore
from analytics.core.settings import LlmSettings, SettingsError, load_settings
from analytics.drafting.llm import endpoint_of

SEVERITY_COLORS = {"hard": "#f8d7d3", "soft": "#fdf0c8"}
CODE_LABELS = {
    "number_not_in_facts": "Number not in the facts",
    "number_from_uncited_fact": "Number of another (uncited) fact",
    "unit_mismatch": "Wrong unit",
    "unknown_fact_id": "Cited fact does not exist",
    "malformed_citation": "Malformed citation",
    "date_not_in_facts": "Date not in the facts",
    "date_from_uncited_fact": "Date of an uncited fact",
    "identifier_not_in_facts": "Identifier not in the facts",
    "personal_identifier": "Personal identifier",
    "arm_in_blinded_document": "Treatment arm in a blinded document",
    "missing_section": "Required section missing",
    "wording": "Promise or pressure (patient-facing)",
    "readability": "Reading level",
}


def highlighted_markdown(text: str, violations: Sequence[Mapping[str, object]]) -> str:
    """The draft as Markdown with HTML marks on each sentence that has a violation (numbered, with
    the reasons as a tooltip); text is escaped, so a draft cannot inject markup."""
    by_span: dict[tuple[int, int], list[int]] = {}
    for number, v in enumerate(violations, start=1):
        start, end = int(v["start"]), int(v["end"])
        if end > start and not text[start:end].lstrip().startswith("#"):
            by_span.setdefault((start, end), []).append(number)
    out, position = [], 0
    for (start, end), numbers in sorted(by_span.items()):
        if start < position:
            continue
        hard = any(violations[n - 1]["severity"] == "hard" for n in numbers)
        tip = html.escape(" | ".join(str(violations[n - 1]["message"]) for n in numbers), quote=True)
        out.append(html.escape(text[position:start], quote=False))
        out.append(f'<mark style="background:{SEVERITY_COLORS["hard" if hard else "soft"]}" title="{tip}">'
                   f'{html.escape(text[start:end], quote=False)}</mark>'
                   f'<sup>{",".join(str(n) for n in numbers)}</sup>')
        position = end
    out.append(html.escape(text[position:], quote=False))
    # Shown under the page's own headings: the document's headings two levels smaller.
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", "".join(out), flags=re.M)


def violations_table(violations: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    return pd.DataFrame({
        "#": list(range(1, len(violations) + 1)),
        "Severity": [str(v["severity"]) for v in violations],
        "Kind": [CODE_LABELS.get(str(v["code"]), str(v["code"])) for v in violations],
        "What": [str(v["message"]) for v in violations],
    })


def endpoint_status(settings: LlmSettings) -> tuple[str, str]:
    """(level, message) describing how drafts will be written: ``info``, ``success`` or ``warning``."""
    endpoint = endpoint_of(settings)
    if endpoint is None:
        return "info", ("No model endpoint is configured: documents are rendered from their templates (the "
                        "embedded default), labelled as such. Configure one in the [llm] secrets or with "
                        "CRO_LLM_BASE_URL / OPENAI_BASE_URL.")
    model = settings.model or "the endpoint's default model"
    if endpoint.loopback:
        return "success", f"Drafts are written by {model} at {endpoint.display} (this machine; nothing leaves it)."
    if not settings.allow_remote:
        return "warning", (f"A model endpoint at {endpoint.display} is configured, but it is not on this machine and "
                           "sending to it is not allowed: documents are rendered from their templates. Allow it "
                           "explicitly with allow_remote in the [llm] secrets (or CRO_LLM_ALLOW_REMOTE=1).")
    return "success", (f"Drafts are written by {model} at {endpoint.display}. Subject ids, staff names, e-mails, "
                       "phone numbers and dates of birth are replaced by placeholders before anything is sent and "
                       "restored here.")


def llm_settings() -> tuple[LlmSettings, str | None]:
    """The endpoint settings, or the defaults (no endpoint) and the reason the settings could not be read."""
    try:
        settings = load_settings().llm
        return (settings or LlmSettings()), None
    except SettingsError as error:
        return LlmSettings(), str(error)


@st.cache_resource(show_spinner=False)
def _store(url: str) -> RecordsStore:
    return RecordsStore(url)


def records_store() -> tuple[RecordsStore | None, str | None]:
    """The records store (opened once per URL), or None and why it cannot be used."""
    try:
        return _store(load_settings().records_url), None
    except (RecordsError, SettingsError) as error:
        return None, str(error)
