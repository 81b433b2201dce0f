"""The frame's per-run context: who the user is, which warehouse, the page, its validated URL state.

``app.py`` calls :func:`run_frame` on every run: it resolves the user, builds ``st.navigation``
from the pages the user's role permits, validates the URL against the current page's declaration
(global filters and the page's own parameters), draws the filters the page declared, writes the
validated state back to the URL, and runs the page with one :class:`PageContext`. Pages call
:func:`current_context` and never read ``st.query_params`` or build scopes themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import streamlit as st

from analytics.core.records import RecordsError
from analytics.core.scope import PortfolioFilter
from analytics.core.settings import Settings, SettingsError, load_settings
from analytics.core.warehouse import Warehouse, WarehouseError
from analytics.display.formats import as_of_label
from analytics.frame import access, identity, presentation, signin
from analytics.frame.filters import FILTER_PARAMS, filter_options, site_options_for_widget, validate_filters
from analytics.frame.pages import PAGES, PageSpec, page_for_path, pages_for
from analytics.frame.params import Param, to_url, validate

CONTEXT_KEY = "_cro_page_context"
STICKY_KEY = "_cro_sticky_filters"  # global filter values carried across page switches
PAGE_KEY = "_cro_previous_page"
WIDGET_CHANGE_KEY = "_cro_widget_changed"  # a widget (not a link) changed the URL this run
PRESENTATION_PROBLEM = "Part of the link is not available in this presentation; it was left out."
KEEP_PARAMS = ("embed", "embed_options")  # Streamlit's own


@dataclass(frozen=True)
class PageContext:
    """What a page needs: the warehouse, the user, its validated filters and parameters."""

    warehouse: Warehouse
    user: identity.User
    page: PageSpec
    filters: PortfolioFilter
    as_of: dt.date
    params: Mapping[str, object] = field(default_factory=dict)
    choices: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # param -> allowed value -> label
    problems: tuple[str, ...] = ()

    @property
    def scope(self):
        return self.user.scope

    def param(self, name: str) -> object:
        return self.params.get(name)

    def filter_params(self) -> dict[str, list[str] | str]:
        """The global filters as query parameters, for links into other pages."""
        params: dict[str, list[str] | str] = {}
        for name, param in FILTER_PARAMS.items():
            values = to_url(param, _filter_value(self.filters, name))
            if values:
                params[name] = values if param.kind == "many" else values[0]
        return params

    def url_params(self, **overrides: object) -> dict[str, list[str]]:
        """Every declared filter and parameter of this view (defaults too), with ``overrides``."""
        out = {k: (v if isinstance(v, list) else [v]) for k, v in self.filter_params().items()
               if k in self.page.filters}
        for p in self.page.params:
            value = overrides.get(p.name, self.params.get(p.name))
            if value not in (None, (), []):
                out[p.name] = [value.isoformat()] if p.kind == "date" else (
                    [str(v) for v in value] if p.kind == "many" else [str(value)])
        return out

    def share_link(self, **overrides: object) -> str:
        """The URL of this exact view (page, filters, parameters), to paste into a message."""
        query = urlencode(self.url_params(**overrides), doseq=True)
        base = ""
        try:
            url = st.context.url
            base = url.split("?")[0].rsplit("/", 1)[0] if url else ""
        except Exception:  # outside a browser session (AppTest, CLI) there is no URL
            base = ""
        return f"{base}/{self.page.url_path}?{query}" if base else f"/{self.page.url_path}?{query}"

    def navigate(self, **params: object) -> None:
        """Change some of this page's parameters (as a link would) and rerun."""
        for name, value in params.items():
            param = self.page.param(name)
            values = to_url(param, value)
            if values:
                st.query_params[name] = values if param.kind == "many" else values[0]
            else:
                st.query_params.pop(name, None)
        st.rerun()


def _filter_value(filters: PortfolioFilter, name: str) -> object:
    return {"sponsor": filters.sponsor_ids, "study": filters.study_ids, "country": filters.country_codes,
            "site": filters.study_site_ids, "from": filters.date_from, "to": filters.date_to}[name]


# --- URL state ----------------------------------------------------------------------------------


def _raw(name: str) -> list[str]:
    return list(st.query_params.get_all(name))


def _mark_widget_change() -> None:
    st.session_state[WIDGET_CHANGE_KEY] = True


def write_param_from_widget(param: Param) -> None:
    """Widget ``on_change``: the widget's value becomes the URL's (values, never labels)."""
    value = st.session_state.get(param.widget_key)
    if param.kind == "many":
        value = tuple(value or ())
    values = to_url(param, value)
    if values:
        st.query_params[param.name] = values if param.kind == "many" else values[0]
    else:
        st.query_params.pop(param.name, None)
    _mark_widget_change()


def _known_elsewhere(name: str) -> bool:
    return name in FILTER_PARAMS or any(name == p.name for spec in PAGES for p in spec.params)


