"""ListOrders' service (``tickets.list_orders``) beyond the wire's filters: a status of its
own, a database; each scope held to what it means and to what the caller may see, ticket by
ticket; the page found the same whether the tickets are few or many; StatusDesc read for a
page at once. On SQLite and on PostgreSQL: the queries are written for SQLite's planner and
must mean the same on both."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, update

from opendms.catalog import instances, queries
from opendms.errors import DmsError
from opendms.identity.caller import Caller
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Job, Order, OrderDatabase, utcnow
from opendms.store.states import JobState, OrderStatus
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, box: SecretBox, tmp_path: Path) -> Iterator[World]:
    """The approval world on each metadata store."""
    if request.param == "sqlite":
        store = request.getfixturevalue("store")
        yield World.build(store, box, tmp_path / "targets")
        return
    store = Store(request.getfixturevalue("pg_store_url"))
    try:
        yield World.build(store, box, tmp_path / "targets")
    finally:
        store.dispose()


def ids(world: World, who: str, page: int = 1, size: int = 100, **kw: object) -> list[int]:
    with world.store.session() as s:
        f = tickets.OrderFilter(**kw)  # type: ignore[arg-type]
        return [o.order_id for o in tickets.list_orders(s, world.as_(who), f, page, size).items]


def listed(world: World, who: str, **kw: object) -> tuple[int, list[int]]:
    with world.store.session() as s:
        f = tickets.OrderFilter(**kw)  # type: ignore[arg-type]
        found = tickets.list_orders(s, world.as_(who), f, 1, 100)
        return found.total, [o.order_id for o in found.items]


@pytest.fixture
def busy(world: World) -> tuple[World, dict[str, int]]:
    """Tickets in every state the scopes tell apart, with the related user, the owners and
    the DBA of the world's production database:

    new       alice's, carol related; carol's own (its precheck failed: no permission)
    owner     alice's, submitted: waiting on the owners owen and olga
    dba       alice's, the owner agreed: waiting on the DBA
    approved  alice's, approved: waiting on the DBA to run it (AS_HANDLER)
    closed    alice's, closed before it was submitted
    """
    u = {n: x.user_id for n, x in world.users.items()}
    t = {"new": world.file(), "carols": world.file(who="carol")}
    with world.store.session() as s:
        s.execute(
            update(Order)
            .where(Order.order_id == t["new"])
            .values(related_user_ids=f",{u['carol']},")
        )
    t["owner"] = world.file()
    world.submit(t["owner"])
    t["dba"] = world.file()
    wf = world.submit(t["dba"])
    world.act(wf, "owen", "AGREE")
    t["approved"] = world.file()
    wf = world.submit(t["approved"])
    world.act(wf, "olga", "AGREE")
    world.act(wf, "dba", "AGREE")
    t["closed"] = world.file()
    with world.store.session() as s:
        lifecycle.close(s, world.as_("alice"), t["closed"], "not needed")
    return world, t


def test_each_scope_lists_what_it_means_and_only_what_the_caller_may_see(busy) -> None:
    """An oracle ticket by ticket, from the facts (get_order for visibility): a scope's
    SQL folds the visibility in where it implies it, and must come to the same tickets."""
    world, t = busy
    everything = sorted(t.values(), reverse=True)
    with world.store.session() as s:
        order = {i: s.get(Order, i) for i in everything}

        def visible(c: Caller, i: int) -> bool:
            try:
                tickets.get_order(s, c, i)
            except DmsError:
                return False
            return True

        expected = {
            # Scope by scope, who should find which tickets (before visibility).
            "AS_COMMITTER": lambda c, i: order[i].committer_id == c.user_id,
            "AS_Related": lambda c, i: c.user_id in tickets.related_ids(order[i]),
            "AS_HANDLER": lambda c, i: (
                (i in (t["owner"],) and c.uid in (world.users["owen"].uid, world.users["olga"].uid))
                or (i == t["dba"] and c.uid == world.users["dba"].uid)
                or (i == t["approved"] and tickets.is_dba_of_ticket(s, c, i))
            ),
            # every ticket is on the owners' database and the DBA's instance
            "AS_OWNER": lambda c, i: c.uid in (world.users[n].uid for n in ("owen", "olga", "dba")),
        }
        for who in world.users:
            c = world.as_(who)
            for scope, means in expected.items():
                want = [i for i in everything if means(c, i) and visible(c, i)]
                got = [
                    o.order_id
                    for o in tickets.list_orders(
                        s, c, tickets.OrderFilter(scope=scope), 1, 100
                    ).items
                ]
                assert got == want, (who, scope)
    # Owning the database shows an owner only the tickets they were asked to approve: the
    # scope tests the visibility for them (alice's new, carol's and the closed one are not).
    assert ids(world, "owen", scope="AS_OWNER") == sorted(
        [t["owner"], t["dba"], t["approved"]], reverse=True
    )
    assert ids(world, "admin", scope="AS_ADMIN") == everything
    with pytest.raises(DmsError):
        ids(world, "alice", scope="AS_ADMIN")


def test_a_status_of_its_own_and_the_wire_groups(busy) -> None:
    world, t = busy
    mine = dict(scope="AS_COMMITTER")
    assert ids(world, "alice", statuses=frozenset({OrderStatus.TOAUDIT}), **mine) == [
        t["dba"],
        t["owner"],
    ]
    assert ids(world, "alice", statuses=frozenset({OrderStatus.APPROVED}), **mine) == [
        t["approved"]
    ]
    both = frozenset({OrderStatus.NEW, OrderStatus.CLOSED})
    assert ids(world, "alice", statuses=both, **mine) == [t["closed"], t["new"]]
    assert ids(world, "alice", statuses=frozenset(), **mine) == []
    assert ids(world, "alice", status="FINISHED", **mine) == [t["closed"]]
    # both at once: each narrows
    assert ids(world, "alice", status="FINISHED", statuses=frozenset({OrderStatus.NEW})) == []
    # the last second there is bounds nothing (it has no second after it to compare with)
    last = datetime(9999, 12, 31, 23, 59, 59)
    assert ids(world, "alice", status="FINISHED", end=last, **mine) == [t["closed"]]
    assert ids(world, "alice", status="FINISHED", start=last, **mine) == []
    # the status narrows the scope, never widens it
    assert ids(world, "dba", scope="AS_HANDLER", statuses=frozenset({OrderStatus.NEW})) == []


def test_the_database_filter(world: World) -> None:
    """Tickets that touch a database; one on another instance is not among them."""
    with world.store.session() as s:
        _, inst = queries.get_database_on(s, world.tid, world.db_id)
        demo = Path(inst.host)
    other_file = demo.with_name("other.db")
    shutil.copyfile(demo, other_file)
    with world.store.session() as s:
        other_inst = instances.register_instance(
            s,
            world.means.secrets,
            world.means.targets,
            world.tid,
            instances.InstanceSpec(instance_type="sqlite", host=str(other_file)),
            actor=None,
        )
        (other,) = queries.list_databases(s, world.tid, other_inst.instance_id).items
        other_id, other_inst_id = other.db_id, other_inst.instance_id
    here, there = world.file(), world.file()
    with world.store.session() as s:  # moved to the other database, as if filed there
        s.execute(
            update(OrderDatabase)
            .where(OrderDatabase.order_id == there)
            .values(db_id=other_id, instance_id=other_inst_id)
        )
    assert ids(world, "alice", db_id=world.db_id) == [here]
    assert ids(world, "alice", db_id=other_id) == [there]
    assert ids(world, "alice", db_id=other_id + 1000) == []
    assert ids(world, "alice") == [there, here]  # no database filter: both
    # the database narrows the scope: the DBA of the first instance runs no other one
    assert ids(world, "dba", scope="AS_OWNER", db_id=other_id) == []
    assert ids(world, "dba", scope="AS_OWNER", db_id=world.db_id) == [here]


def test_the_page_is_the_same_found_among_few_tickets_or_walked_to_among_many(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page comes from the ids when the tickets are few, from an ordered walk when they
    are many: both give the newest first, the same pages and the same count."""
    made = sorted((world.file() for _ in range(7)), reverse=True)
    pages = {n: made[(n - 1) * 3 : n * 3] for n in (1, 2, 3, 4)}
    # the same through id lists (the DBA's instances, the database): tested, not leading
    lists = tickets.OrderFilter(scope="AS_OWNER", db_id=world.db_id)
    for few in (1000, 2):  # all 7 are few; 7 are more than 2
        monkeypatch.setattr(tickets, "_FEW", few)
        for n, want in pages.items():
            with world.store.session() as s:
                found = tickets.list_orders(s, world.as_("alice"), tickets.OrderFilter(), n, 3)
                assert (found.total, [o.order_id for o in found.items]) == (7, want), (few, n)
                found = tickets.list_orders(s, world.as_("dba"), lists, n, 3)
                assert (found.total, [o.order_id for o in found.items]) == (7, want), (few, n)
    assert listed(world, "carol") == (0, [])


