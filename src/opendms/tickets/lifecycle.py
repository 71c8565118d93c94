"""The ticket lifecycle: which status a ticket moves to from which, and closing a ticket.

Every change of ``orders.status_code`` is a ``transition``. It refuses a move ``MOVES`` does
not hold (``ORDER_STATUS_INVALID``), stamps ``updated_at``, calls off the ticket's work not
yet done when the ticket ends without it (rejected, closed), and queues the webhook event
that goes with the move (notify.webhooks: in the caller's transaction, so the event exists
exactly when the move committed). The acts that lead to a move check their own conditions
first and say why in their own words (only the committer submits, only an approved ticket
executes…); the table is the rule under all of them:

    new -> toaudit (submitted) -> Approved (the last node agreed, or none was needed)
        -> processing (its execution or export queued, its cleanup armed) -> success;
    processing -> processing (a failed or stopped export run again)
    toaudit -> reject; toaudit -> new (withdrawn by its committer, to change it)
    new, toaudit, Approved, processing -> closed (CloseOrder)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.notify import webhooks
from opendms.store.models import (
    ApprovalEvent,
    Order,
    SqlJob,
    WorkflowInstance,
    WorkflowStep,
    utcnow,
)
from opendms.store.states import (
    TERMINAL,
    ApprovalAction,
    OrderStatus,
    SqlJobStatus,
    StepStatus,
    WorkflowStatus,
)
from opendms.store.times import log_time
from opendms.tickets import service as tickets

_S = OrderStatus

# (from, to) -> the webhook event the move fires (docs/webhooks.md), None for none.
MOVES: dict[tuple[OrderStatus, OrderStatus], str | None] = {
    (_S.NEW, _S.TOAUDIT): "order.submitted",
    (_S.TOAUDIT, _S.APPROVED): "order.approved",  # the last node agreed, or none was needed
    (_S.TOAUDIT, _S.REJECT): "order.rejected",
    (_S.TOAUDIT, _S.NEW): "order.cancelled",  # the committer withdrew it, to change it
    (_S.APPROVED, _S.PROCESSING): None,  # its execution or export queued, its cleanup armed
    (_S.PROCESSING, _S.PROCESSING): None,  # a failed or stopped export run again
    (_S.PROCESSING, _S.SUCCESS): "order.executed",
    **{(came, _S.CLOSED): "order.closed" for came in _S if came not in TERMINAL},
}
# Moves into these end the ticket without its work: what is still queued is called off.
ENDS_WORK = frozenset({_S.REJECT, _S.CLOSED})


def may_move(came: OrderStatus, to: OrderStatus) -> bool:
    return (came, to) in MOVES


def transition(
    s: Session,
    order: Order,
    to: OrderStatus,
    *,
    actor: Caller | None = None,
    comment: str = "",
    event: dict[str, Any] | None = None,
) -> None:
    """Move ``order`` to ``to`` (see the module). ``actor`` and ``comment`` go into the
    webhook event, ``event`` adds to it (an approval's ``workflow`` block)."""
    came = order.status_code
    if not may_move(came, to):
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is {came}; it cannot become {to}.",
        )
    order.status_code = to
    order.updated_at = utcnow()
    if to in ENDS_WORK:
        tickets.cancel_jobs(s, order.order_id)
    name = MOVES[came, to]
    if name is not None:
        data = {**webhooks.ticket_event(order, actor, comment), **(event or {})}
        webhooks.emit(s, order.tid, name, data)


def close_refusal(s: Session, caller: Caller, order: Order) -> DmsError | None:
    """Why the caller may not close the ticket now; None: they may."""
    may = (
        caller.is_admin
        or order.committer_id == caller.user_id
        or tickets.is_dba_of_ticket(s, caller, order.order_id)
    )
    if not may:
        return DmsError(
            ErrorCode.PERMISSION_DENIED,
            "Only the committer, a DBA of its instance or an administrator closes a ticket.",
        )
    if order.status_code in TERMINAL:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is already {order.status_code}.",
        )
    return None


def close(s: Session, caller: Caller, order_id: int, reason: str) -> Order:
    """CloseOrder, at any stage before the ticket ended: by its committer, a DBA of its
    instance or an administrator. Its SQL jobs not yet finished will not run on (a
    statement already on its way to the target still finishes, and its detail records
    it), and an approval under way is called off."""
    order = tickets.get_order(s, caller, order_id, lock=True)
    refusal = close_refusal(s, caller, order)
    if refusal is not None:
        raise refusal
    order.close_reason = reason
    transition(s, order, _S.CLOSED, actor=caller, comment=reason)
    s.execute(
        update(SqlJob)
        .where(
            SqlJob.order_id == order_id,
            SqlJob.status.in_((SqlJobStatus.INIT, SqlJobStatus.RUNNING, SqlJobStatus.PAUSE)),
        )
        .values(
            status=SqlJobStatus.DELETE,
            log=SqlJob.log + f"{log_time(utcnow())} ticket closed\n",
        )
    )
    flow = s.get(WorkflowInstance, order.workflow_instance_id or 0, with_for_update=True)
    if flow is not None and flow.status == WorkflowStatus.AUDITING:
        flow.status = WorkflowStatus.CANCEL
        s.execute(
            update(WorkflowStep)
            .where(
                WorkflowStep.workflow_instance_id == flow.workflow_instance_id,
                WorkflowStep.status == StepStatus.AUDITING,
            )
            .values(status=StepStatus.CANCEL)
        )
        s.add(
            ApprovalEvent(
                tid=order.tid,
                order_id=order.order_id,
                workflow_instance_id=flow.workflow_instance_id,
                action=ApprovalAction.CLOSE,
                actor_id=caller.user_id,
                by_user_id=caller.by_user_id,
                comment=reason,
            )
        )
    s.flush()
    return order
