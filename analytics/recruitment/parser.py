"""The criteria parser: eligibility text in, one :class:`~analytics.recruitment.criteria.Criterion` per
criterion out, structured where every part of it was understood and "needs review" otherwise.

One engine runs the declarations of :mod:`analytics.recruitment.patterns` and the vocabularies of
:mod:`analytics.recruitment.vocabulary` over each criterion that :mod:`analytics.recruitment.text`
split off:

1. find the terms it names (conditions, labs and measures, medications), its age and sex, pregnancy,
   breastfeeding and contraception, with the threshold after each lab (comparator, value, unit or
   "x ULN"), the time window ("within 6 months"), the duration ("for at least 3 months"), negation
   ("no history of") and exceptions ("except basal cell carcinoma");
2. decide how the parts combine: alternatives ("or", commas) are "any"; a demographic with a condition
   ("men with erectile dysfunction") or a lab with its population ("HbA1c > 11% in patients with
   diabetes") are "all";
3. keep the structure only if nothing is left over: the words not covered by a recognized part must
   be filler (:data:`~analytics.recruitment.patterns.FILLER_WORDS`). A criterion that needs judgement
   ("in the opinion of the investigator", "clinically significant", "such as"), or that names
   something outside the vocabularies, is kept as text with status ``needs_review`` and a note saying
   what was not understood; one answered by the patient at screening (consent, willingness, another
   trial) is ``administrative``. Nothing is dropped.

The parser never guesses a number or a unit: a threshold without a unit is read in the lab's usual
unit only when the vocabulary says which one that is, and the note says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from analytics.recruitment import icd10
from analytics.recruitment import patterns as P
from analytics.recruitment import units
from analytics.recruitment.criteria import (ADMINISTRATIVE, EXCLUSION, INCLUSION, NEEDS_REVIEW, STRUCTURED, ULN, Atom,
                                            Criterion)
from analytics.recruitment.text import Item, split_criteria
from analytics.recruitment.vocabulary import ECOG, ConditionTerm, LabTerm, MedicationTerm, find_terms, lexicon

MAX_THRESHOLD_GAP = 40  # characters between a lab's name and its threshold


@dataclass
class _Part:
    """A recognized piece of a criterion: its span in the text and the atom it yields."""

    start: int
    end: int
    atom: Atom | None  # None for spans that are understood but yield no atom (a shared threshold, a window)
    kind: str = ""


@dataclass
class _Reading:
    parts: list[_Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unresolved: list[tuple[int, int, str]] = field(default_factory=list)  # lab names without a threshold


@lru_cache(maxsize=1)
def _comparator_pattern() -> re.Pattern[str]:
    words = "|".join(f"(?:{w})" for w, _ in P.COMPARATOR_WORDS)
    unit_words = "|".join(f"(?:{w})" for w, _ in P.UNIT_WORDS)
    trailing = "|".join(f"(?:{w})" for w, _ in P.TRAILING_COMPARATORS)
    return re.compile(
        rf"(?P<comp>{words}|between|from)?\s*(?:a\s+(?:value|level|score)\s+of\s+|of\s+)?(?P<value>\d+(?:[.,]\d+)?)"
        rf"(?:\s*(?P<unit1>{unit_words}))?(?:\s*(?:-|to|and)\s*(?P<high>\d+(?:[.,]\d+)?))?\s*(?P<uln>{P.ULN_PHRASE})?"
        rf"\s*(?P<unit>{unit_words})?"
        rf"\s*(?P<uln2>{P.ULN_PHRASE})?\s*(?P<trail>{trailing})?",
        re.IGNORECASE)


def _symbol(phrase: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, symbol in table:
        if re.fullmatch(pattern, phrase.strip(), re.IGNORECASE):
            return symbol
    return None


def _unit_spelling(phrase: str) -> str | None:
    return _symbol(phrase, P.UNIT_WORDS)


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _days(amount: str, unit: str) -> int:
    value = P.WORD_NUMBERS.get(amount.lower()) if not amount.isdigit() else int(amount)
    unit = unit.lower().rstrip("s")
    unit = {"wk": "week", "mo": "month", "yr": "year"}.get(unit, unit)
    return int(round(value * P.DAYS_PER[unit]))


def _find(patterns: tuple[str, ...], text: str) -> list[tuple[int, int, int]]:
    found = []
    for pattern in patterns:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            found.append((match.start(), match.end(), _days(match.group(1), match.group(2))))
    found.sort()
    kept: list[tuple[int, int, int]] = []
    for item in found:
        if not kept or item[0] >= kept[-1][1]:
            kept.append(item)
    return kept


# --- recognizers -------------------------------------------------------------------------------


def _age_parts(text: str) -> list[_Part]:
    """Age limits: one range, or a lower and an upper bound written apart ("at least 18 and less than 80 years")."""
    if not P.AGE_CONTEXT.search(text):
        return []
    found: list[tuple[int, int, str, list[float]]] = []
    for spec in P.AGE_SPECS:
        for match in re.finditer(spec.pattern, text, re.IGNORECASE):
            if any(s < match.end() and match.start() < e for s, e, _, _ in found):
                continue
            # A number followed by a non-age unit ("> 18 mg") is not an age.
            tail = text[match.end():match.end() + 12].lower()
            if re.match(r"\s*(?:mg|g/|ml|mmol|ng|%|kg|points?|times|x\b|months?|weeks?|days?|cm|mm)", tail):
                continue
            window = text[max(0, match.start() - 25):match.end() + 25].lower()
            if not re.search(r"\b(?:age[ds]?|years?|yrs?|old|adults?)\b", window):
                continue
            values = [_number(g) for g in match.groups() if g is not None]
            if any(v > 120 for v in values):
                continue
            found.append((match.start(), match.end(), spec.comparator, values))
    if not found:
        return []
    lower = [f for f in found if f[2] in (">=", ">")]
    upper = [f for f in found if f[2] in ("<=", "<")]
    ranges = [f for f in found if f[2] == "between"]
    if ranges and not lower and not upper:
        start, end, _, values = ranges[0]
        atom = Atom("age", "age", "Age", comparator="between", value=min(values), value_high=max(values), unit="years")
        return [_Part(start, end, atom, "age")] + [_Part(s, e, None, "age") for s, e, _, _ in ranges[1:]]
    if len(lower) > 1 or len(upper) > 1 or ranges:
        return [_Part(s, e, None, "age-unclear") for s, e, _, _ in found]
    parts = []
    for start, end, comparator, values in lower + upper:
        parts.append(_Part(start, end, Atom("age", "age", "Age", comparator=comparator, value=values[0], unit="years"),
                           "age"))
    return parts


def _sex_parts(text: str) -> list[_Part]:
    if P.PARTNER.search(text):
        return []
    if P.BOTH_SEXES.search(text):
        match = P.BOTH_SEXES.search(text)
        return [_Part(match.start(), match.end(), None, "sex")]
    male, female = P.MALE.search(text), P.FEMALE.search(text)
    if male and not female:
        return [_Part(male.start(), male.end(), Atom("sex", "sex", "Sex", sexes=("M",)), "sex")]
    if female and not male:
        return [_Part(female.start(), female.end(), Atom("sex", "sex", "Sex", sexes=("F",)), "sex")]
    return []


def _reproductive_parts(text: str) -> list[_Part]:
    parts = []
    if P.PARTNER.search(text):
        return []
    for pattern, kind, label in ((P.PREGNANCY, "pregnancy", "Pregnant"), (P.BREASTFEEDING, "breastfeeding", "Breastfeeding"),
                                 (P.CONTRACEPTION, "contraception", "Uses effective contraception")):
        for match in pattern.finditer(text):
            parts.append(_Part(match.start(), match.end(), Atom(kind, kind, label), kind))
            break
    return parts


def _threshold(text: str, start: int, lab: LabTerm) -> tuple[_Part | None, str | None]:
    """The threshold that follows a lab's name (within a few words), as (part, note)."""
    segment = text[start:start + MAX_THRESHOLD_GAP + 40]
    lead = re.match(r"[\s:,]*(?:(?:level|levels|value|values|count|concentration|score|result|results|of|is|was|"
                    r"must be|should be|be|at screening|at baseline|at visit \d+)\b\s*|\([^)]{0,40}\)\s*)*", segment,
                    re.IGNORECASE)
    offset = lead.end() if lead else 0
    match = _comparator_pattern().match(segment, offset)
    if not (match and match.group("value")) and lead:
        # The threshold in brackets after the name: "castrate level of testosterone (< 50 ng/dL)".
        bracket = re.match(r"[\s:,]*(?:(?:level|levels|value|values|count|concentration|of)\b\s*)*\(\s*", segment,
                           re.IGNORECASE)
        if bracket:
            inner = _comparator_pattern().match(segment, bracket.end())
            if inner and re.match(r"\s*\)", segment[inner.end():]):
                match, offset = inner, bracket.end()
    if not match or offset > MAX_THRESHOLD_GAP:
        return None, None
    comp_text = (match.group("comp") or "").lower()
    comparator = _symbol(comp_text, P.COMPARATOR_WORDS) if comp_text not in ("", "between", "from") else None
    trailing = _symbol(match.group("trail"), P.TRAILING_COMPARATORS) if match.group("trail") else None
    value = _number(match.group("value"))
    high = _number(match.group("high")) if match.group("high") else None
    if high is not None and comparator is None:
        comparator = "between"
    comparator = comparator or trailing
    if comparator is None:
        return None, None
    end = match.end()
    written_unit = match.group("unit") or match.group("unit1")
    repeated = re.match(r"\s*\(\s*(" + "|".join(f"(?:{w})" for w, _ in P.UNIT_WORDS) + r")\s*\)", segment[end:],
                        re.IGNORECASE)
    if written_unit and repeated and _unit_spelling(repeated.group(1)) == _unit_spelling(written_unit):
        end += repeated.end()  # "35 kilograms per square meter (kg/m2)": the same unit spelled twice
    upper = _upper_bound(segment, match, comparator)
    if upper is not None and end == match.end():
        high, end = upper
        comparator = "between"
    note = None
    if match.group("uln") or match.group("uln2"):
        unit = ULN
    elif match.group("unit") or match.group("unit1"):
        written = match.group("unit") or match.group("unit1")
        unit = _unit_spelling(written) or written
    else:
        unit = lab.unit
        note = f"no unit given for {lab.name}: read in {lab.unit}"
    if unit not in (ULN, "1") and lab.unit != "1" and not units.convertible(unit, lab.unit, lab.molar_mass) and not (
            lab.hba1c and unit in ("%", "mmol/mol")):
        return None, f"{lab.name}: the unit {unit} cannot be compared with {lab.unit}"
    atom = Atom("ecog" if lab is ECOG else "lab", lab.key, lab.name, codes=lab.loinc, comparator=comparator, value=value,
                value_high=high if comparator == "between" else None, unit=unit)
    return _Part(start, start + end, atom, "lab"), note


