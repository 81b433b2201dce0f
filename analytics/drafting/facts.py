"""Facts: the numbered values a document may state, each with its unit and where it came from.

A document type's facts query returns :class:`Fact` objects; :func:`number_facts` numbers them F1,
F2, ... in a fixed order, so the same data give the same ids. Derived figures (percentages, days
overdue, change since the period's start) are computed here as facts of their own, so neither a
template nor a model ever does arithmetic. A :class:`FactSet` is what a draft is checked against
and what the audit trail stores (its canonical JSON and SHA-256).

Units name the kind of quantity, which is what the faithfulness checker compares:

* a count: the thing counted, plural (``"open queries"``); its last word is the noun a sentence
  must use (``nouns`` adds synonyms);
* ``"%"``: a percentage, stored in percent (12.5 means 12.5%);
* a duration: ``"days"``, ``"weeks"``, ``"months"`` or ``"years"``;
* a rate: ``"per ..."`` (``"per 100 subject-visits"``);
* ``"ratio"`` (observed over expected and similar multiples), ``"probability %"`` is a ``"%"``;
* ``"date"`` (ISO date value), ``"id"`` (an identifier), ``"text"`` (names, categories, free text).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from analytics.core.audit_chain import canonical_json, sha256_hex

DURATION_UNITS = ("days", "weeks", "months", "years")
NON_NUMERIC_UNITS = ("date", "id", "text")


@dataclass(frozen=True)
class Fact:
    """One value a document may state.

    Attributes:
        key: what the value is, stable across data (``open_queries``); with ``group`` it is unique.
        label: the value's name as a reader sees it ("Open queries").
        value: a number (int or float), an ISO date string, or text; None when unknown.
        unit: see the module docstring.
        source: the table (or derived result) it came from, e.g. ``queries``.
        source_key: which rows: the key values that select them, e.g. ``study_site_id=ST001-1001``.
        group: a repeating group the fact belongs to (``soc:Infections``), empty for none.
        nouns: other words a sentence may use for a count's noun ("AEs" for "adverse events").
        decimals: digits shown when the value is rendered.
        fact_id: F1, F2, ... (set by :func:`number_facts`).
    """

    key: str
    label: str
    value: object
    unit: str
    source: str
    source_key: str = ""
    group: str = ""
    nouns: tuple[str, ...] = ()
    decimals: int = 0
    fact_id: str = ""

    @property
    def is_number(self) -> bool:
        return self.unit not in NON_NUMERIC_UNITS and isinstance(self.value, (int, float)) \
            and not isinstance(self.value, bool)

    @property
    def kind(self) -> str:
        """count, percent, duration, rate, ratio, date, id or text."""
        if self.unit == "%":
            return "percent"
        if self.unit in DURATION_UNITS:
            return "duration"
        if self.unit.startswith("per "):
            return "rate"
        if self.unit in ("ratio",) + NON_NUMERIC_UNITS:
            return self.unit
        return "count"

    def shown(self) -> str:
        """The value as a template writes it (with its unit word where that is part of it)."""
        v = self.value
        if v is None:
            return "not available"
        if self.kind == "percent":
            return f"{float(v):,.{self.decimals}f}%"
        if self.kind == "date":
            return dt.date.fromisoformat(str(v)).strftime("%d %B %Y").lstrip("0")
        if self.is_number:
            number = f"{float(v):,.{self.decimals}f}"
            if self.kind == "duration":
                unit = self.unit[:-1] if number == "1" else self.unit
                return f"{number} {unit}"
            if self.kind == "rate":
                return f"{number} {self.unit}"
            return number
        return str(v)

    def as_row(self) -> dict[str, object]:
        return {"id": self.fact_id, "key": self.key, "group": self.group, "label": self.label, "value": self.value,
                "unit": self.unit, "source": self.source, "source_key": self.source_key, "nouns": list(self.nouns),
                "decimals": self.decimals}


@dataclass(frozen=True)
class FactSet:
    """The numbered facts of one document, in order."""

    facts: tuple[Fact, ...]
    notes: tuple[str, ...] = field(default=())  # why some facts are absent (e.g. blinded role)

    def __iter__(self):
        return iter(self.facts)

    def __len__(self) -> int:
        return len(self.facts)

    def by_id(self) -> dict[str, Fact]:
        return {f.fact_id: f for f in self.facts}

    def get(self, key: str, group: str = "") -> Fact | None:
        for f in self.facts:
            if f.key == key and f.group == group:
                return f
        return None

    def groups(self, prefix: str) -> list[str]:
        """Groups starting with ``prefix`` (``soc:``), in fact order."""
        return list(dict.fromkeys(f.group for f in self.facts if f.group.startswith(prefix)))

    def snapshot(self) -> list[dict[str, object]]:
        """The facts as JSON-ready rows (what the audit trail stores)."""
        return [f.as_row() for f in self.facts]

    def sha256(self) -> str:
        return sha256_hex(canonical_json(self.snapshot()))

    def table(self) -> pd.DataFrame:
        """The fact table a user reviews before drafting."""
        return pd.DataFrame({
            "Fact": [f.fact_id for f in self.facts],
            "What": [f"{f.label}" + (f" ({f.group.split(':', 1)[1]})" if f.group else "") for f in self.facts],
            "Value": [f.shown() for f in self.facts],
            "Unit": [f.unit for f in self.facts],
            "Source": [f.source + (f" [{f.source_key}]" if f.source_key else "") for f in self.facts],
        })

    @classmethod
    def from_snapshot(cls, rows: Sequence[Mapping[str, object]]) -> "FactSet":
        """Rebuild a fact set from its stored snapshot (to re-check an edited draft)."""
        facts = []
        for r in rows:
            facts.append(Fact(key=str(r["key"]), label=str(r["label"]), value=r["value"], unit=str(r["unit"]),
                              source=str(r["source"]), source_key=str(r.get("source_key") or ""),
                              group=str(r.get("group") or ""), fact_id=str(r["id"]),
                              nouns=tuple(r.get("nouns") or ()), decimals=int(r.get("decimals") or 0)))
        return cls(tuple(facts))


def clean_value(value: object) -> object:
    """A plain Python value: NaN/NaT/NA become None, numpy numbers plain numbers, dates ISO text."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def fact(key: str, label: str, value: object, unit: str, source: str, source_key: str = "", *,
         group: str = "", nouns: tuple[str, ...] = (), decimals: int | None = None) -> Fact:
    """A fact with its value cleaned; floats are rounded to ``decimals`` (default 1 for % and ratios)."""
    value = clean_value(value)
    if decimals is None:
        decimals = 1 if unit == "%" else (2 if unit == "ratio" else 0)
    if isinstance(value, float):
        value = round(value, decimals)
        if decimals == 0:
            value = int(value)
    return Fact(key, label, value, unit, source, source_key, group, nouns, decimals)