def _sync_url(spec: PageSpec, values: Mapping[str, object], problems: list[str]) -> None:
    """Make the URL carry exactly the validated state of this page."""
    declared: dict[str, Param] = {n: FILTER_PARAMS[n] for n in spec.filters}
    declared.update({p.name: p for p in spec.params})
    for name in list(st.query_params.keys()):
        if name in declared or name.startswith(KEEP_PARAMS):
            continue
        if not _known_elsewhere(name):
            problems.append("The link has a parameter this page does not use; it was ignored.")
        st.query_params.pop(name, None)
    for name, param in declared.items():
        wanted = to_url(param, values.get(name))
        if _raw(name) != wanted:
            if wanted:
                st.query_params[name] = wanted if param.kind == "many" else wanted[0]
            else:
                st.query_params.pop(name, None)


def _seed_widget(param: Param, value: object) -> None:
    """Widget state follows the URL (the URL is the truth at the start of every run)."""
    shown = list(value) if param.kind == "many" else ("" if value is None and param.kind == "text" else value)
    if param.widget_key not in st.session_state or st.session_state[param.widget_key] != shown:
        st.session_state[param.widget_key] = shown


def resolve_view(wh: Warehouse, user: identity.User, spec: PageSpec) -> PageContext:
    """Validate the URL for ``spec`` and the user: the page's context (and the URL made to match it)."""
    widget_change = bool(st.session_state.pop(WIDGET_CHANGE_KEY, False))
    raw = {name: _raw(name) for name in FILTER_PARAMS}
    sticky: dict[str, list[str]] = st.session_state.setdefault(STICKY_KEY, {})
    previous = st.session_state.get(PAGE_KEY)
    if previous is not None and previous != spec.key:
        for name in spec.filters:  # a page switch keeps the filters chosen on the page before
            if not raw[name] and sticky.get(name):
                raw[name] = list(sticky[name])
    st.session_state[PAGE_KEY] = spec.key
    filters, allowed, problems = validate_filters(raw, wh, user.scope, spec.filters)
    if widget_change:
        problems = []  # narrowing one filter drops values of the next quietly; only links get messages
    for name in spec.filters:
        sticky[name] = to_url(FILTER_PARAMS[name], _filter_value(filters, name))
    base = PageContext(wh, user, spec, filters, wh.as_of(), {}, allowed, ())
    params: dict[str, object] = {}
    choices: dict[str, Mapping[str, str]] = dict(allowed)
    for param in spec.params:
        options_p = param.choices(base) if param.choices else None
        value, issues = validate(param, _raw(param.name), options_p)
        params[param.name] = value
        if options_p is not None:
            choices[param.name] = options_p
        if not widget_change:
            problems += issues
    values = {name: _filter_value(filters, name) for name in spec.filters} | params
    _sync_url(spec, values, problems)
    if user.presenting_sponsor and problems:  # on a shared screen, never echo what a link asked for
        problems = [PRESENTATION_PROBLEM]
    for name in spec.filters:
        _seed_widget(FILTER_PARAMS[name], values[name])
    for param in spec.params:
        _seed_widget(param, params[param.name])
    return replace(base, params=params, choices=choices, problems=tuple(dict.fromkeys(problems)))


# --- the frame ----------------------------------------------------------------------------------


def _filter_panel(ctx: PageContext) -> None:
    """The global filters the page declared, in the sidebar, showing names and writing ids."""
    sb = st.sidebar
    for name in ("sponsor", "study", "country", "site"):
        if name not in ctx.page.filters:
            continue
        param = FILTER_PARAMS[name]
        options = dict(ctx.choices.get(name, {}))
        placeholder = {"sponsor": "All sponsors", "study": "All studies", "country": "All countries",
                       "site": "All sites"}[name]
        if name == "site":
            options, cut = site_options_for_widget(options, ctx.filters)
            if cut:
                placeholder = "Choose a study to pick sites"
        sb.multiselect(param.label, list(options), format_func=lambda v, o=options: o.get(v, v),
                       key=param.widget_key, on_change=write_param_from_widget, args=(param,),
                       placeholder=placeholder)
    for name in ("from", "to"):  # one per row: a date box beside another cuts its text
        if name in ctx.page.filters:
            param = FILTER_PARAMS[name]
            sb.date_input(param.label, key=param.widget_key, on_change=write_param_from_widget, args=(param,),
                          format="YYYY-MM-DD", help="Counts only activity dated in this range (screening, "
                          "visits, queries, CAPAs)")
    if ctx.page.filter_note:
        sb.caption(ctx.page.filter_note)


LANDING_PATH = "start"


def _unavailable(message: str) -> None:
    signin.stop_with(lambda: st.error(message))


def _forget_view_state() -> None:
    """Drop the URL's and the widgets' state (a presentation starts from a clean view)."""
    st.query_params.clear()
    for key in list(st.session_state.keys()):
        if key in (STICKY_KEY, PAGE_KEY, CONTEXT_KEY) or str(key).startswith("url_"):
            del st.session_state[key]


