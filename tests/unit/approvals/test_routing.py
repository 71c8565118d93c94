"""Routing on SQLite: which template the rules choose, by environment, size and rule set,
and who each node names (``approvals.routing``), as a preview and as submission does it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opendms.approvals import routing, views
from opendms.errors import DmsError, ErrorCode
from opendms.rulebook import rule_sets, templates
from opendms.store.models import Instance, Order, WorkflowInstance
from opendms.tickets import service as tickets
from tests.approval_world import World


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
        assert "waiting for an administrator" in views.status_line(s, s.get(Order, order_id))
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
        route = routing.route(s, s.get_one(Order, order_id))
    assert route.nodes[1][1].approvers == [world.id("dba")]


def test_preview_matches_what_submission_does(world: World) -> None:
    order_id = world.file()
    with world.store.session() as s:
        route = routing.route(s, s.get(Order, order_id))
    assert route.template.name == "Owner->DBA"
    assert [(n.name, r.approvers) for n, r in route.nodes] == [
        ("Owner", [world.users["owen"].user_id, world.users["olga"].user_id]),
        ("DBA", [world.users["dba"].user_id]),
    ]
    assert world.status(order_id) == "new"  # a preview changes nothing
    with world.store.session() as s:
        assert not s.scalars(select(WorkflowInstance)).all()


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
        route = routing.route(s, s.get(Order, order_id))
    assert node.node_type == "USER_LIST"
    assert [(n.name, n.node_type, r.approvers) for n, r in route.nodes] == [
        ("Admin", "SYS", [u["admin"]]),
        ("DBA Roles", "SYS", [u["dba"]]),
        ("DBA", "SYS", [u["dba"]]),
        ("Owner", "SYS", [u["owen"], u["olga"]]),
        ("Release", "USER_LIST", [u["carol"]]),  # alice filed the ticket
    ]
