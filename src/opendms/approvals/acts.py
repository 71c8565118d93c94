"""The acts of ApproveOrder on a ticket's approval: AGREE, REJECT, CANCEL, TRANSFER and
ADD_APPROVAL_NODE, each on the node the flow is at.

An act is for the node the flow was at when its request came in (read before waiting for any
lock). It then locks the ticket and the workflow instance (``SELECT … FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE`` serialises writers anyway), so acts on one ticket apply one after the
other; one that finds the flow moved on does not apply to a node its sender never saw. An
approver approves at most one node of a ticket (unless the rule set says otherwise), so a
repeated AGREE, from a double click or a retried request, finds nothing left for that person
to approve and is answered as the repeat it is instead of approving the next node.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opendms.approvals import facts as ticket_facts
from opendms.approvals import routing
from opendms.approvals.flow import (
    approved_before,
    deactivate,
    finish,
    notify,
    reach,
    record_event,
    workflow_block,
)
from opendms.approvals.views import approvers_of, current_step, steps_of, visible_order
from opendms.catalog import dba
from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.store.models import (
    ApprovalEvent,
    Order,
    User,
    WorkflowApprover,
    WorkflowInstance,
    WorkflowNode,
    WorkflowStep,
    utcnow,
)
from opendms.store.states import ApprovalAction, OrderStatus, StepStatus, UserState, WorkflowStatus
from opendms.tickets import lifecycle

APPROVAL_TYPES = (
    ApprovalAction.AGREE,
    ApprovalAction.REJECT,
    ApprovalAction.CANCEL,
    ApprovalAction.TRANSFER,
    ApprovalAction.ADD_APPROVAL_NODE,
)
# The acts that decide a node; one arriving twice is answered as a repeat.
DECISIONS = (ApprovalAction.AGREE, ApprovalAction.REJECT, ApprovalAction.CANCEL)
NODE_POSITIONS = ("PRE_ADD_APPROVAL_NODE", "POST_ADD_APPROVAL_NODE")


@dataclass(frozen=True)
class Act:
    """One ApproveOrder: the act and what it needs (TRANSFER: the new approvers, and whose
    place they take; ADD_APPROVAL_NODE: the node and on which side of the current one)."""

    approval_type: str
    comment: str = ""
    new_approvers: tuple[int, ...] = ()
    old_approver: int | None = None
    node_id: int | None = None
    node_position: str | None = None


def _locked_flow(
    s: Session, caller: Caller, workflow_instance_id: int
) -> tuple[WorkflowInstance, Order]:
    """The flow and its ticket, both locked: the ticket first, as every writer of a ticket
    (submission, closing) takes its row first, so no two of them wait on each other."""
    order = visible_order(s, caller, workflow_instance_id, lock=True)
    flow = s.get(
        WorkflowInstance, workflow_instance_id, with_for_update=True, populate_existing=True
    )
    assert flow is not None, "a workflow instance is never deleted while its ticket exists"
    return flow, order


def _last_act(s: Session, flow: WorkflowInstance, user_id: int) -> str | None:
    return s.scalar(
        select(ApprovalEvent.action)
        .where(
            ApprovalEvent.workflow_instance_id == flow.workflow_instance_id,
            ApprovalEvent.actor_id == user_id,
            ApprovalEvent.action.in_(DECISIONS),
        )
        .order_by(ApprovalEvent.event_id.desc())
        .limit(1)
    )


def act(s: Session, caller: Caller, workflow_instance_id: int, what: Act) -> WorkflowInstance:
    """Apply one ``ApproveOrder`` (dms-api.md A.2.4) to the node the flow is at."""
    if what.approval_type not in APPROVAL_TYPES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"ApprovalType must be one of {', '.join(APPROVAL_TYPES)}.",
        )
    seen = _seen_step(s, caller, workflow_instance_id)
    flow, order = _locked_flow(s, caller, workflow_instance_id)
    step = current_step(s, flow) if flow.status == WorkflowStatus.AUDITING else None
    if _is_repeat(s, flow, step, caller, what.approval_type):
        record_event(s, flow, ApprovalAction.REPEAT, caller, step=step, detail=what.approval_type)
        s.flush()
        return flow
    moved = seen is not None and (step is None or step.step_id != seen)
    meant = s.get(WorkflowStep, seen) if moved and seen is not None else None
    agree = ApprovalAction.AGREE
    if meant is not None and meant.status == StepStatus.APPROVED and what.approval_type == agree:
        # another approver approved the node this request came for while it waited
        record_event(s, flow, ApprovalAction.SUPERSEDED, caller, step=step, detail=agree.value)
        s.flush()
        return flow
    if step is None:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"The approval of ticket {order.order_id} is over ({flow.status}).",
        )
    if moved and what.approval_type != ApprovalAction.CANCEL:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"The approval of ticket {order.order_id} moved on to node '{step.node_name}' "
            "while this request waited; nothing was done. Look at it again.",
        )
    handler = {
        ApprovalAction.AGREE: _agree,
        ApprovalAction.REJECT: _reject,
        ApprovalAction.CANCEL: _cancel,
        ApprovalAction.TRANSFER: _transfer,
        ApprovalAction.ADD_APPROVAL_NODE: _add_node,
    }[ApprovalAction(what.approval_type)]
    handler(s, caller, order, flow, step, what)
    order.updated_at = utcnow()
    s.flush()
    return flow


def _seen_step(s: Session, caller: Caller, workflow_instance_id: int) -> int | None:
    """The node the flow was at when this request came in: read before waiting for the
    flow's lock, so an act that waited behind another applies to what its sender saw, not
    to the node the other act moved the flow on to. (SQLite serialises whole transactions,
    so there the read already sees the other act.)"""
    return s.scalar(
        select(WorkflowStep.step_id)
        .join(
            WorkflowInstance,
            WorkflowInstance.workflow_instance_id == WorkflowStep.workflow_instance_id,
        )
        .where(
            WorkflowInstance.workflow_instance_id == workflow_instance_id,
            WorkflowInstance.tid == caller.tid,
            WorkflowInstance.status == WorkflowStatus.AUDITING,
            WorkflowStep.position == WorkflowInstance.current_position,
        )
    )


def _is_repeat(
    s: Session,
    flow: WorkflowInstance,
    step: WorkflowStep | None,
    caller: Caller,
    approval_type: str,
) -> bool:
    """Whether this act is the caller's previous one arriving again: an AGREE, REJECT or
    CANCEL the caller already made, with nothing left that it could still apply to."""
    if approval_type not in DECISIONS:
        return False
    if _last_act(s, flow, caller.user_id) != approval_type:
        return False
    return step is None or caller.user_id not in approvers_of(s, step)


def approver_refusal(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep
) -> DmsError | None:
    """Why the caller may not decide ``step`` (AGREE, REJECT); None: they are its approver."""
    if caller.user_id in approvers_of(s, step):
        return None
    if caller.user_id == order.committer_id and not flow.self_approval:
        return DmsError(
            ErrorCode.SELF_APPROVAL,
            f"You committed ticket {order.order_id}; somebody else must approve it.",
        )
    return DmsError(
        ErrorCode.NOT_CURRENT_APPROVER,
        f"You are not an approver of node '{step.node_name}', where ticket {order.order_id} waits.",
    )


def _require_approver(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep
) -> None:
    refusal = approver_refusal(s, caller, order, flow, step)
    if refusal is not None:
        raise refusal


def _agree(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep, what: Act
) -> None:
    _require_approver(s, caller, order, flow, step)
    _operate(step, caller, StepStatus.APPROVED, what.comment)
    record_event(s, flow, ApprovalAction.AGREE, caller, step=step, comment=what.comment)
    later = [x for x in steps_of(s, flow) if x.position > step.position]
    if later:
        reach(s, order, flow, later[0])
    else:
        finish(s, order, flow, caller, what.comment)


def _operate(step: WorkflowStep, caller: Caller, status: StepStatus, comment: str) -> None:
    step.status = status
    step.operator_id = caller.user_id
    step.operate_comment = comment
    step.operated_at = utcnow()


def _reject(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep, what: Act
) -> None:
    _require_approver(s, caller, order, flow, step)
    _operate(step, caller, StepStatus.REJECT, what.comment)
    flow.status = WorkflowStatus.REJECT
    record_event(s, flow, ApprovalAction.REJECT, caller, step=step, comment=what.comment)
    lifecycle.transition(
        s,
        order,
        OrderStatus.REJECT,
        actor=caller,
        comment=what.comment,
        event=workflow_block(s, flow, order),
    )


def _cancel_refusal(caller: Caller, order: Order) -> DmsError | None:
    if caller.user_id != order.committer_id:
        return DmsError(
            ErrorCode.PERMISSION_DENIED, "Only the committer withdraws a ticket from approval."
        )
    return None


def _cancel(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep, what: Act
) -> None:
    refusal = _cancel_refusal(caller, order)
    if refusal is not None:
        raise refusal
    _operate(step, caller, StepStatus.CANCEL, what.comment)
    flow.status = WorkflowStatus.CANCEL
    record_event(s, flow, ApprovalAction.CANCEL, caller, step=step, comment=what.comment)
    lifecycle.transition(  # back to the committer, who may change it and submit again
        s,
        order,
        OrderStatus.NEW,
        actor=caller,
        comment=what.comment,
        event=workflow_block(s, flow, order),
    )


def _may_act_for_others(s: Session, caller: Caller, order: Order) -> bool:
    if caller.is_admin or Role.DBA in caller.roles:
        return True
    targets = ticket_facts.targets_of(s, order)
    return any(dba.is_instance_dba(t.instance, caller.user_id) for t in targets)


def _transfer_refusal(
    s: Session,
    caller: Caller,
    order: Order,
    flow: WorkflowInstance,
    step: WorkflowStep,
    old: int,
) -> DmsError | None:
    """Why the caller may not hand on ``old``'s place at ``step`` (their own, or on another
    approver's behalf); None: they may."""
    current = approvers_of(s, step)
    on_behalf = old != caller.user_id
    if on_behalf and not _may_act_for_others(s, caller, order):
        return DmsError(
            ErrorCode.PERMISSION_DENIED,
            "Only an administrator or a DBA transfers on another approver's behalf.",
        )
    if not current and not caller.is_admin:
        return DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"Node '{step.node_name}' has no approver; an administrator transfers it.",
        )
    if current and old not in current:
        if on_behalf:
            return DmsError(
                ErrorCode.NOT_CURRENT_APPROVER,
                f"User {old} is not an approver of node '{step.node_name}'.",
            )
        return approver_refusal(s, caller, order, flow, step)
    return None