def _identity_panel(wh: Warehouse, signed_in: identity.User, user: identity.User, settings: Settings) -> None:
    """Who is signed in and how, sign-out, and (for a role that may) presentation mode, in the sidebar."""
    sb = st.sidebar
    sb.caption(f"Signed in as **{user.name}** · {user.role.label}"
               + (" · blinded" if user.scope.blinded else " · unblinded"))
    if settings.identity_mode == "local":
        sb.markdown(":orange-badge[:material/computer: Local mode]")
        sb.caption("One user on this machine, without sign-in.")
    if user.presenting_sponsor:
        options = filter_options(wh, user.scope)
        name = next(iter(options.loc[options["sponsor_id"] == user.presenting_sponsor, "sponsor_name"]), "")
        sb.markdown(f":blue-badge[:material/co_present: Presenting to {name}]")
        sb.caption("Only this sponsor's studies appear, in every tab. Sign out and sign in again to leave.")
    if sb.button("Sign out", icon=":material/logout:", key="_cro_sign_out"):
        signin.end_session(signed_in, settings, "signed_out")
        st.rerun()
    if user.presenting_sponsor or not signed_in.role.allows("present"):
        return
    with sb.expander("Present to a sponsor", icon=":material/co_present:"):
        sponsors = filter_options(wh, signed_in.scope).drop_duplicates("sponsor_id")
        labels = dict(zip(sponsors["sponsor_id"], sponsors["sponsor_name"]))
        chosen = st.selectbox("Sponsor", list(labels), format_func=labels.get, index=None, key="_cro_present_to",
                              placeholder="Choose the sponsor in the meeting")
        st.caption("Locks your sessions, in every tab, to this sponsor's studies until you sign in again.")
        if st.button("Lock to this sponsor", disabled=chosen is None, key="_cro_present_lock"):
            presentation.lock(signed_in, chosen)
            _forget_view_state()
            st.rerun()


def run_frame() -> None:
    """Identity, navigation, URL state and filters for this run; then the current page."""
    st.set_page_config(page_title="CRO Workbench", page_icon=":material/monitoring:", layout="wide")
    st.session_state[access.DOWNLOADS_KEY] = {}
    try:
        settings = load_settings()
        access.records_store()  # access that cannot be recorded is not given
    except (SettingsError, RecordsError) as exc:
        _unavailable(f"The workbench cannot open: {exc}")
        return
    signed_in = signin.signed_in_user(settings)
    lock = presentation.current_lock(signed_in.user_id)
    user = identity.presenting(signed_in, lock.sponsor_id) if lock else signed_in
    try:
        wh = Warehouse.open()
    except WarehouseError as exc:
        _unavailable(str(exc))
        return
    allowed = pages_for(user.role)
    if not allowed:
        _unavailable(f"The {user.role.label.lower()} role opens no page; ask an administrator.")
        return
    first = allowed[0]
    # Streamlit serves its default page only at "/" and reserves the default's own path, so the first
    # page is the default under a path of its own and is also reachable, hidden, at its declared path.
    pages = [st.Page(first.path, title=first.title, icon=first.icon, url_path=LANDING_PATH, default=True)]
    pages += [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path,
                      visibility="hidden" if p is first else "visible") for p in allowed]
    navigation = st.navigation(pages, position="top")
    spec = first if navigation.url_path == LANDING_PATH else (page_for_path(navigation.url_path) or first)
    try:
        ctx = resolve_view(wh, user, spec)
    except WarehouseError as exc:
        _unavailable(str(exc))
        return
    st.session_state[CONTEXT_KEY] = ctx
    _filter_panel(ctx)
    for problem in ctx.problems:
        st.warning(problem, icon=":material/link_off:")
    _identity_panel(wh, signed_in, user, settings)
    st.sidebar.caption(as_of_label(ctx.as_of))
    signin.start_idle_watch(settings.idle_timeout_minutes)
    navigation.run()


def _run_through_the_frame_if_legacy() -> None:
    """Make Streamlit run the frame, not a bare page file, on a server's very first request.

    Streamlit starts in its legacy "pages directory" mode whenever a ``pages/`` folder sits next
    to the entrypoint, and leaves it only once ``st.navigation`` has been called. A deep link such
    as ``/data`` as the server's first request would otherwise run ``pages/data.py`` without the
    frame (no role check, no filters). Switching the mode off and rerunning sends that request
    through ``app.py`` like every other. AppTest starts *every* run in that mode, where a rerun would
    drop the click that started the run, so there the page runs the frame in place and stops.
    """
    from streamlit.runtime import Runtime
    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    if type(Runtime._instance) is Runtime:  # a real server: only its first request comes here
        st.rerun()
    run_frame()
    st.stop()


def current_context() -> PageContext:
    """The context the frame built for the page now running.

    A page run without the frame (Streamlit's first-request legacy mode) is rerun through it; a
    page the user's role does not permit stops with a message, whatever URL led here.
    """
    _run_through_the_frame_if_legacy()
    ctx = st.session_state.get(CONTEXT_KEY)
    if ctx is None:
        st.error("The page was opened without the workbench frame; reload it from the start page.")
        st.stop()
    if ctx.page not in pages_for(ctx.user.role):
        st.error(f"This page is not available to the {ctx.user.role.label.lower()} role.")
        st.stop()
    return ctx
