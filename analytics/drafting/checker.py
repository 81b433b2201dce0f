"""The strict faithfulness check: every number, date and identifier a draft states must come from a
fact, and a number must come from a fact *cited in the same sentence*, in a compatible unit.

Checking only that a number appears somewhere among the facts is not enough: a small model once
wrote "a sample size of 37 and a study duration of 9 days" from the facts "37 open queries" and
"9 queries over 30 days", which such a check passes. Here each number is matched against the
facts its own sentence cites ([F1]), and the unit written beside it must fit the fact's:

* a percentage needs a % fact, a duration the same duration unit (days are not weeks), a rate a
  "per ..." fact;
* a bare number must be a count (or ratio) fact, and the count's noun (queries, subjects, ...)
  must be the one written after it or, when none is, must appear in the sentence;
* a number that is another sentence's fact, or no fact at all, is a violation that says which.

Also checked: cited fact ids exist; dates equal a cited date fact (a year or month-year may be a
cited date's); identifiers (study, site, CAPA, registry ids) are facts; no subject id, e-mail,
phone number, date of birth or known person name that is not a fact; no mention of treatment arms
in a blinded document; the document type's required sections; and, for patient-facing text,
wording rules and a readability grade (see :mod:`analytics.drafting.plain_language`).

Violations are ``hard`` (a wrong or unsupported statement, a missing required section) or ``soft``
(worth a look: readability). Each carries the offsets of its sentence for highlighting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from analytics.drafting import parsing
from analytics.drafting.deid import SUBJECT_SHAPE, Identifiers
from analytics.drafting.facts import Fact, FactSet

DURATION_WORDS = {"day": "days", "days": "days", "d": "days", "calendar": None, "week": "weeks", "weeks": "weeks",
                  "wk": "weeks", "wks": "weeks", "month": "months", "months": "months", "mo": "months",
                  "year": "years", "years": "years", "yr": "years", "yrs": "years"}
PERCENT_WORDS = ("%", "percent", "per cent", "pct", "percentage")
# Nouns a count can be of; a bare number followed by one of these must be a fact counting it.
COUNT_NOUNS = {
    "subject", "participant", "patient", "people", "person", "volunteer", "site", "centre", "center", "study",
    "trial", "query", "visit", "deviation", "event", "ae", "sae", "capa", "action", "finding", "page", "form",
    "point", "milestone", "country", "kri", "indicator", "flag", "institution", "investigator", "report",
    "discontinuation", "withdrawal", "screening", "failure", "randomization", "randomisation", "enrollment",
    "enrolment", "record", "issue", "risk", "extension", "document", "criterion", "sample", "dose", "result",
    "test", "case", "week", "month", "year", "day",
}
ARM_WORDS = re.compile(r"\b(?:placebo|treatment arm|study arm|arm [A-Z0-9]\b|active (?:low|high)? ?dose|"
                       r"randomi[sz]ed to (?:the )?(?:active|drug|placebo)|unblind\w*)", re.I)
YEAR_RANGE = (1900, 2100)


def singular(word: str) -> str:
    w = word.lower().strip(".,;:'\"()")
    if w in ("people",):
        return "people"
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ses", "s"), ("s", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 1:
            if suffix == "ses" and not w.endswith("uses") and not w.endswith("cases"):
                continue
            return w[: -len(suffix)] + repl
    return w


@dataclass(frozen=True)
class Violation:
    """One problem in a draft.

    Attributes:
        code: what kind (``number_not_in_facts``, ``number_from_uncited_fact``, ``unit_mismatch``,
            ``unknown_fact_id``, ``date_not_in_cited_facts``, ``identifier_not_in_facts``,
            ``personal_identifier``, ``arm_in_blinded_document``, ``missing_section``, ``wording``,
            ``readability``, ``malformed_citation``).
        severity: ``hard`` or ``soft``.
        message: in words, naming the number or id and the facts concerned.
        sentence: index of the sentence (-1 for the whole document).
        start, end: offsets of the sentence in the text (0, 0 for the whole document).
        token: the offending text.
    """

    code: str
    severity: str
    message: str
    sentence: int = -1
    start: int = 0
    end: int = 0
    token: str = ""


@dataclass(frozen=True)
class CheckResult:
    """The checker's verdict on one text."""

    violations: tuple[Violation, ...]
    sentences_checked: int
    numbers_checked: int
    readability_grade: float | None = None

    @property
    def hard(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "hard"]

    @property
    def soft(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "soft"]

    @property
    def passed(self) -> bool:
        return not self.hard

    def codes(self) -> set[str]:
        return {v.code for v in self.violations}

    def as_json(self) -> dict[str, object]:
        return {"passed": self.passed, "hard": len(self.hard), "soft": len(self.soft),
                "sentences_checked": self.sentences_checked, "numbers_checked": self.numbers_checked,
                "readability_grade": self.readability_grade,
                "violations": [asdict(v) for v in self.violations]}

    def summary(self) -> str:
        if not self.violations:
            return (f"Every statement checked: {self.numbers_checked} numbers in {self.sentences_checked} "
                    "sentences match the facts they cite.")
        return (f"{len(self.hard)} hard and {len(self.soft)} soft violation(s) in {self.sentences_checked} "
                f"sentences ({self.numbers_checked} numbers checked).")


