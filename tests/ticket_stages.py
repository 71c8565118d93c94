"""Tickets of every kind at every stage of their lives, on the approval world
(tests/approval_world.py): what the ticket page and ``opendms.abilities`` are tried on."""

from __future__ import annotations

from opendms.execution import service as execution
from opendms.exports import service as exports
from opendms.store.models import Order
from opendms.structure import design
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World

DAILY = "0 0 2 * * ?"
LATER = "2099-01-01 00:00:00"  # a start time that keeps work queued through run_jobs
IMPORTED = b"id,name,email,created_at\n5001,Ann,ann@example.com,2026-01-01\n"


def approve_all(world: World, order_id: int) -> None:
    """Each node agreed by its first approver, until the ticket is approved."""
    with world.store.session() as s:
        wf = s.get(Order, order_id).workflow_instance_id  # type: ignore[union-attr]
    while world.status(order_id) == "toaudit":
        current = world.detail(wf).current
        assert current is not None and current.approvers, "a node nobody can approve"
        name = next(n for n, u in world.users.items() if u.user_id == current.approvers[0])
        world.act(wf, name, "AGREE")


def build_stages(world: World) -> dict[str, int]:
    """Tickets of each kind at each stage, by name."""
    w = world
    out: dict[str, int] = {}
    out["new, prechecked"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    out["new, row count differs"] = w.file("DELETE FROM orders WHERE id IN (1, 2)")
    out["toaudit"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 8")
    w.submit(out["toaudit"])
    out["toaudit, second node"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 9")
    wf = w.submit(out["toaudit, second node"])
    w.act(wf, "owen", "AGREE")
    out["approved"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 10")
    w.submit(out["approved"])
    approve_all(w, out["approved"])
    out["executing, queued"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 11")
    w.submit(out["executing, queued"])
    approve_all(w, out["executing, queued"])
    later = execution.checked_plan(start=LATER)  # queued until then: run_jobs leaves it
    with w.store.session() as s:
        execution.execute(s, w.as_("alice"), out["executing, queued"], later)
    out["executing, paused"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 12")
    w.submit(out["executing, paused"])
    approve_all(w, out["executing, paused"])
    with w.store.session() as s:
        execution.execute(s, w.as_("alice"), out["executing, paused"], execution.ExecutionPlan())
    with w.store.session() as s:
        execution.pause(s, w.as_("alice"), out["executing, paused"], "ALL", None)
    out["rejected"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 13")
    wf = w.submit(out["rejected"])
    w.act(wf, "owen", "REJECT", comment="not today")
    out["closed"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 14")
    with w.store.session() as s:
        lifecycle.close(s, w.as_("alice"), out["closed"], "changed my mind")
    out["lock-free, approved"] = w.file(
        "UPDATE orders SET status = 'x' WHERE id < 5", kind="DC_CHUNK"
    )
    w.submit(out["lock-free, approved"])
    approve_all(w, out["lock-free, approved"])
    out["cleanup on its schedule"] = w.file(
        "",
        kind="DC_CRON_CLEAR",
        CronClearItemList=[{"TableName": "orders", "ColumnName": "created_at", "RemainDays": 1}],
        CronFormat=DAILY,
        specifyDuration=False,
    )
    w.submit(out["cleanup on its schedule"])
    approve_all(w, out["cleanup on its schedule"])
    out["export, approved"] = w.export("SELECT id FROM orders WHERE customer_id = 1", rows=25)
    w.submit(out["export, approved"])
    approve_all(w, out["export, approved"])
    out["export, queued"] = w.export("SELECT id FROM orders WHERE customer_id = 2", rows=25)
    w.submit(out["export, queued"])
    approve_all(w, out["export, queued"])
    with w.store.session() as s:
        exports.execute(s, w.as_("alice"), out["export, queued"], exports.checked_plan(start=LATER))
    out["succeeded"] = w.file("UPDATE orders SET status = 'paid' WHERE id = 15")
    w.submit(out["succeeded"])
    approve_all(w, out["succeeded"])
    with w.store.session() as s:
        execution.execute(s, w.as_("alice"), out["succeeded"], execution.ExecutionPlan())
    out["failed"] = w.file("UPDATE orders SET id = 1 WHERE id = 2")  # id 1 is taken
    w.submit(out["failed"])
    approve_all(w, out["failed"])
    with w.store.session() as s:
        execution.execute(s, w.as_("alice"), out["failed"], execution.ExecutionPlan())
    out["lock-free, done"] = w.file("UPDATE orders SET status = 'y' WHERE id < 9", kind="DC_CHUNK")
    w.submit(out["lock-free, done"])
    approve_all(w, out["lock-free, done"])
    with w.store.session() as s:
        execution.execute(s, w.as_("alice"), out["lock-free, done"], execution.ExecutionPlan())
    out["export, done"] = w.export("SELECT id FROM orders WHERE customer_id = 3", rows=25)
    w.submit(out["export, done"])
    approve_all(w, out["export, done"])
    with w.store.session() as s:
        exports.execute(s, w.as_("alice"), out["export, done"], exports.checked_plan())
    out["import, done"] = w.import_file("people.csv", IMPORTED)
    w.submit(out["import, done"])
    approve_all(w, out["import, done"])
    with w.store.session() as s:
        execution.execute(s, w.as_("alice"), out["import, done"], execution.ExecutionPlan())
    out["schema design"] = schema_design(w)
    out["schema design, compared"] = schema_design(w, DESIGN)
    # (its own index: the other design's stays to run)
    out["schema design, base ran"] = schema_design(w, DESIGN.replace("status", "amount_cents"))
    w.run_jobs()  # the comparisons
    with w.store.session() as s:
        design.execute_stage(s, w.as_("alice"), out["schema design, base ran"], w.db_id)
    w.run_jobs()  # what was started runs to its end (the queued ones wait for LATER)
    return out


DESIGN = "CREATE INDEX idx_orders_status ON orders (status)"


def schema_design(world: World, script: str | None = None, who: str = "alice") -> int:
    """A schema design ticket (NDDL) on the world's database; given ``script`` as its design
    (compared once the jobs run)."""
    with world.store.session() as s:
        order = tickets.create_order(
            s,
            world.as_(who),
            "NDDL",
            {"Title": "an index on orders", "DbId": world.db_id},
            comment="design",
        )
        order_id = order.order_id
    if script is not None:
        with world.store.session() as s:
            design.update_design(s, world.as_(who), order_id, script)
    return order_id
