"""chunked

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("throttle", sa.Text(), server_default="{}", nullable=False))

    with op.batch_alter_table("sql_job_details", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.Text(), server_default="{}", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("sql_job_details", schema=None) as batch_op:
        batch_op.drop_column("progress")

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("throttle")
