"""A ticket's approval runs: their steps, who may act on them, and the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import Json, State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import ApprovalAction, StepStatus, WorkflowStatus


class WorkflowInstance(Base):
    """One approval run of a ticket (DMS ``WorkflowInstanceId``), with the decision that
    chose its template. Approval acts lock this row, so they apply one at a time."""

    __tablename__ = "workflow_instances"

    workflow_instance_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    template_id: Mapped[int] = mapped_column(BigInteger)  # -1: no approval needed
    template_name: Mapped[str] = mapped_column(String(128))
    status: Mapped[WorkflowStatus] = mapped_column(
        State(WorkflowStatus), default=WorkflowStatus.AUDITING
    )
    current_position: Mapped[int | None] = mapped_column(Integer)
    risk: Mapped[str] = mapped_column(String(16))  # NONE, LOW, MIDDLE, HIGH, HIGHEST
    rule_set: Mapped[str] = mapped_column(String(256))
    reasons: Mapped[list[str]] = mapped_column(Json, default=list)  # sentences
    # The tables the ticket touches ("schema.table", JSON): an Owner node reached later
    # resolves to their owners without analysing the SQL again.
    tables: Mapped[list[str]] = mapped_column(Json, default=list)
    self_approval: Mapped[bool] = mapped_column(default=False)
    one_node_per_approver: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class WorkflowStep(Base):
    """A node of a workflow instance, copied from the template at submission (or inserted by
    ADD_APPROVAL_NODE). Its approvers are resolved when the flow reaches it."""

    __tablename__ = "workflow_steps"
    __table_args__ = (Index("ix_workflow_steps_instance", "workflow_instance_id", "position"),)

    step_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workflow_instance_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_instances.workflow_instance_id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[int] = mapped_column(BigInteger)
    node_name: Mapped[str] = mapped_column(String(128))
    node_type: Mapped[str] = mapped_column(String(16))
    system_kind: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[StepStatus] = mapped_column(State(StepStatus), default=StepStatus.WAITING)
    # Why the node resolved to nobody (or to fewer people than it names), for the ticket to say.
    note: Mapped[str] = mapped_column(Text, default="")
    operator_id: Mapped[int | None] = mapped_column(BigInteger)
    operate_comment: Mapped[str | None] = mapped_column(Text)
    operated_at: Mapped[datetime | None] = mapped_column(DateTime)


class WorkflowApprover(Base):
    """Who may act on a step. A transfer deactivates the old approver instead of deleting it,
    so whoever was ever asked keeps sight of the ticket."""

    __tablename__ = "workflow_approvers"
    __table_args__ = (Index("ix_workflow_approvers_user", "user_id", "active"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    step_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_steps.step_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True)


class ApprovalEvent(Base):
    """The audit trail of approvals: one row per act, written once. Nothing in OpenDMS
    updates or deletes these rows, and database triggers refuse it (migration 0007)."""

    __tablename__ = "approval_events"
    __table_args__ = (Index("ix_approval_events_instance", "workflow_instance_id", "event_id"),)

    event_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    workflow_instance_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[ApprovalAction] = mapped_column(State(ApprovalAction, 32))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    # the user whose access key made the call, when it acted for ``actor_id``
    # (RealLoginUserUid); None when they are the same
    by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    on_behalf_of: Mapped[int | None] = mapped_column(BigInteger)
    position: Mapped[int | None] = mapped_column(Integer)
    node_name: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
