"""Approval nodes and templates. Every tenant has the system nodes (Admin, DBA, DBA Roles,
Owner) and system templates (Admin, DBA, Owner, Owner->DBA, Owner->DBA->Admin); template -1
means "no approval" and is never stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.store.models import (
    WorkflowNode,
    WorkflowNodeUser,
    WorkflowTemplate,
    WorkflowTemplateNode,
)
from opendms.store.search import matches

NO_APPROVAL = -1
SYSTEM_NODES: dict[str, tuple[str, str]] = {  # name -> (kind, what it resolves to)
    "Admin": ("ADMIN", "Any administrator of the tenant."),
    "DBA": ("DBA", "The DBA of the ticket's instance."),
    "DBA Roles": ("DBA_ROLES", "Anyone with the DBA role."),
    "Owner": ("OWNER", "The owners of the databases and tables the ticket touches."),
}
SYSTEM_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Admin": ("Admin",),
    "DBA": ("DBA",),
    "Owner": ("Owner",),
    "Owner->DBA": ("Owner", "DBA"),
    "Owner->DBA->Admin": ("Owner", "DBA", "Admin"),
}


def ensure_system(s: Session, tid: int) -> None:
    """Create the tenant's system nodes and templates if they are missing (idempotent)."""
    nodes = {
        n.name: n
        for n in s.scalars(
            select(WorkflowNode).where(WorkflowNode.tid == tid, WorkflowNode.node_type == "SYS")
        )
    }
    for name, (kind, comment) in SYSTEM_NODES.items():
        if name not in nodes:
            nodes[name] = WorkflowNode(
                tid=tid, name=name, node_type="SYS", system_kind=kind, comment=comment
            )
            s.add(nodes[name])
    s.flush()
    present = set(
        s.scalars(
            select(WorkflowTemplate.name).where(
                WorkflowTemplate.tid == tid, WorkflowTemplate.is_system.is_(True)
            )
        )
    )
    for name, chain in SYSTEM_TEMPLATES.items():
        if name in present:
            continue
        template = WorkflowTemplate(
            tid=tid, name=name, is_system=True, comment=f"Approval by {' then '.join(chain)}."
        )
        s.add(template)
        s.flush()
        s.add_all(
            WorkflowTemplateNode(
                template_id=template.template_id, position=i, node_id=nodes[n].node_id
            )
            for i, n in enumerate(chain, start=1)
        )
    s.flush()


@dataclass(frozen=True)
class TemplateView:
    template: WorkflowTemplate
    nodes: list[tuple[int, WorkflowNode]]  # (position, node)


def list_templates(s: Session, tid: int, search: str | None = None) -> list[TemplateView]:
    ensure_system(s, tid)
    query = select(WorkflowTemplate).where(WorkflowTemplate.tid == tid)
    if search:
        query = query.where(matches(search, WorkflowTemplate.name))
    templates = s.scalars(query.order_by(WorkflowTemplate.template_id)).all()
    rows = s.execute(
        select(WorkflowTemplateNode.template_id, WorkflowTemplateNode.position, WorkflowNode)
        .join(WorkflowNode, WorkflowNode.node_id == WorkflowTemplateNode.node_id)
        .where(WorkflowTemplateNode.template_id.in_([t.template_id for t in templates]))
        .order_by(WorkflowTemplateNode.template_id, WorkflowTemplateNode.position)
    ).all()
    chains: dict[int, list[tuple[int, WorkflowNode]]] = {t.template_id: [] for t in templates}
    for template_id, position, node in rows:
        chains[template_id].append((position, node))
    return [TemplateView(t, chains[t.template_id]) for t in templates]


def list_nodes(s: Session, tid: int, search: str | None = None) -> Sequence[WorkflowNode]:
    ensure_system(s, tid)
    query = select(WorkflowNode).where(WorkflowNode.tid == tid)
    if search:
        query = query.where(matches(search, WorkflowNode.name))
    return s.scalars(query.order_by(WorkflowNode.node_id)).all()


def node_users(s: Session, node_ids: Sequence[int]) -> dict[int, list[int]]:
    """The explicit approvers of USER_LIST nodes, by node id."""
    out: dict[int, list[int]] = {n: [] for n in node_ids}
    for node_id, user_id in s.execute(
        select(WorkflowNodeUser.node_id, WorkflowNodeUser.user_id).where(
            WorkflowNodeUser.node_id.in_(node_ids)
        )
    ):
        out[node_id].append(user_id)
    return out


def create_node(
    s: Session,
    tid: int,
    name: str,
    approver_ids: Sequence[int],
    *,
    comment: str = "",
    creator: int | None = None,
) -> WorkflowNode:
    """A USER_LIST node: any one of ``approver_ids`` may act on it."""
    name = name.strip()
    if not name or len(name) > 128:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A node name is 1 to 128 characters.")
    ensure_system(s, tid)
    if s.scalar(
        select(WorkflowNode.node_id).where(WorkflowNode.tid == tid, WorkflowNode.name == name)
    ):
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"A node named {name!r} exists already.")
    wanted = list(dict.fromkeys(approver_ids))
    if not wanted:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A USER_LIST node needs approvers.")
    for user_id in wanted:
        identity.member(s, tid, user_id)
    node = WorkflowNode(
        tid=tid, name=name, node_type="USER_LIST", comment=comment, create_user_id=creator
    )
    s.add(node)
    s.flush()
    s.add_all(WorkflowNodeUser(node_id=node.node_id, user_id=u) for u in wanted)
    s.flush()
    return node


def create_template(
    s: Session,
    tid: int,
    name: str,
    node_names: Sequence[str],
    *,
    comment: str = "",
    creator: int | None = None,
) -> WorkflowTemplate:
    """A template running ``node_names`` in that order."""
    name = name.strip()
    if not name or len(name) > 128:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A template name is 1 to 128 characters.")
    ensure_system(s, tid)
    if s.scalar(
        select(WorkflowTemplate.template_id).where(
            WorkflowTemplate.tid == tid, WorkflowTemplate.name == name
        )
    ):
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"A template named {name!r} exists already.")
    if not node_names:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A template needs at least one node.")
    by_name = {n.name: n for n in s.scalars(select(WorkflowNode).where(WorkflowNode.tid == tid))}
    missing = [n for n in node_names if n not in by_name]
    if missing:
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"No node named {', '.join(missing)}.")
    template = WorkflowTemplate(tid=tid, name=name, comment=comment, create_user_id=creator)
    s.add(template)
    s.flush()
    s.add_all(
        WorkflowTemplateNode(
            template_id=template.template_id, position=i, node_id=by_name[n].node_id
        )
        for i, n in enumerate(node_names, start=1)
    )
    s.flush()
    return template
