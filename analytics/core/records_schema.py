"""The records store's tables: one declaration per area table, plus the audit log and its head.

An area table (review dispositions, CAPA actions, signatures, ...) is a :class:`RecordTable`: a
name, a description, its columns and the object key that identifies "the same thing" across
corrections. The declaration yields the SQLAlchemy table (:meth:`RecordTable.table`), which adds
the columns the store fills itself:

* ``record_id``: increasing over the whole table (the order rows were written in);
* ``version``: 1 for the first row of an object key, then 2, 3, ... for each correction;
* ``actor``: who wrote the row; ``recorded_at``: when, in UTC, set by the store.

Every table here is append-only: a correction is a new row with the same key. The database
refuses UPDATE and DELETE (:func:`append_only_ddl`), whatever client issues them.

The migrations in ``records_migrations/versions`` are frozen copies of these shapes as they were
at each revision; ``tests/test_records.py`` checks that a database upgraded to head matches the
declarations here, so a declaration changed without a migration fails the suite.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

GENESIS_HASH = "0" * 64  # the "previous hash" of audit record 1


class UtcDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores the UTC wall time as text. Values read back are
    aware datetimes in UTC; a naive datetime is refused on the way in, so no local time slips in.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("records timestamps must be timezone-aware (UTC)")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


COLUMN_TYPES: dict[str, sa.types.TypeEngine] = {
    "text": sa.Text(),
    "integer": sa.BigInteger(),
    "float": sa.Float(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "timestamp": UtcDateTime(),
    "json": sa.JSON(),
}

SYSTEM_COLUMNS: tuple[str, ...] = ("record_id", "version", "actor", "recorded_at")


@dataclass(frozen=True)
class RecordColumn:
    """One column an area declares.

    Attributes:
        name: column name.
        type: one of :data:`COLUMN_TYPES`.
        description: what the value means.
        required: a value must be given (NOT NULL in the database, checked on append).
        allowed: when non-empty, the only values accepted on append (checked by the store, not the
            database, so adding a value needs no migration).
    """

    name: str
    type: str
    description: str
    required: bool = False
    allowed: tuple[str, ...] = ()

    def sa_column(self) -> sa.Column:
        return sa.Column(self.name, COLUMN_TYPES[self.type], nullable=not self.required, doc=self.description)


@dataclass(frozen=True)
class RecordTable:
    """One append-only area table: its name, purpose, columns and object key."""

    name: str
    description: str
    key: tuple[str, ...]
    columns: tuple[RecordColumn, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if clash := set(names) & set(SYSTEM_COLUMNS):
            raise ValueError(f"{self.name}: {sorted(clash)} are filled by the store")
        if missing := [k for k in self.key if k not in names]:
            raise ValueError(f"{self.name}: key columns {missing} are not declared")
        if unknown := [c.type for c in self.columns if c.type not in COLUMN_TYPES]:
            raise ValueError(f"{self.name}: unknown column types {unknown}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> RecordColumn:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    def table(self, metadata: sa.MetaData) -> sa.Table:
        """The SQLAlchemy table: system columns, declared columns, one row per (key, version)."""
        return sa.Table(
            self.name,
            metadata,
            *system_columns(),
            *(c.sa_column() for c in self.columns),
            sa.UniqueConstraint(*self.key, "version", name=f"uq_{self.name}_key_version"),
            sqlite_autoincrement=True,  # record ids are never reused, even after a failed write
        )


def system_columns() -> list[sa.Column]:
    """The columns the store fills on every area table (fresh objects for each table)."""
    return [
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True, doc="Order of writing over the whole table."),
        sa.Column("version", sa.Integer(), nullable=False, doc="1 for the first row of a key, +1 per correction."),
        sa.Column("actor", sa.Text(), nullable=False, doc="Who wrote the row."),
        sa.Column("recorded_at", UtcDateTime(), nullable=False, doc="When the row was written (UTC, set by the store)."),
    ]


REVIEW_DISPOSITIONS = RecordTable(
    "review_dispositions",
    "A reviewer's disposition of a data-quality finding; a changed mind is a new version.",
    key=("finding_id",),
    columns=(
        RecordColumn("finding_id", "text", "The finding reviewed (stable id from the Data Quality page).", required=True),
        RecordColumn("study_id", "text", "Study of the finding (studies.study_id), for the access scope.", required=True),
        RecordColumn("study_site_id", "text", "Study-site of the finding, when it concerns one site."),
        RecordColumn("disposition", "text", "The reviewer's decision.", required=True),
        RecordColumn("reason", "text", "Why: the reviewer's explanation, kept with the decision.", required=True),
    ),
)

PRESCREEN_DECISIONS = RecordTable(
    "prescreen_decisions",
    "A site coordinator's decision on a pre-screened patient: a candidate to approach, or not, and why; a changed "
    "decision is a new version.",
    key=("study_id", "patient_id"),
    columns=(
        RecordColumn("study_id", "text", "Study screened for (studies.study_id), for the access scope.", required=True),
        RecordColumn("study_site_id", "text", "Study-site whose pool the patient is in.", required=True),
        RecordColumn("patient_id", "text", "Pseudonymous patient key (prescreen_patients.patient_id).", required=True),
        RecordColumn("decision", "text", "The coordinator's decision.", required=True,
                     allowed=("Candidate confirmed", "Not a candidate")),
        RecordColumn("reason", "text", "Why: kept with the decision.", required=True),
        RecordColumn("prescreen_result", "text", "What the pre-screen showed when the decision was made."),
        RecordColumn("unknown_criteria", "integer", "Criteria still unknown from records at the time (count)."),
        RecordColumn("criteria_version", "text", "Hash of the criteria structure the pre-screen used."),
    ),
)

CRITERION_REVIEWS = RecordTable(
    "criterion_reviews",
    "A person's acceptance or rejection of a proposed structure for an eligibility criterion (from the model or "
    "written by hand); only accepted structures are used for matching.",
    key=("study_id", "criterion_key"),
    columns=(
        RecordColumn("study_id", "text", "Study of the criterion, for the access scope.", required=True),
        RecordColumn("criterion_key", "text", "The criterion (recruitment_criteria.criterion_key).", required=True),
        RecordColumn("decision", "text", "Accepted or Rejected.", required=True, allowed=("Accepted", "Rejected")),
        RecordColumn("structure", "text", "The proposed structure, as JSON (the criterion's atoms).", required=True),
        RecordColumn("source", "text", "Where the proposal came from: model (with the model's name) or person.",
                     required=True),
        RecordColumn("reason", "text", "Why it was accepted or rejected."),
    ),
)

RECORD_TABLES: tuple[RecordTable, ...] = (REVIEW_DISPOSITIONS, PRESCREEN_DECISIONS, CRITERION_REVIEWS)

METADATA = sa.MetaData()
AREA_TABLES: dict[str, sa.Table] = {spec.name: spec.table(METADATA) for spec in RECORD_TABLES}

AUDIT_LOG = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False,
              doc="Position in the chain: 1, 2, 3, ... without gaps."),
    sa.Column("actor", sa.Text(), nullable=False, doc="Who acted."),
    sa.Column("recorded_at", UtcDateTime(), nullable=False, doc="When (UTC, set by the store)."),
    sa.Column("action", sa.Text(), nullable=False, doc="What was done, e.g. append, sign, lock."),
    sa.Column("object_type", sa.Text(), nullable=False, doc="Kind of object acted on, e.g. a records table."),
    sa.Column("object_id", sa.Text(), nullable=False, doc="Which object (its key)."),
    sa.Column("scope", sa.Text(), nullable=False, doc="The actor's access scope, canonical JSON."),
    sa.Column("payload_sha256", sa.String(64), nullable=False, doc="SHA-256 of the payload text."),
    sa.Column("payload", sa.Text(), nullable=False, doc="What was recorded, canonical JSON."),
    sa.Column("prev_hash", sa.String(64), nullable=False, doc="record_hash of the record before (zeros for 1)."),
    sa.Column("record_hash", sa.String(64), nullable=False, unique=True,
              doc="SHA-256 of this record's canonical JSON, including prev_hash."),
)

AUDIT_HEAD = sa.Table(
    "audit_head",
    METADATA,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False, doc="Always 1: one row."),
    sa.Column("seq", sa.BigInteger(), nullable=False, doc="seq of the last audit record (0 when empty)."),
    sa.Column("record_hash", sa.String(64), nullable=False, doc="record_hash of the last audit record."),
    sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
)


def append_only_ddl(table: str, dialect: str) -> list[str]:
    """Statements that make the database refuse UPDATE and DELETE on ``table``.

    On PostgreSQL they use the trigger function from :func:`refuse_change_function_ddl` (created by
    the first migration), and also refuse TRUNCATE.
    """
    message = f"{table} is append-only: a correction is a new row"
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION records_refuse_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION records_refuse_change()",
        ]
    raise ValueError(f"the records store supports sqlite and postgresql, not {dialect}")


def refuse_change_function_ddl() -> str:
    """PostgreSQL: the trigger function every append-only table's triggers call."""
    return (
        "CREATE OR REPLACE FUNCTION records_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only: a correction is a new row (% refused)', TG_TABLE_NAME, TG_OP; "
        "END $$"
    )


def head_advance_only_ddl(dialect: str) -> list[str]:
    """Statements that let ``audit_head`` only move forward one record at a time, never be deleted."""
    if dialect == "sqlite":
        return [
            "CREATE TRIGGER audit_head_advance_only BEFORE UPDATE ON audit_head "
            "WHEN NEW.seq <> OLD.seq + 1 OR NEW.id <> OLD.id "
            "BEGIN SELECT RAISE(ABORT, 'audit_head only advances by one record'); END",
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            "BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END",
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION records_head_advance_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF TG_OP <> 'UPDATE' OR NEW.seq <> OLD.seq + 1 OR NEW.id <> OLD.id THEN "
            "RAISE EXCEPTION 'audit_head only advances by one record (% refused)', TG_OP; END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER audit_head_advance_only BEFORE UPDATE OR DELETE ON audit_head "
            "FOR EACH ROW EXECUTE FUNCTION records_head_advance_only()",
            "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION records_refuse_change()",
        ]
    raise ValueError(f"the records store supports sqlite and postgresql, not {dialect}")
