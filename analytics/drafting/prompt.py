"""What the model is sent: the common rules, the document type's instructions, its required
sections and the numbered facts (de-identified first when the endpoint is not on loopback).

The rules are the checker's, stated for the writer: cite each fact used as [Fn] in the sentence
that states it, state only values from the facts, no arithmetic, no identifiers. The prompt's
version is part of the audit trail with the template version.
"""

from __future__ import annotations

from analytics.drafting.deid import Pseudonymizer
from analytics.drafting.facts import Fact

PROMPT_VERSION = "prompt-1"

SYSTEM_RULES = """You draft documents for a clinical research organization from numbered facts.
Rules, all strict:
1. Use only the facts given. Every number, date and identifier you write must be the value of a fact.
2. Cite the facts of each sentence in square brackets at the end of that sentence, like [F3] or [F3, F7]. A number
   may only appear in a sentence that cites its fact. Never reuse a number for another meaning.
3. Write each number with its fact's unit: a % fact as a percentage, a days fact in days, a count with its noun.
4. Do no arithmetic: derived figures are already facts. Do not round differently from the fact.
5. Name no patient or subject; write no e-mail address, phone number or date of birth. Placeholders such as
   [PERSON_n] stand for real names: keep them exactly as written.
6. Use Markdown: one '## ' heading per section, in the order given, with exactly the section names given. Do not
   write a title line; the application adds it.
7. Be factual and neutral. A flag or signal is something to review, never an accusation."""


def facts_lines(facts: list[Fact]) -> list[str]:
    """One line per fact: id, what it is (with its group), value and unit."""
    lines = []
    for f in facts:
        group = f" [{f.group.split(':', 1)[1]}]" if f.group else ""
        unit = "" if f.kind in ("text", "id", "date") else f" ({f.unit})"
        lines.append(f"{f.fact_id} | {f.label}{group} | {f.shown()}{unit}")
    return lines


def build_messages(title: str, doc_instructions: str, audience: str, sections: tuple[str, ...],
                   required: tuple[str, ...], facts: list[Fact], notes: tuple[str, ...] = (),
                   pseudonymizer: Pseudonymizer | None = None) -> list[dict[str, str]]:
    """The chat messages for one draft; with a pseudonymizer, every identifier is replaced first."""
    user = [f"Document: {title}", f"Readers: {audience}", f"Task: {doc_instructions}", "",
            "Sections, in this order (" + ", ".join(f"'{s}'" + ("" if s in required else " (optional)")
                                                   for s in sections) + ")", "",
            "Facts (id | what | value (unit)):", *facts_lines(facts)]
    if notes:
        user += ["", "Notes:", *notes]
    messages = [{"role": "system", "content": SYSTEM_RULES}, {"role": "user", "content": "\n".join(user)}]
    if pseudonymizer is not None:
        messages = [{"role": m["role"], "content": pseudonymizer.replace(m["content"])} for m in messages]
    return messages
