"""ClinicalTrials.gov values normalized across the site's formats: phases, statuses, sexes, ages, locations.

The current website and API write ``PHASE1|PHASE2``, ``ACTIVE_NOT_RECRUITING``, ``FEMALE`` and
``18 Years``; the classic website (before 2024) wrote ``Phase 1|Phase 2``, ``Early Phase 1``,
``Not Applicable``, ``Active, not recruiting``, ``Unknown status``, ``Female`` and
``18 Years to 65 Years   (Adult, Older Adult)``. Each function maps every form to the API's
vocabulary and says which values it could not read (None), vectorized over distinct values.
"""

from __future__ import annotations

import re

import pandas as pd

PHASE_ORDER = ("EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA")
STATUSES = frozenset({
    "NOT_YET_RECRUITING", "RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING", "SUSPENDED",
    "TERMINATED", "COMPLETED", "WITHDRAWN", "UNKNOWN", "AVAILABLE", "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE", "APPROVED_FOR_MARKETING", "WITHHELD",
})
_STATUS_ALIASES = {"UNKNOWN_STATUS": "UNKNOWN"}
_SEXES = {"ALL": "ALL", "BOTH": "ALL", "FEMALE": "FEMALE", "MALE": "MALE"}
_AGE_GROUPS = {"CHILD": "CHILD", "ADULT": "ADULT", "OLDER_ADULT": "OLDER_ADULT", "SENIOR": "OLDER_ADULT"}
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*(year|month|week|day|hour|minute)s?", re.IGNORECASE)
_YEARS_PER = {"year": 1.0, "month": 1 / 12, "week": 7 / 365.25, "day": 1 / 365.25, "hour": 1 / 8766,
              "minute": 1 / 525960}


def _by_distinct(values: pd.Series, convert) -> pd.Series:
    """Apply ``convert`` once per distinct non-missing value (registry columns repeat few values)."""
    text = values.astype("string").str.strip()
    lookup = {v: convert(v) for v in text.dropna().unique()}
    return text.map(lookup, na_action="ignore")


def _phase_tokens(value: str) -> str | None:
    tokens = []
    for part in re.split(r"[|,/]", value):
        word = re.sub(r"[^A-Z0-9]", "", part.upper())
        if not word:
            continue
        if word in ("NA", "NOTAPPLICABLE", "NONE"):
            token = "NA"
        elif re.fullmatch(r"EARLYPHASE1|PHASE0", word):
            token = "EARLY_PHASE1"
        elif re.fullmatch(r"PHASE[1-4]", word):
            token = word
        else:
            return None
        tokens.append(token)
    ordered = [t for t in PHASE_ORDER if t in tokens]
    return "|".join(ordered) or None


def phases(values: pd.Series) -> pd.Series:
    """Phases as ``PHASE1|PHASE2`` / ``EARLY_PHASE1`` / ``NA``; None where a value is not a phase."""
    return _by_distinct(values, _phase_tokens).astype("string")


def _status(value: str) -> str | None:
    word = re.sub(r"[^A-Z0-9]+", "_", value.upper()).strip("_")
    word = _STATUS_ALIASES.get(word, word)
    return word if word in STATUSES else None


def statuses(values: pd.Series) -> pd.Series:
    """Overall status in the API's words (``Active, not recruiting`` is ``ACTIVE_NOT_RECRUITING``)."""
    return _by_distinct(values, _status).astype("string")


def sexes(values: pd.Series) -> pd.Series:
    return _by_distinct(values, lambda v: _SEXES.get(v.upper())).astype("string")


def age_in_years(value: str) -> float | None:
    """``18 Years`` -> 18.0, ``6 Months`` -> 0.5; None when the text holds no age."""
    match = _AGE.search(value)
    if not match:
        return None
    return round(float(match.group(1)) * _YEARS_PER[match.group(2).lower()], 4)


def _age_range(value: str) -> tuple[float | None, float | None]:
    """(minimum, maximum) from the classic website's ``18 Years to 65 Years``, ``18 Years and older``, ``up to 17 Years``."""
    text = value.split("(")[0]
    ages = [age_in_years(m.group(0)) for m in _AGE.finditer(text)]
    if not ages:
        return None, None
    lowered = text.lower()
    if " to " in lowered and len(ages) >= 2:
        return ages[0], ages[1]
    if "up to" in lowered or "under" in lowered:
        return None, ages[0]
    return ages[0], None


def age_ranges(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(minimum, maximum) ages in years from classic-website age text (missing where absent)."""
    pairs = _by_distinct(values, _age_range)
    low = pairs.map(lambda p: p[0], na_action="ignore")
    high = pairs.map(lambda p: p[1], na_action="ignore")
    return pd.to_numeric(low, errors="coerce").astype("Float64"), pd.to_numeric(high, errors="coerce").astype("Float64")


def _groups(value: str) -> str | None:
    found = set()
    for word in re.findall(r"[A-Z_]+", value.upper().replace("OLDER ADULT", "OLDER_ADULT")):
        if word in _AGE_GROUPS:
            found.add(_AGE_GROUPS[word])
    return "|".join(g for g in ("CHILD", "ADULT", "OLDER_ADULT") if g in found) or None


def age_groups(values: pd.Series) -> pd.Series:
    """Age groups as ``CHILD|ADULT|OLDER_ADULT`` from ``ADULT, OLDER_ADULT`` or ``(Adult, Older Adult)``."""
    return _by_distinct(values, _groups).astype("string")


def split_locations(text: str | None) -> tuple[int | None, str | None]:
    """(number of sites, countries joined by '|') from a "Locations" cell.

    Locations are separated by "|"; each is "Facility, City, [State,] [Zip,] Country", so the
    country is the part after the last comma. Countries keep their first-seen order.
    """
    sites = location_sites(text)
    if not sites:
        return None, None
    countries: list[str] = []
    for site in sites:
        if site["country"] and site["country"] not in countries:
            countries.append(site["country"])
    return len(sites), "|".join(countries) or None


def location_sites(text: str | None) -> list[dict[str, str | None]]:
    """The sites of a "Locations" cell: the text before the last comma as facility, the rest as country."""
    if text is None or pd.isna(text) or not str(text).strip():
        return []
    sites = []
    for part in (s.strip() for s in str(text).split("|")):
        if not part:
            continue
        facility, _, country = part.rpartition(",")
        sites.append({"facility": facility.strip() or None, "country": country.strip() or None})
    return sites
