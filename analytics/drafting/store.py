"""A document's trail in the records store: its draft, model calls, edits and signatures, all
append-only, each also a record of the hash-chained audit log; and the check of that trail.

Rows are keyed by the draft id (``D-...``); a model call is ``<draft>:M<n>`` and a signature
``<draft>:S<n>``, so every audit record of one document is found by its object id.
:func:`verify_document` checks the whole audit chain (an edited, deleted, inserted or reordered
audit record breaks it) and, for this document, that every row in the drafting tables is exactly
what its audit record says was written (an edited or deleted row, or one written past the store,
is detected even though the chain itself still holds).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from analytics.core.audit_chain import AuditVerification, canonical_json, sha256_hex
from analytics.core.records import RecordsStore
from analytics.core.records_schema import AREA_TABLES, AUDIT_LOG, DRAFTING_TABLES

MEANINGS = {"authored": "I wrote this document", "reviewed": "I reviewed this document and its facts",
            "approved": "I approve this document for its stated use"}
MIN_JUSTIFICATION = 15  # characters a justification for signing with open hard violations needs
TABLES = tuple(t.name for t in DRAFTING_TABLES)


class SigningRefused(PermissionError):
    """A signature the rules do not allow (wrong identity, same person as the author, no justification, ...)."""


def new_draft_id() -> str:
    return f"D-{uuid.uuid4().hex[:12]}"


def text_hash(text: str) -> str:
    return sha256_hex(text)


@dataclass(frozen=True)
class DraftState:
    """Everything recorded about one document, as of now."""

    draft: Mapping[str, object]
    edits: pd.DataFrame
    signatures: pd.DataFrame
    calls: pd.DataFrame

    @property
    def draft_id(self) -> str:
        return str(self.draft["draft_id"])

    @property
    def author(self) -> str:
        return str(self.draft["actor"])

    @property
    def text(self) -> str:
        return str(self.edits["text"].iloc[-1]) if len(self.edits) else str(self.draft["text"])

    @property
    def checker(self) -> Mapping[str, object]:
        value = self.edits["checker"].iloc[-1] if len(self.edits) else self.draft["checker"]
        return value if isinstance(value, Mapping) else json.loads(str(value))

    @property
    def hard_violations(self) -> int:
        return int(self.edits["hard_violations"].iloc[-1] if len(self.edits) else self.draft["hard_violations"])

    @property
    def text_sha256(self) -> str:
        return text_hash(self.text)

    @property
    def facts(self) -> list[Mapping[str, object]]:
        value = self.draft["facts"]
        return value if isinstance(value, list) else json.loads(str(value))

    def signatures_of_current_text(self) -> pd.DataFrame:
        return self.signatures[self.signatures["text_sha256"] == self.text_sha256] if len(self.signatures) \
            else self.signatures


def record_model_call(store: RecordsStore, *, draft_id: str, study_id: str, endpoint_host: str, loopback: bool,
                      deidentified: bool, model_requested: str, parameters: Mapping[str, object],
                      messages: Sequence[Mapping[str, str]], result, actor: str, scope: object) -> str:
    """Append one model call (what was sent, what came back, how it ended); returns its call id."""
    call_id = f"{draft_id}:M1"
    store.append("model_calls", {
        "call_id": call_id, "draft_id": draft_id, "study_id": study_id, "endpoint_host": endpoint_host,
        "loopback": loopback, "deidentified": deidentified, "model_requested": model_requested or "(default)",
        "model_reported": result.model_reported, "parameters": dict(parameters), "prompt": list(messages),
        "prompt_sha256": sha256_hex(canonical_json(list(messages))), "raw_output": result.text or None,
        "raw_output_sha256": sha256_hex(result.text) if result.text else None, "outcome": result.outcome,
        "error": result.error, "attempts": int(result.attempts), "seconds": float(result.seconds),
    }, actor=actor, scope=scope)
    return call_id


def record_draft(store: RecordsStore, *, draft_id: str, study_ids: Sequence[str], document_type: str, subject: str,
                 title: str, template_version: str, facts: list[Mapping[str, object]], origin: str, text: str,
                 check: Mapping[str, object], actor: str, scope: object, call_id: str | None = None,
                 fallback_reason: str | None = None) -> None:
    """Append the first version of a document."""
    store.append("drafts", {
        "draft_id": draft_id, "study_id": study_ids[0] if study_ids else "(none)", "study_ids": list(study_ids),
        "document_type": document_type, "subject": subject, "title": title, "template_version": template_version,
        "facts": facts, "facts_sha256": sha256_hex(canonical_json(facts)), "origin": origin,
        "fallback_reason": fallback_reason, "call_id": call_id, "text": text, "text_sha256": text_hash(text),
        "checker": dict(check), "hard_violations": int(check["hard"]),
    }, actor=actor, scope=scope)


def load_draft(store: RecordsStore, draft_id: str) -> DraftState | None:
    """The document's current state, or None when there is no such draft."""
    drafts = store.history("drafts", draft_id)
    if drafts.empty:
        return None
    signatures = store.current("draft_signatures", where={"draft_id": draft_id})
    calls = store.current("model_calls", where={"draft_id": draft_id})
    return DraftState(drafts.iloc[-1].to_dict(), store.history("draft_edits", draft_id), signatures, calls)


