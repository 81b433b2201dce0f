"""Eligibility text as registries and protocols write it: cleaned, split into sections and criteria.

ClinicalTrials.gov eligibility text is Markdown-like: ``Inclusion Criteria:`` / ``Exclusion
Criteria:`` headers (sometimes "Key", upper case, or with text after the colon), numbered, lettered
or bulleted lists nested by indentation, escaped comparison signs (``\\<=``), HTML entities
(``&lt;``, ``&ge;``), and criteria that wrap onto the next line. :func:`split_criteria` returns one
:class:`Item` per criterion with the source lines it came from, so :func:`unassigned_lines` can prove
that no line of the text was dropped.

Nested lists: children of a parent that ends with "any of the following" / "one of the following" are
one criterion (the parent and its alternatives); other children each become a criterion prefixed by
their parent ("Localized prostate cancer is defined as: PSA <= 10").
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from analytics.recruitment.criteria import EXCLUSION, INCLUSION

_ESCAPES = re.compile(r"\\([<>=*_\[\]()#.+\-!|~`])")
_SYMBOLS = (
    ("≥", ">="), ("≤", "<="), ("⩾", ">="), ("⩽", "<="), ("≧", ">="), ("≦", "<="), ("=<", "<="), ("=>", ">="),
    ("＜", "<"), ("＞", ">"), ("–", "-"), ("—", "-"), ("‐", "-"), ("−", "-"), ("’", "'"), ("‘", "'"), ("“", '"'),
    ("”", '"'), ("\u00a0", " "), ("\u2009", " "), ("\u202f", " "), ("\t", "    "),
)
_HEADER = re.compile(
    r"^\s*(?:[*\-•#]+\s*)?(?:\*\*)?\s*(?:(?:key|main|major|general|principal|other|additional)\s+)?"
    r"(?:[\w'-]+\s+){0,3}?(inclusion|exclusion|eligibility)(?:\s+and\s+exclusion)?\s+(?:criteria|criterion|c[a-z]{3,6}ia)\b(?:\s+(?:include|includes|are|is))?(?:\*\*)?\s*"
    r"(?:\((?:[^)]{0,60})\)\s*|(?:for|of)\s[^:]{0,60})?(?:[:\-]|\.?\s*$)\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE)
_BULLET = re.compile(r"^(\s*)(?:[*\-•·▪◦‣+]|\(?\d{1,2}[.)](?!\d)|\(\d{1,2}\)|\(?[a-zA-Z][.)](?=\s)|\(?(?:i{1,3}|iv|v|vi{1,3}|ix|x)[.)](?=\s))\s+(.*)$")
_ALTERNATIVES = re.compile(r"\b(?:any|one|either|at least one)\s+(?:\w+\s+){0,2}of\s+the\s+following\b", re.IGNORECASE)
_TERMINAL = (".", ";", ":", "?", "!")


# Lists written on one line ("Inclusion Criteria:- Males ...- Heterosexual ...- ..."): one item per line.
_INLINE_HEADER = re.compile(r"(?<=\S)[ \t]+(?=(?:inclusion|exclusion) criteria:[ \t]*-)", re.IGNORECASE)
_INLINE_DASH = re.compile(r"(?<=[.:])[ \t]*-[ \t]*(?=[A-Z])|(?<=[a-z])-[ \t]+(?=[A-Z])")


def clean_text(text: str) -> str:
    """Entities decoded, Markdown escapes removed, comparison signs and dashes in ASCII, inline lists split."""
    cleaned = html.unescape(html.unescape(text or ""))
    cleaned = _ESCAPES.sub(r"\1", cleaned)
    for old, new in _SYMBOLS:
        cleaned = cleaned.replace(old, new)
    cleaned = cleaned.replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for line in cleaned.split("\n"):
        if re.search(r"criteria:[ \t]*-", line, re.IGNORECASE):
            line = _INLINE_DASH.sub("\n- ", _INLINE_HEADER.sub("\n", line))
        lines.append(line)
    return "\n".join(lines)


@dataclass(frozen=True)
class Item:
    """One criterion as written: its section, text and the source line numbers it came from (0-based)."""

    section: str
    text: str
    lines: tuple[int, ...]
    parent: str = ""  # the parent line for nested criteria (already part of ``text``)


@dataclass
class _Line:
    number: int
    indent: int
    text: str
    bulleted: bool


def _strip_markup(text: str) -> str:
    return re.sub(r"\*\*|__", "", text).strip()


def split_criteria(text: str) -> list[Item]:
    """The criteria of an eligibility text, in order, with their sections.

    Text before any header is inclusion (registries list inclusion first); a header with text after
    its colon starts that section with the text as its first criterion.
    """
    lines = clean_text(text).split("\n")
    blocks: list[tuple[str, list[_Line]]] = [(INCLUSION, [])]
    header_lines: set[int] = set()
    for number, raw in enumerate(lines):
        if not raw.strip():
            continue
        header = _HEADER.match(raw)
        if header and len(raw.strip()) < 200 and (not header.group(2) or header.group(2)[:1] not in ".,;"):
            section = EXCLUSION if header.group(1).lower() == "exclusion" else INCLUSION
            blocks.append((section, []))
            rest = header.group(2).strip()
            if rest and not re.fullmatch(r"[:\-.*]*", rest):
                blocks[-1][1].append(_line(number, " " + rest))
            else:
                header_lines.add(number)
            continue
        blocks[-1][1].append(_line(number, raw))
    items: list[Item] = []
    for section, block in blocks:
        items += _items(section, block)
    return items


def _line(number: int, raw: str) -> _Line:
    bullet = _BULLET.match(raw)
    if bullet:
        return _Line(number, len(bullet.group(1)), _strip_markup(bullet.group(2)), True)
    return _Line(number, len(raw) - len(raw.lstrip()), _strip_markup(raw), False)


def _items(section: str, block: list[_Line]) -> list[Item]:
    """Group a section's lines into criteria: bullets start criteria, wrapped lines continue them."""
    any_bullets = any(line.bulleted for line in block)
    groups: list[list[_Line]] = []
    for line in block:
        if not line.text:
            continue
        starts = line.bulleted or not any_bullets or not groups or _starts_new(groups[-1][-1], line)
        if starts:
            groups.append([line])
        else:
            groups[-1].append(line)
    return _nest(section, groups)