def test_status_descs_reads_a_page_at_once_and_says_what_status_desc_says(
    world: World,
) -> None:
    """Tickets being executed: failed, paused, waiting for their start time, running; and
    one approved. One query for their jobs, whatever their number."""
    made = [world.file() for _ in range(5)]
    jobs = [
        dict(state=JobState.FAILED, checkpoint={"failure": "lock wait timeout"}, attempts=1),
        dict(state=JobState.PAUSED, checkpoint={}, attempts=1),
        dict(state=JobState.QUEUED, checkpoint={}, attempts=0),
        dict(state=JobState.RUNNING, checkpoint={}, attempts=1),
    ]
    with world.store.session() as s:
        for order_id, job in zip(made, jobs, strict=False):
            s.execute(
                update(Order)
                .where(Order.order_id == order_id)
                .values(status_code=OrderStatus.PROCESSING)
            )
            # an older run of it that failed: only the newest counts
            s.add(Job(order_id=order_id, kind="execute", state=JobState.FAILED, attempts=1))
            s.flush()
            s.add(
                Job(
                    order_id=order_id,
                    kind="execute",
                    run_after=utcnow() + timedelta(hours=1),
                    **job,
                )
            )
        s.execute(
            update(Order).where(Order.order_id == made[4]).values(status_code=OrderStatus.APPROVED)
        )
    with world.store.session() as s:
        orders = [s.get(Order, i) for i in made]
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(s.get_bind(), "before_cursor_execute", count)
        try:
            descs = tickets.status_descs(s, orders)
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", count)
        assert len(statements) == 1
        assert descs == {o.order_id: tickets.status_desc(s, o) for o in orders}
    assert descs[made[0]] == "Execution failed: lock wait timeout"
    assert descs[made[1]] == "Execution paused"
    assert descs[made[2]].startswith("Scheduled for ")
    assert descs[made[3]] == "Executing"
    assert descs[made[4]] == "Approved"
    with world.store.session() as s:
        assert tickets.status_descs(s, []) == {}


def test_database_names_of_a_page(world: World) -> None:
    made = [world.file(), world.file()]
    with world.store.session() as s:
        names = tickets.database_names(s, made)
        db, inst = queries.get_database_on(s, world.tid, world.db_id)
        for order_id in made:
            (name,) = names[order_id]
            assert (name.db_id, name.schema_name) == (world.db_id, db.schema_name)
            assert name.instance_alias == (inst.alias or inst.host)
        assert tickets.database_names(s, []) == {}
