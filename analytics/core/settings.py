"""The one place the workbench reads its environment and Streamlit secrets.

Each setting is resolved in the same order: an environment variable wins, then the Streamlit
secrets (``.streamlit/secrets.toml`` or any path set in ``secrets.files``, read the way
``st.secrets`` reads them), then a default. :func:`load_settings` never raises because a secrets
file is absent; it raises :class:`SettingsError` only when a secrets file exists but cannot be read,
because silently falling back to a default there would point the app at the wrong store.

A new setting (for example an LLM endpoint) is one field on :class:`Settings` and one line in
:func:`load_settings`, resolved with :func:`_resolve` like the others.
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
    """

    warehouse_path: Path
    records_url: str
    records_url_source: str


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
    return Settings(warehouse_path=Path(warehouse), records_url=records_url, records_url_source=records_source)
