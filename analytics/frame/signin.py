"""Sign-in: who is using this session, by one of three modes, and when the session ends.

* **OIDC** (``identity_mode = "oidc"``, the default when ``.streamlit/secrets.toml`` has an
  ``[auth]`` section): Streamlit's ``st.login`` against the organisation's OpenID provider; the
  ID token's e-mail names the user in the users file.
* **Trusted header** (``"header"``): a company SSO proxy in front of the app names the user in a
  header (``X-Forwarded-Email`` by default). The header is believed only on connections from the
  configured proxy addresses, and only while the app server cannot be told a different address by
  a forwarded-for header from an untrusted peer (see :func:`header_claim`).
* **Local** (``"local"``, the default otherwise, as ``make run`` uses): one user on their own
  machine, ``$CRO_USER`` or ``local``; refused from any other machine and marked on every page.

Nothing about the data is drawn before the user is known: :func:`signed_in_user` either returns a
user from the users file or draws a sign-in or refusal screen (with a navigation of that one page,
so no URL reaches a page) and stops the script. Sign-in, failed sign-in, sign-out and idle timeout
are audit records (:mod:`analytics.frame.access`). A session ends after ``idle_timeout_minutes``
without activity, checked on every run and by a small timer while the page stays open.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NoReturn

import streamlit as st

from analytics.core.settings import Settings
from analytics.frame import access, identity, presentation

MAX_ID_LENGTH = 320  # an e-mail address is at most this long
SESSION_USER_KEY = "_cro_signed_in"  # the user whose sign-in this session recorded
FAILED_KEY = "_cro_failed_sign_in"  # the refusal this session recorded (recorded once)
ENDED_KEY = "_cro_session_ended"  # "signed_out" or "timed_out": the session shows only that
AGAIN_KEY = "_cro_sign_in_again"  # the user chose "Sign in again": a fresh sign-in releases a lock
LAST_ACTIVITY_KEY = "_cro_last_activity"
UVICORN_FORWARDED_DEFAULT = "127.0.0.1,::1"  # uvicorn's FORWARDED_ALLOW_IPS when unset
LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
_AUTH_SHARED_KEYS = {"redirect_uri", "cookie_secret", "expose_tokens", "client_id", "client_secret",
                     "server_metadata_url", "client_kwargs"}

_now: Callable[[], float] = time.time  # the clock of the idle timeout (tests move it)


@dataclass(frozen=True)
class Claim:
    """What a sign-in mode says about this session.

    Attributes:
        mode: ``oidc``, ``header`` or ``local``.
        sign_in_id: the id or e-mail the mode gives; None when it names nobody.
        authenticated_at: when the person last authenticated (OIDC: the ID token's ``iat``).
        refusal: why the session is refused before any user is looked up.
    """

    mode: str
    sign_in_id: str | None
    authenticated_at: dt.datetime | None = None
    refusal: str | None = None


def _clean_id(value: object) -> str | None:
    """A usable sign-in id: a short printable string."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        return None
    return value


def _networks(entries: tuple[str, ...] | list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """The addresses as networks; None when one is not an address or network."""
    networks = []
    for entry in entries:
        try:
            if entry == "localhost":
                networks += [ipaddress.ip_network(a) for a in LOOPBACK]
            else:
                networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            return None
    return networks


def _covered(address: ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network,
             networks: list) -> bool:
    if isinstance(address, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return any(address.version == n.version and address.subnet_of(n) for n in networks)
    return any(address in n for n in networks)


def header_claim(settings: Settings, headers: Mapping[str, str] | Iterable[tuple[str, str]], ip_address: str | None,
                 forwarded_allow_ips: str | None) -> Claim:
    """The user an SSO proxy names in ``settings.identity_header``, if this connection is the proxy's.

    ``headers`` are the connection's headers (a mapping, or (name, value) pairs with repeats);
    ``ip_address`` is the connection's address as Streamlit reports it (None for loopback).
    Streamlit's server (uvicorn) replaces that address by an ``X-Forwarded-For`` value when the
    peer is in ``FORWARDED_ALLOW_IPS`` (default loopback), so the header is accepted only when every
    such address is itself a trusted proxy: then an accepted address was either the peer's own or
    was vouched for by a trusted proxy, and no other machine can pose as the proxy.
    """
    proxies = _networks(settings.trusted_proxies)
    if not proxies:
        return Claim("header", None, refusal="Sign-in by header needs the proxy's addresses ([identity] "
                     "trusted_proxies or $CRO_TRUSTED_PROXIES); ask an administrator.")
    raw_allowed = UVICORN_FORWARDED_DEFAULT if forwarded_allow_ips is None else forwarded_allow_ips
    allowed = [a.strip() for a in raw_allowed.split(",") if a.strip()]
    allowed_networks = _networks(allowed) if "*" not in allowed else None
    if allowed_networks is None or not all(_covered(n, proxies) for n in allowed_networks):
        return Claim("header", None, refusal="Sign-in by header is switched off: the server trusts forwarded "
                     "addresses (FORWARDED_ALLOW_IPS) that are not all configured proxies; ask an administrator.")
    peer = list(LOOPBACK) if ip_address is None else [ipaddress.ip_address(ip_address)]
    if not any(_covered(a, proxies) for a in peer):
        return Claim("header", None, refusal="Sign-in headers are accepted only from the sign-in proxy; this "
                     "connection did not come through it.")
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    values = [v for k, v in pairs if k.lower() == settings.identity_header.lower()]
    sign_in_id = _clean_id(values[0]) if len(values) == 1 else None  # a repeated header is ambiguous: refused
    if sign_in_id is None:
        return Claim("header", None, refusal="The sign-in proxy did not say who you are; sign in through your "
                     "company's sign-in page.")
    return Claim("header", sign_in_id)


def local_claim(settings: Settings, ip_address: str | None) -> Claim:
    """The local mode's one user, for a browser on this machine only."""
    if ip_address is not None:
        return Claim("local", None, refusal="This workbench runs in local mode, for one user on its own machine, "
                     "and does not serve other computers; ask an administrator to set up sign-in.")
    return Claim("local", _clean_id(settings.local_user) or identity.DEFAULT_USER)


def oidc_claim(user_info: Mapping[str, object]) -> Claim:
    """The user an OpenID provider signed in (their e-mail), or nobody yet."""
    if not user_info.get("is_logged_in"):
        return Claim("oidc", None)
    if user_info.get("email_verified") is False:
        return Claim("oidc", None, refusal="Your account's e-mail address is not verified by the sign-in "
                     "provider; verify it and sign in again.")
    email = _clean_id(user_info.get("email"))
    if email is None:
        return Claim("oidc", None, refusal="The sign-in provider did not give an e-mail address; ask an "
                     "administrator.")
    issued = user_info.get("iat")
    when = dt.datetime.fromtimestamp(float(issued), dt.UTC) if isinstance(issued, (int, float)) else None
    return Claim("oidc", email, authenticated_at=when)


def _connection_address() -> str | None:
    """The connection's address as Streamlit reports it: None for loopback (and outside a server)."""
    return remote_address(st.context.ip_address)


def remote_address(address: object) -> str | None:
    """``address`` unless it is this machine's loopback, in any spelling.

    Streamlit maps only ``127.0.0.1`` and ``::1`` to None; a server listening on every interface
    (``streamlit run`` without ``--server.address``) sees a browser on this machine as
    ``::ffff:127.0.0.1``, which is loopback too.
    """
    if not isinstance(address, str) or not address:
        return None
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    mapped = getattr(parsed, "ipv4_mapped", None)
    return None if parsed.is_loopback or (mapped is not None and mapped.is_loopback) else address


def current_claim(settings: Settings) -> Claim:
    """What this session's mode says, read from Streamlit's connection context."""
    if settings.identity_mode == "oidc":
        return oidc_claim(st.user.to_dict())
    if settings.identity_mode == "header":
        pairs = [(name, value) for name in st.context.headers for value in st.context.headers.get_all(name)]
        return header_claim(settings, pairs, _connection_address(),
                            os.environ.get("FORWARDED_ALLOW_IPS"))
    return local_claim(settings, _connection_address())


# --- screens shown instead of pages ----------------------------------------------------------------


def stop_with(draw: Callable[[], None]) -> NoReturn:
    """Draw ``draw`` instead of any page, as the only page of the navigation, and stop the script.

    Being the navigation's one page keeps Streamlit out of its pages-directory mode (no URL runs a
    page file while nobody is signed in), and its widgets keep one identity whatever URL was asked for.
    """

    def sign_in() -> None:
        st.title("CRO Workbench")
        draw()

    st.navigation([st.Page(sign_in, title="Sign in", url_path="signin", default=True)], position="hidden").run()
    st.stop()
    raise AssertionError("st.stop returned")  # for type checkers: st.stop never returns


def _providers() -> list[str | None]:
    """The named providers of the ``[auth]`` section, or [None] for its single default provider."""
    try:
        section = st.secrets.get("auth", {})
    except Exception:
        section = {}
    named = [k for k, v in dict(section).items() if k not in _AUTH_SHARED_KEYS and isinstance(v, Mapping)]
    return named or [None]


def _sign_in_screen(note: str | None = None) -> NoReturn:
    def draw() -> None:
        if note:
            st.info(note, icon=":material/logout:")
        st.write("Sign in with your organisation's account to see the studies you may see.")
        for provider in _providers():
            label = "Sign in" if provider is None else f"Sign in with {provider}"
            if st.button(label, type="primary", key=f"sign_in_{provider or 'default'}"):
                st.login(provider) if provider else st.login()

    stop_with(draw)


def _refused(message: str, settings: Settings) -> NoReturn:
    def draw() -> None:
        st.error(message, icon=":material/block:")
        if settings.identity_mode == "oidc" and st.button("Sign in with another account", key="sign_in_other"):
            st.logout()

    stop_with(draw)


def _ended_screen(reason: str, settings: Settings) -> NoReturn:
    def draw() -> None:
        if reason == "timed_out":
            st.info(f"Your session ended after {settings.idle_timeout_minutes:g} minutes without activity.",
                    icon=":material/timer_off:")
        else:
            st.info("You signed out.", icon=":material/logout:")
        if st.button("Sign in again", type="primary", key="sign_in_again"):
            st.session_state.pop(ENDED_KEY, None)
            st.session_state[AGAIN_KEY] = True
            st.rerun()

    stop_with(draw)


# --- the session ---------------------------------------------------------------------------------


def _record_failure(claim: Claim, reason: str) -> None:
    key = (claim.mode, claim.sign_in_id, reason)
    if st.session_state.get(FAILED_KEY) == key:
        return
    access.audit(claim.sign_in_id or access.ANONYMOUS, access.SIGN_IN_FAILED, "user", claim.sign_in_id or "-",
                 None, {"mode": claim.mode, "reason": reason})
    st.session_state[FAILED_KEY] = key


def _clear_session() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def end_session(user: identity.User, settings: Settings, reason: str) -> None:
    """Sign the session out (``reason``: ``signed_out`` or ``timed_out``): an audit record, and nothing
    of the session kept; with OIDC the identity cookie is removed, so the next visit signs in anew."""
    idle = settings.idle_timeout_minutes
    access.audit(user.user_id, access.SIGN_OUT if reason == "signed_out" else access.SESSION_TIMEOUT, "user",
                 user.user_id, user.scope, {"mode": settings.identity_mode,
                                            **({"idle_minutes": idle} if reason == "timed_out" else {})})
    _clear_session()
    if settings.identity_mode == "oidc":
        st.logout()
        st.stop()
    st.session_state[ENDED_KEY] = reason


def idle_seconds() -> float | None:
    """Seconds since this session's last activity (None before its first)."""
    last = st.session_state.get(LAST_ACTIVITY_KEY)
    return None if last is None else _now() - last


def _timed_out(settings: Settings) -> bool:
    idle = idle_seconds()
    return bool(settings.idle_timeout_minutes) and idle is not None and idle > settings.idle_timeout_minutes * 60


def signed_in_user(settings: Settings) -> identity.User:
    """The user of this session, or a sign-in or refusal screen and a stopped script."""
    ended = st.session_state.get(ENDED_KEY)
    if ended:
        _ended_screen(ended, settings)
    claim = current_claim(settings)
    if claim.refusal:
        _record_failure(claim, claim.refusal)
        _refused(claim.refusal, settings)
    if claim.sign_in_id is None:
        _sign_in_screen()
    try:
        users = identity.load_users(settings.users_file)
    except identity.IdentityError as exc:
        stop_with(lambda: st.error(f"The workbench cannot open: {exc}. It stays closed until an administrator "
                                   "fixes the users file.", icon=":material/block:"))
    user = identity.find_user(users, claim.sign_in_id)
    if user is None or user.disabled:
        reason = (f"The user {claim.sign_in_id!r} is not in the users file; ask an administrator to add you."
                  if user is None else
                  f"The user {claim.sign_in_id!r} is disabled; ask an administrator if you need access again.")
        _record_failure(claim, "unknown user" if user is None else "disabled user")
        _refused(reason, settings)
    if st.session_state.get(SESSION_USER_KEY) == user.user_id and _timed_out(settings):
        end_session(user, settings, "timed_out")
        _ended_screen("timed_out", settings)
    st.session_state[LAST_ACTIVITY_KEY] = _now()
    if st.session_state.get(SESSION_USER_KEY) != user.user_id:
        _start_session(user, claim)
    return user


def _start_session(user: identity.User, claim: Claim) -> None:
    """Record the sign-in; a fresh authentication (OIDC after the lock, or "Sign in again") releases a lock."""
    again = bool(st.session_state.pop(AGAIN_KEY, False))
    lock = presentation.current_lock(user.user_id)
    fresh = again or (claim.authenticated_at is not None and lock is not None
                      and claim.authenticated_at > lock.since)
    access.audit(user.user_id, access.SIGN_IN, "user", user.user_id, user.scope,
                 {"mode": claim.mode, "sign_in_id": claim.sign_in_id, "again": again})
    if lock is not None and fresh:
        presentation.release(user)
    st.session_state[SESSION_USER_KEY] = user.user_id


def _idle_check(timeout_minutes: float) -> None:
    idle = idle_seconds()
    if idle is not None and idle > timeout_minutes * 60:
        st.rerun(scope="app")  # the full run ends the session


def start_idle_watch(timeout_minutes: float) -> None:
    """While a page stays open, end its session soon after it has been idle too long (a timer that
    checks every quarter of the timeout, at most every minute, and draws nothing)."""
    if not timeout_minutes:
        return
    interval = max(1.0, min(60.0, timeout_minutes * 15))
    with st.sidebar:
        st.fragment(run_every=interval)(_idle_check)(timeout_minutes)
