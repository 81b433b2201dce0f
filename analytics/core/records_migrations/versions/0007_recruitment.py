"""prescreen_decisions and criterion_reviews: recruitment's append-only tables.

Revision ID: 0007_recruitment
Revises: 0006_feasibility_scenarios
"""

import sqlalchemy as sa
from alembic import op

from analytics.core.records_schema import UtcDateTime, append_only_ddl

revision = "0007_recruitment"
down_revision = "0006_feasibility_scenarios"
branch_labels = None
depends_on = None


def _system_columns() -> list[sa.Column]:
    return [
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "prescreen_decisions",
        *_system_columns(),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("study_site_id", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("prescreen_result", sa.Text(), nullable=True),
        sa.Column("unknown_criteria", sa.BigInteger(), nullable=True),
        sa.Column("criteria_version", sa.Text(), nullable=True),
        sa.UniqueConstraint("study_id", "patient_id", "version", name="uq_prescreen_decisions_key_version"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "criterion_reviews",
        *_system_columns(),
        sa.Column("study_id", sa.Text(), nullable=False),
        sa.Column("criterion_key", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("structure", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("study_id", "criterion_key", "version", name="uq_criterion_reviews_key_version"),
        sqlite_autoincrement=True,
    )
    dialect = op.get_bind().dialect.name
    for table in ("prescreen_decisions", "criterion_reviews"):
        for statement in append_only_ddl(table, dialect):
            op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("records tables are never dropped by a migration: they hold signed-off decisions")
