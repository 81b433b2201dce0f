"""Stable surrogate keys for imported records.

Warehouse keys such as ``visit_id`` are BIGINTs. Imported records get a 63-bit hash of their
natural key (study, domain, subject, sequence), so re-importing the same files yields the same
ids (loads are idempotent) and ids from different studies do not collide in practice; the primary
key constraint still catches a collision if one ever happens.
"""

from __future__ import annotations

import hashlib

import pandas as pd


def stable_ids(*parts: pd.Series | str) -> pd.Series:
    """A BIGINT id per row from the natural-key ``parts`` (series aligned on one index, or constants)."""
    index = next(p.index for p in parts if isinstance(p, pd.Series))
    columns = [
        p.astype("string").fillna("").tolist() if isinstance(p, pd.Series) else [p] * len(index) for p in parts
    ]
    ids = [
        int.from_bytes(hashlib.blake2b("\x1f".join(values).encode(), digest_size=8).digest(), "big") & (2**63 - 1)
        for values in zip(*columns)
    ]
    return pd.Series(ids, index=index, dtype="int64")


def normalize_number_text(values: pd.Series) -> pd.Series:
    """Render numbers stored as text or float ("1", " 1", "1.0", 1.0) the same way ("1")."""
    numeric = pd.to_numeric(values, errors="coerce").astype("Float64")
    text = values.astype("string").str.strip()
    as_number = numeric.round(6).astype("string").str.replace(r"\.0$", "", regex=True)
    return as_number.where(numeric.notna(), text)
