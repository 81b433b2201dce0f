"""Presentation mode: an operations lead locks their sessions to one sponsor for a review meeting.

While locked, every session of that user (this tab, a second tab, the back button, a reload) is
the user *presenting*: the one sponsor's studies, blinded, aggregates only, the pages a sponsor
viewer may open (:func:`analytics.frame.identity.presenting`). Filter options, cached results,
downloads and messages all come from that scope, and a link's refused values are not echoed.

The lock lives in the records store (``presentation_locks``, one row per change, each with its
audit record), not in one browser tab's state, so no tab can step outside it. Only signing in
again releases it: with OIDC, a sign-in whose token was issued after the lock; in the header and
local modes, the "Sign in again" step after signing out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.frame.access import records_store
from analytics.frame.identity import User

LOCKS = "presentation_locks"
LOCKED_BY_USER = "locked for a presentation"
SIGNED_IN_AGAIN = "signed in again"


@dataclass(frozen=True)
class Lock:
    """The sponsor a user's sessions are locked to, since when (UTC)."""

    sponsor_id: str
    since: dt.datetime


def current_lock(user_id: str, url: str | None = None) -> Lock | None:
    """The user's lock, or None when their sessions are not locked."""
    rows = records_store(url).current(LOCKS, where={"user_id": user_id})
    if rows.empty or not bool(rows["locked"].iloc[-1]):
        return None
    return Lock(str(rows["sponsor_id"].iloc[-1]), rows["recorded_at"].iloc[-1].to_pydatetime())


def lock(user: User, sponsor_id: str, url: str | None = None) -> None:
    """Lock ``user``'s sessions to ``sponsor_id`` (which must be in their scope); an audit record."""
    if user.scope.sponsor_ids is not None and sponsor_id not in user.scope.sponsor_ids:
        raise PermissionError("that sponsor is not in your scope")
    records_store(url).append(LOCKS, {"user_id": user.user_id, "locked": True, "sponsor_id": sponsor_id,
                                      "reason": LOCKED_BY_USER}, actor=user.user_id, scope=user.scope)


def release(user: User, reason: str = SIGNED_IN_AGAIN, url: str | None = None) -> bool:
    """Release ``user``'s lock, if any (an audit record); True when there was one."""
    if current_lock(user.user_id, url) is None:
        return False
    records_store(url).append(LOCKS, {"user_id": user.user_id, "locked": False, "sponsor_id": None,
                                      "reason": reason}, actor=user.user_id, scope=user.scope)
    return True
