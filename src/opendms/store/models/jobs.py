"""Background work, leased by the job runners."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
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
