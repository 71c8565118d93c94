"""The approval flow on SQLite (``approvals.flow``): submission, its gates, a ticket going
node by node to approved, and what approval sets off."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from opendms.approvals import views
from opendms.errors import DmsError, ErrorCode
from opendms.precheck import service as precheck
from opendms.store.models import ApprovalEvent, Job, Order
from opendms.tickets import lifecycle
from tests.approval_world import World, steps


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
        acts = [(e.action, e.actor_id) for e in views.events(s, world.as_("alice"), wf)]
        assert acts == [("SUBMIT", u["alice"]), ("AGREE", u["olga"]), ("AGREE", u["dba"])]
        # the base info says where the approval stands
        assert views.status_line(s, s.get(Order, order_id)) == "approved"


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