@dataclass(frozen=True)
class Requirements:
    """What one document type requires beyond the facts: sections, wording rules, readability."""

    sections: tuple[str, ...] = ()
    blinded: bool = True
    patient_facing: bool = False
    max_grade: float | None = None


def _value_matches(written: float, decimals: int, fact_value: float) -> bool:
    tolerance = 0.5 * 10 ** (-decimals) + 1e-9
    return abs(abs(written) - abs(fact_value)) <= tolerance if written >= 0 else abs(written - fact_value) <= tolerance


def _written_unit(token: parsing.Token) -> tuple[str, object]:
    """(kind, detail) of what follows a number: percent; duration (its unit); rate (the words after
    "per"); ratio; or bare (the count nouns among the next three words, possibly none)."""
    after = token.following.strip().lower()
    if after.startswith(("%",)) or any(after.startswith(w) for w in PERCENT_WORDS[1:]):
        return "percent", None
    if after.startswith("/"):
        return "rate", after[1:]
    words = re.findall(r"[a-z][a-z/-]*", after)
    for i, w in enumerate(words[:3]):
        if DURATION_WORDS.get(w):
            return "duration", DURATION_WORDS[w]
        if w == "per":
            return "rate", " ".join(words[i + 1: i + 3])
        if w in ("times", "x", "fold"):
            return "ratio", None
    nouns = frozenset(singular(w.split("-")[0]) for w in words[:3]) & COUNT_NOUNS
    return "bare", nouns


def _fact_nouns(f: Fact) -> set[str]:
    """The nouns a count fact may be written with: its unit's count nouns ("subjects randomized" ->
    subject), else the unit's last word, and its declared synonyms."""
    words = [singular(w) for w in re.findall(r"[A-Za-z][A-Za-z-]*", f.unit)]
    nouns = {w for w in words if w in COUNT_NOUNS} or ({words[-1]} if words else set())
    nouns |= {singular(n) for n in f.nouns}
    nouns |= {singular(n.split("-")[0]) for n in nouns}
    return nouns


def _unit_fits(f: Fact, kind: str, detail: str | None, sentence_words: set[str]) -> bool:
    if f.kind == "percent":
        return kind == "percent"
    if f.kind == "duration":
        return kind == "duration" and detail == f.unit
    if f.kind == "rate":
        if kind != "rate":
            return False
        unit_words = [singular(w) for w in re.findall(r"[A-Za-z][A-Za-z-]*", f.unit[4:])]
        written = [singular(w) for w in re.findall(r"[A-Za-z][A-Za-z-]*", detail or "")]
        return not unit_words or not written or written[0] in unit_words or unit_words[0] in written
    if f.kind == "ratio":
        return (kind == "ratio" or (kind == "bare" and not detail)) and bool(
            sentence_words & ({"ratio", "times", "observed", "expected", "o/e", "fold"} | _fact_nouns(f)))
    if f.kind == "count":
        if kind != "bare":
            return False
        nouns = _fact_nouns(f)
        if detail:  # the nouns written right after the number must include the fact's
            return bool(detail & nouns)
        return bool(sentence_words & nouns)
    return False


def _previous_word(token: parsing.Token) -> str:
    words = re.findall(r"[A-Za-z]+", token.preceding.lower())
    return words[-1] if words else ""


