"""The approval flow of a ticket: submission, reaching its nodes one after another, and its
end once the last is approved.

``submit`` routes the ticket (``approvals.routing``), writes its workflow instance and steps,
and reaches the first node; the acts on a node (``approvals.acts``) move the flow on through
``reach`` and ``finish`` here. Reaching a node resolves its approvers then, not at submission,
so they are who the rules name when the ticket gets there. Every move is written to the
approval trail (``event``); the ticket's own status moves through ``tickets.lifecycle``, with
the ``workflow`` block of its webhook events made here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opendms.approvals import routing
from opendms.approvals.views import approvers_of, detail_of
from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.notify import webhooks
from opendms.precheck import service as precheck
from opendms.rulebook import templates
from opendms.store.models import (
    ApprovalEvent,
    Order,
    WorkflowApprover,
    WorkflowInstance,
    WorkflowNode,
    WorkflowStep,
)
from opendms.store.states import (
    ApprovalAction,
    OrderStatus,
    StepStatus,
    WorkflowStatus,
)
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of


def record_event(
    s: Session,
    flow: WorkflowInstance,
    action: ApprovalAction,
    actor: Caller,
    *,
    step: WorkflowStep | None = None,
    comment: str = "",
    detail: str = "",
    on_behalf_of: int | None = None,
) -> None:
    """One line of the approval trail (``approval_events``, which refuses changes): who
    acted, and whose access key made the call when it acted for them."""
    s.add(
        ApprovalEvent(
            tid=flow.tid,
            order_id=flow.order_id,
            workflow_instance_id=flow.workflow_instance_id,
            action=action,
            actor_id=actor.user_id,
            by_user_id=actor.by_user_id,
            on_behalf_of=on_behalf_of,
            position=step.position if step else None,
            node_name=step.node_name if step else "",
            comment=comment,
            detail=detail,
        )
    )


def approved_before(s: Session, flow: WorkflowInstance) -> set[int]:
    """Who approved a node of this flow already."""
    operators = s.scalars(
        select(WorkflowStep.operator_id).where(
            WorkflowStep.workflow_instance_id == flow.workflow_instance_id,
            WorkflowStep.status == StepStatus.APPROVED,
        )
    )
    return {u for u in operators if u is not None}


def _tables(flow: WorkflowInstance) -> list[str]:
    return list(flow.tables)


def reach(s: Session, order: Order, flow: WorkflowInstance, step: WorkflowStep) -> None:
    """Make ``step`` the current node, resolving its approvers now. A node reached before
    (a node was inserted ahead of it) keeps its approvers, less anyone the rules now exclude."""
    flow.current_position = step.position
    step.status = StepStatus.AUDITING
    kept = approvers_of(s, step)
    if kept:
        before = approved_before(s, flow)
        dropped = [
            u
            for u in kept
            if routing.may_approve(u, order, flow.self_approval, flow.one_node_per_approver, before)
        ]
        deactivate(s, step, dropped)
        if len(dropped) == len(kept):
            step.note = (
                f"Node '{step.node_name}' has no approver: everyone it names already approved "
                "a node of this ticket."
            )
        return
    node = s.get(WorkflowNode, step.node_id)
    if node is None:  # deleted with its tenant's configuration; nobody to ask
        step.note = f"Node '{step.node_name}' no longer exists."
        return
    resolved = routing.resolve(
        s,
        order,
        node,
        _tables(flow),
        self_approval=flow.self_approval,
        one_node_per_approver=flow.one_node_per_approver,
        approved_before=approved_before(s, flow),
    )
    step.note = resolved.note
    s.add_all(WorkflowApprover(step_id=step.step_id, user_id=u) for u in resolved.approvers)
    s.flush()


def deactivate(s: Session, step: WorkflowStep, user_ids: Sequence[int]) -> None:
    """``user_ids`` no longer approve ``step`` (they stay on it, inactive: the ticket stays
    visible to them)."""
    if user_ids:
        s.execute(
            update(WorkflowApprover)
            .where(
                WorkflowApprover.step_id == step.step_id,
                WorkflowApprover.user_id.in_(user_ids),
            )
            .values(active=False)
        )


def finish(
    s: Session, order: Order, flow: WorkflowInstance, actor: Caller | None, comment: str = ""
) -> None:
    """The last node is approved (or there was none): the ticket is approved, and its kind
    says what happens next."""
    flow.status = WorkflowStatus.APPROVED
    flow.current_position = None
    s.flush()
    lifecycle.transition(
        s,
        order,
        OrderStatus.APPROVED,
        actor=actor,
        comment=comment,
        event=workflow_block(s, flow, order),
    )
    kind_of(order.plugin_type).approved(s, order)  # start it, arm its schedule, or wait


def submit_refusal(s: Session, caller: Caller, order: Order) -> DmsError | None:
    """Why the caller may not submit the ticket now (before its security rules are asked);
    None: they may."""
    if order.committer_id != caller.user_id:
        return DmsError(ErrorCode.PERMISSION_DENIED, "Only the committer submits a ticket.")
    if order.status_code != OrderStatus.NEW:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is {order.status_code}; only a new ticket is submitted.",
        )
    kind = kind_of(order.plugin_type)
    short = precheck.shortfall(s, order) if kind.has_precheck else None
    if short is not None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is submitted once it passed its precheck; {short}",
        )
    not_yet = kind.submit_refusal(s, order)
    if not_yet is not None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} cannot be submitted: {not_yet}",
        )
    return None


def submit(s: Session, caller: Caller, order_id: int) -> WorkflowInstance:
    """Send a ticket for approval (dms-api.md A.2.3).

    The gate: a ticket must be ``new``. A ticket of a type whose precheck exists
    (``TicketKind.has_precheck``) must also have passed it; types without a precheck yet are
    submitted straight from ``new``."""
    order = tickets.get_order(s, caller, order_id, lock=True)
    refusal = submit_refusal(s, caller, order)
    if refusal is not None:
        raise refusal
    route = routing.route(s, order)
    decision = route.decision
    if decision.forbidden:
        raise DmsError(
            ErrorCode.ORDER_FORBIDDEN,
            "The security rules forbid this ticket: " + "; ".join(decision.forbidden),
        )
    flow = WorkflowInstance(
        tid=order.tid,
        order_id=order.order_id,
        template_id=route.template.template_id if route.template else templates.NO_APPROVAL,
        template_name=route.template.name if route.template else "No approval",
        risk=decision.risk,
        rule_set=decision.rule_set,
        reasons=list(decision.reasons),
        tables=route.tables,
        self_approval=decision.self_approval,
        one_node_per_approver=decision.one_node_per_approver,
    )
    s.add(flow)
    s.flush()
    steps = [
        WorkflowStep(
            workflow_instance_id=flow.workflow_instance_id,
            position=i,
            node_id=node.node_id,
            node_name=node.name,
            node_type=node.node_type,
            system_kind=node.system_kind,
        )
        for i, (node, _) in enumerate(route.nodes, start=1)
    ]
    s.add_all(steps)
    order.workflow_instance_id = flow.workflow_instance_id
    s.flush()
    record_event(s, flow, ApprovalAction.SUBMIT, caller, detail=f"template {flow.template_name}")
    if steps:
        reach(s, order, flow, steps[0])
    # after the first node is reached: the event names it and its approvers
    lifecycle.transition(
        s, order, OrderStatus.TOAUDIT, actor=caller, event=workflow_block(s, flow, order)
    )
    if not steps:
        finish(s, order, flow, None)
    s.flush()
    return flow


def workflow_block(s: Session, flow: WorkflowInstance, order: Order) -> dict[str, Any]:
    """The ``workflow`` block of an approval's webhook events (docs/webhooks.md)."""
    current = detail_of(s, flow, order).current
    return {
        "workflow": {
            "workflow_instance_id": flow.workflow_instance_id,
            "status": flow.status,
            "template": flow.template_name,
            "risk": flow.risk,
            "current_node": current.step.node_name if current else None,
            "current_approvers": current.approvers if current else [],
        },
    }


def notify(
    s: Session,
    order: Order,
    flow: WorkflowInstance,
    event: str,
    actor: Caller | None,
    comment: str = "",
) -> None:
    """An approval event that moves no status (a transfer, a node added); the moves fire
    theirs in ``tickets.lifecycle``."""
    data = {**webhooks.ticket_event(order, actor, comment), **workflow_block(s, flow, order)}
    webhooks.emit(s, order.tid, event, data)
