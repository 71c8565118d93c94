"""upload jobs run on the job runners: a job need not belong to a ticket

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # On SQLite this copies the table (Store.migrate turns foreign keys off meanwhile, or
    # dropping the old copy would cascade to export_files).
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=_ID, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE order_id IS NULL")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=_ID, nullable=False)
