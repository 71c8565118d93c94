"""What an approval says about itself: its nodes with their approvers, why it went where it
did, where it stands in a few words, and its trail of events.

A workflow instance is seen by whoever may see its ticket (``visible_order``); to anyone else
it does not exist. The approval flow (``approvals.flow``, ``approvals.acts``) reads its nodes
through here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.store.models import (
    ApprovalEvent,
    Order,
    User,
    WorkflowApprover,
    WorkflowInstance,
    WorkflowStep,
)
from opendms.store.paging import Page, paged
from opendms.store.states import ApprovalAction, StepStatus, WorkflowStatus
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of


def steps_of(s: Session, flow: WorkflowInstance) -> list[WorkflowStep]:
    """The flow's nodes, in order."""
    return list(
        s.scalars(
            select(WorkflowStep)
            .where(WorkflowStep.workflow_instance_id == flow.workflow_instance_id)
            .order_by(WorkflowStep.position)
        )
    )


def current_step(s: Session, flow: WorkflowInstance) -> WorkflowStep:
    """The node a flow in AUDITING waits at."""
    step = s.scalar(
        select(WorkflowStep).where(
            WorkflowStep.workflow_instance_id == flow.workflow_instance_id,
            WorkflowStep.position == flow.current_position,
        )
    )
    assert step is not None, "a flow in AUDITING has a current step"
    return step


def approvers_of(s: Session, step: WorkflowStep) -> list[int]:
    """Who may approve ``step`` now (those transferred away or excluded are kept, inactive)."""
    return list(
        s.scalars(
            select(WorkflowApprover.user_id)
            .where(WorkflowApprover.step_id == step.step_id, WorkflowApprover.active.is_(True))
            .order_by(WorkflowApprover.id)
        )
    )


def visible_order(
    s: Session, caller: Caller, workflow_instance_id: int, *, lock: bool = False
) -> Order:
    """The ticket of a workflow instance, if the caller may see it; otherwise the answer an
    unknown workflow instance gets."""
    order_id = s.scalar(
        select(WorkflowInstance.order_id).where(
            WorkflowInstance.workflow_instance_id == workflow_instance_id,
            WorkflowInstance.tid == caller.tid,
        )
    )
    try:
        if order_id is not None:
            return tickets.get_order(s, caller, order_id, lock=lock)
    except DmsError:
        pass
    raise DmsError(
        ErrorCode.WORKFLOW_NOT_FOUND, f"Workflow instance {workflow_instance_id} does not exist."
    )


@dataclass(frozen=True)
class ApprovalNodeView:
    """One node of an approval (its step) and who may approve it now."""

    step: WorkflowStep
    approvers: list[int]


@dataclass(frozen=True)
class Detail:
    """An approval as GetApprovalDetail shows it: its nodes in order, and the reasons it went
    where it did, with the note of a current node that has nobody to approve it."""

    flow: WorkflowInstance
    order: Order
    steps: list[ApprovalNodeView]
    reasons: list[str]

    @property
    def current(self) -> ApprovalNodeView | None:
        return next((v for v in self.steps if v.step.position == self.flow.current_position), None)

    @property
    def order_type(self) -> str:
        return kind_of(self.order.plugin_type).order_type


def detail(s: Session, caller: Caller, workflow_instance_id: int) -> Detail:
    order = visible_order(s, caller, workflow_instance_id)
    flow = s.get(WorkflowInstance, workflow_instance_id)
    assert flow is not None, "a workflow instance is never deleted while its ticket exists"
    return detail_of(s, flow, order)


def detail_of(s: Session, flow: WorkflowInstance, order: Order) -> Detail:
    steps = [ApprovalNodeView(step, approvers_of(s, step)) for step in steps_of(s, flow)]
    reasons = list(flow.reasons)
    reasons += [v.step.note for v in steps if v.step.note and v.step.status == StepStatus.AUDITING]
    return Detail(flow, order, steps, reasons)


# WorkflowStatusDesc of an approval that is over
FLOW_WORDS = {
    WorkflowStatus.APPROVED: "approved",
    WorkflowStatus.REJECT: "rejected",
    WorkflowStatus.CANCEL: "cancelled",
}


def status_line(s: Session, order: Order) -> str:
    """``WorkflowStatusDesc``: where the ticket's approval stands, in a few words."""
    flow = s.get(WorkflowInstance, order.workflow_instance_id or 0)
    if flow is None:
        return ""
    if flow.status != WorkflowStatus.AUDITING:
        return FLOW_WORDS[flow.status]
    step = current_step(s, flow)
    if step.note and not approvers_of(s, step):
        return f"waiting for an administrator: {step.note}"
    return f"waiting for node '{step.node_name}'"


def events(s: Session, caller: Caller, workflow_instance_id: int) -> Sequence[ApprovalEvent]:
    detail(s, caller, workflow_instance_id)  # visibility
    return s.scalars(
        select(ApprovalEvent)
        .where(ApprovalEvent.workflow_instance_id == workflow_instance_id)
        .order_by(ApprovalEvent.event_id)
    ).all()


def tenant_events(
    s: Session,
    caller: Caller,
    *,
    action: ApprovalAction | None = None,
    order_id: int | None = None,
    page: int = 1,
    size: int = 20,
) -> Page:
    """The approval trail across the tenant, newest first: each row ``(event, ticket, actor)``
    (the actor None when the act was the system's). An event is seen by whoever may see its
    ticket, as ListApprovalEvents shows it; an administrator sees them all."""
    query = (
        select(ApprovalEvent, Order, User)
        .join(Order, Order.order_id == ApprovalEvent.order_id)
        .outerjoin(User, User.user_id == ApprovalEvent.actor_id)
        .where(ApprovalEvent.tid == caller.tid, tickets.visible(caller))
    )
    if action is not None:
        query = query.where(ApprovalEvent.action == action)
    if order_id is not None:
        query = query.where(ApprovalEvent.order_id == order_id)
    return paged(s, query.order_by(ApprovalEvent.event_id.desc()), page, size)