def _starts_new(previous: _Line, line: _Line) -> bool:
    """An unbulleted line in a bulleted list: a new criterion unless it reads as the previous one's continuation."""
    if line.text[:1].islower() or line.text[:1] in "([,;" or re.match(r"(?:and|or|nor|with|without)\b", line.text):
        return False
    if not previous.text.rstrip().endswith(_TERMINAL) and line.indent > previous.indent:
        return False
    return True


def _nest(section: str, groups: list[list[_Line]]) -> list[Item]:
    items: list[Item] = []
    index = 0
    while index < len(groups):
        head = groups[index]
        text = " ".join(part.text for part in head)
        children = []
        follow = index + 1
        # Children: more deeply indented groups right after a parent that ends with a colon.
        if text.rstrip().endswith(":"):
            while follow < len(groups) and (groups[follow][0].indent > head[0].indent
                                            or (not head[0].bulleted and groups[follow][0].bulleted)):
                children.append(groups[follow])
                follow += 1
        if not children:
            items.append(Item(section, text, tuple(p.number for p in head)))
            index += 1
            continue
        child_texts = [" ".join(part.text for part in child) for child in children]
        numbers = tuple(p.number for p in head) + tuple(p.number for child in children for p in child)
        if _ALTERNATIVES.search(text):
            items.append(Item(section, text + " " + "; ".join(t.rstrip(";.") for t in child_texts), numbers))
        else:
            for child, child_text in zip(children, child_texts):
                items.append(Item(section, f"{text} {child_text}", tuple(p.number for p in head)
                                  + tuple(p.number for p in child), parent=text))
        index = follow
    return items


def unassigned_lines(text: str, items: list[Item]) -> list[str]:
    """Non-empty source lines that no criterion came from, other than section headers (should be none)."""
    used = {n for item in items for n in item.lines}
    lines = clean_text(text).split("\n")
    return [line for n, line in enumerate(lines)
            if line.strip() and n not in used and not _HEADER.match(line)
            and not re.fullmatch(r"[\s*\-•_=#:.]*", line)]
