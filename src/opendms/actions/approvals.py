"""Approving tickets (dms-api.md A.2.3, A.2.4, A.2.6, A.6 PreviewWorkflow)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from opendms.approvals import acts, flow, routing, views
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import CommaIds, Long, TenantScoped, wire_time
from opendms.identity import service as identity
from opendms.store.models import User
from opendms.store.states import StepStatus, WorkflowStatus
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of

PositiveLong = Annotated[Long, Field(ge=1)]


def _person(user_id: int, people: dict[int, User]) -> Payload:
    nick = people[user_id].nick_name if user_id in people else ""
    return {"UserId": user_id, "NickName": nick, "RealName": nick}


class SubmitOrderApprovalRequest(TenantScoped):
    order_id: PositiveLong


def submit_order_approval(ctx: Context, req: SubmitOrderApprovalRequest) -> Payload:
    flow.submit(ctx.session, ctx.caller, req.order_id)
    return {}


class ApproveOrderRequest(TenantScoped):
    workflow_instance_id: PositiveLong
    approval_type: Literal["AGREE", "REJECT", "CANCEL", "TRANSFER", "ADD_APPROVAL_NODE"]
    comment: Annotated[str, Field(max_length=4096)] = ""
    new_approver: PositiveLong | None = None
    new_approver_list: CommaIds | None = None
    old_approver: PositiveLong | None = None
    approval_node_id: PositiveLong | None = None
    approval_node_pos: Literal["PRE_ADD_APPROVAL_NODE", "POST_ADD_APPROVAL_NODE"] | None = None


def approve_order(ctx: Context, req: ApproveOrderRequest) -> Payload:
    new = ([req.new_approver] if req.new_approver else []) + (req.new_approver_list or [])
    acts.act(
        ctx.session,
        ctx.caller,
        req.workflow_instance_id,
        acts.Act(
            req.approval_type,
            comment=req.comment,
            new_approvers=tuple(new),
            old_approver=req.old_approver,
            node_id=req.approval_node_id,
            node_position=req.approval_node_pos,
        ),
    )
    return {}


class WorkflowRequest(TenantScoped):
    workflow_instance_id: PositiveLong


def get_approval_detail(ctx: Context, req: WorkflowRequest) -> Payload:
    found = views.detail(ctx.session, ctx.caller, req.workflow_instance_id)
    current = found.current
    auditing = found.flow.status == WorkflowStatus.AUDITING
    handlers = current.approvers if current and auditing else []
    people = identity.users_by_id(ctx.session, handlers)
    nodes = []
    for view in found.steps:
        step = view.step
        node: Payload = {
            "NodeName": step.node_name,
            "AuditUserIdList": {"AuditUserIds": [str(u) for u in view.approvers]},
            "OperatorId": step.operator_id,
            "OperateTime": wire_time(step.operated_at),
            "OperateComment": step.operate_comment,
            "WorkflowInsCode": None if step.status == StepStatus.WAITING else step.status,
        }
        nodes.append({k: v for k, v in node.items() if v is not None})
    order = found.order
    return {
        "ApprovalDetail": {
            "AuditId": found.flow.workflow_instance_id,
            "OrderId": order.order_id,
            "OrderType": found.order_type,
            "Title": f"{kind_of(order.plugin_type).summary} #{order.order_id}",
            "Description": order.comment,
            "CreateTime": wire_time(found.flow.created_at),
            "TemplateId": found.flow.template_id,
            "WorkflowInsCode": found.flow.status,
            "CurrentHandlers": {
                "CurrentHandler": [
                    {"Id": u, "NickName": people[u].nick_name if u in people else ""}
                    for u in handlers
                ]
            },
            "ReasonList": {"Reasons": found.reasons},
            "WorkflowNodes": {"WorkflowNode": nodes},
        }
    }


class PreviewWorkflowRequest(TenantScoped):
    order_id: PositiveLong


def preview_workflow(ctx: Context, req: PreviewWorkflowRequest) -> Payload:
    order = tickets.get_order(ctx.session, ctx.caller, req.order_id)
    route = routing.route(ctx.session, order)
    people = identity.users_by_id(
        ctx.session, [u for _, resolved in route.nodes for u in resolved.approvers]
    )
    decision = route.decision
    comment = " ".join(decision.reasons)
    if decision.forbidden:
        comment = "Forbidden: " + "; ".join(decision.forbidden) + ". " + comment
    return {
        "WorkflowDetail": {
            "WfCateName": route.template.name if route.template else "No approval",
            "Comment": comment,
            "WorkflowNodeList": {
                "WorkflowNode": [
                    {
                        "NodeName": node.name,
                        "NodeType": node.node_type,
                        "Comment": resolved.note or node.comment,
                        "AuditUserList": {
                            "AuditUser": [_person(u, people) for u in resolved.approvers]
                        },
                    }
                    for node, resolved in route.nodes
                ]
            },
        }
    }


def list_approval_events(ctx: Context, req: WorkflowRequest) -> Payload:
    found = views.events(ctx.session, ctx.caller, req.workflow_instance_id)
    return {
        "ApprovalEvents": [
            {
                "EventId": e.event_id,
                "Action": e.action,
                "OperatorId": e.actor_id,
                # whose access key made the call that acted for the operator
                # (RealLoginUserUid), when that was someone else
                "ByUserId": e.by_user_id,
                "OnBehalfOf": e.on_behalf_of,
                "Position": e.position,
                "NodeName": e.node_name,
                "Detail": e.detail,
                "Comment": e.comment,
                "Time": wire_time(e.created_at),
            }
            for e in found
        ]
    }


ACTIONS = (
    Action(
        "SubmitOrderApproval",
        SubmitOrderApprovalRequest,
        submit_order_approval,
        Access.UPDATE,
        "Send a ticket for approval; its security rules choose the template.",
    ),
    Action(
        "ApproveOrder",
        ApproveOrderRequest,
        approve_order,
        Access.UPDATE,
        "Agree, reject, withdraw, transfer or add a node on a ticket's current approval node.",
    ),
    Action(
        "GetApprovalDetail",
        WorkflowRequest,
        get_approval_detail,
        Access.GET,
        "A ticket's approval: nodes, who acted, when, and why this template.",
    ),
    Action(
        "PreviewWorkflow",
        PreviewWorkflowRequest,
        preview_workflow,
        Access.GET,
        "Which template and approvers a ticket would get if submitted now.",
    ),
    Action(
        "ListApprovalEvents",
        WorkflowRequest,
        list_approval_events,
        Access.GET,
        "The audit trail of a ticket's approval, every act in order (OpenDMS extension).",
        extension=True,
    ),
)