def percent(key: str, label: str, numerator: object, denominator: object, source: str, source_key: str = "",
            *, group: str = "", decimals: int = 1) -> Fact:
    """A derived percentage fact: numerator / denominator x 100, None when the denominator is 0."""
    num, den = clean_value(numerator), clean_value(denominator)
    value = None if not den or num is None else 100.0 * float(num) / float(den)
    return fact(key, label, value, "%", f"derived from {source}", source_key, group=group, decimals=decimals)


def days_between(key: str, label: str, start: object, end: object, source: str, source_key: str = "",
                 *, group: str = "") -> Fact:
    """A derived duration fact: whole days from ``start`` to ``end`` (None when either is unknown)."""
    a, b = clean_value(start), clean_value(end)
    value = None if a is None or b is None else (dt.date.fromisoformat(str(b)) - dt.date.fromisoformat(str(a))).days
    return fact(key, label, value, "days", f"derived from {source}", source_key, group=group)


def change(key: str, label: str, now: object, before: object, unit: str, source: str, source_key: str = "",
           *, group: str = "") -> Fact:
    """A derived change fact (now minus before), in the unit of both."""
    a, b = clean_value(now), clean_value(before)
    value = None if a is None or b is None else float(a) - float(b)
    return fact(key, label, value, unit, f"derived from {source}", source_key, group=group)


def number_facts(facts: Iterable[Fact], notes: Iterable[str] = ()) -> FactSet:
    """Number the facts F1, F2, ... in the order given, dropping duplicates of (key, group).

    Facts whose value is unknown are kept (a reader sees "not available"); templates skip them.
    """
    seen: set[tuple[str, str]] = set()
    numbered: list[Fact] = []
    for f in facts:
        if (f.key, f.group) in seen:
            continue
        seen.add((f.key, f.group))
        if isinstance(f.value, float) and not math.isfinite(f.value):
            f = replace(f, value=None)
        numbered.append(replace(f, fact_id=f"F{len(numbered) + 1}"))
    return FactSet(tuple(numbered), tuple(notes))
