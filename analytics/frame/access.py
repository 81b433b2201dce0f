"""The access trail: one records store per process, audit records of access, and audited downloads.

Every sign-in, failed sign-in, sign-out (and idle timeout), presentation lock and release, data load
and export is an audit record in the records store's hash-chained ``audit_log`` (who, when in UTC,
what, the access scope as canonical JSON, a payload). The store is opened once per process and
URL (:func:`records_store`); a store that cannot be opened stops the app, because access that
cannot be recorded is not given.

Pages offer files only through :func:`download_button`: the file is produced when the user clicks
(Streamlit's deferred download), and producing it writes its audit record first (page, file name,
size, SHA-256, the filters), so no export leaves without its record. The access sweep reads what a
page offered from :data:`DOWNLOADS_KEY` in the session state.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from analytics.core.records import AuditEntry, RecordsStore
from analytics.core.settings import load_settings

if TYPE_CHECKING:
    from analytics.frame.session import PageContext
    from analytics.importers.staging import PreparedLoad

# The audit actions of access (object types in brackets): sign_in, sign_in_failed, sign_out and
# session_timeout [user]; export [download]; data_load [warehouse]. Presentation locks are rows of
# the records table presentation_locks, whose appends are audit records of their own.
SIGN_IN, SIGN_IN_FAILED, SIGN_OUT, SESSION_TIMEOUT = "sign_in", "sign_in_failed", "sign_out", "session_timeout"
EXPORT, DATA_LOAD = "export", "data_load"
ANONYMOUS = "(no identity)"  # the actor of a failed sign-in that named nobody
DOWNLOADS_KEY = "_cro_downloads"  # session state: download key -> (file name, producer) of this run

_STORES: dict[str, RecordsStore] = {}
_STORES_LOCK = threading.Lock()

DataSource = bytes | str | Callable[[], bytes | str]


def records_url() -> str:
    """The records store this process writes to (see :mod:`analytics.core.settings`)."""
    return load_settings().records_url


def records_store(url: str | None = None) -> RecordsStore:
    """The process's one store for ``url`` (default: the configured one), opened (and upgraded) once."""
    url = url or records_url()
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            store = _STORES[url] = RecordsStore(url)
        return store


def audit(actor: str, action: str, object_type: str, object_id: str, scope: object = None,
          payload: object = None, url: str | None = None) -> AuditEntry:
    """Write one audit record of access (see the actions above)."""
    return records_store(url).audit(actor or ANONYMOUS, action, object_type, object_id or "-", scope, payload)


def audit_load(actor: str, scope: object, db_path: str | Path, load: "PreparedLoad", outcome: str,
               seconds: float | None = None) -> AuditEntry:
    """The audit record of a confirmed load: ``outcome`` ``loaded`` or ``refused`` (at commit)."""
    return audit(actor, DATA_LOAD, "warehouse", Path(db_path).name, scope,
                 {"outcome": outcome, "warehouse": str(db_path), "source_type": load.source_type,
                  "description": load.description, "studies": sorted(load.touched_studies()),
                  "rows": load.row_counts(), "files": [{"name": f.name, "sha256": f.sha256} for f in load.files],
                  "seconds": seconds})


def _as_bytes(content: bytes | str) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


def audited_producer(actor: str, scope: object, page: str, file_name: str, mime: str,
                     filters: Mapping[str, object], data: DataSource, url: str) -> Callable[[], bytes]:
    """The function that makes a download's bytes and records the export before handing them over.

    It runs when the user clicks, outside the page's script run, so it carries everything it needs.
    """

    def produce() -> bytes:
        content = _as_bytes(data() if callable(data) else data)
        audit(actor, EXPORT, "download", file_name, scope,
              {"page": page, "file_name": file_name, "mime": mime, "bytes": len(content),
               "sha256": hashlib.sha256(content).hexdigest(), "filters": dict(filters)}, url)
        return content

    return produce


def download_button(ctx: "PageContext", label: str, data: DataSource, file_name: str, mime: str, key: str,
                    container: Any = st, **kw: Any) -> Any:
    """``st.download_button`` for a page's export: produced on click, audited, the user's scope only.

    ``data`` may be the content or a function returning it (preferred for large files: nothing is
    built until the click).
    """
    produce = audited_producer(ctx.user.user_id, ctx.scope, ctx.page.key, file_name, mime, ctx.filter_params(),
                               data, records_url())
    st.session_state.setdefault(DOWNLOADS_KEY, {})[key] = (file_name, produce)
    return container.download_button(label, data=produce, file_name=file_name, mime=mime, key=key,
                                      on_click="ignore", **kw)
