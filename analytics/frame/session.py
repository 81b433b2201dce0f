"""The frame's per-run context: who the user is, which warehouse, which global filters.

``app.py`` builds a :class:`PageContext` on every run (identity, scope, URL-bound filters) and
stores it for the page it then runs; pages call :func:`current_context` and never build scopes
themselves. This module is the only place that turns query parameters into filters, and it
validates every one of them against what the user may see.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from analytics.frame import identity
from analytics.portfolio import overview as portfolio
from analytics.core.scope import PortfolioFilter
from analytics.core.warehouse import Warehouse

CONTEXT_KEY = "_cro_page_context"
USER_ENV_VAR = "CRO_USER"
# Query-parameter names of the global filters (also the widget keys bound to the URL).
FILTER_PARAMS = ("sponsor", "study", "country", "site", "from", "to")


@dataclass(frozen=True)
class PageContext:
    """What a page needs: the warehouse, the user's scope and the global filters."""

    warehouse: Warehouse
    user: identity.User
    filters: PortfolioFilter
    as_of: dt.date
    problems: tuple[str, ...] = field(default=())  # rejected query parameters, shown by the frame

    @property
    def scope(self):
        return self.user.scope

    def filter_params(self) -> dict[str, list[str] | str]:
        """The global filters as query parameters, for links into other pages."""
        f = self.filters
        params: dict[str, list[str] | str] = {}
        for name, values in (("sponsor", f.sponsor_ids), ("study", f.study_ids), ("country", f.country_codes),
                             ("site", f.study_site_ids)):
            if values:
                params[name] = list(values)
        if f.date_from:
            params["from"] = f.date_from.isoformat()
        if f.date_to:
            params["to"] = f.date_to.isoformat()
        return params


def signed_in_user_id() -> str | None:
    """The user id: OIDC e-mail when signed in, else ``$CRO_USER``, else the ``default_user`` secret."""
    try:
        if getattr(st.user, "is_logged_in", False) and st.user.get("email"):
            return str(st.user.get("email"))
    except Exception:  # no auth configured: st.user raises on some attribute access
        pass
    if os.environ.get(USER_ENV_VAR):
        return os.environ[USER_ENV_VAR]
    try:
        return st.secrets.get("default_user")
    except FileNotFoundError:
        return None
    except Exception:  # secrets file present but unreadable: fall back to the local identity
        return None


def _parse_date(raw: str | None, name: str, problems: list[str]) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(f"The '{name}' date '{raw}' is not a date like 2026-01-31; it was ignored.")
        return None


def validate_filter_params(params: dict[str, list[str]], options: pd.DataFrame) -> tuple[PortfolioFilter, list[str]]:
    """Turn raw query parameters into filters the user may apply, with a message per rejected value.

    ``options`` are the study-sites the user may see (:func:`analytics.portfolio.filter_options`).
    Unknown ids and ids outside the user's scope get the same message, so a link cannot reveal
    whether another sponsor's study exists.
    """
    problems: list[str] = []

    def keep(name: str, valid: set[str], label: str) -> tuple[str, ...]:
        kept = []
        for value in params.get(name, []):
            if value == "":
                continue
            if value in valid:
                kept.append(value)
            else:
                problems.append(f"{label} '{value}' is not available to you; it was removed from the filters.")
        return tuple(dict.fromkeys(kept))

    sponsors = keep("sponsor", set(options["sponsor_id"].dropna()), "Sponsor")
    in_sponsor = options if not sponsors else options[options["sponsor_id"].isin(sponsors)]
    studies = keep("study", set(in_sponsor["study_id"].dropna()), "Study")
    in_study = in_sponsor if not studies else in_sponsor[in_sponsor["study_id"].isin(studies)]
    countries = keep("country", set(in_study["country_code"].dropna()), "Country")
    in_country = in_study if not countries else in_study[in_study["country_code"].isin(countries)]
    sites = keep("site", set(in_country["study_site_id"].dropna()), "Site")
    date_from = _parse_date((params.get("from") or [None])[0], "from", problems)
    date_to = _parse_date((params.get("to") or [None])[0], "to", problems)
    if date_from and date_to and date_from > date_to:
        problems.append(f"The date range {date_from} to {date_to} is reversed; it was ignored.")
        date_from = date_to = None
    return PortfolioFilter(sponsors, studies, countries, sites, date_from, date_to), problems


def build_context() -> PageContext:
    """Resolve the user, open the warehouse and validate the URL's filters."""
    user = identity.resolve_user(signed_in_user_id())
    wh = Warehouse.open()
    params = {name: st.query_params.get_all(name) for name in FILTER_PARAMS}
    filters, problems = validate_filter_params(params, portfolio.filter_options(wh, user.scope))
    return PageContext(wh, user, filters, wh.as_of(), tuple(problems))


def set_context(ctx: PageContext) -> None:
    st.session_state[CONTEXT_KEY] = ctx


def _leave_legacy_multipage_mode() -> None:
    """Make Streamlit run the frame, not a bare page file, on a server's very first request.

    Streamlit starts in its legacy "pages directory" mode whenever a ``pages/`` folder sits next
    to the entrypoint, and leaves it only once ``st.navigation`` has been called. A deep link such
    as ``/data`` as the server's first request would otherwise run ``pages/data.py`` without the
    frame (no role check, no filters). Switching the mode off and rerunning sends that request
    through ``app.py`` like every other.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def current_context(page_key: str | None = None) -> PageContext:
    """The context the frame built for this run, for the page called ``page_key``.

    A page whose key the user's role does not allow stops with a message, whatever URL led here.
    """
    _leave_legacy_multipage_mode()
    ctx = st.session_state.get(CONTEXT_KEY)
    if ctx is None:
        ctx = build_context()
        set_context(ctx)
    if page_key is not None and page_key not in ctx.user.role.pages:
        st.error(f"This page is not available to the {ctx.user.role.label.lower()} role.")
        st.stop()
    return ctx
