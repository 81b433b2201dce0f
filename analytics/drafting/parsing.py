"""Reading a draft: sections, sentences with their citations, and the numbers, dates and identifiers
each sentence states (with the unit written after each number).

A draft is Markdown: ``#`` headings name sections; paragraphs, list items and table rows hold
sentences; fact ids are cited in square brackets (``[F3]``, ``[F3, F7]``). A citation written just
after a sentence's full stop still belongs to that sentence. Offsets are positions in the whole
text, so a violation can be highlighted where it is.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

CITATION = re.compile(r"\[\s*(F\d+(?:\s*(?:,|;|and|&)\s*F\d+)*)\s*\]")
FACT_ID = re.compile(r"F\d+")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
ABBREVIATIONS = ("e.g.", "i.e.", "vs.", "approx.", "Dr.", "Mr.", "Mrs.", "Ms.", "Prof.", "No.", "St.", "etc.", "Inc.",
                 "Ltd.", "cf.", "al.")
# A sentence ends at . ! ? followed by space and a capital, digit, quote or bracket (not in a decimal).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9*_])")

MONTHS = {m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"), start=1)}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
DATE_PATTERNS = (
    ("iso", re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")),
    ("dmy", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\s+(\d{{4}})\b", re.I)),
    ("mdy", re.compile(rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)),
    ("slash", re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")),
    ("my", re.compile(rf"\b({_MONTH})\s+(\d{{4}})\b", re.I)),
    ("ym", re.compile(r"\b(\d{4})-(\d{2})\b(?!-)")),
)
# Identifiers: letter-led codes with digits and hyphens (ST001-1008-001, CAPA-12), bare study-like
# codes (ST001), registry numbers (NCT01234567) and digit-only subject ids (01-701-1015).
IDENTIFIER = re.compile(
    r"\b(?:NCT\d{8}|[A-Z][A-Z0-9]*\d[A-Z0-9]*(?:-[A-Z0-9]+)+|[A-Z]{1,}[A-Z0-9]*-\d+(?:-[A-Z0-9]+)*"
    r"|[A-Z]{2,}\d{2,}|\d{2,}-\d{3,}-\d{3,})\b")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
PHONE = re.compile(r"(?<![\w.+-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{1,4}[\s.-])(?:\d{2,4}[\s.-]){1,3}"
                   r"\d{3,4}(?![\w-])(?![.,]\d)")
DOB = re.compile(r"\b(?:DOB|D\.O\.B\.|date of birth|born(?: on)?)\b[:\s]*", re.I)

NUMBER = re.compile(r"(?<![\w.,])([-+\u2212])?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])(?!,\d{3})")
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                     "ninety": 90, "hundred": 100, "dozen": 12})
NUMBER_WORD = re.compile(r"\b(" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")(?:-(one|two|three|four|"
                         r"five|six|seven|eight|nine))?\b", re.I)
# "no one", "one of", "one or more" read as words, not as numbers.
NOT_A_NUMBER_WORD = re.compile(r"\b(?:no one|any one|every one|someone|anyone|one another|one of the|one or more|"
                               r"at least one|one by one)\b", re.I)


@dataclass(frozen=True)
class Sentence:
    """One checked unit: a sentence, list item, table row or heading, with its section and citations."""

    index: int
    text: str
    start: int
    end: int
    section: str
    citations: tuple[str, ...]
    is_heading: bool = False

    @property
    def body(self) -> str:
        """The text without its citations (numbers are read from this)."""
        return CITATION.sub(lambda m: " " * len(m.group(0)), self.text)


@dataclass(frozen=True)
class Token:
    """A number, date or identifier found in a sentence (offsets within the sentence text)."""

    kind: str  # number, date, month, identifier, email, phone, dob
    text: str
    start: int
    end: int
    value: object = None  # float for numbers, date for dates, (year, month) for months
    decimals: int = 0
    signed: bool = False
    following: str = ""  # the text after a number, up to the next number or clause end
    preceding: str = ""


def strip_fences(text: str) -> str:
    """A model's answer without a surrounding code fence (```markdown ... ```)."""
    stripped = text.strip()
    match = re.match(r"^```[\w-]*\s*\n(.*?)\n?```\s*$", stripped, re.S)
    return match.group(1) if match else text


