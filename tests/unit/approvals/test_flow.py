"""The approval flow on SQLite: routing, every ApprovalType, the guarantees users asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from opendms.approvals import flow
from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.identity.secrets import SecretBox
from opendms.precheck import service as precheck
from opendms.rulebook import rule_sets, templates
from opendms.store.db import Store
from opendms.store.models import ApprovalEvent, Instance, Job, Order, WorkflowInstance
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World, steps


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets")


def test_production_change_goes_owner_then_dba_and_the_story_is_told(world: World) -> None:
    u = {n: x.user_id for n, x in world.users.items()}
    order_id = world.file()
    wf = world.submit(order_id)
    assert world.status(order_id) == "toaudit"
    d = world.detail(wf)
    assert d.flow.template_name == "Owner->DBA" and d.flow.risk == "HIGH"
    assert steps(d) == [
        ("Owner", "AUDITING", [u["owen"], u["olga"]]),
        ("DBA", "WAITING", []),
    ]
    assert any("production change" in r for r in d.reasons)
    world.act(wf, "olga", "AGREE", comment="looks right")
    assert steps(world.detail(wf))[1] == ("DBA", "AUDITING", [u["dba"]])
    world.act(wf, "dba", "AGREE")
    d = world.detail(wf)
    assert d.flow.status == "APPROVED" and world.status(order_id) == "Approved"
    first = d.steps[0].step
    assert (first.operator_id, first.operate_comment, first.status) == (
        u["olga"],
        "looks right",
        "APPROVED",
    )
    with world.store.session() as s:
        acts = [(e.action, e.actor_id) for e in flow.events(s, world.as_("alice"), wf)]
        assert acts == [("SUBMIT", u["alice"]), ("AGREE", u["olga"]), ("AGREE", u["dba"])]
        # the base info says where the approval stands
        assert flow.status_line(s, s.get(Order, order_id)) == "approved"


def test_routing_by_environment_and_size(world: World) -> None:
    # orders has 5,000 rows: a whole-table DELETE is not "large" ...
    assert world.detail(world.submit(world.file())).flow.template_name == "Owner->DBA"
    # ... but inserting 10,001 rows is
    big = "INSERT INTO customers (id) VALUES " + ",".join(f"({i})" for i in range(10_001))
    big_ticket = world.file(big, EstimateAffectRows=10_001)
    assert world.detail(world.submit(big_ticket)).flow.template_name == "Owner->DBA->Admin"
    world.set_env("test")
    d = world.detail(world.submit(world.file()))
    assert (d.flow.template_name, d.flow.risk) == ("DBA", "LOW")
    world.set_env("uat")
    assert world.detail(world.submit(world.file())).flow.risk == "MIDDLE"


RULES = """
templates: {LOW: DBA, MIDDLE: Owner, HIGH: Owner->DBA, HIGHEST: Owner->DBA->Admin}
rules:
  - name: no customer deletes
    when: {tables: [customers], statement_kinds: [DELETE]}
    forbid: customers are closed, not deleted
  - name: order fixes are free
    when: {tables: [ord*]}
    risk: NONE
  - name: many customers
    when: {tables: [customers], affected_rows: {over: 100}}
    risk: HIGHEST
