"""Temporary folders for uploaded files: one per session, removed when replaced, at session end, or when stale.

The Data page writes uploads to a private ``cro-import-*`` folder in the temp directory. Nothing may
be left behind by an abandoned upload: :func:`new_upload_dir` removes the session's previous folder
(the upload was replaced), ties the new folder's lifetime to the session (it is removed when the
session's state is discarded, and at interpreter exit), and every import start removes such
folders older than :data:`STALE_AFTER` (:func:`remove_stale_upload_dirs`), whoever left them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections.abc import MutableMapping
from pathlib import Path

UPLOAD_PREFIX = "cro-import-"
STALE_AFTER = 24 * 3600.0  # seconds: an upload folder untouched this long is abandoned
SESSION_KEY = "importers_upload_folder"


class UploadFolder:
    """Owns one upload folder; the folder is removed when this object is discarded (or at exit)."""

    def __init__(self, path: Path):
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(path), ignore_errors=True)

    def remove(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f"UploadFolder({str(self.path)!r})"


MAX_NAME_LENGTH = 255  # a longer name is refused (and no file system takes it)


def unsafe_upload_name(name: object) -> str | None:
    """Why an uploaded file's name may not be used as a file name in the upload folder, or None.

    Only a plain name is accepted: no folder part (``/``, ``\\``, ``..``), no hidden or empty name,
    no control characters, at most :data:`MAX_NAME_LENGTH` characters.
    """
    if not isinstance(name, str) or not name.strip():
        return "the file has no name"
    if len(name) > MAX_NAME_LENGTH:
        return f"the file name is longer than {MAX_NAME_LENGTH} characters"
    if not name.isprintable():
        return "the file name contains control characters"
    if "/" in name or "\\" in name or Path(name).name != name or name.startswith(".") or ":" in name:
        return "the file name points outside the upload folder"
    return None


def upload_root() -> Path:
    return Path(tempfile.gettempdir())


def new_upload_dir(session: MutableMapping | None = None) -> Path:
    """A fresh private upload folder; the session's previous one (a replaced upload) is removed.

    ``session`` (Streamlit's ``st.session_state``) keeps the folder's owner, so the folder goes when
    the session ends. Stale folders of abandoned sessions are removed first.
    """
    remove_stale_upload_dirs()
    if session is not None:
        previous = session.pop(SESSION_KEY, None)
        if isinstance(previous, UploadFolder):
            previous.remove()
    folder = UploadFolder(Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=upload_root())))
    if session is not None:
        session[SESSION_KEY] = folder
    return folder.path


def remove_stale_upload_dirs(max_age: float = STALE_AFTER, keep: Path | None = None) -> list[Path]:
    """Remove ``cro-import-*`` folders in the temp directory untouched for ``max_age`` seconds.

    ``keep`` (the source of the import being started) is never removed, nor the folder holding it.
    """
    cutoff = time.time() - max_age
    kept = keep.resolve() if keep is not None else None
    removed = []
    for folder in upload_root().glob(UPLOAD_PREFIX + "*"):
        try:
            resolved = folder.resolve()
            if not folder.is_dir() or folder.is_symlink() or (kept is not None and (
                    kept == resolved or resolved in kept.parents)):
                continue
            newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
        except OSError:
            continue  # removed meanwhile by its own session
        if newest < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