def _split_line(line: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of one line; a citation after the full stop stays with it."""
    protected = line
    for abbreviation in ABBREVIATIONS:
        protected = protected.replace(abbreviation, abbreviation.replace(".", "\x00"))
    # A quotation (a record's own text, quoted verbatim) is one piece of the sentence that quotes it,
    # whatever full stops it carries, so its citation covers all of it.
    for quoted in re.finditer(r'"[^"\n]*"|\u201c[^\u201d\n]*\u201d', protected):
        inner = re.sub(r"[.!?]", "\x00", quoted.group(0))
        protected = protected[:quoted.start()] + inner + protected[quoted.end():]
    spans, start = [], 0
    for match in SENTENCE_END.finditer(protected):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(line)))
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        piece = line[s:e]
        lead = re.match(r"^(\s*(?:\[\s*F\d+[^\]]*\]\s*)+)", piece)
        if merged and lead:  # "... queries. [F1] Next sentence": [F1] belongs to the sentence before
            ps, _ = merged[-1]
            merged[-1] = (ps, s + lead.end())
            s = s + lead.end()
            if not line[s:e].strip():
                continue
        merged.append((s, e))
    return [(s, e) for s, e in merged if line[s:e].strip()]


def sentences(text: str) -> list[Sentence]:
    """Every heading, sentence, list item and table row of a draft, in order."""
    out: list[Sentence] = []
    section = ""
    offset = 0
    for line in text.splitlines(keepends=True):
        content = line.rstrip("\n")
        stripped = content.strip()
        if stripped and not re.fullmatch(r"\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?", stripped):
            heading = HEADING.match(stripped)
            if heading:
                section = heading.group(2).strip()
                lead = content.index(stripped)
                out.append(Sentence(len(out), stripped, offset + lead, offset + lead + len(stripped), section,
                                    _citations(stripped), is_heading=True))
            else:
                marker = LIST_MARKER.match(content)
                body_start = marker.end() if marker else 0
                for s, e in _split_line(content[body_start:]):
                    s0, e0 = body_start + s, body_start + e
                    piece = content[s0:e0]
                    lead = len(piece) - len(piece.lstrip())
                    piece = piece.strip()
                    out.append(Sentence(len(out), piece, offset + s0 + lead, offset + s0 + lead + len(piece),
                                        section, _citations(piece)))
        offset += len(line)
    return out


def _citations(text: str) -> tuple[str, ...]:
    ids: list[str] = []
    for match in CITATION.finditer(text):
        ids.extend(FACT_ID.findall(match.group(1)))
    return tuple(dict.fromkeys(ids))


def bracketed_ids(text: str) -> list[str]:
    """Fact-id-like tokens anywhere in brackets, including malformed ones (``[F12a]``, ``[F 3]``)."""
    return [m.group(0) for m in re.finditer(r"\[\s*F\s*\d+[^\]]*\]", text)]


def normalize_section(name: str) -> str:
    name = re.sub(r"^\s*(?:\d+(?:\.\d+)*[.)]?|[IVX]+\.)\s+", "", name)
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def _month(name: str) -> int:
    return MONTHS[name.lower().rstrip(".")[:3]]


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def find_dates(text: str) -> list[Token]:
    """Dates (day precision) and month-years, without overlaps, in text order."""
    found: list[Token] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            g = m.groups()
            value: object = None
            if kind == "iso":
                value = _date(int(g[0]), int(g[1]), int(g[2]))
            elif kind == "dmy":
                value = _date(int(g[2]), _month(g[1]), int(g[0]))
            elif kind == "mdy":
                value = _date(int(g[2]), _month(g[0]), int(g[1]))
            elif kind == "slash":
                value = _date(int(g[2]), int(g[1]), int(g[0])) or _date(int(g[2]), int(g[0]), int(g[1]))
            elif kind == "my":
                value = (int(g[1]), _month(g[0]))
            elif kind == "ym":
                month = int(g[1])
                value = (int(g[0]), month) if 1 <= month <= 12 else None
            if value is None:
                continue
            found.append(Token("date" if isinstance(value, dt.date) else "month", m.group(0), m.start(), m.end(),
                               value))
            taken.append((m.start(), m.end()))
    return sorted(found, key=lambda t: t.start)


def find_patterns(text: str, pattern: re.Pattern, kind: str) -> list[Token]:
    return [Token(kind, m.group(0), m.start(), m.end(), m.group(0)) for m in pattern.finditer(text)]


def mask(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the spans blanked (same length, so offsets stay valid)."""
    chars = list(text)
    for s, e in spans:
        for i in range(max(s, 0), min(e, len(chars))):
            chars[i] = " "
    return "".join(chars)


def find_numbers(text: str) -> list[Token]:
    """Numbers (digits and number words) with the text after and before each, in text order."""
    tokens: list[Token] = []
    for m in NUMBER.finditer(text):
        digits = m.group(2).replace(",", "")
        fraction = m.group(3) or ""
        value = float(digits + fraction)
        if m.group(1) in ("-", "\u2212"):
            # "-" right after a word is a hyphen ("grade-3"), not a sign
            signed = m.start() == 0 or not text[m.start() - 1].isalnum()
            value = -value if signed else value
        else:
            signed = m.group(1) == "+"
        tokens.append(Token("number", m.group(0), m.start(), m.end(), value, len(fraction) - 1 if fraction else 0,
                            signed))
    words_masked = mask(text, [(m.start(), m.end()) for m in NOT_A_NUMBER_WORD.finditer(text)])
    for m in NUMBER_WORD.finditer(words_masked):
        value = NUMBER_WORDS[m.group(1).lower()] + (NUMBER_WORDS[m.group(2).lower()] if m.group(2) else 0)
        tokens.append(Token("number", m.group(0), m.start(), m.end(), float(value), 0, False))
    tokens.sort(key=lambda t: t.start)
    out = []
    for i, t in enumerate(tokens):
        nxt = tokens[i + 1].start if i + 1 < len(tokens) else len(text)
        prv = tokens[i - 1].end if i > 0 else 0
        following = re.split(r"[;:()\[\]]|,\s|\.\s|\.$", text[t.end:nxt])[0]
        preceding = re.split(r"[;:()\[\]]|,\s|\.\s", text[prv:t.start])[-1]
        out.append(Token(t.kind, t.text, t.start, t.end, t.value, t.decimals, t.signed, following, preceding))
    return out
