"""``opendms order submit|approve|reject|withdraw|transfer|add-node|approvals``: a ticket's
way through its approval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from opendms.approvals import acts, flow, views
from opendms.cli.common import AsUser, CliError, OrderArg, out, shared_options, user_ids, utc
from opendms.identity.caller import Caller
from opendms.store.states import ApprovalAction
from opendms.tickets import service as tickets

CommentOpt = Annotated[str, typer.Option("--comment", help="Shown with the act.")]


def _workflow_of(s: Session, caller: Caller, order_id: int) -> int:
    order = tickets.get_order(s, caller, order_id)
    if order.workflow_instance_id is None:
        raise CliError(f"ticket {order_id} has not been submitted for approval")
    return order.workflow_instance_id


def _act(who: AsUser, order_id: int, act: acts.Act) -> None:
    with who.acting() as (_, s, caller):
        wf = acts.act(s, caller, _workflow_of(s, caller, order_id), act)
        order = tickets.get_order(s, caller, order_id)
        out.print(f"Ticket {order_id} is {order.status_code} (approval {wf.status})")


@shared_options
def submit(order_id: OrderArg, *, who: AsUser) -> None:
    """Send a ticket for approval (as its committer)."""
    with who.acting() as (_, s, caller):
        wf = flow.submit(s, caller, order_id)
        out.print(
            f"Ticket {order_id}: workflow {wf.workflow_instance_id}, template "
            f"{wf.template_name} (risk {wf.risk}), {wf.status}"
        )


def simple_act(kind: ApprovalAction, summary: str) -> Callable[..., None]:
    """A command that does one act (AGREE, REJECT, CANCEL) with a comment."""

    @shared_options
    def command(order_id: OrderArg, comment: CommentOpt = "", *, who: AsUser) -> None:
        _act(who, order_id, acts.Act(kind, comment=comment))

    command.__doc__ = summary
    return command


approve = simple_act(ApprovalAction.AGREE, "Agree to the ticket's current approval node.")
reject = simple_act(ApprovalAction.REJECT, "Reject the ticket at its current approval node.")
withdraw = simple_act(
    ApprovalAction.CANCEL, "Take the ticket back from approval (its committer); it returns to new."
)


@shared_options
def transfer(
    order_id: OrderArg,
    to: Annotated[str, typer.Option("--to", help="New approver UserIds, comma-separated.")],
    from_: Annotated[
        int | None,
        typer.Option("--from", help="Approver handing over (admins/DBAs); default: you."),
    ] = None,
    comment: CommentOpt = "",
    *,
    who: AsUser,
) -> None:
    """Hand the current approval node over to other users."""
    new = tuple(user_ids(to, "--to"))
    _act(
        who,
        order_id,
        acts.Act("TRANSFER", comment=comment, new_approvers=new, old_approver=from_),
    )


@shared_options
def add_node(
    order_id: OrderArg,
    node_id: Annotated[int, typer.Option("--node", help="NodeId (opendms workflow list).")],
    before: Annotated[bool, typer.Option("--before/--after", help="Where to insert.")] = False,
    comment: CommentOpt = "",
    *,
    who: AsUser,
) -> None:
    """Insert an approval node before or after the current one."""
    position = acts.NODE_POSITIONS[0 if before else 1]
    _act(
        who,
        order_id,
        acts.Act("ADD_APPROVAL_NODE", comment=comment, node_id=node_id, node_position=position),
    )


@shared_options
def approvals(order_id: OrderArg, *, who: AsUser) -> None:
    """The ticket's approval: why this template, its nodes, and every act in order."""
    with who.acting() as (_, s, caller):
        wf = _workflow_of(s, caller, order_id)
        found = views.detail(s, caller, wf)
        out.print(
            f"Workflow {wf}: template {found.flow.template_name}, risk {found.flow.risk}, "
            f"{found.flow.status}"
        )
        for reason in found.reasons:
            out.print(f"  - {reason}", markup=False)
        nodes = Table("#", "Node", "Status", "Approvers", "By", "At (UTC)", "Comment")
        for view in found.steps:
            st = view.step
            nodes.add_row(
                str(st.position),
                st.node_name,
                st.status,
                ",".join(map(str, view.approvers)) or "-",
                str(st.operator_id or ""),
                utc(st.operated_at),
                st.operate_comment or st.note,
            )
        out.print(nodes)
        trail = Table("At (UTC)", "Act", "By", "For", "Node", "Detail", "Comment", title="Trail")
        for e in views.events(s, caller, wf):
            trail.add_row(
                utc(e.created_at),
                e.action,
                str(e.actor_id or "") + (f" (key of {e.by_user_id})" if e.by_user_id else ""),
                str(e.on_behalf_of or ""),
                e.node_name,
                e.detail,
                e.comment,
            )
        out.print(trail)