"""


def test_rules_forbid_waive_and_raise(world: World) -> None:
    with world.store.session() as s:
        rule_sets.load(s, world.tid, "strict", RULES)
        rule_sets.assign(s, world.tid, world.instance_id, "strict")
    with pytest.raises(DmsError) as err:
        world.submit(world.file("DELETE FROM customers WHERE id = 3"))
    assert err.value.code == ErrorCode.ORDER_FORBIDDEN
    assert "no customer deletes" in err.value.message
    order_id = world.file("DELETE FROM orders WHERE id = 1")
    wf = world.submit(order_id)
    d = world.detail(wf)
    assert (d.flow.template_id, d.flow.status) == (templates.NO_APPROVAL, "APPROVED")
    assert world.status(order_id) == "Approved" and not d.steps
    # NONE only wins when nothing riskier matched
    both = (
        "UPDATE customers SET name = 'x' WHERE id > 0; UPDATE orders SET status = 'x' WHERE id = 2"
    )
    wf = world.submit(world.file(both, EstimateAffectRows=201))
    assert world.detail(wf).flow.template_name == "Owner->DBA->Admin"
    # default risk (HIGH) when no rule matched
    one = world.file("UPDATE customers SET name = 'x' WHERE id = 1")
    assert world.detail(world.submit(one)).flow.template_name == "Owner->DBA"


def test_an_unknown_safe_rule_falls_back_to_the_default_and_says_so(world: World) -> None:
    with world.store.session() as s:
        s.get(Instance, world.instance_id).safe_rule = "自由操作"
    d = world.detail(world.submit(world.file()))
    assert d.flow.template_name == "Owner->DBA"
    assert any("no rule set named" in r for r in d.reasons)


def test_nobody_approves_their_own_ticket(world: World) -> None:
    world.own("alice")  # the committer is the only owner
    wf = world.submit(world.file())
    d = world.detail(wf)
    (first, _) = d.steps
    assert first.approvers == [] and "is the committer" in first.step.note
    assert any("no approver" in r for r in d.reasons)
    with pytest.raises(DmsError) as err:
        world.act(wf, "alice", "AGREE")
    assert err.value.code == ErrorCode.SELF_APPROVAL
    # an administrator can move the stuck node on
    with pytest.raises(DmsError):
        world.act(wf, "alice", "TRANSFER", new_approvers=(world.users["alice"].user_id,))
    world.act(wf, "admin", "TRANSFER", new_approvers=(world.users["carol"].user_id,))
    world.act(wf, "carol", "AGREE")
    assert world.detail(wf).current.step.node_name == "DBA"


def test_self_approval_can_be_allowed_by_the_rule_set(world: World) -> None:
    with world.store.session() as s:
        rule_sets.load(
            s,
            world.tid,
            "default",
            "self_approval: true\ntemplates: {LOW: Owner, MIDDLE: Owner, HIGH: Owner, "
            "HIGHEST: Owner}\n",
        )
    world.own("alice")
    wf = world.submit(world.file())
    world.act(wf, "alice", "AGREE")
    assert world.detail(wf).flow.status == "APPROVED"


def test_empty_dba_node_is_flagged_not_skipped(world: World) -> None:
    with world.store.session() as s:
        s.get(Instance, world.instance_id).dba_user_id = None
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    d = world.detail(wf)
    assert d.flow.status == "AUDITING" and d.current.step.node_name == "DBA"
    assert d.current.approvers == [] and "no DBA is set" in d.current.step.note
    with world.store.session() as s:
        assert "waiting for an administrator" in flow.status_line(s, s.get(Order, order_id))
        admin_queue = tickets.list_orders(
            s, world.as_("admin"), tickets.OrderFilter(scope="AS_HANDLER"), 1, 10
        )
        assert [o.order_id for o in admin_queue.items] == [order_id]
    with pytest.raises(DmsError) as err:  # only an administrator fixes a stalled node
        world.act(wf, "owen", "TRANSFER", new_approvers=(world.users["dba"].user_id,))
    assert err.value.code == ErrorCode.PERMISSION_DENIED
    world.act(wf, "admin", "TRANSFER", new_approvers=(world.users["dba"].user_id,))
    world.act(wf, "dba", "AGREE")
    assert world.status(order_id) == "Approved"


@pytest.mark.parametrize("named_by", ["dba", None])
def test_a_dba_nobody_else_assigned_approves_nothing(world: World, named_by: str | None) -> None:
    """A DBA who named themselves (or one assigned before OpenDMS recorded by whom) is
    not the ticket's DBA approver: the node waits for an administrator, as an empty one does."""
    world.dba_named_by(named_by)
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    d = world.detail(wf)
    assert d.current.step.node_name == "DBA" and d.current.approvers == []
    assert "by an administrator" in d.current.step.note
    with pytest.raises(DmsError) as err:
        world.act(wf, "dba", "AGREE")
    assert err.value.code == ErrorCode.WORKFLOW_NOT_FOUND  # nor does it see the ticket
    world.dba_named_by("admin")  # an administrator's word, seen at the next node
    with world.store.session() as s:
        assert flow.plan(s, s.get_one(Order, order_id)).nodes[1][1].approvers == [world.id("dba")]


