"""The ticket lifecycle on SQLite: every move the table holds, the moves it refuses, the one
webhook event each move fires, and closing a ticket."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.store.models import ApprovalEvent, Job, Order, SqlJob, utcnow
from opendms.store.states import (
    TERMINAL,
    ApprovalAction,
    JobState,
    OrderStatus,
    SqlJobStatus,
    StepStatus,
    WorkflowStatus,
)
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World

S = OrderStatus
REFUSED = sorted(
    set(itertools.product(OrderStatus, OrderStatus)) - set(lifecycle.MOVES),
    key=str,
)


@pytest.fixture
def world(world: World) -> World:
    """The approval world (tests/unit/conftest.py) with the tenant's webhook set."""
    return world.with_webhook("s3cret-s3cret-s3cret")


def filed(world: World, status: OrderStatus, **related: list[int]) -> int:
    """A ticket of alice's put straight into ``status`` an hour ago, its precheck job still
    queued (not run)."""
    with world.store.session() as s:
        order = tickets.create_order(
            s,
            world.as_("alice"),
            "DC_COMMON",
            {
                "DbItemList": [{"DbId": world.db_id}],
                "EstimateAffectRows": 1,
                "SqlType": "TEXT",
                "ExecSQL": "DELETE FROM orders WHERE id = 1",
            },
            comment="fix",
            related_user_ids=related.get("related", []),
        )
        order.status_code = status
        order.updated_at = utcnow() - timedelta(hours=1)
        return order.order_id


def move(world: World, order_id: int, to: OrderStatus) -> None:
    with world.store.session() as s:
        order = s.get_one(Order, order_id)
        lifecycle.transition(s, order, to, actor=world.as_("alice"), comment="why")


def ticket(world: World, order_id: int) -> tuple[OrderStatus, float, JobState]:
    """Its status, how many seconds ago it changed, and its precheck job's state."""
    with world.store.session() as s:
        order = s.get_one(Order, order_id)
        job = s.scalars(select(Job).where(Job.order_id == order_id)).one()
        return order.status_code, (utcnow() - order.updated_at).total_seconds(), job.state


def test_the_table_ends_exactly_at_the_terminal_statuses() -> None:
    assert {came for came, _ in lifecycle.MOVES} == set(OrderStatus) - TERMINAL
    assert {to for _, to in lifecycle.MOVES} == set(OrderStatus)  # each one is reached
    assert all((came, S.CLOSED) in lifecycle.MOVES for came in set(OrderStatus) - TERMINAL)
    assert lifecycle.ENDS_WORK <= TERMINAL


@pytest.mark.parametrize(("came", "to"), list(lifecycle.MOVES), ids=str)
def test_every_move_the_table_holds(world: World, came: OrderStatus, to: OrderStatus) -> None:
    order_id = filed(world, came)
    move(world, order_id, to)
    status, ago, precheck = ticket(world, order_id)
    assert status is to
    assert ago < 60  # stamped now, not an hour ago
    # a ticket that ends without its work calls that work off; other moves leave it
    assert precheck is (JobState.CANCELLED if to in lifecycle.ENDS_WORK else JobState.QUEUED)
    event = lifecycle.MOVES[came, to]
    events = world.events()
    assert [e["event"] for e in events] == ([event] if event else [])
    for e in events:  # the event tells the ticket as the move left it
        assert e["order"] == {
            "order_id": order_id,
            "plugin_type": "DC_COMMON",
            "status_code": str(to),
            "committer_id": world.id("alice"),
            "comment": "fix",
        }
        assert (e["actor"]["user_id"], e["comment"]) == (world.id("alice"), "why")


@pytest.mark.parametrize(("came", "to"), REFUSED, ids=str)
def test_a_move_the_table_does_not_hold_is_refused(
    world: World, came: OrderStatus, to: OrderStatus
) -> None:
    order_id = filed(world, came)
    with pytest.raises(DmsError) as refused:
        move(world, order_id, to)
    assert refused.value.code is ErrorCode.ORDER_STATUS_INVALID
    assert refused.value.message == f"Ticket {order_id} is {came}; it cannot become {to}."
    status, ago, precheck = ticket(world, order_id)
    assert (status, precheck) == (came, JobState.QUEUED)
    assert ago > 3000  # untouched
    assert world.events() == []


