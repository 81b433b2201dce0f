"""The one place the workbench reads its environment and Streamlit secrets.

Each setting is resolved in the same order: an environment variable wins, then the Streamlit
secrets (``.streamlit/secrets.toml`` or any path set in ``secrets.files``, read the way
``st.secrets`` reads them), then a default. :func:`load_settings` never raises because a secrets
file is absent; it raises :class:`SettingsError` only when a secrets file exists but cannot be read,
because silently falling back to a default there would point the app at the wrong store.

A new setting is one field on :class:`Settings` and one line in :func:`load_settings`, resolved
with :func:`_resolve` like the others. The drafting model endpoint is :class:`LlmSettings`
(:func:`load_llm_settings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
# The warehouse module takes its default path and variable from here.
WAREHOUSE_ENV_VAR = "CRO_WAREHOUSE"
DEFAULT_WAREHOUSE_PATH = REPO_ROOT / "data" / "warehouse.duckdb"

RECORDS_ENV_VAR = "CRO_RECORDS_URL"
RECORDS_SECRET_PATH = ("connections", "records", "url")
DEFAULT_RECORDS_PATH = REPO_ROOT / "data" / "records.sqlite"

# The drafting assistant's model endpoint (any OpenAI-compatible server). The CRO_ names win over
# the client library's own OPENAI_ names; secrets live under [llm]. No base URL: no model is called.
LLM_ENV_VARS = {
    "base_url": ("CRO_LLM_BASE_URL", "OPENAI_BASE_URL"),
    "api_key": ("CRO_LLM_API_KEY", "OPENAI_API_KEY"),
    "model": ("CRO_LLM_MODEL",),
    "allow_remote": ("CRO_LLM_ALLOW_REMOTE",),
    "timeout_s": ("CRO_LLM_TIMEOUT_S",),
    "max_retries": ("CRO_LLM_MAX_RETRIES",),
    "token_parameter": ("CRO_LLM_TOKEN_PARAMETER",),
}
LLM_DEFAULTS = {"base_url": "", "api_key": "", "model": "", "allow_remote": "false", "timeout_s": "45",
                "max_retries": "2", "token_parameter": "max_tokens"}
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
# Who the user is (analytics/frame/signin.py): the mode, the users file, the SSO header and its proxies.
IDENTITY_MODES = ("oidc", "header", "local")
IDENTITY_MODE_ENV_VAR = "CRO_IDENTITY_MODE"
USERS_FILE_ENV_VAR = "CRO_USERS_FILE"
DEFAULT_USERS_FILE = REPO_ROOT / ".streamlit" / "users.toml"
IDENTITY_HEADER_ENV_VAR = "CRO_IDENTITY_HEADER"
DEFAULT_IDENTITY_HEADER = "X-Forwarded-Email"
TRUSTED_PROXIES_ENV_VAR = "CRO_TRUSTED_PROXIES"  # comma separated addresses or networks
IDLE_TIMEOUT_ENV_VAR = "CRO_IDLE_TIMEOUT_MINUTES"
DEFAULT_IDLE_TIMEOUT_MINUTES = 30.0
LOCAL_USER_ENV_VAR = "CRO_USER"
DEFAULT_LOCAL_USER = "local"


class SettingsError(RuntimeError):
    """A secrets file exists but could not be read."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one process.

    Attributes:
        warehouse_path: the DuckDB warehouse file (``$CRO_WAREHOUSE`` or ``data/warehouse.duckdb``).
        records_url: SQLAlchemy URL of the records store (``$CRO_RECORDS_URL``, else
            ``[connections.records] url`` in the Streamlit secrets, else SQLite at
            ``data/records.sqlite``).
        records_url_source: where ``records_url`` came from: ``"environment"``, ``"secrets"`` or
            ``"default"`` (shown by ``python -m analytics records`` so a user sees which store is used).

        identity_mode: ``"oidc"`` (Streamlit's ``st.login``; the default when the secrets have an
            ``[auth]`` section), ``"header"`` (an SSO proxy's header) or ``"local"`` (one user on
            this machine; the default otherwise). ``$CRO_IDENTITY_MODE`` or ``[identity] mode``.
        users_file: the users file (``$CRO_USERS_FILE``, ``[identity] users_file``, else
            ``.streamlit/users.toml``).
        identity_header: the header naming the user in header mode (``$CRO_IDENTITY_HEADER``,
            ``[identity] header``, else ``X-Forwarded-Email``).
        trusted_proxies: addresses or networks the header is accepted from (``$CRO_TRUSTED_PROXIES``,
            comma separated, or the ``[identity] trusted_proxies`` list; none by default).
        idle_timeout_minutes: a session ends after this long without activity (0: never).
        local_user: the users-file id of the local mode's one user (``$CRO_USER``, the
            ``default_user`` secret, else ``local``).
    """

    warehouse_path: Path
    records_url: str
    records_url_source: str
    llm: "LlmSettings | None" = None
    identity_mode: str = "local"
    users_file: Path = DEFAULT_USERS_FILE
    identity_header: str = DEFAULT_IDENTITY_HEADER
    trusted_proxies: tuple[str, ...] = ()
    idle_timeout_minutes: float = DEFAULT_IDLE_TIMEOUT_MINUTES
    local_user: str = DEFAULT_LOCAL_USER


@dataclass(frozen=True)
class LlmSettings:
    """The drafting model endpoint (environment ``CRO_LLM_*`` / ``OPENAI_*``, else secrets ``[llm]``).

    Attributes:
        base_url: the OpenAI-compatible API root, e.g. ``http://127.0.0.1:8000/v1``; empty: no
            endpoint, documents are rendered from their templates.
        api_key: the key (a local server takes any placeholder); never logged or stored.
        model: the model name sent with each request.
        allow_remote: text may be sent to an endpoint that is not on loopback (after
            de-identification); off by default, so a configured remote URL alone sends nothing.
        timeout_s: seconds before one request is abandoned.
        max_retries: further attempts after a failed one (bounded).
        token_parameter: ``max_tokens`` or ``max_completion_tokens`` (endpoints differ).
    """

    base_url: str = ""
    api_key: str = ""
    model: str = ""
    allow_remote: bool = False
    timeout_s: float = 45.0
    max_retries: int = 2
    token_parameter: str = "max_tokens"

    @property
    def configured(self) -> bool:
        return bool(self.base_url.strip())

    def __repr__(self) -> str:  # the key never reaches a log or a traceback
        return (f"LlmSettings(base_url={self.base_url!r}, model={self.model!r}, allow_remote={self.allow_remote}, "
                f"timeout_s={self.timeout_s}, max_retries={self.max_retries}, token_parameter={self.token_parameter!r})")


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path).resolve()}"


def streamlit_secrets() -> Mapping[str, Any]:
    """The Streamlit secrets as a plain mapping; empty when no secrets file exists.

    Raises:
        SettingsError: a secrets file exists but is not valid TOML (or a secrets path is invalid).
    """
    import streamlit as st
    from streamlit.errors import StreamlitSecretNotFoundError

    try:
        return st.secrets.to_dict()
    except StreamlitSecretNotFoundError as exc:
        if getattr(exc, "error_id", None) == "no-secrets-found":
            return {}
        raise SettingsError(f"cannot read the Streamlit secrets: {exc}") from exc


def _nested(mapping: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = mapping
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _resolve(environ: Mapping[str, str], env_var: str, secrets: Mapping[str, Any],
             secret_path: tuple[str, ...] | None, default: str) -> tuple[str, str]:
    """(value, source) by the order environment, secrets, default; empty strings count as unset."""
    if environ.get(env_var):
        return environ[env_var], "environment"
    if secret_path is not None:
        value = _nested(secrets, secret_path)
        if value:
            return str(value), "secrets"
    return default, "default"


def load_settings(environ: Mapping[str, str] | None = None,
                  secrets: Mapping[str, Any] | None = None) -> Settings:
    """Resolve every setting from the environment, the Streamlit secrets and the defaults.

    Args:
        environ: the environment to read (default ``os.environ``).
        secrets: the secrets to read (default: the Streamlit secrets files, see
            :func:`streamlit_secrets`); tests pass a mapping.

    Raises:
        SettingsError: a secrets file exists but cannot be read. A missing file is not an error.
    """
    environ = os.environ if environ is None else environ
    if secrets is None:
        secrets = streamlit_secrets()
    warehouse, _ = _resolve(environ, WAREHOUSE_ENV_VAR, secrets, None, str(DEFAULT_WAREHOUSE_PATH))
    records_url, records_source = _resolve(environ, RECORDS_ENV_VAR, secrets, RECORDS_SECRET_PATH,
                                           sqlite_url(DEFAULT_RECORDS_PATH))
    mode, _ = _resolve(environ, IDENTITY_MODE_ENV_VAR, secrets, ("identity", "mode"),
                       "oidc" if isinstance(secrets.get("auth"), Mapping) else "local")
    if mode not in IDENTITY_MODES:
        raise SettingsError(f"identity mode {mode!r} is not one of {', '.join(IDENTITY_MODES)} "
                            f"(${IDENTITY_MODE_ENV_VAR} or [identity] mode in the secrets)")
    users_file, _ = _resolve(environ, USERS_FILE_ENV_VAR, secrets, ("identity", "users_file"), str(DEFAULT_USERS_FILE))
    header, _ = _resolve(environ, IDENTITY_HEADER_ENV_VAR, secrets, ("identity", "header"), DEFAULT_IDENTITY_HEADER)
    timeout, _ = _resolve(environ, IDLE_TIMEOUT_ENV_VAR, secrets, ("identity", "idle_timeout_minutes"),
                          str(DEFAULT_IDLE_TIMEOUT_MINUTES))
    try:
        idle = float(timeout)
    except ValueError:
        raise SettingsError(f"idle timeout {timeout!r} is not a number of minutes "
                            f"(${IDLE_TIMEOUT_ENV_VAR} or [identity] idle_timeout_minutes)") from None
    if idle < 0:
        raise SettingsError(f"idle timeout {idle} minutes is negative (0 switches it off)")
    local_user, _ = _resolve(environ, LOCAL_USER_ENV_VAR, secrets, ("default_user",), DEFAULT_LOCAL_USER)
    return Settings(warehouse_path=Path(warehouse), records_url=records_url, records_url_source=records_source,
                    llm=load_llm_settings(environ, secrets), identity_mode=mode, users_file=Path(users_file),
                    identity_header=header, trusted_proxies=_proxies(environ, secrets), idle_timeout_minutes=idle, local_user=local_user)


def load_llm_settings(environ: Mapping[str, str], secrets: Mapping[str, Any]) -> LlmSettings:
    """The model endpoint settings: first environment variable set, else ``[llm]`` secrets, else defaults.

    Raises:
        SettingsError: a numeric setting or the token parameter is not valid (named in the message).
    """
    raw: dict[str, str] = {}
    for name, env_vars in LLM_ENV_VARS.items():
        value = next((environ[v] for v in env_vars if environ.get(v)), None)
        if value is None:
            value, _ = _resolve({}, "", secrets, ("llm", name), LLM_DEFAULTS[name])
        raw[name] = str(value).strip()
    try:
        timeout, retries = float(raw["timeout_s"]), int(raw["max_retries"])
    except ValueError as exc:
        raise SettingsError(f"LLM setting timeout_s / max_retries must be numbers: {exc}") from None
    if not (0 < timeout <= 600) or not (0 <= retries <= 5):
        raise SettingsError(f"LLM timeout_s must be in (0, 600] and max_retries in 0-5, got {timeout}, {retries}")
    if raw["token_parameter"] not in ("max_tokens", "max_completion_tokens"):
        raise SettingsError("LLM token_parameter must be max_tokens or max_completion_tokens, "
                            f"not {raw['token_parameter']!r}")
    return LlmSettings(base_url=raw["base_url"], api_key=raw["api_key"], model=raw["model"],
                       allow_remote=raw["allow_remote"].lower() in TRUE_WORDS, timeout_s=timeout,
                       max_retries=retries, token_parameter=raw["token_parameter"])


def _proxies(environ: Mapping[str, str], secrets: Mapping[str, Any]) -> tuple[str, ...]:
    """The trusted proxy addresses: the environment's comma list, else the secrets' list."""
    if environ.get(TRUSTED_PROXIES_ENV_VAR):
        return tuple(p.strip() for p in environ[TRUSTED_PROXIES_ENV_VAR].split(",") if p.strip())
    value = _nested(secrets, ("identity", "trusted_proxies"))
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"[identity] trusted_proxies must be a list of addresses, not {value!r}")
    return tuple(v.strip() for v in value if v.strip())