def test_only_current_approvers_act_and_a_repeat_never_approves_the_next_node(
    world: World,
) -> None:
    world.own("owen")
    with world.store.session() as s:  # owen is the DBA too: he could approve both nodes
        s.get(Instance, world.instance_id).dba_user_id = world.users["owen"].user_id
    order_id = world.file()
    wf = world.submit(order_id)
    for outsider, code in (
        ("admin", ErrorCode.NOT_CURRENT_APPROVER),  # sees every ticket, approves none here
        ("carol", ErrorCode.WORKFLOW_NOT_FOUND),  # may not even see it
    ):
        with pytest.raises(DmsError) as err:
            world.act(wf, outsider, "AGREE")
        assert err.value.code == code
    world.act(wf, "owen", "AGREE")
    world.act(wf, "owen", "AGREE")  # the double click
    d = world.detail(wf)
    assert [v.step.status for v in d.steps] == ["APPROVED", "AUDITING"]
    assert d.current.approvers == []  # owen approved a node already; nobody else is DBA
    assert "already approved a node" in d.current.step.note
    with world.store.session() as s:
        acts = [e.action for e in flow.events(s, world.as_("admin"), wf)]
    assert acts == ["SUBMIT", "AGREE", "REPEAT"]


def test_reject_ends_the_ticket_and_it_cannot_execute(world: World) -> None:
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "owen", "REJECT", comment="wrong table")
    assert world.status(order_id) == "reject"
    assert world.detail(wf).flow.status == "REJECT"
    with world.store.session() as s:
        jobs = s.execute(select(Job.kind, Job.state).where(Job.order_id == order_id)).all()
        assert [tuple(j) for j in jobs] == [("precheck", "succeeded")]
        with pytest.raises(DmsError) as err:
            execution.queue(s, s.get(Order, order_id), execution.ExecutionPlan())
        assert err.value.code == ErrorCode.ORDER_STATUS_INVALID
    with pytest.raises(DmsError) as err:
        world.act(wf, "dba", "AGREE")
    assert err.value.code == ErrorCode.ORDER_STATUS_INVALID
    world.act(wf, "owen", "REJECT")  # a retried reject is answered, not an error


def test_cancel_returns_the_ticket_to_its_committer(world: World) -> None:
    order_id = world.file()
    wf = world.submit(order_id)
    with pytest.raises(DmsError) as err:
        world.act(wf, "owen", "CANCEL")
    assert err.value.code == ErrorCode.PERMISSION_DENIED
    world.act(wf, "alice", "CANCEL", comment="needs a WHERE")
    assert world.status(order_id) == "new"
    assert world.detail(wf).flow.status == "CANCEL"
    wf2 = world.submit(order_id)  # submitted again: a new workflow instance
    assert wf2 != wf and world.status(order_id) == "toaudit"
    with pytest.raises(DmsError) as err:
        world.submit(order_id)
    assert err.value.code == ErrorCode.ORDER_STATUS_INVALID


def test_transfer_on_behalf_and_to_a_list(world: World) -> None:
    u = {n: x.user_id for n, x in world.users.items()}
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "owen", "TRANSFER", new_approvers=(u["carol"],))
    assert world.detail(wf).current.approvers == [u["olga"], u["carol"]]
    with pytest.raises(DmsError) as err:  # a user may not hand over someone else's task
        world.act(wf, "carol", "TRANSFER", old_approver=u["olga"], new_approvers=(u["owen"],))
    assert err.value.code == ErrorCode.PERMISSION_DENIED
    world.act(wf, "dba", "TRANSFER", old_approver=u["olga"], new_approvers=(u["owen"], u["dba"]))
    assert world.detail(wf).current.approvers == [u["carol"], u["owen"], u["dba"]]
    with pytest.raises(DmsError) as err:
        world.act(wf, "carol", "TRANSFER", new_approvers=(u["alice"],))
    assert err.value.code == ErrorCode.SELF_APPROVAL
    with world.store.session() as s:
        (event,) = [e for e in flow.events(s, world.as_("admin"), wf) if e.on_behalf_of]
        assert (event.actor_id, event.on_behalf_of) == (u["dba"], u["olga"])
        # olga was asked once: she still sees the ticket
        tickets.get_order(s, world.as_("olga"), order_id)