def _label_units(f: Fact) -> dict[float, set[tuple[str, str | None, str]]]:
    """Numbers in a fact's own label and unit ("more than 30 days", "per 100 data points"), each with
    what follows it and the word before it; a sentence may repeat them when it cites the fact."""
    out: dict[float, set[tuple[str, str | None, str]]] = {}
    for token in parsing.find_numbers(f"{f.label}. {f.unit}"):
        kind, detail = _written_unit(token)
        out.setdefault(abs(float(token.value)), set()).add(
            (kind, None if kind == "bare" else str(detail), _previous_word(token)))
    return out


def _in_label(cited: Sequence[Fact], token: parsing.Token, kind: str, detail: object, ambiguous: bool) -> bool:
    """The number repeats a cited fact's own definition (same unit after it). When it is also the
    value of a cited fact (``ambiguous``), the word before it must be the label's too ("more than
    30 days"), so "makes up 30 days" for a 30% fact is not excused."""
    wanted = (kind, None if kind == "bare" else str(detail))
    previous = _previous_word(token)
    for f in cited:
        for k, d, before in _label_units(f).get(abs(float(token.value)), set()):
            if (k, d) == wanted and (not ambiguous or before == previous):
                return True
    return False


STOP_WORDS = frozenset(
    "the a an of in on at to for and or with by from as is are was were be been has have had this that these those "
    "which who whom its their there so such not no all any each per into out up down it they we".split())


def _content_words(text: str) -> set[str]:
    return {singular(w) for w in re.findall(r"[A-Za-z][A-Za-z-]+", text) if w.lower() not in STOP_WORDS}


def _fact_words(f: Fact) -> set[str]:
    return _content_words(f"{f.label} {f.unit} {' '.join(f.nouns)}")


def _better_attributed(token: parsing.Token, matched: Sequence[Fact], cited_numbers: Sequence[Fact]) -> Fact | None:
    """Another cited fact of the same kind that the words around the number describe better than
    the fact whose value it is ("37 queries open more than 30 days" when 37 is the open-query
    count and another cited fact is the count open over 30 days): the numbers look swapped.
    None when no rival's label shares more words with the number's surroundings."""
    window = _content_words(f"{token.preceding} {token.following}")
    if not window:
        return None
    best = max(len(window & _fact_words(f)) for f in matched)
    kinds = {f.kind for f in matched}
    values = {float(f.value) for f in matched}
    rivals = [(len(window & _fact_words(f)), f) for f in cited_numbers if f.kind in kinds
              and float(f.value) not in values]
    rivals = [(score, f) for score, f in rivals if score > best]
    return max(rivals, key=lambda r: r[0])[1] if rivals else None


def _describe(f: Fact) -> str:
    return f"{f.fact_id} ({f.label}: {f.shown()})"


def _fact_dates(facts: Iterable[Fact]) -> list[tuple[Fact, object]]:
    import datetime as dt

    out = []
    for f in facts:
        if f.kind == "date" and f.value:
            out.append((f, dt.date.fromisoformat(str(f.value))))
    return out


def _text_values(facts: FactSet) -> list[str]:
    """Values of text and id facts that contain digits, longest first (their digits are not claims)."""
    values = {str(f.value) for f in facts if f.kind in ("text", "id") and f.value not in (None, "")
              and re.search(r"\d", str(f.value))}
    return sorted(values, key=len, reverse=True)


def _known_identifiers(facts: FactSet) -> set[str]:
    known: set[str] = set()
    for f in facts:
        for text in (str(f.value), f.label, f.source_key, f.group):
            known.update(m.group(0) for m in parsing.IDENTIFIER.finditer(text))
    return known


class _Sentence:
    """Working state for one sentence."""

    def __init__(self, s: parsing.Sentence) -> None:
        self.s = s
        self.body = s.body
        self.masked: list[tuple[int, int]] = []

    def violation(self, code: str, message: str, token: str = "", severity: str = "hard") -> Violation:
        return Violation(code, severity, message, self.s.index, self.s.start, self.s.end, token)


