"""Approval workflow configuration, read side (dms-api.md A.6)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import TenantScoped
from opendms.identity import service as identity
from opendms.rulebook import templates
from opendms.store.models import WorkflowNode

Search = Annotated[str, Field(max_length=128)]


def _node(
    node: WorkflowNode, template_id: int | None = None, position: int | None = None
) -> Payload:
    out: Payload = {
        "NodeId": node.node_id,
        "NodeName": node.name,
        "NodeType": node.node_type,
        "Comment": node.comment,
        "CreateUserId": node.create_user_id,
        "TemplateId": template_id,
        "Position": position,
    }
    return {k: v for k, v in out.items() if v is not None}


class SearchRequest(TenantScoped):
    search_name: Search | None = None


def list_work_flow_templates(ctx: Context, req: SearchRequest) -> Payload:
    views = templates.list_templates(ctx.session, ctx.caller.tid, req.search_name)
    rows = []
    for view in views:
        t = view.template
        row: Payload = {
            "TemplateId": t.template_id,
            "TemplateName": t.name,
            "Comment": t.comment,
            "Enabled": "Y" if t.enabled else "N",
            "IsSystem": 1 if t.is_system else 0,
            "WorkflowNodes": {
                "WorkflowNode": [_node(n, t.template_id, pos) for pos, n in view.nodes]
            },
        }
        if t.create_user_id is not None:
            row["CreateUserId"] = t.create_user_id
        rows.append(row)
    return {"WorkFlowTemplates": {"WorkFlowTemplate": rows}}


def list_work_flow_nodes(ctx: Context, req: SearchRequest) -> Payload:
    nodes = templates.list_nodes(ctx.session, ctx.caller.tid, req.search_name)
    approvers = templates.node_users(ctx.session, [n.node_id for n in nodes])
    people = identity.users_by_id(
        ctx.session,
        [u for ids in approvers.values() for u in ids]
        + [n.create_user_id for n in nodes if n.create_user_id],
    )
    rows = []
    for n in nodes:
        row = _node(n)
        creator = people.get(n.create_user_id or 0)
        if creator is not None:
            row["CreateUserNickName"] = creator.nick_name
        row["AuditUsers"] = {
            "AuditUser": [
                {"UserId": u, "NickName": people[u].nick_name, "RealName": people[u].nick_name}
                for u in approvers[n.node_id]
                if u in people
            ]
        }
        rows.append(row)
    return {"WorkflowNodes": {"WorkflowNode": rows}}


ACTIONS = (
    Action(
        "ListWorkFlowTemplates",
        SearchRequest,
        list_work_flow_templates,
        Access.LIST,
        "Approval templates of the tenant, with their nodes in order.",
    ),
    Action(
        "ListWorkFlowNodes",
        SearchRequest,
        list_work_flow_nodes,
        Access.LIST,
        "Approval nodes of the tenant, with a USER_LIST node's approvers.",
    ),
)
