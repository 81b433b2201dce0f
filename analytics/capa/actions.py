"""CAPA actions in the records store: open a CAPA from a signal, change its status or due date, link
events, record the effectiveness check; and read them back, restricted to the user's studies.

Every write is an append (:meth:`RecordsStore.append`) with who (``actor``) and the access scope, so
the store keeps every version and writes the hash-chained audit record in the same transaction. The
rules a QMS applies are checked here before anything is written: a due date only moves with an
extension reason (and the count goes up), a closed or cancelled CAPA is not changed again, an
effectiveness check needs a method, and nobody writes for a study outside their scope.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection

import pandas as pd

from analytics.core.records import RecordsStore
from analytics.core.records_schema import CAPA_SIGNAL_TYPES, CAPA_STATUSES

ACTIONS, LINKS, CHECKS = "capa_actions", "capa_event_links", "capa_effectiveness_checks"
FINAL_STATUSES = ("Closed", "Cancelled")
QMS_PREFIX = "QMS-"  # capa_ref of a CAPA imported from the QMS (the warehouse's capas table)


class ActionRefused(ValueError):
    """An action that breaks a CAPA rule or the user's scope; nothing was written."""


def qms_ref(capa_id: int) -> str:
    """The capa_ref under which links and checks of an imported CAPA are recorded."""
    return f"{QMS_PREFIX}{int(capa_id)}"


def _require_study(study_id: str, visible: Collection[str]) -> None:
    if study_id not in visible:
        raise ActionRefused(f"study {study_id!r} is not available to you; nothing was recorded")


def _text(value: str | None, what: str) -> str:
    if value is None or not str(value).strip():
        raise ActionRefused(f"{what} is required")
    return str(value).strip()


def open_capa(store: RecordsStore, actor: str, scope: object, visible: Collection[str], *, study_id: str,
              signal_type: str, signal_id: str, title: str, owner: str, due_date: dt.date, description: str = "",
              study_site_id: str | None = None, root_cause_category: str | None = None,
              events: Collection[int] = (), today: dt.date | None = None) -> str:
    """Open a CAPA from a signal (and link ``events`` to it); returns its ``capa_ref``."""
    _require_study(study_id, visible)
    if signal_type not in CAPA_SIGNAL_TYPES:
        raise ActionRefused(f"signal type must be one of {list(CAPA_SIGNAL_TYPES)}")
    if due_date < (today or dt.date.today()):
        raise ActionRefused("the due date is in the past")
    capa_ref = f"QM-{uuid.uuid4().hex[:10]}"
    store.append(ACTIONS, {
        "capa_ref": capa_ref, "study_id": study_id, "study_site_id": study_site_id, "signal_type": signal_type,
        "signal_id": signal_id, "title": _text(title, "a title"), "description": description or None,
        "root_cause_category": root_cause_category, "owner": _text(owner, "an owner"), "status": "Open",
        "original_due_date": due_date, "current_due_date": due_date, "extension_count": 0,
        "reason": f"opened from {signal_type.replace('_', ' ')} signal {signal_id}",
    }, actor=actor, scope=scope)
    for event in events:
        link_event(store, actor, scope, visible, capa_ref=capa_ref, study_id=study_id, quality_event_id=int(event),
                   note="linked when the CAPA was opened")
    return capa_ref


def current_capa(store: RecordsStore, capa_ref: str) -> dict[str, object]:
    """The latest version of a workbench CAPA (KeyError when there is none)."""
    history = store.history(ACTIONS, capa_ref)
    if history.empty:
        raise KeyError(f"no CAPA {capa_ref!r} in the records store")
    return history.iloc[-1].to_dict()


