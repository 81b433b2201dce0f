"""De-identification before text leaves for a model endpoint that is not on this machine.

Subject ids, the names the warehouse knows (investigators, CAPA owners and other staff), e-mail
addresses, phone numbers and dates of birth are replaced by placeholders (``[SUBJECT_1]``,
``[PERSON_2]``, ``[EMAIL_1]``, ``[PHONE_1]``, ``[DOB_1]``). The same value always gets the same
placeholder within one draft, so the model can still refer to "[PERSON_1]" consistently, and
:meth:`Pseudonymizer.restore` puts the real values back into the returned text locally. Nothing
is replaced for a loopback endpoint: the text does not leave the machine.

:func:`leaks` is the independent check used by the tests and the evaluation: it lists every
identifier still present in a text that is about to be sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.drafting.parsing import DOB, EMAIL, PHONE, find_dates

PLACEHOLDER = re.compile(r"\[?\b(SUBJECT|PERSON|EMAIL|PHONE|DOB)_(\d+)\b\]?")
TITLES = ("Dr.", "Dr", "Prof.", "Prof", "Mr.", "Mrs.", "Ms.", "Mx.")
# A generic subject-id shape (study-site-subject, as USUBJID is usually built), for ids the
# warehouse does not list (e.g. typed into an edit).
SUBJECT_SHAPE = re.compile(r"\b(?:[A-Z][A-Z0-9]*\d[A-Z0-9]*|\d{2,})-\d{3,}-\d{2,}\b")


@dataclass(frozen=True)
class Identifiers:
    """What counts as identifying for one document: the warehouse's subject ids and person names."""

    subject_ids: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    def name_variants(self) -> list[tuple[str, str]]:
        """(variant, canonical name): the full name, without its title, and title + surname; longest first."""
        variants: dict[str, str] = {}
        for name in self.names:
            name = name.strip()
            if not name:
                continue
            bare = name
            for title in TITLES:
                if bare.startswith(title + " "):
                    bare = bare[len(title) + 1:].strip()
            variants[name] = name
            variants[bare] = name
            parts = bare.split()
            if len(parts) >= 2:
                for title in ("Dr.", "Dr", "Prof.", "Mr.", "Ms.", "Mrs."):
                    variants[f"{title} {parts[-1]}"] = name
        return sorted(variants.items(), key=lambda kv: -len(kv[0]))

    @functools.cached_property
    def _names(self) -> tuple[re.Pattern | None, dict[str, str]]:
        variants = self.name_variants()
        if not variants:
            return None, {}
        pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(v) for v, _ in variants) + r")(?![\w])")
        return pattern, dict(variants)

    def find_subjects(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, id) of every known subject id in ``text``."""
        if not self.subject_ids:
            return []
        return [(m.start(), m.end(), m.group(0)) for m in ID_TOKEN.finditer(text) if m.group(0) in self.subject_ids]

    def find_names(self, text: str) -> list[tuple[int, int, str, str]]:
        """(start, end, as written, canonical name) of every known person name in ``text``."""
        pattern, canonical = self._names
        if pattern is None:
            return []
        return [(m.start(), m.end(), m.group(0), canonical[m.group(0)]) for m in pattern.finditer(text)]


ID_TOKEN = re.compile(r"(?<![\w-])[A-Za-z0-9](?:[\w-]*[A-Za-z0-9])?(?![\w-])")


def _dob_spans(text: str) -> list[tuple[int, int]]:
    """Dates written right after "born", "DOB" or "date of birth"."""
    spans = []
    dates = find_dates(text)
    for m in DOB.finditer(text):
        for d in dates:
            if 0 <= d.start - m.end() <= 3:
                spans.append((d.start, d.end))
    return spans


def leaks(text: str, identifiers: Identifiers) -> list[str]:
    """Every identifier in ``text``: known subject ids and names, subject-shaped ids, e-mails, phones, DOBs."""
    found: list[str] = [value for _, _, value in identifiers.find_subjects(text)]
    found += [written for _, _, written, _ in identifiers.find_names(text)]
    found += [m.group(0) for m in SUBJECT_SHAPE.finditer(text)]
    found += [m.group(0) for m in EMAIL.finditer(text)]
    found += [m.group(0) for m in PHONE.finditer(text)]
    found += [text[s:e] for s, e in _dob_spans(text)]
    return list(dict.fromkeys(found))


@dataclass
class Pseudonymizer:
    """Consistent placeholders for one draft's identifiers, and their reversal."""

    identifiers: Identifiers
    forward: dict[str, str] = field(default_factory=dict)  # original -> placeholder
    counts: dict[str, int] = field(default_factory=dict)

    def _placeholder(self, kind: str, original: str) -> str:
        if original not in self.forward:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.forward[original] = f"[{kind}_{self.counts[kind]}]"
        return self.forward[original]

    def replace(self, text: str) -> str:
        """``text`` with every identifier replaced by its placeholder."""
        # Dates of birth first (their dates would otherwise be left), then e-mails (they contain names).
        for s, e in sorted(_dob_spans(text), reverse=True):
            text = text[:s] + self._placeholder("DOB", text[s:e]) + text[e:]
        text = EMAIL.sub(lambda m: self._placeholder("EMAIL", m.group(0)), text)
        found = self.identifiers.find_subjects(text)
        placeholders = [self._placeholder("SUBJECT", subject) for _, _, subject in found]  # numbered in text order
        for (start, end, _), placeholder in reversed(list(zip(found, placeholders))):
            text = text[:start] + placeholder + text[end:]
        text = SUBJECT_SHAPE.sub(lambda m: self._placeholder("SUBJECT", m.group(0)), text)
        names = self.identifiers.find_names(text)
        placeholders = [self._placeholder("PERSON", canonical) for _, _, _, canonical in names]
        for (start, end, _, _), placeholder in reversed(list(zip(names, placeholders))):
            text = text[:start] + placeholder + text[end:]
        text = PHONE.sub(lambda m: self._placeholder("PHONE", m.group(0)), text)
        return text

    def replace_all(self, texts: Iterable[str]) -> list[str]:
        return [self.replace(t) for t in texts]

    def restore(self, text: str) -> str:
        """The returned text with the placeholders it kept turned back into the real values."""
        backward = {placeholder.strip("[]"): original for original, placeholder in self.forward.items()}

        def back(match: re.Match) -> str:
            key = f"{match.group(1)}_{match.group(2)}"
            return backward.get(key, match.group(0))

        return PLACEHOLDER.sub(back, text)
