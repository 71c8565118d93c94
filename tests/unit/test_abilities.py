"""``opendms.abilities`` offers exactly the acts the services would let each person take:
for tickets of every kind in every stage and everyone who may see them, each act is tried
for real (and rolled back) and compared with what ``abilities.of`` says; and what a ticket
waits for is said in words that name who it waits on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms import abilities
from opendms.approvals import acts, flow, views
from opendms.errors import DmsError
from opendms.execution import service as execution
from opendms.exports import service as exports
from opendms.identity.caller import Caller
from opendms.precheck import service as precheck
from opendms.store.models import ApprovalEvent, Order
from opendms.store.states import ApprovalAction
from opendms.structure import design
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World
from tests.ticket_stages import DESIGN, build_stages, schema_design

PEOPLE = ("admin", "dba", "alice", "owen", "olga", "carol")


class _Undo(Exception):
    """Rolls back an act that was tried and went through."""


def _tried(world: World, act: Callable[[Session], Any]) -> bool:
    """Whether ``act`` goes through (it is rolled back either way); an approval act the
    flow answers as a repeat or a race did nothing, and counts as refused."""
    try:
        with world.store.session() as s:
            before = s.scalar(
                select(ApprovalEvent.event_id).order_by(ApprovalEvent.event_id.desc())
            )
            act(s)
            last = s.scalars(
                select(ApprovalEvent).order_by(ApprovalEvent.event_id.desc()).limit(1)
            ).first()
            idle = (ApprovalAction.REPEAT, ApprovalAction.SUPERSEDED)
            if last is not None and last.event_id != before and last.action in idle:
                return False
            raise _Undo
    except _Undo:
        return True
    except DmsError:
        return False


def _actual(world: World, who: str, order_id: int) -> dict[str, Any]:
    """What each act does for ``who`` on the ticket, tried for real."""
    caller = world.as_(who)
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        export = order.plugin_type == "DATA_EXPORT"
        status = order.status_code
        wf = order.workflow_instance_id
        export_job = tickets.latest_job(s, order_id, exports.EXPORT)
        job_id = export_job.job_id if export_job else 0
        found = views.detail(s, caller, wf) if wf else None
        current = found.current.approvers if found and found.current else []

    def approval(kind: str, **more: Any) -> Callable[[Session], Any]:
        return lambda s: acts.act(s, caller, wf or 0, acts.Act(kind, **more))

    carol = world.id("carol")
    transfer_for = tuple(
        u
        for u in current
        if u != caller.user_id
        and _tried(world, approval("TRANSFER", new_approvers=(carol,), old_approver=u))
    )
    own = _tried(world, approval("TRANSFER", new_approvers=(carol,)))
    if export:
        execute = _tried(
            world, lambda s: exports.execute(s, caller, order_id, exports.ExportPlan())
        )
        pause = bool(job_id) and _tried(world, lambda s: exports.stop(s, caller, order_id, job_id))
        resume = bool(job_id) and _tried(
            world, lambda s: exports.restart(s, caller, order_id, job_id)
        )
    else:
        plan = execution.ExecutionPlan()
        # a paused execution is continued through Resume on the page, not Execute
        execute = status == "Approved" and _tried(
            world, lambda s: execution.execute(s, caller, order_id, plan)
        )
        pause = _tried(world, lambda s: execution.pause(s, caller, order_id, "ALL", None))
        resume = _tried(world, lambda s: execution.restart(s, caller, order_id, "ALL", None))
    return {
        "submit": _tried(world, lambda s: flow.submit(s, caller, order_id)),
        "withdraw": bool(wf) and _tried(world, approval("CANCEL")),
        "decide": bool(wf) and _tried(world, approval("AGREE")),
        "reject": bool(wf) and _tried(world, approval("REJECT", comment="no")),
        "transfer": bool(wf) and (own or bool(transfer_for)),
        "transfer_for": transfer_for,
        "execute": execute,
        "pause": pause,
        "resume": resume,
        "close": _tried(world, lambda s: lifecycle.close(s, caller, order_id, "done")),
        "recheck": _tried(world, lambda s: precheck.retry(s, caller, order_id)),
        "waive_row_check": _tried(
            world, lambda s: precheck.skip_row_check(s, caller, order_id, "two rows, not one")
        ),
        **_design_acts(world, caller, order_id),
    }


def _design_acts(world: World, caller: Caller, order_id: int) -> dict[str, Any]:
    """A schema design's own acts, tried for real: a new design (one review passes), a new
    comparison, a run on each of its stages."""
    with world.store.session() as s:
        order = s.get_one(Order, order_id)
        if order.plugin_type != design.PLUGIN_TYPE:
            return {"design": False, "compare": False, "run_stages": ()}
        stages = [st.db.db_id for st in design.stages_of(s, order)]
    script = "CREATE INDEX idx_orders_created ON orders (created_at, status)"
    return {
        "design": _tried(world, lambda s: design.update_design(s, caller, order_id, script)),
        "compare": _tried(world, lambda s: design.compare_again(s, caller, order_id)),
        "run_stages": tuple(
            db
            for db in stages
            if _tried(world, lambda s, db=db: design.execute_stage(s, caller, order_id, db))
        ),
    }


@pytest.fixture
def stages(world: World) -> dict[str, int]:
    return build_stages(world)


def test_the_acts_offered_are_the_acts_the_services_allow(
    world: World, stages: dict[str, int]
) -> None:
    offered_somewhere: set[str] = set()
    for stage, order_id in stages.items():
        for who in PEOPLE:
            caller = world.as_(who)
            with world.store.session() as s:
                try:
                    order = tickets.get_order(s, caller, order_id)
                except DmsError:
                    continue  # not theirs to see: the page answers 404
                said = abilities.of(s, caller, order)
            actual = _actual(world, who, order_id)
            assert actual.pop("reject") == actual["decide"], (stage, who)
            shown = {k: getattr(said, k) for k in actual}
            assert shown == actual, (stage, who)
            offered_somewhere |= {k for k, v in shown.items() if v and k != "transfer_for"}
    # every act is offered to somebody at some stage: the comparison above is not vacuous
    assert offered_somewhere == {
        "submit",
        "withdraw",
        "decide",
        "transfer",
        "execute",
        "pause",
        "resume",
        "close",
        "recheck",
        "waive_row_check",
        "design",
        "compare",
        "run_stages",
    }


def test_what_a_ticket_waits_for_names_who(world: World, stages: dict[str, int]) -> None:
    def waiting(stage: str) -> str:
        with world.store.session() as s:
            order = s.get(Order, stages[stage])
            assert order is not None
            return abilities.waiting(s, order)

    assert waiting("new, prechecked") == "Waiting for alice to submit it for approval."
    assert waiting("new, row count differs").startswith("It cannot be submitted yet: ROW_CHECK")
    assert waiting("toaudit") == "Waiting for owen or olga to approve node 'Owner'."
    assert waiting("toaudit, second node") == "Waiting for dba to approve node 'DBA'."
    assert waiting("approved") == "Waiting for alice (the committer) to execute it."
    assert waiting("export, approved") == "Waiting for alice (the committer) to export it."
    assert waiting("executing, paused").startswith("Its execution is paused")
    assert waiting("cleanup on its schedule") == "It runs on its schedule until it is closed."
    assert waiting("closed") == "Closed: changed my mind"
    assert waiting("rejected") == waiting("succeeded") == ""


def test_a_node_nobody_can_approve_says_so_and_who_can_move_it(world: World) -> None:
    world.own()  # the database has no owner: the Owner node resolves to nobody
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    world.submit(order_id)
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        said = abilities.waiting(s, order)
        admin = abilities.of(s, world.as_("admin"), order)
        dba = abilities.of(s, world.as_("dba"), order)
    assert "has no approver" in said and "An administrator may transfer the node" in said
    assert admin.transfer and admin.transfer_for == () and not admin.decide
    assert not dba.transfer  # only an administrator moves a node that has nobody


def test_what_a_schema_design_waits_for(world: World) -> None:
    def waiting(order_id: int) -> str:
        with world.store.session() as s:
            return abilities.waiting(s, s.get_one(Order, order_id))

    order_id = schema_design(world)
    assert waiting(order_id) == (
        "It cannot be submitted yet: it has no design yet (UpdateSchemaDesign)."
    )
    with world.store.session() as s:
        design.update_design(s, world.as_("alice"), order_id, DESIGN)
    assert waiting(order_id).endswith("its design is still being compared with its stages.")
    world.run_jobs()
    assert "run the design on its base database main first" in waiting(order_id)
