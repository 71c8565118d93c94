"""Routing a ticket: which rule sets it falls under, the template their strictest decision
names, and who would approve each of its nodes.

``route`` answers it for a ticket not yet submitted (PreviewWorkflow, and submission itself);
``resolve`` names a node's approvers when the flow reaches it; ``may_approve`` is the one place
the two rules on who may approve live (nobody approves their own ticket, unless the rule set
allows it; with ``one_node_per_approver``, nobody approves two nodes of one ticket).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.approvals import facts as ticket_facts
from opendms.catalog import dba
from opendms.errors import DmsError, ErrorCode
from opendms.identity.roles import Role, parse_roles
from opendms.rulebook import rule_sets, rules, templates
from opendms.store.models import (
    Database,
    DbTable,
    Order,
    Owner,
    User,
    WorkflowNode,
    WorkflowNodeUser,
    WorkflowTemplate,
    WorkflowTemplateNode,
)
from opendms.store.states import UserState


@dataclass(frozen=True)
class Resolved:
    """Who approves one node of a ticket."""

    approvers: list[int]
    note: str  # why some or all of the people the node names cannot approve


@dataclass(frozen=True)
class Route:
    """Where a ticket goes for approval: the rules' decision, the template it names, each of
    its nodes with who would approve it now, and the tables the ticket touches."""

    decision: rules.Decision
    template: WorkflowTemplate | None  # None: no approval needed
    nodes: list[tuple[WorkflowNode, Resolved]]
    tables: list[str]


def _strictest(decisions: list[rules.Decision], notes: list[str]) -> rules.Decision:
    top = max(decisions, key=lambda d: rules.LEVELS.index(d.risk))
    reasons = list(dict.fromkeys([*notes, *(r for d in decisions for r in d.reasons)]))
    return replace(
        top,
        rule_set=", ".join(dict.fromkeys(d.rule_set for d in decisions)),
        forbidden=tuple(dict.fromkeys(f for d in decisions for f in d.forbidden)),
        reasons=tuple(reasons),
        # the strictest setting of any rule set the ticket falls under
        self_approval=all(d.self_approval for d in decisions),
        one_node_per_approver=any(d.one_node_per_approver for d in decisions),
    )


def _template(s: Session, tid: int, name: str) -> WorkflowTemplate:
    templates.ensure_system(s, tid)
    found = s.scalar(
        select(WorkflowTemplate).where(WorkflowTemplate.tid == tid, WorkflowTemplate.name == name)
    )
    if found is None or not found.enabled:
        raise DmsError(
            ErrorCode.RULE_SET_INVALID,
            f"The security rules name template {name!r}, which does not exist or is disabled; "
            "an administrator must fix the rule set.",
        )
    return found


def _template_nodes(s: Session, template_id: int) -> list[WorkflowNode]:
    return list(
        s.scalars(
            select(WorkflowNode)
            .join(WorkflowTemplateNode, WorkflowTemplateNode.node_id == WorkflowNode.node_id)
            .where(WorkflowTemplateNode.template_id == template_id)
            .order_by(WorkflowTemplateNode.position)
        )
    )


def _active_with_role(s: Session, tid: int, role: Role) -> list[int]:
    rows = s.execute(
        select(User.user_id, User.roles).where(
            User.tid == tid, User.state == UserState.NORMAL, User.roles.contains(role.value)
        )
    )
    return [uid for uid, roles in rows if role in parse_roles(roles)]


def _named_by(s: Session, order: Order, node: WorkflowNode, tables: Sequence[str]) -> list[int]:
    """The people a node names for this ticket, before the flow's own exclusions."""
    targets = ticket_facts.targets_of(s, order)
    kind = node.system_kind
    if node.node_type == "USER_LIST":
        found = s.scalars(
            select(WorkflowNodeUser.user_id).where(WorkflowNodeUser.node_id == node.node_id)
        )
    elif kind == "ADMIN":
        return _active_with_role(s, order.tid, Role.ADMIN)
    elif kind == "DBA_ROLES":
        return _active_with_role(s, order.tid, Role.DBA)
    elif kind == "DBA":
        return _active(s, [d for t in targets if (d := dba.dba_of(t.instance)) is not None])
    else:  # OWNER: of the ticket's databases and of the tables it touches
        db_ids = [db.db_id for t in targets for db in t.databases]
        table_ids = _table_ids(s, [t.instance.instance_id for t in targets], tables)
        found = s.scalars(
            select(Owner.user_id)
            .where(
                ((Owner.resource_type == "DATABASE") & Owner.resource_id.in_(db_ids))
                | ((Owner.resource_type == "TABLE") & Owner.resource_id.in_(table_ids))
            )
            .order_by(Owner.id)
        )
    return _active(s, list(found))


