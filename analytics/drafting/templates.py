"""Templates: a document rendered from its facts without a model, citing every fact it states.

A template is the document type's sections, each a list of :class:`Line` (one sentence with
``{fact_key}`` placeholders) and :class:`Each` (one sentence per repeating group, e.g. per system
organ class). A count and the words that must agree with it are written
``{fact_key|singular|plural}``: ``{ranked|institution leads|institutions lead}`` writes
"1 institution leads". A line is left out when a fact it names is missing or unknown, or when its ``when``
condition is false; a section with no line left says its ``empty`` sentence. Each rendered
sentence cites the facts it used (``[F3, F4]``), so a template draft passes the faithfulness check
by construction (a test checks this for every document type on the demo data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from analytics.drafting.facts import Fact, FactSet

PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)(?:\|([^|{}]+)\|([^|{}]+))?\}")
Condition = Callable[[Mapping[str, Fact]], bool]


@dataclass(frozen=True)
class Line:
    """One templated sentence; ``when`` sees the facts by key (the group's first, then the document's)."""

    text: str
    when: Condition | None = None


@dataclass(frozen=True)
class Each:
    """One sentence per group whose name starts with ``prefix`` (``soc:``), as a bullet list."""

    prefix: str
    text: str
    when: Condition | None = None


@dataclass(frozen=True)
class Section:
    """A document section: its heading, lines, whether the checker requires it, and its empty text."""

    name: str
    lines: tuple[Line | Each, ...]
    required: bool = True
    empty: str = ""
    bullets: bool = False


def value(facts: Mapping[str, Fact], key: str) -> object:
    """The value of fact ``key`` (None when absent): for ``when`` conditions."""
    f = facts.get(key)
    return None if f is None else f.value


def positive(key: str) -> Condition:
    """Condition: fact ``key`` is a number above zero."""
    return lambda facts: isinstance(value(facts, key), (int, float)) and value(facts, key) > 0


def zero(key: str) -> Condition:
    return lambda facts: value(facts, key) == 0


def equals(key: str, wanted: object) -> Condition:
    return lambda facts: value(facts, key) == wanted


def _scope(facts: FactSet, group: str) -> dict[str, Fact]:
    scope = {f.key: f for f in facts if f.group == ""}
    scope.update({f.key: f for f in facts if f.group == group})
    return scope


def _filled(f: Fact, singular: str | None, plural: str | None) -> str:
    """A placeholder's text: the fact as shown, then the words agreeing with it when the template gives them."""
    shown = f.shown()
    if singular is None or plural is None:
        return shown
    return f"{shown} {singular if shown == '1' else plural}"


def render_sentence(text: str, scope: Mapping[str, Fact]) -> str | None:
    """The sentence with its placeholders filled and its citations appended; None if a fact is missing."""
    used: list[Fact] = []
    for key, _, _ in PLACEHOLDER.findall(text):
        f = scope.get(key)
        if f is None or f.value is None:
            return None
        used.append(f)
    filled = PLACEHOLDER.sub(lambda m: _filled(scope[m.group(1)], m.group(2), m.group(3)), text)
    ids = list(dict.fromkeys(f.fact_id for f in used))
    if not ids:
        return filled
    citation = f" [{', '.join(ids)}]"
    end = len(filled.rstrip()) - (1 if filled.rstrip()[-1:] in ".!?:" else 0)
    return filled[:end] + citation + filled[end:]


def render_section(section: Section, facts: FactSet) -> list[str]:
    """The section's Markdown lines (heading first)."""
    out = [f"## {section.name}", ""]
    body: list[str] = []
    for item in section.lines:
        if isinstance(item, Line):
            scope = _scope(facts, "")
            if item.when is not None and not item.when(scope):
                continue
            sentence = render_sentence(item.text, scope)
            if sentence:
                body.append(("- " if section.bullets else "") + sentence)
        else:
            for group in facts.groups(item.prefix):
                scope = _scope(facts, group)
                if item.when is not None and not item.when(scope):
                    continue
                sentence = render_sentence(item.text, scope)
                if sentence:
                    body.append("- " + sentence)
    if not body and section.empty:
        body.append(section.empty)
    paragraphs: list[str] = []
    for line in body:  # prose sentences form one paragraph; list items stay one per line
        if line.startswith("- ") or not paragraphs or paragraphs[-1].startswith("- "):
            paragraphs.append(line)
        else:
            paragraphs[-1] += " " + line
    return out + paragraphs + [""]


def render(title: str, sections: tuple[Section, ...], facts: FactSet, preface: tuple[str, ...] = ()) -> str:
    """The whole document: title, optional preface lines, then every section."""
    lines = [f"# {title}", ""]
    for line in preface:
        lines += [line, ""]
    for section in sections:
        lines += render_section(section, facts)
    return "\n".join(lines).rstrip() + "\n"
