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


# A reviewer's decisions on a data-quality finding (see analytics/quality/review.py).
DISPOSITIONS: tuple[str, ...] = ("Query raised", "Not an issue", "Needs follow-up")

REVIEW_DISPOSITIONS = RecordTable(
    "review_dispositions",
    "A reviewer's disposition of a data-quality finding; a changed mind is a new version.",
    key=("finding_id",),
    columns=(
        RecordColumn("finding_id", "text", "The finding reviewed (stable id from the Data Quality page).", required=True),
        RecordColumn("study_id", "text", "Study of the finding (studies.study_id), for the access scope.", required=True),
        RecordColumn("study_site_id", "text", "Study-site of the finding, when it concerns one site."),
        RecordColumn("disposition", "text", "The reviewer's decision.", required=True, allowed=DISPOSITIONS),
        RecordColumn("reason", "text", "Why: the reviewer's explanation, kept with the decision.", required=True),
    ),
)

# --- the drafting assistant (analytics/drafting): every draft, edit, signature and model call ---
_DRAFT_ID = RecordColumn("draft_id", "text", "The document draft (D-...), the key of its whole trail.", required=True)
_DRAFT_STUDY = RecordColumn("study_id", "text", "Study the document is about (a sponsor-level document: its first "
                                                 "study), for the access scope.", required=True)

DRAFTS = RecordTable(
    "drafts",
    "A document drafted from numbered warehouse facts, by a model or by its template, as first produced.",
    key=("draft_id",),
    columns=(
        _DRAFT_ID, _DRAFT_STUDY,
        RecordColumn("study_ids", "json", "Every study the facts come from.", required=True),
        RecordColumn("document_type", "text", "Document type key (analytics/drafting/specs.py).", required=True),
        RecordColumn("subject", "text", "What the document is about: a study, study-site, sponsor, CAPA or area.",
                     required=True),
        RecordColumn("title", "text", "Document title.", required=True),
        RecordColumn("template_version", "text", "Version of the document type's template and prompt.", required=True),
        RecordColumn("facts", "json", "The facts snapshot: F1.. with value, unit and source.", required=True),
        RecordColumn("facts_sha256", "text", "SHA-256 of the facts snapshot's canonical JSON.", required=True),
        RecordColumn("origin", "text", "Who wrote the text.", required=True,
                     allowed=("model", "template", "template_fallback")),
        RecordColumn("fallback_reason", "text", "Why the template was used after the model failed."),
        RecordColumn("call_id", "text", "The model call (model_calls.call_id), when a model wrote it."),
        RecordColumn("text", "text", "The draft (Markdown, fact ids cited as [F1]).", required=True),
        RecordColumn("text_sha256", "text", "SHA-256 of the text.", required=True),
        RecordColumn("checker", "json", "The faithfulness checker's result on the text.", required=True),
        RecordColumn("hard_violations", "integer", "Hard violations the checker found (count).", required=True),
    ),
)

DRAFT_EDITS = RecordTable(
    "draft_edits",
    "A reviewer's edit of a draft: each save is the next version of the draft's text.",
    key=("draft_id",),
    columns=(
        _DRAFT_ID, _DRAFT_STUDY,
        RecordColumn("text", "text", "The edited text.", required=True),
        RecordColumn("text_sha256", "text", "SHA-256 of the edited text.", required=True),
        RecordColumn("previous_sha256", "text", "SHA-256 of the text this edit replaced.", required=True),
        RecordColumn("reason", "text", "Why the text was changed.", required=True),
        RecordColumn("checker", "json", "The checker's result on the edited text.", required=True),
        RecordColumn("hard_violations", "integer", "Hard violations in the edited text (count).", required=True),
    ),
)