def _active(s: Session, user_ids: Sequence[int]) -> list[int]:
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    active = set(
        s.scalars(
            select(User.user_id).where(User.user_id.in_(wanted), User.state == UserState.NORMAL)
        )
    )
    return [u for u in wanted if u in active]


def _table_ids(s: Session, instance_ids: list[int], tables: Sequence[str]) -> list[int]:
    pairs = [t.rsplit(".", 1) for t in tables if "." in t]
    if not pairs or not instance_ids:
        return []
    rows = s.execute(
        select(DbTable.table_id, Database.schema_name, DbTable.name)
        .join(Database, Database.db_id == DbTable.db_id)
        .where(
            Database.instance_id.in_(instance_ids),
            func.lower(DbTable.name).in_([name for _, name in pairs]),
        )
    )
    wanted = {(schema, name) for schema, name in pairs}
    return [tid for tid, schema, name in rows if (schema.lower(), name.lower()) in wanted]


def _why_empty(node: WorkflowNode) -> str:
    return {
        "ADMIN": "the tenant has no active administrator",
        "DBA_ROLES": "nobody holds the DBA role",
        "DBA": "no DBA is set for the ticket's instance by an administrator",
        "OWNER": "no owner is set for the ticket's databases or tables",
    }.get(node.system_kind or "", "none of its approvers is an active user")


def resolve(
    s: Session,
    order: Order,
    node: WorkflowNode,
    tables: Sequence[str],
    *,
    self_approval: bool,
    one_node_per_approver: bool,
    approved_before: set[int],
) -> Resolved:
    """Who approves ``node`` of ``order``: the people it names, less those the rules
    exclude, and a note saying why when nobody is left."""
    named = _named_by(s, order, node, tables)
    if not named:
        return Resolved([], f"Node '{node.name}' has no approver: {_why_empty(node)}.")
    kept = [
        u
        for u in named
        if may_approve(u, order, self_approval, one_node_per_approver, approved_before) is None
    ]
    if kept:
        return Resolved(kept, "")
    reasons = {
        refusal[1]
        for u in named
        if (refusal := may_approve(u, order, self_approval, one_node_per_approver, approved_before))
    }
    return Resolved(
        [],
        f"Node '{node.name}' has no approver: everyone it names {' or '.join(sorted(reasons))}.",
    )


def may_approve(
    user_id: int,
    order: Order,
    self_approval: bool,
    one_node_per_approver: bool,
    approved_before: set[int],
) -> tuple[ErrorCode, str] | None:
    """Why ``user_id`` may not approve a node of this ticket, or None: the one place both
    rules live. Resolution, re-resolution and transfers ask here; acts then only check that
    the caller is an approver of the current node."""
    if user_id == order.committer_id and not self_approval:
        return ErrorCode.SELF_APPROVAL, "is the committer"
    if one_node_per_approver and user_id in approved_before:
        return ErrorCode.INVALID_PARAMETER, "already approved a node of this ticket"
    return None


def route(s: Session, order: Order) -> Route:
    """Which template the ticket gets, why, and who would approve each node now."""
    targets = ticket_facts.targets_of(s, order)
    found = ticket_facts.ticket_facts(s, order, targets)
    decisions, notes = [], []
    for target in targets:
        loaded, note = rule_sets.for_instance(s, target.instance)
        facts_here = replace(found, env_types=frozenset({target.instance.env_type}))
        decisions.append(rules.evaluate(loaded.rule_set, loaded.name, facts_here))
        if note:
            notes.append(note)
    if not decisions:  # a ticket without databases: the tenant's default rules
        loaded = rule_sets.get(s, order.tid, rules.DEFAULT_NAME)
        decisions.append(rules.evaluate(loaded.rule_set, loaded.name, found))
    decision = _strictest(decisions, notes)
    tables = sorted(found.tables)
    if decision.template is None:
        return Route(decision, None, [], tables)
    template = _template(s, order.tid, decision.template)
    nodes = []
    for node in _template_nodes(s, template.template_id):
        nodes.append(
            (
                node,
                resolve(
                    s,
                    order,
                    node,
                    tables,
                    self_approval=decision.self_approval,
                    one_node_per_approver=False,  # nobody has approved anything yet
                    approved_before=set(),
                ),
            )
        )
    return Route(decision, template, nodes, tables)