def _transfer(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep, what: Act
) -> None:
    if not what.new_approvers:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, "TRANSFER needs NewApprover or NewApproverList."
        )
    current = approvers_of(s, step)
    old = what.old_approver or caller.user_id
    on_behalf = old != caller.user_id
    stalled = not current
    refusal = _transfer_refusal(s, caller, order, flow, step, old)
    if refusal is not None:
        raise refusal
    before = approved_before(s, flow)
    new = list(dict.fromkeys(what.new_approvers))
    for user_id in new:
        user = s.get(User, user_id)
        if user is None or user.tid != order.tid or user.state != UserState.NORMAL:
            raise DmsError(ErrorCode.USER_NOT_FOUND, f"No active user {user_id} in the tenant.")
        refused = routing.may_approve(
            user_id, order, flow.self_approval, flow.one_node_per_approver, before
        )
        if refused:
            raise DmsError(refused[0], f"User {user_id} {refused[1]}.")
    if old not in new:
        deactivate(s, step, [old])
    s.add_all(WorkflowApprover(step_id=step.step_id, user_id=u) for u in new if u not in current)
    step.note = ""
    s.flush()
    record_event(
        s,
        flow,
        ApprovalAction.TRANSFER,
        caller,
        step=step,
        comment=what.comment,
        detail=f"from {old if not stalled else 'nobody'} to {','.join(map(str, new))}",
        on_behalf_of=old if on_behalf and not stalled else None,
    )
    notify(s, order, flow, "order.transferred", caller, what.comment)