DRAFT_SIGNATURES = RecordTable(
    "draft_signatures",
    "An electronic signature of one exact text of a draft, with its meaning.",
    key=("signature_id",),
    columns=(
        RecordColumn("signature_id", "text", "The signature (<draft_id>:S<n>).", required=True),
        _DRAFT_ID, _DRAFT_STUDY,
        RecordColumn("signer_id", "text", "User id of the signer, re-entered at signing.", required=True),
        RecordColumn("printed_name", "text", "The signer's printed name.", required=True),
        RecordColumn("meaning", "text", "What the signature means.", required=True,
                     allowed=("authored", "reviewed", "approved")),
        RecordColumn("text_sha256", "text", "SHA-256 of the text signed.", required=True),
        RecordColumn("hard_violations", "integer", "Hard violations open in the text signed (count).", required=True),
        RecordColumn("justification", "text", "Why it was signed with open hard violations."),
    ),
)

MODEL_CALLS = RecordTable(
    "model_calls",
    "One request to a model endpoint for a draft: what was sent (de-identified), what came back, how it ended.",
    key=("call_id",),
    columns=(
        RecordColumn("call_id", "text", "The call (<draft_id>:M<n>).", required=True),
        _DRAFT_ID, _DRAFT_STUDY,
        RecordColumn("endpoint_host", "text", "Host and port of the endpoint (never the key).", required=True),
        RecordColumn("loopback", "boolean", "The endpoint is on this machine's loopback.", required=True),
        RecordColumn("deidentified", "boolean", "Identifiers were replaced by placeholders before sending.",
                     required=True),
        RecordColumn("model_requested", "text", "Model name sent.", required=True),
        RecordColumn("model_reported", "text", "Model name the endpoint reported."),
        RecordColumn("parameters", "json", "Sampling parameters, timeout and retry bound.", required=True),
        RecordColumn("prompt", "json", "The messages as sent (after de-identification).", required=True),
        RecordColumn("prompt_sha256", "text", "SHA-256 of the messages' canonical JSON.", required=True),
        RecordColumn("raw_output", "text", "The text returned, before placeholders were restored."),
        RecordColumn("raw_output_sha256", "text", "SHA-256 of the raw output."),
        RecordColumn("outcome", "text", "How the call ended.", required=True,
                     allowed=("ok", "http_error", "timeout", "connection_error", "malformed", "empty")),
        RecordColumn("error", "text", "The failure, in words (no key, no traceback)."),
        RecordColumn("attempts", "integer", "Requests made, retries included (count).", required=True),
        RecordColumn("seconds", "float", "Wall time of the call (s).", required=True),
    ),
)

DRAFTING_TABLES: tuple[RecordTable, ...] = (DRAFTS, DRAFT_EDITS, DRAFT_SIGNATURES, MODEL_CALLS)


PRESENTATION_LOCKS = RecordTable(
    "presentation_locks",
    "An operations lead's sessions locked to one sponsor for a meeting, and released when they sign in again.",
    key=("user_id",),
    columns=(
        RecordColumn("user_id", "text", "The users-file id whose sessions are locked.", required=True),
        RecordColumn("locked", "boolean", "True: locked to sponsor_id; false: released.", required=True),
        RecordColumn("sponsor_id", "text", "The one sponsor shown while locked (sponsors.sponsor_id)."),
        RecordColumn("reason", "text", "Why the state changed (locked by the user, signed in again).", required=True),
    ),
)


