"""Background work, leased by the job runners."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import Json, State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import JobState


class Job(Base):
    """A unit of background work (a ticket's precheck, execution…; an upload's fetch), run by
    the job runners."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_run_after", "state", "run_after"),
        Index("ix_jobs_order_kind", "order_id", "kind"),  # a ticket's newest job of a kind
    )

    job_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # None for work that is no ticket's (an upload job's fetch)
    order_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    # What the job was asked to do beyond its ticket (ExecuteDataCorrect's ActionDetail…).
    spec: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # queued (waiting, perhaps until run_after), running (leased), paused (until queued
    # again: PauseDataCorrectSQLJob, an execution window's end), succeeded, failed, cancelled
    state: Mapped[JobState] = mapped_column(State(JobState), default=JobState.QUEUED)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # With a broker: when the last "job N has work" message was sent for (or is due to be
    # delivered at); None while none is on its way. The sweeper re-sends a due job whose
    # message is older than its grace (lost, or its worker killed).
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class Process(Base):
    """A running ``opendms serve`` or ``opendms worker`` process, as its heartbeat last
    said: what ``/metrics`` reports as worker heartbeats and ``opendms processes`` lists."""

    __tablename__ = "processes"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid:random
    role: Mapped[str] = mapped_column(String(16))  # api | worker
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    jobs_running: Mapped[int] = mapped_column(Integer, default=0)
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)


class RateWindow(Base):
    """Requests of one access key on one action in one second, counted in the store so that
    a rate limit holds across every API process (when no Redis is configured)."""

    __tablename__ = "rate_windows"
    __table_args__ = (Index("ix_rate_windows_at_second", "at_second"),)

    access_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    at_second: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch second
    count: Mapped[int] = mapped_column(BigInteger, default=0)
