"""Country codes: ISO 3166-1 alpha-3 (SDTM DM.COUNTRY) or alpha-2 to the warehouse's alpha-2 rows."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import pycountry

from analytics.generator.reference import COUNTRIES as _PORTFOLIO_COUNTRIES

_REGIONS = {code: region for code, _, region, _ in _PORTFOLIO_COUNTRIES}


@lru_cache(maxsize=512)
def to_alpha2(code: str) -> str | None:
    """The alpha-2 code for an alpha-2 or alpha-3 code (case-insensitive), or None if unknown."""
    text = (code or "").strip().upper()
    if len(text) == 2:
        found = pycountry.countries.get(alpha_2=text)
    elif len(text) == 3:
        found = pycountry.countries.get(alpha_3=text)
    else:
        found = None
    return found.alpha_2 if found else None


def country_rows(alpha2_codes: list[str]) -> pd.DataFrame:
    """Rows for ``main.countries`` (code, name, region where the portfolio knows it)."""
    rows = []
    for code in sorted(set(alpha2_codes)):
        country = pycountry.countries.get(alpha_2=code)
        if country is None:
            continue
        name = getattr(country, "common_name", None) or country.name
        rows.append({"country_code": code, "name": name, "region": _REGIONS.get(code)})
    return pd.DataFrame(rows, columns=["country_code", "name", "region"])