def _upper_bound(segment: str, match: re.Match[str], comparator: str) -> tuple[float, int] | None:
    """A second, inclusive upper bound in the same unit after an inclusive lower one ("HbA1c >= 7.0% and <= 10.0%"),
    as (value, end of the match); None when there is none (or it is strict, which a range cannot say)."""
    if comparator != ">=" or match.group("high"):
        return None
    follow = re.match(r"\s*(?:and|,)\s*(?P<comp>" + "|".join(f"(?:{w})" for w, s in P.COMPARATOR_WORDS if s == "<=")
                      + r")\s*(?P<value>\d+(?:[.,]\d+)?)\s*(?P<unit>" + "|".join(f"(?:{w})" for w, _ in P.UNIT_WORDS)
                      + r")?", segment[match.end():], re.IGNORECASE)
    if not follow:
        return None
    first_unit = match.group("unit") or match.group("unit1")
    second_unit = follow.group("unit")
    if second_unit and first_unit and _unit_spelling(second_unit) != _unit_spelling(first_unit):
        return None
    if match.group("uln") or match.group("uln2"):
        return None
    return _number(follow.group("value")), match.end() + follow.end()


def _ecog_range(text: str, term_end: int) -> _Part | None:
    """ECOG written as a list or range of grades: "ECOG 0-1", "ECOG 0, 1 or 2", "ECOG of 0 or 1"."""
    segment = text[term_end:term_end + 40]
    match = re.match(r"[\s:]*(?:score\s*)?(?:of\s*|is\s*)?([0-4])\s*(?:(?:-|to|,|or|and)\s*([0-4]))?"
                     r"(?:\s*(?:,|or|and)\s*([0-4]))?", segment, re.IGNORECASE)
    if not match:
        return None
    grades = [int(g) for g in match.groups() if g is not None]
    if len(grades) == 1:
        return None  # a single number is a threshold ("ECOG <= 1"), read by _threshold
    atom = Atom("ecog", ECOG.key, ECOG.name, codes=ECOG.loinc, comparator="between", value=float(min(grades)),
                value_high=float(max(grades)), unit="1")
    return _Part(term_end, term_end + match.end(), atom, "lab")


