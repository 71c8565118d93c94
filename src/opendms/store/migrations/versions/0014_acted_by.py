"""audit rows name the access key's owner when a call acts for another user

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column is added in place on every engine (no table copy on SQLite), so the
    # triggers that refuse changes to these audit tables stay as they are.
    op.add_column("sql_audit", sa.Column("by_user_id", sa.BigInteger(), nullable=True))
    op.add_column("approval_events", sa.Column("by_user_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("approval_events", "by_user_id")
    op.drop_column("sql_audit", "by_user_id")