def test_add_approval_node_before_and_after(world: World) -> None:
    u = {n: x.user_id for n, x in world.users.items()}
    with world.store.session() as s:
        node = templates.create_node(s, world.tid, "Security", [u["carol"]]).node_id
    wf = world.submit(world.file())
    world.act(wf, "owen", "ADD_APPROVAL_NODE", node_id=node, node_position="POST_ADD_APPROVAL_NODE")
    assert [v.step.node_name for v in world.detail(wf).steps] == ["Owner", "Security", "DBA"]
    world.act(wf, "admin", "ADD_APPROVAL_NODE", node_id=node, node_position="PRE_ADD_APPROVAL_NODE")
    d = world.detail(wf)
    assert steps(d)[:2] == [
        ("Security", "AUDITING", [u["carol"]]),
        ("Owner", "WAITING", [u["owen"], u["olga"]]),
    ]
    with pytest.raises(DmsError) as err:
        world.act(
            wf, "carol", "ADD_APPROVAL_NODE", node_id=10**9, node_position="PRE_ADD_APPROVAL_NODE"
        )
    assert err.value.code == ErrorCode.WORKFLOW_NODE_NOT_FOUND
    for who in ("carol", "owen"):
        world.act(wf, who, "AGREE")
    # carol approved a node already: the second Security node has nobody left
    assert world.detail(wf).current.step.node_name == "Security"
    assert world.detail(wf).current.approvers == []


def test_auto_exec_mode_queues_execution_on_approval(world: World) -> None:
    order_id = world.file(ExecMode="AUTO")
    world.set_env("dev")
    wf = world.submit(order_id)
    with world.store.session() as s:
        assert not s.scalars(select(Job).where(Job.kind == "execute")).all()
    world.act(wf, "dba", "AGREE")
    with world.store.session() as s:
        (job,) = s.scalars(select(Job).where(Job.kind == "execute")).all()
        assert (job.order_id, job.state) == (order_id, "queued")


def test_close_cancels_the_approval(world: World) -> None:
    order_id = world.file()
    wf = world.submit(order_id)
    with world.store.session() as s:
        lifecycle.close(s, world.as_("alice"), order_id, "not needed")
    assert world.detail(wf).flow.status == "CANCEL"
    with pytest.raises(DmsError):
        world.act(wf, "owen", "AGREE")


def test_the_audit_trail_refuses_changes(world: World) -> None:
    world.submit(world.file())
    for statement in ("UPDATE approval_events SET comment = 'x'", "DELETE FROM approval_events"):
        with pytest.raises(DBAPIError), world.store.session() as s:
            s.execute(text(statement))
    with world.store.session() as s:
        assert len(s.scalars(select(ApprovalEvent)).all()) == 1


def test_workflows_are_private_to_who_may_see_the_ticket(world: World) -> None:
    wf = world.submit(world.file())
    for who in ("carol",):
        with pytest.raises(DmsError) as err:
            world.detail(wf, who)
        assert err.value.code == ErrorCode.WORKFLOW_NOT_FOUND
        with pytest.raises(DmsError) as err:
            world.act(wf, who, "AGREE")
        assert err.value.code == ErrorCode.WORKFLOW_NOT_FOUND
    with world.store.session() as s:
        queue = tickets.list_orders(
            s, world.as_("owen"), tickets.OrderFilter(scope="AS_HANDLER"), 1, 10
        )
        assert len(queue.items) == 1
        assert not tickets.list_orders(
            s, world.as_("carol"), tickets.OrderFilter(scope="AS_HANDLER"), 1, 10
        ).items


def test_preview_matches_what_submission_does(world: World) -> None:
    order_id = world.file()
    with world.store.session() as s:
        plan = flow.plan(s, s.get(Order, order_id))
    assert plan.template.name == "Owner->DBA"
    assert [(n.name, r.approvers) for n, r in plan.nodes] == [
        ("Owner", [world.users["owen"].user_id, world.users["olga"].user_id]),
        ("DBA", [world.users["dba"].user_id]),
    ]
    assert world.status(order_id) == "new"  # a preview changes nothing
    with world.store.session() as s:
        assert not s.scalars(select(WorkflowInstance)).all()


