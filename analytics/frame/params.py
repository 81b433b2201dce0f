"""URL parameters: one declaration per parameter, one validation, values (never labels) in the URL.

Global filters (sponsor, study, country, site, dates) and each page's own parameters (the RBM
method, the drill-down site, ...) are :class:`Param` declarations. The frame validates what the URL
carries against each parameter's allowed values *for this user* (unknown and out-of-scope values get
the same message, so a link cannot reveal another sponsor's study), and widgets drawn through
:mod:`analytics.frame.widgets` write the chosen values back to the URL. Any view's URL therefore
reproduces it exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from analytics.frame.session import PageContext

Kind = Literal["one", "many", "date", "text"]
Choices = Callable[["PageContext"], Mapping[str, str]]  # allowed value -> display label
MAX_VALUE_LENGTH = 200  # longer values are refused before any lookup
MAX_VALUES = 500  # more repeated values than this are refused


@dataclass(frozen=True)
class Param:
    """One URL parameter.

    Attributes:
        name: the URL key (and, prefixed, the widget key).
        label: what the widget and messages call it.
        kind: ``one`` value, ``many`` values (repeated keys), a ``date`` (ISO 8601) or free ``text`` (a
            search term: any printable text up to MAX_VALUE_LENGTH characters, never an identifier).
        choices: allowed values with their display labels, for the user and the current filters;
            None for dates and text.
        default: the value when the URL carries none (``one`` only).
        default_first: without a default, take the first allowed value rather than none.
    """

    name: str
    label: str
    kind: Kind = "one"
    choices: Choices | None = None
    default: str | None = None
    default_first: bool = False

    @property
    def widget_key(self) -> str:
        return f"url_{self.name}"


def _clean(raw: list[str]) -> list[str]:
    return [value for value in raw if value != ""]


def _shown(value: str) -> str:
    """A value quoted for a message: control characters escaped, long values cut."""
    text = value.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


def validate(param: Param, raw: list[str], allowed: Mapping[str, str] | None) -> tuple[object, list[str]]:
    """The parameter's value from the URL's raw strings, and a message per value refused."""
    problems: list[str] = []
    values = _clean(raw)
    if len(values) > MAX_VALUES:
        return ([] if param.kind == "many" else param.default), [
            f"{param.label}: {len(values)} values is more than a link may carry; ignored."]
    if param.kind == "date":
        if not values:
            return None, problems
        if len(values) > 1:
            problems.append(f"{param.label}: only one date can be chosen; the first was kept.")
        try:
            return dt.date.fromisoformat(values[0]), problems
        except ValueError:
            problems.append(f"The '{param.name}' date '{_shown(values[0])}' is not a date like 2026-01-31; it was ignored.")
            return None, problems
    if param.kind == "text":
        if not values:
            return None, problems
        text = values[0].strip()
        if len(text) > MAX_VALUE_LENGTH or not text.isprintable():
            problems.append(f"{param.label}: the text '{_shown(text)}' is too long or not printable; it was ignored.")
            return None, problems
        return (text or None), problems
    allowed = allowed or {}
    kept: list[str] = []
    for value in values:
        if len(value) <= MAX_VALUE_LENGTH and value in allowed:
            kept.append(value)
        else:
            problems.append(f"{param.label} '{_shown(value)}' is not available to you; "
                            f"it was removed{' from the filters' if param.kind == 'many' else ''}.")
    kept = list(dict.fromkeys(kept))
    if param.kind == "many":
        return tuple(kept), problems
    if len(kept) > 1:
        problems.append(f"{param.label}: only one value can be chosen; the first was kept.")
    if kept:
        return kept[0], problems
    if param.default in allowed:
        return param.default, problems
    return (next(iter(allowed), None) if param.default_first else None), problems


def to_url(param: Param, value: object) -> list[str]:
    """The URL strings of a value (empty: the parameter is left out)."""
    if value is None or value == () or value == []:
        return []
    if param.kind == "date":
        return [value.isoformat()]  # type: ignore[union-attr]
    if param.kind == "many":
        return [str(v) for v in value]  # type: ignore[union-attr]
    if param.kind == "text":
        return [str(value).strip()] if str(value).strip() else []
    if param.default is not None and value == param.default:
        return []  # the default needs no parameter
    return [str(value)]