def _lab_parts(text: str, reading: _Reading) -> list[_Part]:
    parts: list[_Part] = []
    found = find_terms(text, lexicon().labs)
    pending: list[tuple[int, int, LabTerm]] = []  # names waiting for a shared threshold ("ALT or AST > 3 x ULN")
    for start, end, lab in found:
        part, note = (None, None)
        if lab is ECOG:
            part = _ecog_range(text, end)
        if part is None:
            part, note = _threshold(text, end, lab)
        if note:
            reading.notes.append(note)
        if part is None:
            pending.append((start, end, lab))
            reading.unresolved.append((start, end, lab.name))
            continue
        parts.append(_Part(start, end, None, "lab-name"))
        parts.append(part)
        for p_start, p_end, p_lab in pending:
            between = text[p_end:start]
            if re.fullmatch(r"[\s,/]*(?:or|and|and/or)?[\s,/]*(?:serum\s*)?", between, re.IGNORECASE) and (
                    part.atom.unit in (ULN, p_lab.unit) or units.convertible(part.atom.unit, p_lab.unit, p_lab.molar_mass)):
                shared = replace(part.atom, concept=p_lab.key, label=p_lab.name, codes=p_lab.loinc)
                parts.append(_Part(p_start, p_end, shared, "lab"))
                reading.unresolved = [u for u in reading.unresolved if u[0] != p_start]
        pending = []
    resolved = {p.atom.concept for p in parts if p.atom is not None}
    # A name repeated without its threshold ("Eastern Cooperative Oncology Group (ECOG) performance status 0-1")
    # is understood once the same lab has one.
    repeated = [u for u in reading.unresolved if any(lab.name == u[2] and lab.key in resolved for _, _, lab in found)]
    parts += [_Part(start, end, None, "lab-name") for start, end, _ in repeated]
    reading.unresolved = [u for u in reading.unresolved if u not in repeated]
    return parts


