"""The acts of ApproveOrder on SQLite (``approvals.acts``): who may act, every ApprovalType,
repeats and acts whose node the flow left meanwhile."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opendms.approvals import acts, views
from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.rulebook import templates
from opendms.store.models import Instance, Job, Order
from opendms.tickets import service as tickets
from tests.approval_world import World, steps


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
        trail = [e.action for e in views.events(s, world.as_("admin"), wf)]
    assert trail == ["SUBMIT", "AGREE", "REPEAT"]


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
        (event,) = [e for e in views.events(s, world.as_("admin"), wf) if e.on_behalf_of]
        assert (event.actor_id, event.on_behalf_of) == (u["dba"], u["olga"])
        # olga was asked once: she still sees the ticket
        tickets.get_order(s, world.as_("olga"), order_id)


def test_a_transfer_that_keeps_the_old_approver_keeps_them_active(world: World) -> None:
    u = {n: x.user_id for n, x in world.users.items()}
    wf = world.submit(world.file())
    world.act(wf, "owen", "TRANSFER", new_approvers=(u["owen"], u["carol"]))
    assert world.detail(wf).current.approvers == [u["owen"], u["olga"], u["carol"]]
    world.act(wf, "owen", "AGREE")
    assert world.detail(wf).current.step.node_name == "DBA"


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
    monkeypatch.setattr(acts, "_seen_step", lambda *_: first)  # as if sent before owen's
    world.act(wf, "olga", "AGREE")
    d = world.detail(wf)
    assert steps(d)[1] == ("DBA", "AUDITING", [u["olga"]])
    for kind in ("REJECT", "TRANSFER"):
        with pytest.raises(DmsError) as err:
            world.act(wf, "olga", kind, new_approvers=(u["carol"],))
        assert err.value.code == ErrorCode.ORDER_STATUS_INVALID
        assert "moved on to node 'DBA'" in err.value.message
    with world.store.session() as s:
        trail = [(e.action, e.actor_id) for e in views.events(s, world.as_("admin"), wf)]
    assert trail[-1] == ("SUPERSEDED", u["olga"])
    monkeypatch.undo()
    world.act(wf, "olga", "AGREE")  # sent now, it is for the DBA node
    assert world.detail(wf).flow.status == "APPROVED"