def _add_node(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep, what: Act
) -> None:
    if what.node_id is None or what.node_position not in NODE_POSITIONS:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            "ADD_APPROVAL_NODE needs ApprovalNodeId and ApprovalNodePos "
            f"({' or '.join(NODE_POSITIONS)}).",
        )
    if not caller.is_admin:
        _require_approver(s, caller, order, flow, step)
    node = s.get(WorkflowNode, what.node_id)
    if node is None or node.tid != order.tid:
        raise DmsError(
            ErrorCode.WORKFLOW_NODE_NOT_FOUND, f"No approval node {what.node_id} in the tenant."
        )
    before = what.node_position == "PRE_ADD_APPROVAL_NODE"
    at = step.position if before else step.position + 1
    s.execute(
        update(WorkflowStep)
        .where(
            WorkflowStep.workflow_instance_id == flow.workflow_instance_id,
            WorkflowStep.position >= at,
        )
        .values(position=WorkflowStep.position + 1)
    )
    added = WorkflowStep(
        workflow_instance_id=flow.workflow_instance_id,
        position=at,
        node_id=node.node_id,
        node_name=node.name,
        node_type=node.node_type,
        system_kind=node.system_kind,
    )
    s.add(added)
    s.flush()
    s.refresh(step)
    record_event(
        s,
        flow,
        ApprovalAction.ADD_APPROVAL_NODE,
        caller,
        step=added,
        comment=what.comment,
        detail=f"{'before' if before else 'after'} '{step.node_name}'",
    )
    if before:
        step.status = StepStatus.WAITING
        reach(s, order, flow, added)
    notify(s, order, flow, "order.node_added", caller, what.comment)


# ------------------------------------------------------------------ what is open to whom


@dataclass(frozen=True)
class OpenActs:
    """The acts of ApproveOrder the caller may take on a ticket's current node now, as the
    handlers above decide them (a repeat or a race is still theirs to answer)."""

    decide: bool = False  # AGREE and REJECT
    withdraw: bool = False  # CANCEL
    transfer: bool = False  # their own place, or (stalled node) the node itself
    # current approvers whose place the caller may hand on for them (OldApprover)
    transfer_for: tuple[int, ...] = ()


def open_acts(s: Session, caller: Caller, order: Order) -> OpenActs:
    """What ``act`` would let the caller do on ``order``'s approval now (the caller may see
    the ticket: ``tickets.get_order``)."""
    flow = s.get(WorkflowInstance, order.workflow_instance_id or 0)
    if flow is None or flow.status != WorkflowStatus.AUDITING:
        return OpenActs()
    step = current_step(s, flow)
    others = tuple(
        u
        for u in approvers_of(s, step)
        if u != caller.user_id and _transfer_refusal(s, caller, order, flow, step, u) is None
    )
    own = _transfer_refusal(s, caller, order, flow, step, caller.user_id) is None
    return OpenActs(
        decide=approver_refusal(s, caller, order, flow, step) is None,
        withdraw=_cancel_refusal(caller, order) is None,
        transfer=own or bool(others),
        transfer_for=others,
    )
