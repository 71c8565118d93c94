"""ticket list indexes: orders by status and by committer, a ticket's jobs, a database's tickets

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ListOrders' status filters and AS_HANDLER (waiting tickets are few among many), and
    # AS_COMMITTER, the default scope: each reads its tickets instead of every one.
    op.create_index("ix_orders_tid_status", "orders", ["tid", "status_code"])
    op.create_index("ix_orders_tid_committer", "orders", ["tid", "committer_id"])
    # A ticket's newest job of a kind (StatusDesc, GetOrderBaseInfo, closing a ticket):
    # without it every such lookup read the whole jobs table.
    op.create_index("ix_jobs_order_kind", "jobs", ["order_id", "kind"])
    # The console's database filter.
    op.create_index("ix_order_databases_db_id", "order_databases", ["db_id"])


def downgrade() -> None:
    op.drop_index("ix_order_databases_db_id", table_name="order_databases")
    op.drop_index("ix_jobs_order_kind", table_name="jobs")
    op.drop_index("ix_orders_tid_committer", table_name="orders")
    op.drop_index("ix_orders_tid_status", table_name="orders")