def _window_and_duration(text: str) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Time windows and durations; where the two readings overlap ("for at least 3 months before screening"),
    the duration wins."""
    durations = _find(P.DURATION_PATTERNS, text)
    windows = [w for w in _find(P.WINDOW_PATTERNS, text) if not any(w[0] < d[1] and d[0] < w[1] for d in durations)]
    return windows, durations


def _nearest(spans: list[tuple[int, int, int]], start: int, end: int, text: str = "") -> tuple[int, int, int] | None:
    """The window or duration that qualifies a term at [start, end): the closest one not across a ";"."""
    best, distance = None, None
    for span in spans:
        gap = span[0] - end if span[0] >= end else start - span[1]
        between = text[end:span[0]] if span[0] >= end else text[span[1]:start]
        if ";" in between:
            continue
        gap = max(gap, 0)
        if distance is None or gap < distance:
            best, distance = span, gap
    return best


def _except_start(text: str) -> int | None:
    match = P.EXCEPT.search(text)
    return match.start() if match else None


def _term_parts(text: str, kind: str, found: list[tuple[int, int, object]], windows, durations) -> list[_Part]:
    """Atoms for the conditions or medications ``found`` in ``text``, with their windows, durations, exceptions and
    whether only active ones count."""
    parts: list[_Part] = []
    except_at = _except_start(text)
    # "previous or current treatment with": ever, not only now.
    current = bool(P.CURRENT.search(text)) and not P.EVER.search(text)
    for start, end, term in found:
        abbreviation = P.ABBREVIATION.match(text, end)
        if abbreviation:
            end = abbreviation.end()
        codes = term.icd10cm if kind == "condition" else term.atc
        if except_at is not None and start > except_at:
            parts.append(_Part(start, end, Atom(kind, term.key, term.name, except_codes=codes), "except"))
            continue
        window = _nearest(windows, start, end, text)
        duration = _nearest(durations, start, end, text)
        active = bool(re.search(r"\b(?:active|current(?:ly)?|ongoing|continuing|untreated)\b(?:\s+\w+){0,2}\s*$", text[:start],
                                re.IGNORECASE))
        atom = Atom(kind, term.key, term.name, codes=codes,
                    within_days=window[2] if window else None,
                    at_least_days=duration[2] if duration and kind == "condition" else None,
                    current=(current if kind == "medication" else active) and window is None)
        parts.append(_Part(start, end, atom, kind))
    return parts


# --- the engine ---------------------------------------------------------------------------------


def _unexplained_numbers(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """Numbers outside every recognized part: a structure that ignored one would change the criterion."""
    loose = []
    for match in re.finditer(r"\d+(?:[.,]\d+)?", text):
        if not any(s <= match.start() < e for s, e in spans):
            # Codes and list markers inside names ("type 2 diabetes", "PDE5", "HbA1c", "CYP3A4") are part of terms.
            loose.append(match.group(0))
    return loose


def _residue(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The content words of ``text`` outside ``spans`` that are not filler."""
    kept = []
    last = 0
    for start, end in sorted(spans):
        if start > last:
            kept.append(text[last:start])
        last = max(last, end)
    kept.append(text[last:])
    words = P.WORD.findall(" ".join(kept).lower())
    return [w for w in words if w.strip("'-") not in P.FILLER_WORDS and len(w) > 1]