def update_capa(store: RecordsStore, actor: str, scope: object, visible: Collection[str], capa_ref: str, *,
                reason: str, status: str | None = None, due_date: dt.date | None = None,
                root_cause_category: str | None = None) -> int:
    """Record a status change, a due-date extension or the root cause; returns the new version."""
    latest = current_capa(store, capa_ref)
    _require_study(str(latest["study_id"]), visible)
    reason = _text(reason, "a reason")
    if latest["status"] in FINAL_STATUSES:
        raise ActionRefused(f"{capa_ref} is {str(latest['status']).lower()}; it cannot be changed")
    if status is not None and status not in CAPA_STATUSES:
        raise ActionRefused(f"status must be one of {list(CAPA_STATUSES)}")
    row = {k: latest[k] for k in ("capa_ref", "study_id", "study_site_id", "signal_type", "signal_id", "title",
                                  "description", "root_cause_category", "owner", "status", "original_due_date",
                                  "current_due_date", "extension_count")}
    row = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in row.items()}
    row["extension_count"] = int(row["extension_count"])
    changed = False
    if due_date is not None and due_date != row["current_due_date"]:
        if due_date < row["current_due_date"]:
            raise ActionRefused("an extension moves the due date later; record a new CAPA for an earlier date")
        row["current_due_date"], row["extension_count"], changed = due_date, row["extension_count"] + 1, True
        reason = f"due date extended to {due_date.isoformat()}: {reason}"
    if status is not None and status != row["status"]:
        row["status"], changed = status, True
    if root_cause_category and root_cause_category != row["root_cause_category"]:
        row["root_cause_category"], changed = root_cause_category, True
    if not changed:
        raise ActionRefused("nothing changed: choose a new status, a later due date or a root cause")
    row["reason"] = reason
    return store.append(ACTIONS, row, actor=actor, scope=scope).version


def link_event(store: RecordsStore, actor: str, scope: object, visible: Collection[str], *, capa_ref: str,
               study_id: str, quality_event_id: int, linked: bool = True, note: str = "") -> int:
    """Link (or unlink) a quality event and a CAPA; returns the link's version."""
    _require_study(study_id, visible)
    return store.append(LINKS, {"capa_ref": capa_ref, "quality_event_id": int(quality_event_id), "study_id": study_id,
                                "linked": bool(linked), "note": note or None}, actor=actor, scope=scope).version


def record_check(store: RecordsStore, actor: str, scope: object, visible: Collection[str], *, capa_ref: str,
                 study_id: str, check_date: dt.date, result: str, method: str, evidence: str = "",
                 today: dt.date | None = None) -> int:
    """Record an effectiveness check and its result; returns the check's version."""
    _require_study(study_id, visible)
    if check_date > (today or dt.date.today()):
        raise ActionRefused("an effectiveness check cannot be dated in the future")
    return store.append(CHECKS, {"capa_ref": capa_ref, "study_id": study_id, "check_date": check_date,
                                 "result": result, "method": _text(method, "how effectiveness was judged"),
                                 "evidence": evidence or None}, actor=actor, scope=scope).version


def workbench_capas(store: RecordsStore, visible: Collection[str]) -> pd.DataFrame:
    """Current state of the workbench CAPAs of the visible studies, with linked events and the last check."""
    if not visible:
        return pd.DataFrame()
    actions = store.current(ACTIONS, where={"study_id": list(visible)})
    if actions.empty:
        return actions
    links = store.current(LINKS, where={"study_id": list(visible), "linked": True})
    checks = store.current(CHECKS, where={"study_id": list(visible)})
    linked = links.groupby("capa_ref")["quality_event_id"].apply(lambda ids: sorted(int(i) for i in ids))
    actions["events"] = actions["capa_ref"].map(linked).apply(lambda v: v if isinstance(v, list) else [])
    last = checks.set_index("capa_ref")[["check_date", "result"]] if len(checks) else pd.DataFrame(
        columns=["check_date", "result"])
    return actions.join(last, on="capa_ref")


def event_links(store: RecordsStore, visible: Collection[str]) -> pd.DataFrame:
    """Current links (linked or not) of the visible studies' events."""
    return store.current(LINKS, where={"study_id": list(visible)}) if visible else pd.DataFrame()


def checks(store: RecordsStore, visible: Collection[str]) -> pd.DataFrame:
    """Latest effectiveness check per CAPA of the visible studies."""
    return store.current(CHECKS, where={"study_id": list(visible)}) if visible else pd.DataFrame()


def capa_history(store: RecordsStore, capa_ref: str, visible: Collection[str]) -> pd.DataFrame:
    """Every recorded version of a CAPA, its links and checks, oldest first, as one timeline."""
    parts = []
    for table, what in ((ACTIONS, "CAPA"), (CHECKS, "Effectiveness check")):
        frame = store.history(table, capa_ref)
        if len(frame):
            parts.append(frame.assign(record=what))
    links = store.current(LINKS, where={"capa_ref": capa_ref})
    for _, link in links.iterrows():
        frame = store.history(LINKS, capa_ref, int(link["quality_event_id"]))
        parts.append(frame.assign(record="Event link"))
    if not parts:
        return pd.DataFrame()
    timeline = pd.concat(parts, ignore_index=True).sort_values("recorded_at", ignore_index=True)
    return timeline[timeline["study_id"].isin(list(visible))]
