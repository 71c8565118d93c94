"""Running a ticket's statements on its targets: SQL jobs, their statements, cleanup
schedules' fire times, and the audit log of every statement run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import Json, State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import ExecState, SqlJobStatus


class SqlJob(Base):
    """The execution of a ticket's statements in one database (DMS ``JobId``), part of the
    ticket's execute job (``DBTaskGroupId``)."""

    __tablename__ = "sql_jobs"
    __table_args__ = (Index("ix_sql_jobs_group", "group_id", "position"),)

    sql_job_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[int] = mapped_column(BigInteger)  # jobs.job_id of the execute job
    db_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    # Names this job's progress markers on the target: unique across installations sharing it.
    token: Mapped[str] = mapped_column(String(32))
    job_type: Mapped[str] = mapped_column(String(32), default="DATA_CORRECT")
    status: Mapped[SqlJobStatus] = mapped_column(State(SqlJobStatus), default=SqlJobStatus.INIT)
    transactional: Mapped[bool] = mapped_column(default=False)
    backup: Mapped[bool] = mapped_column(default=False)
    affect_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    log: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_exec_at: Mapped[datetime | None] = mapped_column(DateTime)


class SqlJobDetail(Base):
    """One statement of a SQL job and what running it did (DMS ``JobDetailId``)."""

    __tablename__ = "sql_job_details"
    __table_args__ = (UniqueConstraint("sql_job_id", "number", name="uq_sql_job_details"),)

    detail_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sql_job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sql_jobs.sql_job_id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    sql_id: Mapped[int] = mapped_column(BigInteger)  # precheck_statements.sql_id
    sql_text: Mapped[str] = mapped_column(Text)
    sql_type: Mapped[str] = mapped_column(String(32))
    # INIT, RUNNING, SUCCESS, FAIL
    status: Mapped[SqlJobStatus] = mapped_column(State(SqlJobStatus), default=SqlJobStatus.INIT)
    affect_rows: Mapped[int | None] = mapped_column(BigInteger)
    execute_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    time_ms: Mapped[int | None] = mapped_column(BigInteger)
    log: Mapped[str] = mapped_column(Text, default="")
    # With backupData, where the rows it changed were saved on the target, JSON: table (the
    # backup table there), of (the changed table), kind, key (its primary key), rows.
    backup: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # A chunked statement's progress, JSON (execution.chunked.Progress): rows done and
    # estimated, chunks, the current key and chunk size, rate, throttle state and why.
    progress: Mapped[dict[str, Any]] = mapped_column(Json, default=dict, server_default="{}")


class CronRun(Base):
    """One fire time of a cleanup ticket's schedule (DC_CRON_CLEAR): keyed by (ticket, fire
    time), so two schedulers or a restart cannot run it twice."""

    __tablename__ = "cron_runs"
    __table_args__ = (UniqueConstraint("order_id", "fire_at", name="uq_cron_runs_fire"),)

    run_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    fire_at: Mapped[datetime] = mapped_column(DateTime)  # UTC
    job_id: Mapped[int | None] = mapped_column(BigInteger)  # its execute job; None: skipped
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SqlAudit(Base):
    """Every statement OpenDMS ran on a target for someone (``ListSQLExecAuditLog``); written
    once, and database triggers refuse UPDATE and DELETE (migration 0008)."""

    __tablename__ = "sql_audit"
    __table_args__ = (Index("ix_sql_audit_tid_time", "tid", "op_time"),)

    audit_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    # the user whose access key made the call, when it acted for ``user_id``
    # (RealLoginUserUid); None when they are the same
    by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    instance_id: Mapped[int] = mapped_column(BigInteger)
    db_id: Mapped[int] = mapped_column(BigInteger)
    schema_name: Mapped[str] = mapped_column(String(256))
    sql_text: Mapped[str] = mapped_column(Text)
    sql_type: Mapped[str] = mapped_column(String(32))
    affect_rows: Mapped[int | None] = mapped_column(BigInteger)
    elapsed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    exec_state: Mapped[ExecState] = mapped_column(State(ExecState))
    remark: Mapped[str] = mapped_column(Text, default="")
    op_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
