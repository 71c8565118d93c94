"""cron_runs

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cron_runs",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fire_at", sa.DateTime(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.order_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
        sa.UniqueConstraint("order_id", "fire_at", name="uq_cron_runs_fire"),
    )
    with op.batch_alter_table("cron_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cron_runs_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cron_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cron_runs_order_id"))

    op.drop_table("cron_runs")
