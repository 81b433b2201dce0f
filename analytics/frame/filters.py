"""The global filters: their options for a user, the one cascade, URL validation and the panel.

The cascade (sponsor narrows studies, studies narrow countries, countries narrow sites) is
written once, in :func:`cascade`, and used both to validate a URL and to fill the widgets, so the
options a user sees and the values a link may carry can never disagree. Options only ever contain
what the user's scope allows; ids stay in the URL, names are shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from analytics.core.caching import cached
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.frame.params import Param, validate

MAX_SITE_OPTIONS = 1500  # beyond this a study must be chosen before sites are listed (keeps the widget light)

FILTER_PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("sponsor", "Sponsor", kind="many"),
        Param("study", "Study", kind="many"),
        Param("country", "Country", kind="many"),
        Param("site", "Site", kind="many"),
        Param("from", "From", kind="date"),
        Param("to", "To", kind="date"),
    )
}


@cached
def filter_options(wh: Warehouse, scope: AccessScope) -> pd.DataFrame:
    """Every study-site the user may see, with its study, sponsor and country (for the filters)."""
    return wh.query(
        scope,
        """
        SELECT st.sponsor_id, sp.name AS sponsor_name, st.study_id, st.protocol_id, st.title AS study_title,
               ss.study_site_id, ss.site_number, si.name AS site_name, si.country_code, c.name AS country_name
        FROM scoped_studies st
        JOIN sponsors sp USING (sponsor_id)
        LEFT JOIN study_sites ss USING (study_id)
        LEFT JOIN sites si USING (site_id)
        LEFT JOIN countries c ON c.country_code = si.country_code
        ORDER BY st.study_id, ss.site_number
        """,
    )


def country_labels(wh: Warehouse, scope: AccessScope) -> dict[str, str]:
    """Country code -> name of every country with a site the user may see."""
    options = filter_options(wh, scope).dropna(subset=["country_code"])
    return dict(sorted(zip(options["country_code"], options["country_name"].fillna(options["country_code"])),
                       key=lambda item: item[1]))


def _labels(frame: pd.DataFrame, key: str, label: str) -> dict[str, str]:
    rows = frame.dropna(subset=[key]).drop_duplicates(key)
    return dict(zip(rows[key], rows[label].fillna(rows[key])))


def cascade(options: pd.DataFrame, chosen: Mapping[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
    """The allowed values (value -> label) of each list filter, given the values chosen before it."""
    pool = options
    allowed: dict[str, dict[str, str]] = {}
    sponsors = pool.drop_duplicates("sponsor_id")
    allowed["sponsor"] = dict(zip(sponsors["sponsor_id"], sponsors["sponsor_name"]))
    if chosen.get("sponsor"):
        pool = pool[pool["sponsor_id"].isin(chosen["sponsor"])]
    studies = pool.drop_duplicates("study_id")
    protocol = studies["protocol_id"].fillna(studies["study_id"]).astype(str)
    study_labels = (protocol + " (" + studies["study_id"].astype(str) + ")").where(protocol != studies["study_id"],
                                                                                   studies["study_id"])
    allowed["study"] = dict(zip(studies["study_id"], study_labels))
    if chosen.get("study"):
        pool = pool[pool["study_id"].isin(chosen["study"])]
    allowed["country"] = dict(sorted(_labels(pool, "country_code", "country_name").items(), key=lambda i: i[1]))
    if chosen.get("country"):
        pool = pool[pool["country_code"].isin(chosen["country"])]
    sites = pool.dropna(subset=["study_site_id"])
    labels = (sites["site_name"].astype(str) + " (" + sites["study_id"].astype(str) + " site "
              + sites["site_number"].astype(str) + ")")
    allowed["site"] = dict(zip(sites["study_site_id"], labels))
    return allowed


@cached
def allowed_values(wh: Warehouse, scope: AccessScope, sponsors: tuple[str, ...], studies: tuple[str, ...],
                   countries: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """:func:`cascade` over the user's options for these choices (cached: a portfolio has thousands of sites)."""
    return cascade(filter_options(wh, scope), {"sponsor": sponsors, "study": studies, "country": countries})


def validate_filters(raw: Mapping[str, list[str]], wh: Warehouse, scope: AccessScope,
                     declared: tuple[str, ...]) -> tuple[PortfolioFilter, dict[str, dict[str, str]], list[str]]:
    """The filters a URL asks for, as far as the user may apply them; allowed values; messages.

    Allowed values are the study-sites the user may see (:func:`filter_options`). Unknown ids and
    ids outside the user's scope get the same message, so a link cannot reveal whether another
    sponsor's study exists. Filters the page does not declare are not applied.
    """
    problems: list[str] = []
    chosen: dict[str, tuple[str, ...]] = {}
    allowed: dict[str, dict[str, str]] = {}

    def cascade_for(picked: Mapping[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
        return allowed_values(wh, scope, tuple(picked.get("sponsor", ())), tuple(picked.get("study", ())),
                              tuple(picked.get("country", ())))

    for name in ("sponsor", "study", "country", "site"):
        allowed = cascade_for(chosen)
        if name not in declared:
            chosen[name] = ()
            continue
        value, issues = validate(FILTER_PARAMS[name], raw.get(name, []), allowed[name])
        chosen[name] = value  # type: ignore[assignment]
        problems += issues
    allowed = cascade_for(chosen)
    dates: dict[str, dt.date | None] = {}
    for name in ("from", "to"):
        value, issues = validate(FILTER_PARAMS[name], raw.get(name, []) if name in declared else [], None)
        dates[name] = value  # type: ignore[assignment]
        problems += issues
    if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
        problems.append(f"The date range {dates['from']} to {dates['to']} is reversed; it was ignored.")
        dates = {"from": None, "to": None}
    filters = PortfolioFilter(chosen["sponsor"], chosen["study"], chosen["country"], chosen["site"],
                              dates["from"], dates["to"])
    return filters, allowed, problems


def site_options_for_widget(allowed: Mapping[str, str], filters: PortfolioFilter) -> tuple[dict[str, str], bool]:
    """The site options to list (all, or only the chosen ones when there are too many), and whether cut."""
    if len(allowed) <= MAX_SITE_OPTIONS or filters.study_ids:
        return dict(allowed), False
    return {k: v for k, v in allowed.items() if k in set(filters.study_site_ids)}, True
