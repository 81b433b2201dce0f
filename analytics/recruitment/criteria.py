"""Eligibility criteria as data: a :class:`Criterion` is the protocol's sentence and its structure.

A criterion holds one or more :class:`Atom` s (a fact about a patient: an age range, a condition on
the problem list, a lab value against a threshold, a current medication, ...), combined with "any"
or "all", optionally negated ("no history of ..."). Its *statement* is true, false or unknown for a
patient; an inclusion criterion is passed when its statement is true, an exclusion criterion when it
is false. The matching engine (:mod:`analytics.recruitment.matching`) evaluates atoms; this module
only describes them, and (de)serializes them as JSON for the warehouse and the records store.

Statuses of a criterion's structure:

* ``structured``: every part is evaluable from records;
* ``administrative``: understood, but answered by the patient or the team at the screening visit
  (consent, willingness, availability), never from records: evaluated as unknown, not counted;
* ``needs_review``: kept as text for a person (or a model proposal, :mod:`analytics.recruitment.proposals`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

INCLUSION, EXCLUSION = "inclusion", "exclusion"
SECTIONS = (INCLUSION, EXCLUSION)
ATOM_KINDS = ("age", "sex", "condition", "lab", "ecog", "medication", "pregnancy", "breastfeeding", "contraception")
RECORD_KINDS = frozenset({"age", "sex", "condition", "lab", "ecog", "medication", "pregnancy"})  # answered from records
STRUCTURED, ADMINISTRATIVE, NEEDS_REVIEW = "structured", "administrative", "needs_review"
STATUSES = (STRUCTURED, ADMINISTRATIVE, NEEDS_REVIEW)
COMPARATORS = (">=", ">", "<=", "<", "between")
COMBINE = ("any", "all")
ULN = "x ULN"  # a threshold relative to the upper limit of normal of the result's reference range
KIND_LABELS = {
    "age": "Age", "sex": "Sex", "condition": "Condition", "lab": "Lab or measure", "ecog": "Performance status (ECOG)",
    "medication": "Medication", "pregnancy": "Pregnancy", "breastfeeding": "Breastfeeding",
    "contraception": "Contraception", "administrative": "Confirmed at screening", "text": "Needs review",
    "mixed": "Several",
}


@dataclass(frozen=True)
class Atom:
    """One fact about a patient that records can answer.

    Attributes:
        kind: one of :data:`ATOM_KINDS`.
        concept: vocabulary key (``type_2_diabetes``, ``egfr``, ``corticosteroids``), or ``""``.
        label: what the criterion calls it, for display.
        codes: ICD-10-CM prefixes (conditions), LOINC codes (labs) or ATC prefixes (medications).
        except_codes: codes that do not count ("other than basal cell carcinoma").
        comparator, value, value_high, unit: a threshold (``between`` uses both values, inclusive).
        within_days: only records dated within this many days before screening count (a condition's
            onset or an active period, a medication's use, a lab's collection).
        at_least_days: a condition must have started at least this long before screening.
        current: only active conditions / ongoing medications count.
        sexes: for ``sex``: the sexes (F, M) the statement is true for.
    """

    kind: str
    concept: str = ""
    label: str = ""
    codes: tuple[str, ...] = ()
    except_codes: tuple[str, ...] = ()
    comparator: str | None = None
    value: float | None = None
    value_high: float | None = None
    unit: str | None = None
    within_days: int | None = None
    at_least_days: int | None = None
    current: bool = False
    sexes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ATOM_KINDS:
            raise ValueError(f"unknown atom kind {self.kind!r}; known: {', '.join(ATOM_KINDS)}")
        if self.comparator is not None and self.comparator not in COMPARATORS:
            raise ValueError(f"unknown comparator {self.comparator!r}")

    @property
    def from_records(self) -> bool:
        return self.kind in RECORD_KINDS

    def describe(self) -> str:
        """A short reading of the atom, e.g. ``eGFR >= 45 mL/min/1.73 m2 (within 90 days)``."""
        name = self.label or self.concept or self.kind
        if self.kind == "sex":
            text = "sex " + " or ".join({"F": "female", "M": "male"}.get(s, s) for s in self.sexes)
        elif self.comparator == "between":
            text = f"{name} {_num(self.value)}-{_num(self.value_high)}{_unit(self.unit)}"
        elif self.comparator:
            text = f"{name} {self.comparator} {_num(self.value)}{_unit(self.unit)}"
        else:
            text = name
        if self.codes and self.kind in ("condition", "medication"):
            text += f" [{', '.join(self.codes)}]"
        if self.except_codes:
            text += f" except [{', '.join(self.except_codes)}]"
        qualifiers = []
        if self.current:
            qualifiers.append("current")
        if self.within_days is not None:
            qualifiers.append(f"within {self.within_days} days")
        if self.at_least_days is not None:
            qualifiers.append(f"for at least {self.at_least_days} days")
        return text + (f" ({', '.join(qualifiers)})" if qualifiers else "")


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}"


def _unit(unit: str | None) -> str:
    if not unit or unit == "1":
        return ""
    return (" " if unit != "%" else "") + unit


@dataclass(frozen=True)
class Criterion:
    """One eligibility criterion: the protocol's text and, where it could be read, its structure.

    ``key`` identifies the criterion across parses (a hash of its section and text), so a person's
    acceptance of a proposal, and a coordinator's decisions, refer to the same criterion later.
    """

    number: int  # position in the protocol (1-based, over both sections)
    section: str
    text: str
    status: str
    atoms: tuple[Atom, ...] = ()
    combine: str = "any"
    negated: bool = False
    note: str = ""  # why it needs review, or what is confirmed at screening
    source: str = "rules"  # rules | model | person | generator
    key: str = field(default="")

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"section must be inclusion or exclusion, not {self.section!r}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        if self.combine not in COMBINE:
            raise ValueError(f"combine must be any or all, not {self.combine!r}")
        if not self.key:
            object.__setattr__(self, "key", criterion_key(self.section, self.text))

    @property
    def kind(self) -> str:
        """The criterion's kind for reports: its atoms' kind, ``mixed``, ``administrative`` or ``text``."""
        if self.status == NEEDS_REVIEW:
            return "text"
        if self.status == ADMINISTRATIVE:
            return "administrative"
        kinds = {a.kind for a in self.atoms}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def from_records(self) -> bool:
        """Whether records can decide it (structured, with at least one atom answered from records)."""
        return self.status == STRUCTURED and any(a.from_records for a in self.atoms)

    def describe(self) -> str:
        """The structure in words (``NOT (any of: ...)``), or why there is none."""
        if self.status != STRUCTURED:
            return self.note or ("Needs review" if self.status == NEEDS_REVIEW else "Confirmed at screening")
        joined = f" {'or' if self.combine == 'any' else 'and'} ".join(a.describe() for a in self.atoms)
        return ("not " if self.negated else "") + joined

    def with_structure(self, atoms: tuple[Atom, ...], combine: str, negated: bool, source: str) -> "Criterion":
        """The same criterion (same key) with an accepted structure."""
        return replace(self, atoms=atoms, combine=combine, negated=negated, status=STRUCTURED, source=source,
                       note="")

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["atoms"] = [atom_to_dict(a) for a in self.atoms]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "Criterion":
        atoms = tuple(atom_from_dict(a) for a in data.get("atoms") or ())
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "atoms"}
        return cls(atoms=atoms, **fields)


def atom_to_dict(atom: Atom) -> dict[str, object]:
    # Only empty fields are left out: a threshold of 0 (ECOG 0-1) is a value like any other.
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(atom).items()
            if not (v is None or v is False or (isinstance(v, (tuple, str)) and len(v) == 0))}


def atom_from_dict(data: dict[str, object]) -> Atom:
    """An atom from its JSON form (lists become tuples; unknown fields are refused)."""
    unknown = set(data) - set(Atom.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown atom fields: {sorted(unknown)}")
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
    for name in ("value", "value_high"):
        if values.get(name) is not None:
            values[name] = float(values[name])
    for name in ("within_days", "at_least_days"):
        if values.get(name) is not None:
            values[name] = int(values[name])
    return Atom(**values)


def criterion_key(section: str, text: str) -> str:
    """A stable id for a criterion: its section and whitespace-normalized text, hashed."""
    normalized = " ".join(text.split()).lower()
    return hashlib.sha256(f"{section}|{normalized}".encode()).hexdigest()[:16]


def criteria_json(criteria: list[Criterion] | tuple[Criterion, ...]) -> str:
    """Criteria as canonical JSON text (what the warehouse stores)."""
    return json.dumps([c.to_dict() for c in criteria], sort_keys=True)


def criteria_from_json(text: str) -> list[Criterion]:
    return [Criterion.from_dict(d) for d in json.loads(text)]


def criteria_version(criteria: list[Criterion] | tuple[Criterion, ...]) -> str:
    """A short hash of the criteria's structure: decisions record which version they were made on."""
    return hashlib.sha256(criteria_json(criteria).encode()).hexdigest()[:12]
