"""Tickets and the databases they target."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import OrderStatus


class Order(Base):
    """A ticket (DMS "order")."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_tid_created", "tid", "created_at"),
        Index("ix_orders_tid_status", "tid", "status_code"),  # status filters, AS_HANDLER
        Index("ix_orders_tid_committer", "tid", "committer_id"),  # AS_COMMITTER
    )

    order_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    plugin_type: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[OrderStatus] = mapped_column(State(OrderStatus), default=OrderStatus.NEW)
    committer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id"))
    comment: Mapped[str] = mapped_column(Text, default="")
    # ",5,7," so that one LIKE finds a member; empty as ",".
    related_user_ids: Mapped[str] = mapped_column(Text, default=",")
    # The type's parameters, validated and normalised (PascalCase keys), as JSON.
    params: Mapped[str] = mapped_column(Text)
    # What ListOrders' SearchContent looks through: the comment and every text parameter
    # (SQL, table names…) as plain text, not JSON-escaped.
    search_text: Mapped[str] = mapped_column(Text, default="")
    attachment_key: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("attachments.attachment_key")
    )
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    workflow_instance_id: Mapped[int | None] = mapped_column(BigInteger)
    close_reason: Mapped[str | None] = mapped_column(Text)
    # SkipDataCorrectRowCheck: who waived a row-count mismatch, and why (cleared with the SQL).
    row_check_waived_by: Mapped[int | None] = mapped_column(BigInteger)
    row_check_waiver: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class OrderDatabase(Base):
    """The databases a ticket targets (visibility and search go through here)."""

    __tablename__ = "order_databases"

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    db_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    instance_id: Mapped[int] = mapped_column(BigInteger, index=True)