def check_draft(text: str, facts: FactSet, requirements: Requirements = Requirements(),
                identifiers: Identifiers = Identifiers(), title: str | None = None) -> CheckResult:
    """Check a draft against its facts; see the module docstring for the rules.

    Args:
        text: the draft (Markdown with [F1] citations).
        facts: the numbered facts it was drafted from.
        requirements: the document type's sections and wording rules.
        identifiers: subject ids and person names known to the warehouse (never allowed unless a
            name is itself a fact, e.g. the principal investigator on a recruitment notice).
        title: the document title the app wrote as the first heading (not checked).
    """
    by_id = facts.by_id()
    violations: list[Violation] = []
    units = parsing.sentences(text)
    text_values = _text_values(facts)
    known_ids = _known_identifiers(facts)
    fact_names = {str(f.value) for f in facts if f.kind == "text" and f.value}
    dates = _fact_dates(facts)
    has_arm_facts = any(f.group.startswith("arm:") for f in facts)
    numbers_checked = 0
    for unit in units:
        if unit.is_heading and (unit.index == 0 or (title and parsing.normalize_section(unit.section)
                                                    == parsing.normalize_section(title))):
            continue
        w = _Sentence(unit)
        cited = [by_id[c] for c in unit.citations if c in by_id]
        for c in unit.citations:
            if c not in by_id:
                violations.append(w.violation("unknown_fact_id", f"{c} is cited but there is no such fact "
                                                                 f"(the facts are F1-F{len(facts)}).", c))
        for raw in parsing.bracketed_ids(unit.text):
            if not parsing.CITATION.fullmatch(raw.strip()):
                violations.append(w.violation("malformed_citation", f"{raw} is not a citation like [F3].", raw))
        violations += _check_identifiers(w, identifiers, known_ids, fact_names, has_arm_facts)
        violations += _check_dates(w, cited, dates)
        for value in text_values:  # digits inside a name or quoted text fact are not claims
            for m in re.finditer(r"(?<!\w)" + re.escape(value) + r"(?!\w)", w.body, re.I):
                w.masked.append((m.start(), m.end()))
        numbers = parsing.find_numbers(parsing.mask(w.body, w.masked))
        numbers_checked += len(numbers)
        violations += _check_numbers(w, numbers, cited, facts)
    violations += _check_sections(units, requirements)
    grade = None
    if requirements.patient_facing:
        from analytics.drafting.plain_language import check_plain_language

        extra, grade = check_plain_language(text, requirements.max_grade)
        violations += extra
    return CheckResult(tuple(violations), sum(1 for u in units if not u.is_heading), numbers_checked, grade)


def _check_identifiers(w: _Sentence, identifiers: Identifiers, known_ids: set[str], fact_names: set[str],
                       has_arm_facts: bool) -> list[Violation]:
    out: list[Violation] = []
    body = w.body
    for pattern, what in ((parsing.EMAIL, "an e-mail address"), (parsing.PHONE, "a phone number")):
        for m in pattern.finditer(body):
            out.append(w.violation("personal_identifier", f"'{m.group(0)}' is {what}; documents carry none.",
                                   m.group(0)))
            w.masked.append((m.start(), m.end()))
    for m in parsing.DOB.finditer(body):
        out.append(w.violation("personal_identifier", "A date of birth is stated; documents carry none.", m.group(0)))
    for start, end, subject in identifiers.find_subjects(body):
        out.append(w.violation("personal_identifier", f"'{subject}' is a subject id; documents name no subject.",
                               subject))
        w.masked.append((start, end))
    for m in SUBJECT_SHAPE.finditer(body):
        if not any(s <= m.start() < e for s, e in w.masked):
            out.append(w.violation("personal_identifier", f"'{m.group(0)}' looks like a subject id and is not in "
                                                          "the facts.", m.group(0)))
            w.masked.append((m.start(), m.end()))
    for start, end, written, canonical in identifiers.find_names(body):
        if canonical in fact_names or written in fact_names or any(s <= start < e for s, e in w.masked):
            continue
        out.append(w.violation("personal_identifier", f"'{written}' is a person the facts do not name.", written))
        w.masked.append((start, end))
    for m in parsing.IDENTIFIER.finditer(body):
        if any(s <= m.start() < e for s, e in w.masked):
            continue
        if parsing.DATE_PATTERNS[0][1].fullmatch(m.group(0)):
            continue
        if m.group(0) not in known_ids:
            out.append(w.violation("identifier_not_in_facts", f"'{m.group(0)}' is not an identifier in the facts.",
                                   m.group(0)))
        w.masked.append((m.start(), m.end()))
    if not has_arm_facts:
        for m in ARM_WORDS.finditer(body):
            out.append(w.violation("arm_in_blinded_document", f"'{m.group(0)}' refers to treatment assignment, "
                                                              "which this document's facts do not include.",
                                   m.group(0)))
    return out


