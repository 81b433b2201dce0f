"""The re-import shrink guard: a load that would remove much of a study's data needs an explicit confirmation.

A study re-imported from SDTM replaces its previous rows. When the new files hold fewer rows than
the warehouse in any table (per domain for ``main.measurements``) by more than
:data:`MAX_SHRINK_SHARE`, the load is held until the user confirms it (``--allow-shrink`` on the
command line, :meth:`~analytics.importers.staging.PreparedLoad.confirm_shrink` in the app): a
truncated or partial delivery must never silently cut a study's history.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analytics.core import schema

MAX_SHRINK_SHARE = 0.10  # more than this share of a study's rows removed in one table/domain needs confirmation
SPLIT_BY: dict[str, str] = {"measurements": "domain"}  # tables counted per value of this column

Counts = dict[tuple[str, str | None], int]  # (qualified table, domain or None) -> rows


# Bookkeeping about the files, rewritten with every load (fixed files rightly have fewer conformance issues).
NOT_GUARDED = frozenset({"data_provenance", "sdtm_conformance"})


def study_tables() -> tuple[schema.Table, ...]:
    """Tables whose rows are a study's data (replaced when the study is re-imported; derived results and
    ground truth are not data)."""
    return tuple(t for t in schema.TABLES if any(c.name == "study_id" for c in t.columns)
                 and t.schema in ("main", "restricted"))


def guarded_tables() -> tuple[schema.Table, ...]:
    """Study tables whose rows are the study's data (the guard counts these)."""
    return tuple(t for t in study_tables() if t.name not in NOT_GUARDED)


def count_sql(scoped: bool) -> str:
    """Rows per table (and domain) of the studies in ``$ids``; constant text built from the schema.

    ``scoped`` names each table by its scoped relation (for reads through
    :meth:`~analytics.core.warehouse.Warehouse.query`, whose relations hold only the scope's rows);
    otherwise it reads the tables directly (the writer's own connection inside a commit).
    """
    parts = []
    for table in guarded_tables():
        split = SPLIT_BY.get(table.name)
        domain = f"CAST(t.{split} AS VARCHAR)" if split else "CAST(NULL AS VARCHAR)"
        source = table.name if scoped else table.qualified_name
        parts.append(f"SELECT '{table.qualified_name}' AS table_name, {domain} AS domain, count(*) AS n "
                     f"FROM {source} t WHERE list_contains($ids, t.study_id) GROUP BY ALL")
    return "\nUNION ALL\n".join(parts)


def as_counts(frame: pd.DataFrame) -> Counts:
    """Counts from a result of :func:`count_sql`."""
    return {(str(t), None if pd.isna(d) else str(d)): int(n)
            for t, d, n in zip(frame["table_name"], frame["domain"], frame["n"])}


def staged_counts(tables: dict[str, pd.DataFrame], study_id: str) -> Counts:
    """Rows a prepared load will write for ``study_id`` per study table (and domain)."""
    counts: Counts = {}
    names = {t.name for t in guarded_tables()}
    for name, frame in tables.items():
        if name not in names or "study_id" not in frame.columns:
            continue
        frame = frame.loc[(frame["study_id"] == study_id).fillna(False).to_numpy(dtype=bool)]
        qualified = schema.table(name).qualified_name
        split = SPLIT_BY.get(name)
        if split and split in frame.columns:
            for value, n in frame[split].astype("string").value_counts().items():
                counts[(qualified, str(value))] = int(n)
        else:
            counts[(qualified, None)] = len(frame)
    return counts


@dataclass(frozen=True)
class Shrink:
    """One table (or domain) of a study that the load would cut by more than the allowed share."""

    study_id: str
    table: str
    domain: str | None
    before: int
    after: int

    @property
    def removed(self) -> int:
        return self.before - self.after

    def text(self) -> str:
        where = self.table + (f" (domain {self.domain})" if self.domain else "")
        return (f"{where}: {self.before:,} rows now, {self.after:,} after the load "
                f"({self.removed:,} removed, {self.removed / self.before:.1%})")


def find_shrinks(study_id: str, before: Counts, after: Counts, share: float = MAX_SHRINK_SHARE) -> list[Shrink]:
    """Every table/domain of ``study_id`` that would lose more than ``share`` of its rows."""
    found = []
    for key, old in sorted(before.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        new = after.get(key, 0)
        if old > 0 and (old - new) / old > share:
            found.append(Shrink(study_id, key[0], key[1], old, new))
    return found
