"""CAPA actions, event links and effectiveness checks (CAPA trends page), append-only.

Revision ID: 0005_capa
Revises: 0004_presentation_locks
"""

import sqlalchemy as sa
from alembic import op

from analytics.core.records_schema import UtcDateTime, append_only_ddl

revision = "0005_capa"
down_revision = "0004_presentation_locks"
branch_labels = None
depends_on = None


def _system() -> list[sa.Column]:
    return [
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "capa_actions", *_system(),
        sa.Column("capa_ref", sa.Text(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("study_site_id", sa.Text(), nullable=True),
        sa.Column("signal_type", sa.Text(), nullable=False),
        sa.Column("signal_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("root_cause_category", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("original_due_date", sa.Date(), nullable=False),
        sa.Column("current_due_date", sa.Date(), nullable=False),
        sa.Column("extension_count", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.UniqueConstraint("capa_ref", "version", name="uq_capa_actions_key_version"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "capa_event_links", *_system(),
        sa.Column("capa_ref", sa.Text(), nullable=False),
        sa.Column("quality_event_id", sa.BigInteger(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("linked", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("capa_ref", "quality_event_id", "version", name="uq_capa_event_links_key_version"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "capa_effectiveness_checks", *_system(),
        sa.Column("capa_ref", sa.Text(), nullable=False),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("check_date", sa.Date(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.UniqueConstraint("capa_ref", "version", name="uq_capa_effectiveness_checks_key_version"),
        sqlite_autoincrement=True,
    )
    for table in ("capa_actions", "capa_event_links", "capa_effectiveness_checks"):
        for statement in append_only_ddl(table, op.get_bind().dialect.name):
            op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("records tables are never dropped by a migration: they hold signed-off decisions")