def test_only_the_committer_submits(world: World) -> None:
    order_id = world.file()
    with pytest.raises(DmsError) as err:
        world.submit(order_id, "admin")
    assert err.value.code == ErrorCode.PERMISSION_DENIED


def test_a_ticket_is_submitted_once_its_precheck_passed(world: World) -> None:
    order_id = world.file("DELETE FROM orders WHERE id < 4", EstimateAffectRows=2)
    with pytest.raises(DmsError) as err:
        world.submit(order_id)
    assert err.value.code == ErrorCode.ORDER_STATUS_INVALID
    assert "ROW_CHECK failed: 3 rows counted, where the ticket estimates 2" in err.value.message
    with world.store.session() as s:
        precheck.skip_row_check(s, world.as_("alice"), order_id, "id 3 goes too")
    world.submit(order_id)


def test_a_transfer_that_keeps_the_old_approver_keeps_them_active(world: World) -> None:
    u = {n: x.user_id for n, x in world.users.items()}
    wf = world.submit(world.file())
    world.act(wf, "owen", "TRANSFER", new_approvers=(u["owen"], u["carol"]))
    assert world.detail(wf).current.approvers == [u["owen"], u["olga"], u["carol"]]
    world.act(wf, "owen", "AGREE")
    assert world.detail(wf).current.step.node_name == "DBA"


def test_every_system_node_kind_resolves_to_its_people(world: World) -> None:
    u = {n: x.user_id for n, x in world.users.items()}
    order_id = world.file()
    with world.store.session() as s:
        node = templates.create_node(s, world.tid, "Release", [u["carol"], u["alice"]])
        templates.create_template(
            s, world.tid, "Everyone", ["Admin", "DBA Roles", "DBA", "Owner", "Release"]
        )
        rule_sets.load(
            s,
            world.tid,
            "default",
            "templates: {LOW: Everyone, MIDDLE: Everyone, HIGH: Everyone, HIGHEST: Everyone}\n",
        )
        plan = flow.plan(s, s.get(Order, order_id))
    assert node.node_type == "USER_LIST"
    assert [(n.name, n.node_type, r.approvers) for n, r in plan.nodes] == [
        ("Admin", "SYS", [u["admin"]]),
        ("DBA Roles", "SYS", [u["dba"]]),
        ("DBA", "SYS", [u["dba"]]),
        ("Owner", "SYS", [u["owen"], u["olga"]]),
        ("Release", "USER_LIST", [u["carol"]]),  # alice filed the ticket
    ]


def test_an_act_applies_to_the_node_its_request_saw(world: World, monkeypatch) -> None:
    """A request that waited behind another act finds the flow moved on: its AGREE was for a
    node that is approved now (answered, recorded as superseded, nothing more approved); any
    other act is refused rather than applied to a node its sender never saw."""
    u = {n: x.user_id for n, x in world.users.items()}
    with world.store.session() as s:  # olga is the DBA too: she could approve node 2
        s.get(Instance, world.instance_id).dba_user_id = u["olga"]
    wf = world.submit(world.file())
    first = world.detail(wf).steps[0].step.step_id
    world.act(wf, "owen", "AGREE")
    monkeypatch.setattr(flow, "_seen_step", lambda *_: first)  # as if sent before owen's
    world.act(wf, "olga", "AGREE")
    d = world.detail(wf)
    assert steps(d)[1] == ("DBA", "AUDITING", [u["olga"]])
    for kind in ("REJECT", "TRANSFER"):
        with pytest.raises(DmsError) as err:
            world.act(wf, "olga", kind, new_approvers=(u["carol"],))
        assert err.value.code == ErrorCode.ORDER_STATUS_INVALID
        assert "moved on to node 'DBA'" in err.value.message
    with world.store.session() as s:
        acts = [(e.action, e.actor_id) for e in flow.events(s, world.as_("admin"), wf)]
    assert acts[-1] == ("SUPERSEDED", u["olga"])
    monkeypatch.undo()
    world.act(wf, "olga", "AGREE")  # sent now, it is for the DBA node
    assert world.detail(wf).flow.status == "APPROVED"