def _combine(text: str, atoms: list[_Part]) -> tuple[str, bool]:
    """How the atoms combine ("any" or "all") and whether the reading is unambiguous."""
    ordered = sorted(atoms, key=lambda p: p.start)
    connectors = [text[a.end:b.start].lower() for a, b in zip(ordered, ordered[1:])]
    if {p.atom.kind for p in ordered} == {"age"}:
        # "Age < 18 or > 60 years" (outside a range) against "at least 18 and under 80 years".
        return ("any", True) if any(re.search(r"\bor\b", c) for c in connectors) else ("all", True)
    demographic = [p for p in ordered if p.atom.kind in ("age", "sex")]
    others = [p for p in ordered if p.atom.kind not in ("age", "sex")]
    if not others:
        return "all", True
    if demographic:
        # "Men aged 18-75 with ED": every demographic holds together with the rest, which must be one thing.
        return "all", len(others) == 1
    kinds = {p.atom.kind for p in others}
    connectors = [text[a.end:b.start].lower() for a, b in zip(others, others[1:])]
    explicit_or = sum(bool(re.search(r"\bor\b|\bnor\b|/", c)) for c in connectors)
    commas = sum(bool(re.search(r",", c)) and not re.search(r"\bor\b|\band\b", c) for c in connectors)
    ands = sum(bool(re.search(r"\band\b|\bwith\b|\bin (?:patients|subjects|those)\b|\bwho\b|;", c)) and
               not re.search(r"\bor\b", c) for c in connectors)
    if ands and explicit_or:
        return "any", False
    if ands:
        return "all", True
    if len(kinds) > 1 and commas and not explicit_or:
        return "any", False  # "diagnosis of ED, IIEF <= 21": a list of requirements or of alternatives?
    return "any", True


