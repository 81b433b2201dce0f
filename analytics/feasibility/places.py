"""Registry places: country names to ISO 3166-1 alpha-2 codes, and facility names made comparable.

ClinicalTrials.gov writes country names ("United States", "Korea, Republic of", "Turkey (Türkiye)",
"Russia"); the workbench keys countries by alpha-2 code, as the global filters do. Names pycountry
knows map directly; :data:`ALIASES` holds the registry spellings it does not.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pycountry

ALIASES = {"russia": "RU", "turkey": "TR", "turkey (turkiye)": "TR", "south korea": "KR", "north korea": "KP",
           "iran": "IR", "syria": "SY", "laos": "LA", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
           "moldova": "MD", "macedonia": "MK", "north macedonia": "MK", "kosovo": "XK", "the netherlands": "NL",
           "czech republic": "CZ", "reunion": "RE", "cote d'ivoire": "CI", "ivory coast": "CI",
           "congo, the democratic republic of the": "CD", "korea, republic of": "KR", "taiwan": "TW",
           "hong kong": "HK", "vietnam": "VN", "palestine": "PS", "brunei": "BN", "cape verde": "CV"}


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().strip().lower()


@lru_cache(maxsize=2048)
def country_code(name: str | None) -> str | None:
    """The alpha-2 code of a registry country name (None when unknown)."""
    if not isinstance(name, str) or not name.strip():
        return None
    plain = _plain(name)
    if plain in ALIASES:
        return ALIASES[plain]
    try:
        return pycountry.countries.lookup(name.strip()).alpha_2
    except LookupError:
        try:
            return pycountry.countries.lookup(plain).alpha_2
        except LookupError:
            return None


@lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """A readable name for an alpha-2 code."""
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    return getattr(found, "common_name", None) or found.name


def facility_key(name: str | None) -> str:
    """A facility name lower-cased, without accents or punctuation, for matching registry locations."""
    if not isinstance(name, str):
        return ""
    return re.sub(r"[^a-z0-9]+", " ", _plain(name)).strip()