def test_a_ticket_run_to_its_end_fires_each_event_once(world: World) -> None:
    world.free_of_approval("DC_COMMON")
    order_id = world.file()
    world.execute(order_id)
    assert world.status(order_id) == S.SUCCESS
    events = world.events()
    assert [e["event"] for e in events] == ["order.submitted", "order.approved", "order.executed"]
    assert [e["order"]["status_code"] for e in events] == ["toaudit", "Approved", "success"]


def test_an_approval_moves_the_ticket_and_its_events_carry_the_workflow(world: World) -> None:
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "olga", "REJECT", comment="not on a Friday")
    assert world.status(order_id) == S.REJECT
    submitted, rejected = world.events()
    assert (submitted["event"], submitted["workflow"]["current_node"]) == (
        "order.submitted",
        "Owner",
    )
    assert (rejected["event"], rejected["workflow"]["status"]) == ("order.rejected", "REJECT")
    assert rejected["comment"] == "not on a Friday"


# ------------------------------------------------------------------ closing


def test_close_rules(world: World) -> None:
    first = filed(world, S.NEW, related=[world.id("carol")])
    second = filed(world, S.NEW)
    with world.store.session() as s:
        with pytest.raises(DmsError) as related:
            lifecycle.close(s, world.as_("carol"), first, "no")
        assert related.value.code is ErrorCode.PERMISSION_DENIED
        lifecycle.close(s, world.as_("alice"), first, "not needed")
        lifecycle.close(s, world.as_("dba"), second, "wrong table")
        with pytest.raises(DmsError) as again:
            lifecycle.close(s, world.as_("alice"), first, "twice")
        assert again.value.code is ErrorCode.ORDER_STATUS_INVALID
        assert again.value.message == f"Ticket {first} is already closed."
    with world.store.session() as s:
        assert {j.state for j in s.scalars(select(Job))} == {JobState.CANCELLED}
        assert s.get_one(Order, first).close_reason == "not needed"
    assert [(e["event"], e["comment"]) for e in world.events()] == [
        ("order.closed", "not needed"),
        ("order.closed", "wrong table"),
    ]


def test_closing_calls_off_the_approval_under_way(world: World) -> None:
    order_id = world.file()
    wf = world.submit(order_id)
    with world.store.session() as s:
        lifecycle.close(s, world.as_("alice"), order_id, "not needed")
    detail = world.detail(wf)
    assert detail.flow.status is WorkflowStatus.CANCEL
    assert [v.step.status for v in detail.steps] == [StepStatus.CANCEL, StepStatus.WAITING]
    with world.store.session() as s:
        trail = s.scalars(select(ApprovalEvent).where(ApprovalEvent.order_id == order_id))
        assert [e.action for e in trail] == [ApprovalAction.SUBMIT, ApprovalAction.CLOSE]


def test_closing_leaves_the_sql_jobs_not_run_deleted(world: World) -> None:
    world.free_of_approval("DC_COMMON")
    order_id = world.file()
    world.submit(order_id)
    with world.store.session() as s:  # queued for tomorrow: nothing has run yet
        later = f"{utcnow() + timedelta(days=1):%Y-%m-%d %H:%M:%S}"
        execution.execute(s, world.as_("alice"), order_id, execution.ExecutionPlan(start=later))
    with world.store.session() as s:
        lifecycle.close(s, world.as_("alice"), order_id, "changed my mind")
    with world.store.session() as s:
        (sql_job,) = s.scalars(select(SqlJob).where(SqlJob.order_id == order_id))
        assert sql_job.status is SqlJobStatus.DELETE
        assert sql_job.log.endswith("ticket closed\n")
        jobs = s.scalars(select(Job).where(Job.order_id == order_id, Job.kind == "execute"))
        assert [j.state for j in jobs] == [JobState.CANCELLED]
        assert s.get_one(Order, order_id).status_code is S.CLOSED