CAPA_SIGNAL_TYPES = ("control_chart", "funnel", "recurrence", "theme", "qtl", "pareto", "event", "manual")
CAPA_STATUSES = ("Open", "In progress", "Closed", "Cancelled")
CAPA_ACTIONS = RecordTable(
    "capa_actions",
    "A CAPA opened in the workbench from a signal: each version is its state after one action (opened, status "
    "changed, due date extended), so the status history is the table's history.",
    key=("capa_ref",),
    columns=(
        RecordColumn("capa_ref", "text", "The CAPA's id, e.g. QM-1a2b3c4d5e.", required=True),
        RecordColumn("study_id", "text", "Study (studies.study_id), for the access scope.", required=True),
        RecordColumn("study_site_id", "text", "Study-site, when the CAPA concerns one site."),
        RecordColumn("signal_type", "text", "What it was opened from.", required=True, allowed=CAPA_SIGNAL_TYPES),
        RecordColumn("signal_id", "text", "Which signal (chart and month, theme, QTL, event), as the page names it."),
        RecordColumn("title", "text", "Short title.", required=True),
        RecordColumn("description", "text", "Problem and planned action."),
        RecordColumn("root_cause_category", "text", "Root-cause category, once known."),
        RecordColumn("owner", "text", "Accountable person.", required=True),
        RecordColumn("status", "text", "Status after this action.", required=True, allowed=CAPA_STATUSES),
        RecordColumn("original_due_date", "date", "Due date when opened (never changes).", required=True),
        RecordColumn("current_due_date", "date", "Due date after extensions.", required=True),
        RecordColumn("extension_count", "integer", "Times the due date was extended.", required=True),
        RecordColumn("reason", "text", "Why this version: the action taken and its justification.", required=True),
    ),
)
CAPA_EVENT_LINKS = RecordTable(
    "capa_event_links",
    "A quality event linked to (or unlinked from) a CAPA; unlinking is a new version with linked false.",
    key=("capa_ref", "quality_event_id"),
    columns=(
        RecordColumn("capa_ref", "text", "The CAPA (a workbench capa_ref, or QMS-<capa_id> for an imported CAPA).",
                     required=True),
        RecordColumn("quality_event_id", "integer", "Quality event (quality_events.quality_event_id).", required=True),
        RecordColumn("study_id", "text", "Study of the event, for the access scope.", required=True),
        RecordColumn("linked", "boolean", "True while the event is linked.", required=True),
        RecordColumn("note", "text", "Why it is (un)linked."),
    ),
)
CAPA_EFFECTIVENESS_CHECKS = RecordTable(
    "capa_effectiveness_checks",
    "The effectiveness check of a CAPA and its result; a repeated check is a new version.",
    key=("capa_ref",),
    columns=(
        RecordColumn("capa_ref", "text", "The CAPA (workbench capa_ref or QMS-<capa_id>).", required=True),
        RecordColumn("study_id", "text", "Study, for the access scope.", required=True),
        RecordColumn("check_date", "date", "Date the effectiveness was judged.", required=True),
        RecordColumn("result", "text", "Outcome.", required=True, allowed=("Effective", "Not effective")),
        RecordColumn("method", "text", "How it was judged (e.g. no recurrence in 3 months of monitoring).",
                     required=True),
        RecordColumn("evidence", "text", "What was looked at."),
    ),
)

CAPA_TABLES: tuple[RecordTable, ...] = (CAPA_ACTIONS, CAPA_EVENT_LINKS, CAPA_EFFECTIVENESS_CHECKS)


FEASIBILITY_SCENARIOS = RecordTable(
    "feasibility_scenarios",
    "A saved feasibility scenario (Feasibility page): its benchmark selection, inputs, assumptions and results; "
    "a re-save is a new version, removing it a version with withdrawn set.",
    key=("scenario_id",),
    columns=(
        RecordColumn("scenario_id", "text", "Stable id of the scenario.", required=True),
        RecordColumn("name", "text", "What the user called it.", required=True),
        RecordColumn("proposal", "text", "The request for proposal or opportunity it answers (free text)."),
        RecordColumn("selection", "json", "The benchmark filters (the page's URL parameters).", required=True),
        RecordColumn("inputs", "json", "Scenario inputs: target, sites, countries, ramp, rates, screen failure.",
                     required=True),
        RecordColumn("assumptions", "json", "Resource-estimate assumptions.", required=True),
        RecordColumn("results", "json", "What the simulation gave: timeline quantiles, P(on time), sites needed.",
                     required=True),
        RecordColumn("withdrawn", "boolean", "True when the scenario was removed from the comparison.", required=True),
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

RECORD_TABLES: tuple[RecordTable, ...] = (REVIEW_DISPOSITIONS, *DRAFTING_TABLES, PRESENTATION_LOCKS, *CAPA_TABLES,
                                          FEASIBILITY_SCENARIOS, PRESCREEN_DECISIONS, CRITERION_REVIEWS)

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