def parse_criterion(item: Item, number: int) -> Criterion:
    """Read one criterion (see the module docstring for the rules)."""
    text = item.text
    reading = _Reading()
    windows, durations = _window_and_duration(text)
    parts: list[_Part] = []
    parts += _age_parts(text)
    parts += _sex_parts(text)
    parts += _reproductive_parts(text)
    for part in _lab_parts(text, reading):
        if part.atom is not None and windows:
            window = _nearest(windows, part.start, part.end, text)
            if window is not None:
                part = _Part(part.start, part.end, replace(part.atom, within_days=window[2]), part.kind)
        parts.append(part)
    lab_spans = [(p.start, p.end) for p in parts if p.kind in ("lab", "lab-name")]
    lab_spans += [(start, end) for start, end, _ in reading.unresolved]
    terms = [part for kind, entries in (("condition", lexicon().conditions), ("medication", lexicon().medications))
             for part in _term_parts(text, kind, find_terms(text, entries), windows, durations)
             if not any(s <= part.start < e for s, e in lab_spans)]
    parts += _longest_first(terms)
    spans = [(p.start, p.end) for p in parts] + [(s, e) for s, e, _ in windows + durations]
    spans += [m.span() for m in P.LEAD_IN.finditer(text)]
    spans += _any_other_spans(text, parts)
    negation = P.NEGATION.match(text.strip())
    if negation:
        spans.append((text.index(negation.group(0)), text.index(negation.group(0)) + len(negation.group(0))))
    except_match = P.EXCEPT.search(text)
    if except_match:
        spans.append((except_match.start(), except_match.end()))
    if _residue(text, spans):
        # Words left over: perhaps a condition the vocabulary lacks, named as ICD-10-CM names it.
        extra = _term_parts(text, "condition", icd10.find_conditions(text, spans), windows, durations)
        parts += extra
        spans += [(p.start, p.end) for p in extra] + _any_other_spans(text, extra)
    outside = _outside_terms(text, parts, spans)
    atoms = [p for p in parts if p.atom is not None and p.kind != "except"]
    excepted = tuple(code for p in parts if p.kind == "except" for code in p.atom.except_codes)
    residue = _residue(text, spans)
    record_atoms = any(a.atom.from_records for a in atoms)
    judgement = P.JUDGEMENT.search(outside)
    if judgement:
        return _review(item, number, atoms, f"needs judgement ({judgement.group(0).lower()!r})")
    kinds = {p.atom.kind for p in atoms}
    if "contraception" in kinds and not kinds & {"condition", "lab", "ecog", "medication"}:
        # "Women of childbearing potential must agree to use highly effective contraception": one requirement,
        # however it is worded (the methods, the duration), confirmed with the patient at screening.
        contraception = next(p.atom for p in atoms if p.atom.kind == "contraception")
        return Criterion(number, item.section, text, STRUCTURED, atoms=(contraception,),
                         note="Applies to women of childbearing potential; confirmed at screening", source="rules")
    if kinds & {"pregnancy", "breastfeeding"} and kinds & {"sex"}:
        atoms = [p for p in atoms if p.atom.kind != "sex"]  # "pregnant women": pregnancy implies the sex
    if P.PARTNER.search(text) or (P.ADMINISTRATIVE.search(outside) and not record_atoms):
        return Criterion(number, item.section, text, ADMINISTRATIVE, note="Confirmed with the patient at screening",
                         source="rules")
    other = P.OTHER_THAN_STUDIED.search(text)
    if other:
        return _review(item, number, atoms, f"relative to the studied disease ({other.group(0).lower()!r})")
    vague = P.VAGUE.search(outside)
    if vague:
        return _review(item, number, atoms, f"open-ended wording ({vague.group(0).lower()!r})")
    if reading.unresolved:
        return _review(item, number, atoms, "no threshold found for " + ", ".join(u[2] for u in reading.unresolved))
    loose = _unexplained_numbers(text, spans)
    if loose:
        return _review(item, number, atoms, f"the number{'s' if len(loose) > 1 else ''} {', '.join(loose)} "
                       "could not be placed")
    if not atoms:
        return _review(item, number, atoms, "no recognized condition, lab, medication or demographic"
                       + (f"; unrecognized: {', '.join(dict.fromkeys(residue))[:120]}" if residue else ""))
    if residue:
        return _review(item, number, atoms, f"partly recognized; not understood: {', '.join(dict.fromkeys(residue))[:120]}")
    combine, clear = _combine(text, atoms)
    if not clear:
        return _review(item, number, atoms, "the parts could be combined more than one way")
    if {"condition", "medication"} <= {p.atom.kind for p in atoms}:
        return _review(item, number, atoms, "a condition and a medication together (which qualifies which?)")
    built = tuple(dict.fromkeys(_with_exceptions(p.atom, excepted) for p in sorted(atoms, key=lambda p: p.start)))
    if any(a.kind == "contraception" for a in built) and len(built) > 1:
        built = tuple(a for a in built if a.kind not in ("sex",)) if item.section == INCLUSION else built
    notes = "; ".join(dict.fromkeys(reading.notes))
    return Criterion(number, item.section, text, STRUCTURED, atoms=built, combine=combine, negated=bool(negation),
                     note=notes, source="rules")


