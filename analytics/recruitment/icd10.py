"""Conditions outside the parser's vocabulary, found by their ICD-10-CM names (simple-icd-10-cm).

The vocabulary (:mod:`analytics.recruitment.vocabulary`) holds the terms criteria use most, with the
phrases protocols write for them. A criterion often names a condition it does not hold ("retinitis
pigmentosa", "hypotension"); the official code set names many of them, in its titles and inclusion
terms (names of one variant, "unspecified", "NOS", "other", are left out: a criterion's "psychosis"
means every kind, not F29 "Unspecified psychosis"). This module indexes those names once per process and finds the longest one in a
criterion's text, word for word (case, hyphens and apostrophes aside): never a fuzzy match, so a
condition is read only when the criterion writes its ICD-10-CM name.

Only the disease chapters are indexed (A00-N99 and Q00-Q99): pregnancy (O) has its own atoms,
symptoms (R), injuries (S-T), external causes (V-Y) and encounters (Z) are not conditions a record
of diagnoses answers the way a criterion means them. Names of one short word (under
:data:`MIN_SINGLE_WORD`) and names shared by more than :data:`MAX_CATEGORIES` categories are left
out as too ambiguous. A name found here still has to leave no unexplained word in the criterion for it
to be structured (the parser's rule), so "loss of vision because of ..." stays for review.
"""

from __future__ import annotations

import re
from functools import lru_cache

from analytics.recruitment.patterns import FILLER_WORDS
from analytics.recruitment.vocabulary import ConditionTerm

CHAPTERS = tuple("ABCDEFGHIJKLMNQ")  # first letters of the disease chapters indexed
MIN_SINGLE_WORD = 6  # a one-word name must be at least this long ("gout" is left out, "psychosis" kept)
MAX_CATEGORIES = 2  # a name under more categories than this is ambiguous
MAX_WORDS = 10
KEY_PREFIX = "icd10cm:"
# "Gout NOS", "Klinefelter syndrome, unspecified", "Other ...": the code is one variant, while a criterion's
# "Klinefelter syndrome" means all of them; such names are not indexed (the criterion stays for review).
_VARIANT = re.compile(r"\b(?:unspecified|nos|not otherwise specified|other|elsewhere|specified)\b")
_TOKEN = re.compile(r"[a-z0-9]+")


def normalized(text: str) -> str:
    """Lower case, apostrophes dropped, every other non-alphanumeric run a single space."""
    return " ".join(_TOKEN.findall(text.lower().replace("'", "").replace("’", "")))


def _reduced(codes: set[str]) -> tuple[str, ...]:
    return tuple(sorted(c for c in codes if not any(o != c and c.startswith(o) for o in codes)))


@lru_cache(maxsize=1)
def name_index() -> dict[str, tuple[tuple[str, ...], str]]:
    """Normalized ICD-10-CM name -> (code prefixes, the code's title); built once from the official code set."""
    import simple_icd_10_cm as cm  # loading the code set takes a second or two: only when a criterion needs it

    found: dict[str, set[str]] = {}
    titles: dict[str, str] = {}
    for code in cm.get_all_codes(with_dots=True):
        if not code.startswith(CHAPTERS) or not cm.is_category_or_subcategory(code) or cm.is_extended_subcategory(code):
            continue
        title = cm.get_description(code)
        titles[code] = title
        for name in (title, *cm.get_inclusion_term(code)):
            if _VARIANT.search(name.lower()):
                continue
            key = normalized(name)
            words = key.split()
            if not words or len(words) > MAX_WORDS or (len(words) == 1 and len(key) < MIN_SINGLE_WORD) or all(
                    w in FILLER_WORDS for w in words):
                continue
            found.setdefault(key, set()).add(code)
    index = {}
    for key, codes in found.items():
        reduced = _reduced(codes)
        if len({c[:3] for c in reduced}) > MAX_CATEGORIES:
            continue
        index[key] = (reduced, titles[reduced[0]])
    return index


def find_conditions(text: str, covered: list[tuple[int, int]] = ()) -> list[tuple[int, int, ConditionTerm]]:
    """ICD-10-CM names in ``text`` outside the ``covered`` spans: (start, end, term), longest first, in text order."""
    tokens = [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text.lower().replace("'", "\x00"))]
    # Apostrophes were dropped from the names: glue "alzheimer" + "s" back together.
    words: list[tuple[int, int, str]] = []
    for start, end, word in tokens:
        if words and start == words[-1][1] + 1 and text[start - 1] in "'’" and word == "s":
            words[-1] = (words[-1][0], end, words[-1][2] + "s")
        else:
            words.append((start, end, word))
    index = name_index()
    found: list[tuple[int, int, ConditionTerm]] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
            start, end = words[i][0], words[i + n - 1][1]
            if any(s < end and start < e for s, e in covered):
                continue
            hit = index.get(" ".join(w for _, _, w in words[i:i + n]))
            if hit is not None:
                codes, title = hit
                found.append((start, end, ConditionTerm(KEY_PREFIX + codes[0], title, codes, ())))
                i += n - 1
                break
        i += 1
    return found
