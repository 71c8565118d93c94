"""What a schema change found in a database: its tables as they were, as they should be, and
the DDL that makes them so."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import Json, State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import PlanState


class SchemaPlan(Base):
    """One database of a schema-change ticket compared with the shape it should have: a
    structure sync's target against its source (TABLE_SYNC), or a schema design's stage
    against the design (NDDL). Execution runs ``statements``, and only while the database's
    tables are still ``before``: a database that changed since it was compared is compared
    again, never changed blindly."""

    __tablename__ = "schema_plans"
    __table_args__ = (UniqueConstraint("order_id", "db_id", name="uq_schema_plans"),)

    plan_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.order_id", ondelete="CASCADE"))
    db_id: Mapped[int] = mapped_column(BigInteger)  # the database the statements change
    source_db_id: Mapped[int | None] = mapped_column(BigInteger)  # TABLE_SYNC's source
    position: Mapped[int] = mapped_column(Integer, default=0)  # a design's stage order
    state: Mapped[PlanState] = mapped_column(State(PlanState), default=PlanState.COMPARING)
    # Per table compared: {"source", "target", "compare_type" (CREATE_TABLE, ALTER_TABLE,
    # EQUAL_TABLE, PASS_TABLE), "differences": [text], "statements": [DDL]}.
    tables: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    # Table definitions (``schema.model.Table.to_json``) by name: the database's as compared,
    # and what they should be.
    before: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    desired: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    statements: Mapped[list[str]] = mapped_column(Json, default=list)  # all, in order
    message: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(BigInteger)  # the comparison that wrote it
    analyzed_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SchemaDesign(Base):
    """A schema design ticket's design (NDDL): the DDL its committer wrote, what review found
    in it, and the shape of the tables it touches before and after it, as tried on a scratch
    copy of its base database's tables. Each stage's database is compared with ``desired``
    (a ``SchemaPlan`` per stage)."""

    __tablename__ = "schema_designs"

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    script: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=0)  # UpdateSchemaDesign calls
    # Review findings: {"code", "level", "statement", "line", "message"}.
    findings: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    tables: Mapped[list[str]] = mapped_column(Json, default=list)  # those the script touches
    # Definitions by table name (``schema.model.Table.to_json``): the base database's tables
    # as the design first found them, and as the script leaves them (a table it drops is
    # absent).
    before: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    desired: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[PlanState] = mapped_column(State(PlanState), default=PlanState.COMPARING)
    message: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(BigInteger)  # the comparison that wrote it
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
