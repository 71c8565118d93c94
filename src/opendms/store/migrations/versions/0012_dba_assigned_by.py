"""instances.dba_assigned_by: who named an instance's DBA

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Rows registered earlier keep NULL: nobody knows who named their DBA (a DBA could name
itself), so those DBAs hold no rights over tickets until an ADMIN or the operator assigns
them again (catalog/dba.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dba_assigned_by", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("dba_assigned_by")