def record_edit(store: RecordsStore, state: DraftState, *, text: str, reason: str, check: Mapping[str, object],
                actor: str, scope: object) -> None:
    """Append an edit: the next version of the document's text, with why and its new check."""
    if not reason.strip():
        raise ValueError("an edit needs a reason")
    if text == state.text:
        raise ValueError("the text is unchanged")
    store.append("draft_edits", {
        "draft_id": state.draft_id, "study_id": str(state.draft["study_id"]), "text": text,
        "text_sha256": text_hash(text), "previous_sha256": state.text_sha256, "reason": reason.strip(),
        "checker": dict(check), "hard_violations": int(check["hard"]),
    }, actor=actor, scope=scope)


def sign(store: RecordsStore, state: DraftState, *, signer_id: str, printed_name: str, entered_id: str,
         meaning: str, may_approve: bool, justification: str = "", scope: object = None) -> str:
    """Sign the document's current text; returns the signature id.

    Rules: the re-entered user id must be the signer's own; ``authored`` is signed by the author;
    ``reviewed`` and ``approved`` by someone else who holds the ``approve_document`` permission;
    open hard violations need a written justification; one person signs one meaning of one text once.

    Raises:
        SigningRefused: naming the rule.
    """
    if meaning not in MEANINGS:
        raise SigningRefused(f"a signature means one of {list(MEANINGS)}, not {meaning!r}")
    if entered_id.strip() != signer_id:
        raise SigningRefused("the user id entered is not the signed-in user's: re-enter your own user id to sign")
    if meaning == "authored" and signer_id != state.author:
        raise SigningRefused(f"only the author ({state.author}) signs as author")
    if meaning in ("reviewed", "approved"):
        if signer_id == state.author:
            raise SigningRefused(f"the author cannot sign as {meaning}: another person must")
        if not may_approve:
            raise SigningRefused(f"signing as {meaning} needs the approve_document permission")
    if state.hard_violations and len(justification.strip()) < MIN_JUSTIFICATION:
        raise SigningRefused(f"the text has {state.hard_violations} open hard violation(s): write why it is signed "
                             f"anyway (at least {MIN_JUSTIFICATION} characters)")
    mine = state.signatures_of_current_text()
    if len(mine) and ((mine["signer_id"] == signer_id) & (mine["meaning"] == meaning)).any():
        raise SigningRefused(f"you have already signed this text as {meaning}")
    signature_id = f"{state.draft_id}:S{len(state.signatures) + 1}"
    store.append("draft_signatures", {
        "signature_id": signature_id, "draft_id": state.draft_id, "study_id": str(state.draft["study_id"]),
        "signer_id": signer_id, "printed_name": printed_name, "meaning": meaning, "text_sha256": state.text_sha256,
        "hard_violations": state.hard_violations, "justification": justification.strip() or None,
    }, actor=signer_id, scope=scope)
    return signature_id


