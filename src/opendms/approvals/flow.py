"""The approval flow of a ticket: submission, the acts on it, and what it says about itself.

An act is for the node the flow was at when its request came in (read before waiting for any
lock). It then locks the ticket and the workflow instance (``SELECT … FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE`` serialises writers anyway), so acts on one ticket apply one after the
other; one that finds the flow moved on does not apply to a node its sender never saw. An
approver approves at most one node of a ticket (unless the rule set says otherwise), so a
repeated AGREE, from a double click or a retried request, finds nothing left for that person
to approve and is answered as the repeat it is instead of approving the next node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from opendms.approvals import facts as ticket_facts
from opendms.catalog import dba
from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.identity.roles import Role, parse_roles
from opendms.notify import webhooks
from opendms.precheck import service as precheck
from opendms.rulebook import rule_sets, rules, templates
from opendms.store.models import (
    ApprovalEvent,
    Database,
    DbTable,
    Order,
    Owner,
    User,
    WorkflowApprover,
    WorkflowInstance,
    WorkflowNode,
    WorkflowNodeUser,
    WorkflowStep,
    WorkflowTemplate,
    WorkflowTemplateNode,
    utcnow,
)
from opendms.store.states import (
    ApprovalAction,
    OrderStatus,
    StepStatus,
    UserState,
    WorkflowStatus,
)
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of

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


# ------------------------------------------------------------------ planning


@dataclass(frozen=True)
class Resolved:
    approvers: list[int]
    note: str  # why some or all of the people the node names cannot approve


@dataclass(frozen=True)
class Plan:
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


def _resolve(
    s: Session,
    order: Order,
    node: WorkflowNode,
    tables: Sequence[str],
    *,
    self_approval: bool,
    one_node_per_approver: bool,
    approved_before: set[int],
) -> Resolved:
    named = _named_by(s, order, node, tables)
    if not named:
        return Resolved([], f"Node '{node.name}' has no approver: {_why_empty(node)}.")
    kept = [
        u
        for u in named
        if _may_approve(u, order, self_approval, one_node_per_approver, approved_before) is None
    ]
    if kept:
        return Resolved(kept, "")
    reasons = {
        refusal[1]
        for u in named
        if (
            refusal := _may_approve(u, order, self_approval, one_node_per_approver, approved_before)
        )
    }
    return Resolved(
        [],
        f"Node '{node.name}' has no approver: everyone it names {' or '.join(sorted(reasons))}.",
    )


def _may_approve(
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


def plan(s: Session, order: Order) -> Plan:
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
        return Plan(decision, None, [], tables)
    template = _template(s, order.tid, decision.template)
    nodes = []
    for node in _template_nodes(s, template.template_id):
        nodes.append(
            (
                node,
                _resolve(
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
    return Plan(decision, template, nodes, tables)


# ------------------------------------------------------------------ the flow


def _event(
    s: Session,
    flow: WorkflowInstance,
    action: ApprovalAction,
    actor: int | None,
    *,
    step: WorkflowStep | None = None,
    comment: str = "",
    detail: str = "",
    on_behalf_of: int | None = None,
) -> None:
    s.add(
        ApprovalEvent(
            tid=flow.tid,
            order_id=flow.order_id,
            workflow_instance_id=flow.workflow_instance_id,
            action=action,
            actor_id=actor,
            on_behalf_of=on_behalf_of,
            position=step.position if step else None,
            node_name=step.node_name if step else "",
            comment=comment,
            detail=detail,
        )
    )


def _steps(s: Session, flow: WorkflowInstance) -> list[WorkflowStep]:
    return list(
        s.scalars(
            select(WorkflowStep)
            .where(WorkflowStep.workflow_instance_id == flow.workflow_instance_id)
            .order_by(WorkflowStep.position)
        )
    )


def _current(s: Session, flow: WorkflowInstance) -> WorkflowStep:
    step = s.scalar(
        select(WorkflowStep).where(
            WorkflowStep.workflow_instance_id == flow.workflow_instance_id,
            WorkflowStep.position == flow.current_position,
        )
    )
    assert step is not None, "a flow in AUDITING has a current step"
    return step


def approvers_of(s: Session, step: WorkflowStep) -> list[int]:
    return list(
        s.scalars(
            select(WorkflowApprover.user_id)
            .where(WorkflowApprover.step_id == step.step_id, WorkflowApprover.active.is_(True))
            .order_by(WorkflowApprover.id)
        )
    )


def _approved_before(s: Session, flow: WorkflowInstance) -> set[int]:
    operators = s.scalars(
        select(WorkflowStep.operator_id).where(
            WorkflowStep.workflow_instance_id == flow.workflow_instance_id,
            WorkflowStep.status == StepStatus.APPROVED,
        )
    )
    return {u for u in operators if u is not None}


def _tables(flow: WorkflowInstance) -> list[str]:
    return list(flow.tables)


def _reach(s: Session, order: Order, flow: WorkflowInstance, step: WorkflowStep) -> None:
    """Make ``step`` the current node, resolving its approvers now. A node reached before
    (a node was inserted ahead of it) keeps its approvers, less anyone the rules now exclude."""
    flow.current_position = step.position
    step.status = StepStatus.AUDITING
    kept = approvers_of(s, step)
    if kept:
        before = _approved_before(s, flow)
        dropped = [
            u
            for u in kept
            if _may_approve(u, order, flow.self_approval, flow.one_node_per_approver, before)
        ]
        _deactivate(s, step, dropped)
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
    resolved = _resolve(
        s,
        order,
        node,
        _tables(flow),
        self_approval=flow.self_approval,
        one_node_per_approver=flow.one_node_per_approver,
        approved_before=_approved_before(s, flow),
    )
    step.note = resolved.note
    s.add_all(WorkflowApprover(step_id=step.step_id, user_id=u) for u in resolved.approvers)
    s.flush()


def _deactivate(s: Session, step: WorkflowStep, user_ids: Sequence[int]) -> None:
    if user_ids:
        s.execute(
            update(WorkflowApprover)
            .where(
                WorkflowApprover.step_id == step.step_id,
                WorkflowApprover.user_id.in_(user_ids),
            )
            .values(active=False)
        )


def _finish(
    s: Session, order: Order, flow: WorkflowInstance, actor: Caller | None, comment: str = ""
) -> None:
    flow.status = WorkflowStatus.APPROVED
    flow.current_position = None
    s.flush()
    lifecycle.transition(
        s,
        order,
        OrderStatus.APPROVED,
        actor=actor,
        comment=comment,
        event=_workflow(s, flow, order),
    )
    kind_of(order.plugin_type).approved(s, order)  # start it, arm its schedule, or wait


def submit(s: Session, caller: Caller, order_id: int) -> WorkflowInstance:
    """Send a ticket for approval (dms-api.md A.2.3).

    The gate: a ticket must be ``new``. A ticket of a type whose precheck exists
    (``TicketKind.has_precheck``) must also have passed it; types without a precheck yet are
    submitted straight from ``new``."""
    order = tickets.get_order(s, caller, order_id, lock=True)
    if order.committer_id != caller.user_id:
        raise DmsError(ErrorCode.PERMISSION_DENIED, "Only the committer submits a ticket.")
    if order.status_code != OrderStatus.NEW:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} is {order.status_code}; only a new ticket is submitted.",
        )
    has_precheck = kind_of(order.plugin_type).has_precheck
    short = precheck.shortfall(s, order) if has_precheck else None
    if short is not None:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} is submitted once it passed its precheck; {short}",
        )
    route = plan(s, order)
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
    _event(s, flow, ApprovalAction.SUBMIT, caller.user_id, detail=f"template {flow.template_name}")
    if steps:
        _reach(s, order, flow, steps[0])
    # after the first node is reached: the event names it and its approvers
    lifecycle.transition(
        s, order, OrderStatus.TOAUDIT, actor=caller, event=_workflow(s, flow, order)
    )
    if not steps:
        _finish(s, order, flow, None)
    s.flush()
    return flow


@dataclass(frozen=True)
class Act:
    approval_type: str
    comment: str = ""
    new_approvers: tuple[int, ...] = ()
    old_approver: int | None = None
    node_id: int | None = None
    node_position: str | None = None


def _visible_order(
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


def _locked_flow(
    s: Session, caller: Caller, workflow_instance_id: int
) -> tuple[WorkflowInstance, Order]:
    """The flow and its ticket, both locked: the ticket first, as every writer of a ticket
    (submission, closing) takes its row first, so no two of them wait on each other."""
    order = _visible_order(s, caller, workflow_instance_id, lock=True)
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
    step = _current(s, flow) if flow.status == WorkflowStatus.AUDITING else None
    if _is_repeat(s, flow, step, caller, what.approval_type):
        _event(s, flow, ApprovalAction.REPEAT, caller.user_id, step=step, detail=what.approval_type)
        s.flush()
        return flow
    moved = seen is not None and (step is None or step.step_id != seen)
    meant = s.get(WorkflowStep, seen) if moved and seen is not None else None
    agree = ApprovalAction.AGREE
    if meant is not None and meant.status == StepStatus.APPROVED and what.approval_type == agree:
        # another approver approved the node this request came for while it waited
        _event(s, flow, ApprovalAction.SUPERSEDED, caller.user_id, step=step, detail=agree.value)
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


def _require_approver(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep
) -> None:
    if caller.user_id in approvers_of(s, step):
        return
    if caller.user_id == order.committer_id and not flow.self_approval:
        raise DmsError(
            ErrorCode.SELF_APPROVAL,
            f"You committed ticket {order.order_id}; somebody else must approve it.",
        )
    raise DmsError(
        ErrorCode.NOT_CURRENT_APPROVER,
        f"You are not an approver of node '{step.node_name}', where ticket {order.order_id} waits.",
    )


def _agree(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep, what: Act
) -> None:
    _require_approver(s, caller, order, flow, step)
    _operate(step, caller, StepStatus.APPROVED, what.comment)
    _event(s, flow, ApprovalAction.AGREE, caller.user_id, step=step, comment=what.comment)
    later = [x for x in _steps(s, flow) if x.position > step.position]
    if later:
        _reach(s, order, flow, later[0])
    else:
        _finish(s, order, flow, caller, what.comment)


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
    _event(s, flow, ApprovalAction.REJECT, caller.user_id, step=step, comment=what.comment)
    lifecycle.transition(
        s,
        order,
        OrderStatus.REJECT,
        actor=caller,
        comment=what.comment,
        event=_workflow(s, flow, order),
    )


def _cancel(
    s: Session, caller: Caller, order: Order, flow: WorkflowInstance, step: WorkflowStep, what: Act
) -> None:
    if caller.user_id != order.committer_id:
        raise DmsError(
            ErrorCode.PERMISSION_DENIED, "Only the committer withdraws a ticket from approval."
        )
    _operate(step, caller, StepStatus.CANCEL, what.comment)
    flow.status = WorkflowStatus.CANCEL
    _event(s, flow, ApprovalAction.CANCEL, caller.user_id, step=step, comment=what.comment)
    lifecycle.transition(  # back to the committer, who may change it and submit again
        s,
        order,
        OrderStatus.NEW,
        actor=caller,
        comment=what.comment,
        event=_workflow(s, flow, order),
    )


def _may_act_for_others(s: Session, caller: Caller, order: Order) -> bool:
    if caller.is_admin or Role.DBA in caller.roles:
        return True
    targets = ticket_facts.targets_of(s, order)
    return any(dba.is_instance_dba(t.instance, caller.user_id) for t in targets)


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
    if on_behalf and not _may_act_for_others(s, caller, order):
        raise DmsError(
            ErrorCode.PERMISSION_DENIED,
            "Only an administrator or a DBA transfers on another approver's behalf.",
        )
    stalled = not current
    if stalled and not caller.is_admin:
        raise DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"Node '{step.node_name}' has no approver; an administrator transfers it.",
        )
    if not stalled and old not in current:
        if on_behalf:
            raise DmsError(
                ErrorCode.NOT_CURRENT_APPROVER,
                f"User {old} is not an approver of node '{step.node_name}'.",
            )
        _require_approver(s, caller, order, flow, step)
    before = _approved_before(s, flow)
    new = list(dict.fromkeys(what.new_approvers))
    for user_id in new:
        user = s.get(User, user_id)
        if user is None or user.tid != order.tid or user.state != UserState.NORMAL:
            raise DmsError(ErrorCode.USER_NOT_FOUND, f"No active user {user_id} in the tenant.")
        refusal = _may_approve(
            user_id, order, flow.self_approval, flow.one_node_per_approver, before
        )
        if refusal:
            raise DmsError(refusal[0], f"User {user_id} {refusal[1]}.")
    if old not in new:
        _deactivate(s, step, [old])
    s.add_all(WorkflowApprover(step_id=step.step_id, user_id=u) for u in new if u not in current)
    step.note = ""
    s.flush()
    _event(
        s,
        flow,
        ApprovalAction.TRANSFER,
        caller.user_id,
        step=step,
        comment=what.comment,
        detail=f"from {old if not stalled else 'nobody'} to {','.join(map(str, new))}",
        on_behalf_of=old if on_behalf and not stalled else None,
    )
    _notify(s, order, flow, "order.transferred", caller, what.comment)


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
    _event(
        s,
        flow,
        ApprovalAction.ADD_APPROVAL_NODE,
        caller.user_id,
        step=added,
        comment=what.comment,
        detail=f"{'before' if before else 'after'} '{step.node_name}'",
    )
    if before:
        step.status = StepStatus.WAITING
        _reach(s, order, flow, added)
    _notify(s, order, flow, "order.node_added", caller, what.comment)


# ------------------------------------------------------------------ reading


@dataclass(frozen=True)
class StepView:
    step: WorkflowStep
    approvers: list[int]


@dataclass(frozen=True)
class Detail:
    flow: WorkflowInstance
    order: Order
    steps: list[StepView]
    reasons: list[str]

    @property
    def current(self) -> StepView | None:
        return next((v for v in self.steps if v.step.position == self.flow.current_position), None)

    @property
    def order_type(self) -> str:
        return kind_of(self.order.plugin_type).order_type


def detail(s: Session, caller: Caller, workflow_instance_id: int) -> Detail:
    order = _visible_order(s, caller, workflow_instance_id)
    flow = s.get(WorkflowInstance, workflow_instance_id)
    assert flow is not None, "a workflow instance is never deleted while its ticket exists"
    return _detail(s, flow, order)


def _detail(s: Session, flow: WorkflowInstance, order: Order) -> Detail:
    steps = [StepView(step, approvers_of(s, step)) for step in _steps(s, flow)]
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
    step = _current(s, flow)
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


# ------------------------------------------------------------------ notifications


def _workflow(s: Session, flow: WorkflowInstance, order: Order) -> dict[str, Any]:
    """The ``workflow`` block of an approval's webhook events (docs/webhooks.md)."""
    current = _detail(s, flow, order).current
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


def _notify(
    s: Session,
    order: Order,
    flow: WorkflowInstance,
    event: str,
    actor: Caller | None,
    comment: str = "",
) -> None:
    """An approval event that moves no status (a transfer, a node added); the moves fire
    theirs in ``tickets.lifecycle``."""
    data = {**webhooks.ticket_event(order, actor, comment), **_workflow(s, flow, order)}
    webhooks.emit(s, order.tid, event, data)
