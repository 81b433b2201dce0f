"""Units of lab results and criteria: one pint registry, the spellings labs and protocols use, conversions.

Lab systems and protocols write the same unit many ways (``mg/dl``, ``umol/L``, ``µmol/l``,
``x10^9/L``, ``10³/µL``, ``mL/min/1.73m²``, ``mEq/L``). :func:`parse_unit` turns a spelling into a
:class:`ParsedUnit`: a numeric factor (counts like ``10^9/L`` carry their power of ten, which pint
refuses inside a unit expression) and a pint unit. :func:`conversion_factor` gives the factor that
takes values from one unit to another, using the analyte's molar mass for mass <-> substance
concentrations (pint's ``chemistry`` context, e.g. creatinine mg/dL <-> µmol/L). HbA1c's two scales
(NGSP % and IFCC mmol/mol) are related by a line, not a factor, and have their own converter
(:func:`convert_values`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pint

# pint knows U (enzyme unit) but not the clinical spellings below. mEq equals mmol for the
# monovalent ions (sodium, potassium, chloride, bicarbonate) that criteria use it for.
_DEFINITIONS = (
    "IU = enzyme_unit",
    "mEq = millimole",
    "cell = [] ",
    # eGFR is normalized to a body surface of 1.73 m2; pint refuses a number inside a unit expression.
    "mL_per_min_173 = milliliter / minute / (1.73 * meter ** 2)",
)
HBA1C_UNITS = ("%", "mmol/mol")  # NGSP and IFCC scales
# IFCC (mmol/mol) = (NGSP % - 2.15) * 10.929 (the IFCC-NGSP master equation).
_HBA1C_SLOPE, _HBA1C_OFFSET = 10.929, 2.15


class UnitError(ValueError):
    """A unit that cannot be read, or two units that cannot be converted into each other."""


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The one unit registry (built once per process)."""
    ureg = pint.UnitRegistry()
    for line in _DEFINITIONS:
        ureg.define(line)
    return ureg


@dataclass(frozen=True)
class ParsedUnit:
    """A unit as written, read as ``factor`` x ``unit`` (e.g. ``10^9/L`` = 1e9 x ``1/L``)."""

    text: str
    factor: float
    unit: str  # a pint unit expression

    @property
    def is_percent(self) -> bool:
        return self.unit == "percent"


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_POWER = re.compile(r"^(?:x\s*)?10\s*(?:\^|\*\*|e)?\s*([0-9]{1,2})\s*(?:/|per\s*)(.*)$")
_WORD_UNITS = {
    "%": "percent", "percent": "percent", "years": "year", "year": "year", "yrs": "year", "y": "year",
    "months": "month", "month": "month", "weeks": "week", "week": "week", "days": "day", "day": "day",
    "mmhg": "mmHg", "mm hg": "mmHg", "bpm": "1/minute", "beats/min": "1/minute", "msec": "millisecond",
    "ms": "millisecond", "kg/m2": "kg/m**2", "kg/m^2": "kg/m**2", "ml/min/1.73m2": "mL_per_min_173",
    "ml/min/1.73 m2": "mL_per_min_173", "ml/min/1.73m^2": "mL_per_min_173",
    "ml/min per 1.73m2": "mL_per_min_173", "ml/min per 1.73 m2": "mL_per_min_173",
    "ml/min/1.73 m^2": "mL_per_min_173", "mmol/mol": "mmol/mol", "ml/s": "mL/s", "ml/sec": "mL/s",
    "points": "dimensionless", "": "dimensionless",
}


def _clean(text: str) -> str:
    cleaned = text.strip().translate(_SUPERSCRIPTS).replace("µ", "u").replace("μ", "u").replace("×", "x")
    cleaned = re.sub(r"\s+", " ", cleaned)
    return cleaned.rstrip(".").strip()