def recent_drafts(store: RecordsStore, study_ids: Sequence[str] | None, limit: int = 50) -> pd.DataFrame:
    """The latest drafts the user may see (``study_ids`` None: every study), newest first."""
    where = None if study_ids is None else {"study_id": list(study_ids)}
    drafts = store.current("drafts", where=where)
    if drafts.empty:
        return drafts
    return drafts.sort_values("record_id", ascending=False).head(limit).reset_index(drop=True)


# --- the trail and its check -----------------------------------------------------------------


def document_audit(store: RecordsStore, draft_id: str) -> pd.DataFrame:
    """The audit records of one document, in chain order."""
    query = (sa.select(AUDIT_LOG)
             .where(AUDIT_LOG.c.object_type.in_(TABLES),
                    sa.or_(AUDIT_LOG.c.object_id == draft_id, AUDIT_LOG.c.object_id.like(f"{draft_id}:%")))
             .order_by(AUDIT_LOG.c.seq))
    with store.engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


@dataclass(frozen=True)
class DocumentVerification:
    """The check of one document's trail: the whole chain, and this document's rows against it."""

    chain: AuditVerification
    problems: tuple[str, ...]
    records: int

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems

    def describe(self) -> str:
        if self.ok:
            return (f"Trail verified: {self.records} audit records of this document, each row matching its record; "
                    f"{self.chain.describe()}.")
        parts = [] if self.chain.ok else [self.chain.describe()]
        return "; ".join(parts + list(self.problems))


def _rows_of(store: RecordsStore, table: str, draft_id: str) -> pd.DataFrame:
    target = AREA_TABLES[table]
    with store.engine.connect() as conn:
        result = conn.execute(sa.select(target).where(target.c.draft_id == draft_id).order_by(target.c.record_id))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def verify_document(store: RecordsStore, draft_id: str) -> DocumentVerification:
    """Verify the audit chain, then that each of this document's rows is what its audit record holds."""
    chain = store.verify_audit()
    audit = document_audit(store, draft_id)
    problems: list[str] = []
    written: dict[tuple[str, int], Mapping[str, object]] = {}
    for record in audit.itertuples():
        payload = json.loads(record.payload)
        written[(payload["table"], int(payload["record_id"]))] = {"seq": record.seq, **payload}
    seen: set[tuple[str, int]] = set()
    for spec in DRAFTING_TABLES:
        rows = _rows_of(store, spec.name, draft_id)
        last_seq = 0
        for row in rows.to_dict("records"):
            key = (spec.name, int(row["record_id"]))
            seen.add(key)
            entry = written.get(key)
            if entry is None:
                problems.append(f"{spec.name} row {row['record_id']} has no audit record (written past the store)")
                continue
            stored = {c: row[c] for c in spec.column_names}
            if canonical_json(stored) != canonical_json(entry["row"]) or int(row["version"]) != int(entry["version"]):
                problems.append(f"{spec.name} row {row['record_id']} (audit seq {entry['seq']}) differs from what "
                                "was recorded (edited)")
            if int(entry["seq"]) < last_seq:
                problems.append(f"{spec.name} row {row['record_id']} is out of order against the audit chain")
            last_seq = int(entry["seq"])
    for key, entry in written.items():
        if key not in seen:
            problems.append(f"{key[0]} row {key[1]} recorded at audit seq {entry['seq']} is missing (deleted)")
    return DocumentVerification(chain, tuple(problems), len(audit))


def trail_table(audit: pd.DataFrame) -> pd.DataFrame:
    """The document's audit records as a reader sees them."""
    if audit.empty:
        return pd.DataFrame(columns=["Seq", "When (UTC)", "Who", "Action", "Record", "Hash"])
    return pd.DataFrame({
        "Seq": audit["seq"].astype("int64"),
        "When (UTC)": pd.to_datetime(audit["recorded_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "Who": audit["actor"],
        "Action": audit["action"],
        "Record": [f"{t} {o}" for t, o in zip(audit["object_type"], audit["object_id"])],
        "Hash": audit["record_hash"].str[:16] + "…",
    })
