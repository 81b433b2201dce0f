"""The audit trail's hash chain: canonical JSON, record hashes and the check of a whole chain.

Record ``n`` stores ``prev_hash`` (the ``record_hash`` of record ``n - 1``, zeros for record 1) and
``record_hash`` = SHA-256 of the canonical JSON of its own fields including ``prev_hash``. A head
row outside the log holds the seq and hash of the last record and advances with every append.
:func:`verify_chain` then detects, at the first record where it happens:

* an edited record (its fields no longer give its hash, or its payload no longer gives its
  payload hash);
* a deleted record in the middle (a gap in seq, and the next record's link is broken);
* an inserted or reordered record (the previous-hash link or the seq in the hash no longer fit);
* a deleted or replaced last record (the log no longer reaches the head's seq and hash), and a
  record appended without advancing the head.

Its limit: anyone who can rewrite the database at will (drop the triggers, recompute every hash
after the edit and set the head) produces a chain that verifies. Copy the head's seq and hash
somewhere the database's writers cannot reach (a signed report, a ticket) to pin it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analytics.core.records_schema import GENESIS_HASH

# The fields a record's hash covers, in the stored form (the payload enters through its hash).
HASHED_FIELDS: tuple[str, ...] = (
    "seq", "actor", "recorded_at", "action", "object_type", "object_id", "scope", "payload_sha256", "prev_hash",
)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data with one spelling per value.

    Sets become sorted lists, tuples lists, dates and times ISO 8601 (an aware datetime in UTC),
    dataclasses dicts of their fields, decimals strings. Anything else that JSON cannot hold is
    refused, so a payload never hashes through an implicit ``str()``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be stored as JSON")
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__} ({key!r})")
            out[key] = plain(item)
        return out
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=canonical_json)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy and pandas scalars
        return plain(value.item())
    raise TypeError(f"cannot store a {type(value).__name__} in the audit trail: {value!r}")


def canonical_json(value: Any) -> str:
    """One JSON text per value: keys sorted, no whitespace, UTF-8 characters kept as they are."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def timestamp_text(when: dt.datetime) -> str:
    """The hashed spelling of a record's time: ISO 8601 in UTC with microseconds."""
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a record's :data:`HASHED_FIELDS`."""
    fields = {name: record[name] for name in HASHED_FIELDS}
    fields["recorded_at"] = timestamp_text(record["recorded_at"])
    return sha256_hex(canonical_json(fields))


@dataclass(frozen=True)
class AuditVerification:
    """The outcome of checking an audit chain.

    Attributes:
        ok: True when every record and the head are consistent.
        records: audit records read.
        first_bad_seq: the first seq at which the chain breaks (None when ``ok``).
        problem: what is wrong there, in words (None when ``ok``).
        head_seq, head_hash: the head as stored (copy them elsewhere to pin the chain).
    """

    ok: bool
    records: int
    first_bad_seq: int | None
    problem: str | None
    head_seq: int | None
    head_hash: str | None

    def describe(self) -> str:
        if self.ok:
            return (f"audit chain holds: {self.records} records; head seq {self.head_seq}, "
                    f"hash {self.head_hash}")
        return f"audit chain BROKEN at seq {self.first_bad_seq}: {self.problem} ({self.records} records read)"


def verify_chain(records: Iterable[Mapping[str, Any]], head: Mapping[str, Any] | None) -> AuditVerification:
    """Check records (in seq order, as stored) against each other and against the head row."""
    head_seq = None if head is None else int(head["seq"])
    head_hash = None if head is None else str(head["record_hash"])

    def broken(count: int, seq: int, problem: str) -> AuditVerification:
        return AuditVerification(False, count, seq, problem, head_seq, head_hash)

    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for record in records:
        count += 1
        seq = int(record["seq"])
        if seq != expected_seq:
            return broken(count, expected_seq, f"record {expected_seq} is missing (the next record is {seq})")
        if sha256_hex(record["payload"]) != record["payload_sha256"]:
            return broken(count, seq, "the payload does not match its hash (edited)")
        if record["prev_hash"] != prev_hash:
            return broken(count, seq, f"it does not follow record {seq - 1}: the previous-hash link is broken "
                                      "(a record was deleted, inserted or reordered)")
        if record_hash(record) != record["record_hash"]:
            return broken(count, seq, "its fields do not match its hash (edited)")
        expected_seq, prev_hash = seq + 1, record["record_hash"]
    last_seq = expected_seq - 1
    if head is None:
        return broken(count, last_seq + 1, "the head row is missing")
    if head_seq > last_seq:
        missing = f"{last_seq + 1}" if head_seq == last_seq + 1 else f"{last_seq + 1}-{head_seq}"
        return broken(count, last_seq + 1, f"the log ends at {last_seq} but its head is at {head_seq}: "
                                           f"record {missing} deleted")
    if head_seq < last_seq:
        return broken(count, head_seq + 1, f"records after the head ({head_seq}) were added outside the store")
    if head_hash != prev_hash:
        return broken(count, last_seq, "the last record does not match the head's hash (replaced)")
    return AuditVerification(True, count, None, None, head_seq, head_hash)
