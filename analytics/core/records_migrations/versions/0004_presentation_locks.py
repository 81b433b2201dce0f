"""presentation_locks: an operations lead's session locked to one sponsor, and released, append-only.

Revision ID: 0004_presentation_locks
Revises: 0003_drafting
"""

import sqlalchemy as sa
from alembic import op

from analytics.core.records_schema import UtcDateTime, append_only_ddl

revision = "0004_presentation_locks"
down_revision = "0003_drafting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presentation_locks",
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("sponsor_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.UniqueConstraint("user_id", "version", name="uq_presentation_locks_key_version"),
        sqlite_autoincrement=True,
    )
    for statement in append_only_ddl("presentation_locks", op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("records tables are never dropped by a migration: they are part of the audit trail")
