"""drafts, draft_edits, draft_signatures, model_calls: the drafting assistant's trail, append-only.

Revision ID: 0003_drafting
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from analytics.core.records_schema import UtcDateTime, append_only_ddl

revision = "0003_drafting"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen at this revision: table -> (object key, ((column, type, nullable), ...)).
TABLES = {
    "drafts": (("draft_id",), (
        ("draft_id", sa.Text(), False),
        ("study_id", sa.Text(), False),
        ("study_ids", sa.JSON(), False),
        ("document_type", sa.Text(), False),
        ("subject", sa.Text(), False),
        ("title", sa.Text(), False),
        ("template_version", sa.Text(), False),
        ("facts", sa.JSON(), False),
        ("facts_sha256", sa.Text(), False),
        ("origin", sa.Text(), False),
        ("fallback_reason", sa.Text(), True),
        ("call_id", sa.Text(), True),
        ("text", sa.Text(), False),
        ("text_sha256", sa.Text(), False),
        ("checker", sa.JSON(), False),
        ("hard_violations", sa.BigInteger(), False),
    )),
    "draft_edits": (("draft_id",), (
        ("draft_id", sa.Text(), False),
        ("study_id", sa.Text(), False),
        ("text", sa.Text(), False),
        ("text_sha256", sa.Text(), False),
        ("previous_sha256", sa.Text(), False),
        ("reason", sa.Text(), False),
        ("checker", sa.JSON(), False),
        ("hard_violations", sa.BigInteger(), False),
    )),
    "draft_signatures": (("signature_id",), (
        ("signature_id", sa.Text(), False),
        ("draft_id", sa.Text(), False),
        ("study_id", sa.Text(), False),
        ("signer_id", sa.Text(), False),
        ("printed_name", sa.Text(), False),
        ("meaning", sa.Text(), False),
        ("text_sha256", sa.Text(), False),
        ("hard_violations", sa.BigInteger(), False),
        ("justification", sa.Text(), True),
    )),
    "model_calls": (("call_id",), (
        ("call_id", sa.Text(), False),
        ("draft_id", sa.Text(), False),
        ("study_id", sa.Text(), False),
        ("endpoint_host", sa.Text(), False),
        ("loopback", sa.Boolean(), False),
        ("deidentified", sa.Boolean(), False),
        ("model_requested", sa.Text(), False),
        ("model_reported", sa.Text(), True),
        ("parameters", sa.JSON(), False),
        ("prompt", sa.JSON(), False),
        ("prompt_sha256", sa.Text(), False),
        ("raw_output", sa.Text(), True),
        ("raw_output_sha256", sa.Text(), True),
        ("outcome", sa.Text(), False),
        ("error", sa.Text(), True),
        ("attempts", sa.BigInteger(), False),
        ("seconds", sa.Float(), False),
    )),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, (key, columns) in TABLES.items():
        op.create_table(
            name,
            sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                      autoincrement=True),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("actor", sa.Text(), nullable=False),
            sa.Column("recorded_at", UtcDateTime(), nullable=False),
            *(sa.Column(column, kind, nullable=nullable) for column, kind, nullable in columns),
            sa.UniqueConstraint(*key, "version", name=f"uq_{name}_key_version"),
            sqlite_autoincrement=True,
        )
        for statement in append_only_ddl(name, dialect):
            op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("records tables are never dropped by a migration: they hold signed documents")