def _longest_first(parts: list[_Part]) -> list[_Part]:
    """Terms of both vocabularies without overlaps, the longest kept ("cancer chemotherapy" is a drug, not a cancer)."""
    kept: list[_Part] = []
    for part in sorted(parts, key=lambda p: (-(p.end - p.start), p.start)):
        if all(part.end <= k.start or part.start >= k.end for k in kept):
            kept.append(part)
    return sorted(kept, key=lambda p: p.start)


def _any_other_spans(text: str, parts: list[_Part]) -> list[tuple[int, int]]:
    """ "or any other" right before a recognized drug class or condition: understood (the class includes what was named)."""
    starts = {p.start for p in parts if p.kind in ("condition", "medication")}
    return [m.span() for m in P.ANY_OTHER.finditer(text) if m.end() in starts]


def _with_exceptions(atom: Atom, excepted: tuple[str, ...]) -> Atom:
    if not excepted or atom.kind not in ("condition", "medication"):
        return atom
    return replace(atom, except_codes=tuple(dict.fromkeys(atom.except_codes + excepted)))


def _outside_terms(text: str, parts: list[_Part], understood: list[tuple[int, int]] = ()) -> str:
    """The text with recognized terms (and understood phrases such as "or any other" before a class) blanked, so
    "unstable angina" does not read as judgement nor "any other PDE5 inhibitor" as open-ended."""
    chars = list(text)
    blanked = [(p.start, p.end) for p in parts if p.kind in ("condition", "medication", "lab", "lab-name", "except")]
    blanked += [(s, e) for s, e in understood if P.ANY_OTHER.fullmatch(text[s:e]) or P.LEAD_IN.fullmatch(text[s:e])]
    for start, end in blanked:
        for i in range(start, min(end, len(chars))):
            chars[i] = " "
    return "".join(chars)


def _review(item: Item, number: int, atoms: list[_Part], why: str) -> Criterion:
    seen = "; ".join(dict.fromkeys(p.atom.describe() for p in sorted(atoms, key=lambda p: p.start)))
    note = f"Needs review: {why}" + (f". Recognized: {seen}" if seen else "")
    return Criterion(number, item.section, item.text, NEEDS_REVIEW, note=note, source="rules")


def parse_criteria(text: str) -> list[Criterion]:
    """Every criterion of an eligibility text, in order (inclusion and exclusion), none dropped."""
    return [parse_criterion(item, number) for number, item in enumerate(split_criteria(text), start=1)]


def demographic_criteria(min_age: float | None, max_age: float | None, sex: str | None) -> list[Criterion]:
    """The registry's structured age and sex fields as criteria (ClinicalTrials.gov minimumAge, maximumAge, sex)."""
    made: list[Criterion] = []
    if min_age is not None and max_age is not None:
        made.append(Criterion(0, INCLUSION, f"Age {min_age:g} to {max_age:g} years (registry age limits)", STRUCTURED,
                              atoms=(Atom("age", "age", "Age", comparator="between", value=float(min_age),
                                          value_high=float(max_age), unit="years"),), source="registry"))
    elif min_age is not None:
        made.append(Criterion(0, INCLUSION, f"Age at least {min_age:g} years (registry age limit)", STRUCTURED,
                              atoms=(Atom("age", "age", "Age", comparator=">=", value=float(min_age), unit="years"),),
                              source="registry"))
    elif max_age is not None:
        made.append(Criterion(0, INCLUSION, f"Age at most {max_age:g} years (registry age limit)", STRUCTURED,
                              atoms=(Atom("age", "age", "Age", comparator="<=", value=float(max_age), unit="years"),),
                              source="registry"))
    if sex in ("MALE", "FEMALE"):
        made.append(Criterion(0, INCLUSION, f"{sex.capitalize()} (registry sex)", STRUCTURED,
                              atoms=(Atom("sex", "sex", "Sex", sexes=(sex[0],)),), source="registry"))
    return made


__all__ = ["parse_criteria", "parse_criterion", "demographic_criteria", "ConditionTerm", "MedicationTerm"]