@lru_cache(maxsize=512)
def parse_unit(text: str) -> ParsedUnit:
    """Read a unit as labs and protocols write it.

    Raises:
        UnitError: pint cannot read it.
    """
    cleaned = _clean(text or "")
    lowered = cleaned.lower()
    if lowered in _WORD_UNITS:
        return ParsedUnit(text, 1.0, _WORD_UNITS[lowered])
    power = _POWER.match(lowered)
    if power:
        rest = power.group(2).strip() or "L"
        rest = {"l": "L", "ul": "uL", "mm3": "mm**3", "mm^3": "mm**3", "cumm": "mm**3"}.get(rest.lower(), rest)
        parsed = parse_unit(rest)
        return ParsedUnit(text, 10.0 ** int(power.group(1)) / parsed.factor, f"1/({parsed.unit})")
    if lowered.startswith(("/", "cells/")):
        rest = lowered.split("/", 1)[1]
        rest = {"mm3": "mm**3", "mm^3": "mm**3", "ul": "uL", "l": "L", "cumm": "mm**3"}.get(rest, rest)
        return ParsedUnit(text, 1.0, f"1/({rest})")
    expression = re.sub(r"(?<=[a-zA-Z])(\d)$", r"**\1", cleaned)  # m2 -> m**2
    expression = re.sub(r"\bl\b", "L", re.sub(r"(?<=/)l\b|^l\b|(?<=[mudn])l\b", "L", expression))
    try:
        registry().parse_units(expression)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError, AttributeError,
            TypeError) as exc:
        raise UnitError(f"unit {text!r} is not a unit this workbench can read ({exc})") from None
    return ParsedUnit(text, 1.0, expression)


def _quantity(parsed: ParsedUnit) -> pint.Quantity:
    return registry().Quantity(parsed.factor, parsed.unit)


@lru_cache(maxsize=2048)
def conversion_factor(source: str, target: str, molar_mass: float | None = None) -> float:
    """The factor that takes a value in ``source`` to ``target`` (molar mass in g/mol for mass <-> mol).

    Raises:
        UnitError: a unit cannot be read, or the two are not convertible (e.g. % and mg/dL).
    """
    src, dst = parse_unit(source), parse_unit(target)
    ureg = registry()
    try:
        if molar_mass:
            with ureg.context("chemistry", mw=molar_mass * ureg("g/mol")):
                value = _quantity(src).to(ureg.Quantity(dst.factor, dst.unit).units).magnitude
        else:
            value = _quantity(src).to(ureg.Quantity(dst.factor, dst.unit).units).magnitude
    except (pint.errors.DimensionalityError, pint.errors.UndefinedUnitError, ZeroDivisionError, ValueError,
            TypeError) as exc:  # pint's chemistry context divides by zero for units it cannot relate
        raise UnitError(f"{source!r} cannot be converted to {target!r}") from exc
    return float(value / dst.factor)


def convertible(source: str, target: str, molar_mass: float | None = None) -> bool:
    """True when values in ``source`` can be expressed in ``target``."""
    try:
        conversion_factor(source, target, molar_mass)
    except UnitError:
        return False
    return True


def convert_values(values: np.ndarray, source: str, target: str, molar_mass: float | None = None,
                   hba1c: bool = False) -> np.ndarray:
    """``values`` in ``source`` expressed in ``target`` (NaN where no conversion exists).

    ``hba1c`` switches on the NGSP % <-> IFCC mmol/mol line for glycated haemoglobin.
    """
    values = np.asarray(values, dtype="float64")
    if hba1c:
        src, dst = _hba1c_scale(source), _hba1c_scale(target)
        if src and dst:
            if src == dst:
                return values
            if src == "%":
                return (values - _HBA1C_OFFSET) * _HBA1C_SLOPE
            return values / _HBA1C_SLOPE + _HBA1C_OFFSET
    try:
        return values * conversion_factor(source, target, molar_mass)
    except UnitError:
        return np.full(values.shape, np.nan)


def _hba1c_scale(unit: str) -> str | None:
    cleaned = _clean(unit).lower()
    if cleaned in ("%", "percent", "% of total hb", "%hb"):
        return "%"
    if cleaned == "mmol/mol":
        return "mmol/mol"
    return None


def canonical_spelling(text: str) -> str:
    """A tidy display spelling of a unit as written (superscripts and micro signs unified)."""
    cleaned = _clean(text)
    return cleaned.replace("ul", "µL").replace("uL", "µL").replace("umol", "µmol") if cleaned else cleaned