def _check_dates(w: _Sentence, cited: Sequence[Fact], dates: list[tuple[Fact, object]]) -> list[Violation]:
    out: list[Violation] = []
    cited_dates = [(f, d) for f, d in dates if f in cited]
    for token in parsing.find_dates(parsing.mask(w.body, w.masked)):
        w.masked.append((token.start, token.end))
        if token.kind == "date":
            ok = any(d == token.value for _, d in cited_dates)
            owners = [f for f, d in dates if d == token.value]
        else:
            ok = any((d.year, d.month) == token.value for _, d in cited_dates)
            owners = [f for f, d in dates if (d.year, d.month) == token.value]
        if ok:
            continue
        if owners:
            out.append(w.violation("date_from_uncited_fact", f"'{token.text}' is the date of "
                                   f"{', '.join(_describe(f) for f in owners[:3])}, which this sentence does not cite.",
                                   token.text))
        else:
            out.append(w.violation("date_not_in_facts", f"'{token.text}' is not a date in the facts.", token.text))
    return out


def _check_numbers(w: _Sentence, numbers: list[parsing.Token], cited: Sequence[Fact], facts: FactSet
                   ) -> list[Violation]:
    out: list[Violation] = []
    words = {singular(x) for x in re.findall(r"[A-Za-z][A-Za-z/-]*", w.body)}
    words |= {x.split("-")[0] for x in words}
    numeric = [f for f in cited if f.is_number]
    cited_years = {int(str(f.value)[:4]) for f in cited if f.kind == "date" and f.value}
    for token in numbers:
        value = float(token.value)
        kind, detail = _written_unit(token)
        same_value = [f for f in numeric if _value_matches(value, token.decimals, float(f.value))]
        if _in_label(cited, token, kind, detail, ambiguous=bool(same_value)):
            continue  # "grade 3", "more than 30 days": part of a cited fact's own definition
        fitting = [f for f in same_value if _unit_fits(f, kind, detail, words)]
        if fitting:
            rival = _better_attributed(token, fitting, numeric)
            if rival is not None:
                out.append(w.violation("number_swapped", f"'{token.text}' is written where the sentence describes "
                                       f"{_describe(rival)}, but it is the value of {_describe(fitting[0])}: the "
                                       "numbers look swapped.", token.text))
            continue
        if value.is_integer() and YEAR_RANGE[0] <= value <= YEAR_RANGE[1] and int(value) in cited_years:
            continue
        if same_value:
            expected = same_value[0]
            written = {"percent": "a percentage", "duration": f"{detail}", "rate": f"a rate (per {detail})",
                       "ratio": "a ratio"}.get(kind, f"a count of {', '.join(sorted(detail))}" if detail
                                               else "a number without the fact's noun")
            out.append(w.violation("unit_mismatch", f"'{token.text}' is written as {written}, but "
                                   f"{_describe(expected)} is in {expected.unit}.", token.text))
            continue
        elsewhere = [f for f in facts if f.is_number and f not in cited
                     and _value_matches(value, token.decimals, float(f.value))]
        if elsewhere:
            out.append(w.violation("number_from_uncited_fact", f"'{token.text}' is the value of "
                                   f"{', '.join(_describe(f) for f in elsewhere[:3])}, which this sentence does not "
                                   "cite: it may belong to another statement.", token.text))
        elif not cited:
            out.append(w.violation("number_not_in_facts", f"'{token.text}' is stated without a cited fact and is "
                                                           "not in the facts.", token.text))
        else:
            out.append(w.violation("number_not_in_facts", f"'{token.text}' matches none of the cited facts "
                                   f"({', '.join(f.fact_id for f in cited)}) and is not in the facts.", token.text))
    return out


def _check_sections(units: Sequence[parsing.Sentence], requirements: Requirements) -> list[Violation]:
    present = {parsing.normalize_section(u.section) for u in units if u.is_heading}
    return [Violation("missing_section", "hard", f"The required section '{name}' is missing.", token=name)
            for name in requirements.sections if parsing.normalize_section(name) not in present]
