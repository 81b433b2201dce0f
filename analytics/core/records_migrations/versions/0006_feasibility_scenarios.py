"""feasibility_scenarios: saved scenarios of the Feasibility page, append-only.

Revision ID: 0006_feasibility_scenarios
Revises: 0005_capa
"""

import sqlalchemy as sa
from alembic import op

from analytics.core.records_schema import UtcDateTime, append_only_ddl

revision = "0006_feasibility_scenarios"
down_revision = "0005_capa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feasibility_scenarios",
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("scenario_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("proposal", sa.Text(), nullable=True),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("assumptions", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("scenario_id", "version", name="uq_feasibility_scenarios_key_version"),
        sqlite_autoincrement=True,
    )
    for statement in append_only_ddl("feasibility_scenarios", op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("records tables are never dropped by a migration: they hold saved decisions")
