"""A ticket's latest precheck: its steps and the statements it found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import Json, State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import PrecheckStepStatus, ReviewStatus


class PrecheckStep(Base):
    """One of the four precheck steps of a ticket's latest precheck run (dms-api.md B.2)."""

    __tablename__ = "precheck_steps"

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(32), primary_key=True)  # SQL_PARSE … ROW_CHECK
    position: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int] = mapped_column(BigInteger)  # the precheck run that wrote it
    status: Mapped[PrecheckStepStatus] = mapped_column(
        State(PrecheckStepStatus), default=PrecheckStepStatus.WAITING
    )
    user_tip: Mapped[str] = mapped_column(Text, default="")
    # A failure SkipDataCorrectRowCheck may waive: a row count that differs from the estimate
    # (not a database that could not be asked).
    waivable: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PrecheckStatement(Base):
    """A statement of a ticket's SQL as its latest precheck found it in one database: what
    it is, what it touches, how many rows it changes there, and what review said. Execution
    runs exactly these statements."""

    __tablename__ = "precheck_statements"
    __table_args__ = (
        UniqueConstraint("order_id", "db_id", "number", name="uq_precheck_statements"),
    )

    sql_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.order_id", ondelete="CASCADE"))
    db_id: Mapped[int] = mapped_column(BigInteger)
    number: Mapped[int] = mapped_column(Integer)  # 1-based, in script order
    line: Mapped[int] = mapped_column(Integer, default=1)
    sql_text: Mapped[str] = mapped_column(Text)
    sql_type: Mapped[str] = mapped_column(String(32))  # INSERT, UPDATE, …
    table_names: Mapped[str] = mapped_column(Text, default="")  # comma-separated
    affect_rows: Mapped[int | None] = mapped_column(BigInteger)
    # How affect_rows was found: COUNT, ESTIMATE (the count ran out of time), LITERAL
    # (INSERT … VALUES), or UNKNOWN.
    rows_source: Mapped[str] = mapped_column(String(16), default="UNKNOWN")
    review_status: Mapped[ReviewStatus] = mapped_column(
        State(ReviewStatus), default=ReviewStatus.WAITING
    )
    # each: code, level, message
    findings: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
