"""The audit log, its head row, and the append-only triggers.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

from analytics.core.records_schema import (GENESIS_HASH, UtcDateTime, append_only_ddl, head_advance_only_ddl,
                                           refuse_change_function_ddl)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(refuse_change_function_ddl())
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object_type", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False, unique=True),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "record_hash": GENESIS_HASH}])
    for statement in append_only_ddl("audit_log", dialect) + head_advance_only_ddl(dialect):
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the audit log is never dropped by a migration: it is the record of who did what")
