"""Intake, visibility and scopes, on SQLite (closing: test_lifecycle.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from opendms.catalog import instances, queries
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Instance, Job, Order, OrderDatabase, User
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets


def caller(user: User, *roles: Role) -> Caller:
    return Caller("AK", user.uid, user.user_id, user.tid, "t", roles or (Role.USER,))


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path):
    path = ensure_demo_target(tmp_path / "targets")
    with store.session() as s:
        tid = identity.create_tenant(s, "t").tid
        users = {
            name: identity.register_user(s, None, tid, uid, roles=roles)
            for name, uid, roles in (
                ("admin", "1", "ADMIN"),
                ("dba", "2", "DBA"),
                ("alice", "3", "USER"),
                ("bob", "4", "USER"),
                ("carol", "5", "USER"),
            )
        }
        inst = instances.register_instance(
            s,
            box,
            TargetPolicy("", path.parent),
            tid,
            instances.InstanceSpec(
                instance_type="sqlite", host=str(path), dba_user_id=users["dba"].user_id
            ),
            actor=None,
        )
        (db,) = queries.list_databases(s, tid, inst.instance_id).items
        s.expunge_all()
    return store, tid, users, db.db_id


def dc(db_id: int, sql: str = "DELETE FROM orders WHERE id = 1") -> dict:
    return {
        "DbItemList": [{"DbId": db_id}],
        "EstimateAffectRows": 1,
        "SqlType": "TEXT",
        "ExecSQL": sql,
    }


def test_ticket_and_precheck_job_are_written_together(world) -> None:
    store, _tid, users, db_id = world
    with store.session() as s:
        order = tickets.create_order(
            s,
            caller(users["alice"]),
            "DC_COMMON",
            dc(db_id),
            comment="fix",
            related_user_ids=[users["bob"].user_id],
        )
        order_id = order.order_id
    with store.session() as s:
        assert s.get(Order, order_id).status_code == "new"
        (job,) = s.scalars(select(Job).where(Job.order_id == order_id)).all()
        assert (job.kind, job.state) == ("precheck", "queued")
        assert s.scalars(select(OrderDatabase.db_id)).all() == [db_id]
    # a refused ticket leaves nothing behind: no order, no job
    with pytest.raises(DmsError), store.session() as s:
        tickets.create_order(
            s, caller(users["alice"]), "DC_COMMON", dc(db_id), comment="x", related_user_ids=[999]
        )
    with store.session() as s:
        assert len(s.scalars(select(Job)).all()) == 1
        assert len(s.scalars(select(Order)).all()) == 1


def test_parameters_are_checked_by_name(world) -> None:
    store, _tid, users, db_id = world
    alice = caller(users["alice"])
    cases = [
        ({"SqlType": "TEXT"}, "Param.DbItemList: Field required"),
        ({**dc(db_id), "SqlType": "SOMETIMES"}, "Param.SqlType"),
        ({**dc(db_id), "ExecSQL": None}, "ExecSQL is required"),
        ({**dc(db_id), "ExecSQL": "x" * (15 * 1024 * 1024 + 1)}, "Param.ExecSQL"),
        ({**dc(db_id), "DbItemList": [{"DbId": db_id, "Logic": True}]}, "logical"),
    ]
    with store.session() as s:
        for params, fragment in cases:
            with pytest.raises(DmsError) as info:
                tickets.create_order(s, alice, "DC_COMMON", params, comment="c")
            assert info.value.code is ErrorCode.INVALID_PARAMETER
            assert fragment in info.value.message, info.value.message
        with pytest.raises(DmsError) as other:
            tickets.create_order(s, alice, "DC_COMMON", dc(999), comment="c")
        assert other.value.code is ErrorCode.DATABASE_NOT_FOUND
        camel = {
            "dbItemList": [{"dbId": db_id}],
            "estimateAffectRows": 0,
            "sqlType": "TEXT",
            "execSQL": "UPDATE orders SET status = 'x' WHERE id = 2",
        }
        made = tickets.create_order(s, alice, "DC_COMMON", camel, comment="c", camel_case=True)
        assert '"ExecSQL":"UPDATE orders' in made.params


def test_visibility_and_scopes(world) -> None:
    store, _tid, users, db_id = world
    alice, bob, carol = (caller(users[n]) for n in ("alice", "bob", "carol"))
    dba = caller(users["dba"], Role.DBA)
    admin = caller(users["admin"], Role.ADMIN)
    with store.session() as s:
        order_id = tickets.create_order(
            s, alice, "DC_COMMON", dc(db_id), comment="fix", related_user_ids=[users["bob"].user_id]
        ).order_id
    with store.session() as s:
        for who in (alice, bob, dba, admin):
            assert tickets.get_order(s, who, order_id).order_id == order_id
        with pytest.raises(DmsError) as hidden:
            tickets.get_order(s, carol, order_id)
        assert hidden.value.code is ErrorCode.ORDER_NOT_FOUND  # same as a missing id

        def ids(who: Caller, scope: str, **kw) -> list[int]:
            f = tickets.OrderFilter(scope=scope, **kw)
            return [o.order_id for o in tickets.list_orders(s, who, f, 1, 10).items]

        assert ids(alice, "AS_COMMITTER") == [order_id]
        assert ids(bob, "AS_COMMITTER") == []
        assert ids(bob, "AS_Related") == [order_id]
        assert ids(dba, "AS_HANDLER") == []  # a new ticket waits on its committer
        assert ids(carol, "AS_Related") == []
        assert ids(admin, "AS_ADMIN") == [order_id]
        with pytest.raises(DmsError):
            ids(alice, "AS_ADMIN")
        assert ids(alice, "AS_COMMITTER", plugin_type="DATA_CORRECT") == [order_id]
        assert ids(alice, "AS_COMMITTER", plugin_type="DATA_EXPORT") == []
        assert ids(alice, "AS_COMMITTER", search="orders WHERE") == [order_id]
        assert ids(alice, "AS_COMMITTER", search="²") == []
        # SearchContent is a DMS pattern (store.search)
        assert ids(alice, "AS_COMMITTER", search="%") == [order_id]
        assert ids(alice, "AS_COMMITTER", search="ORDERS_where") == [order_id]
        assert ids(alice, "AS_COMMITTER", search="\\%") == []
        assert ids(alice, "AS_COMMITTER", status="FINISHED") == []


@pytest.mark.parametrize("named_by", ["dba", None])
def test_a_dba_nobody_else_assigned_sees_no_one_elses_tickets(world, named_by) -> None:
    """The DBA of the instance named themselves (or nobody recorded who named them): they
    see, list and close only what anyone else may."""
    store, _tid, users, db_id = world
    alice, dba = caller(users["alice"]), caller(users["dba"], Role.DBA)
    with store.session() as s:
        order_id = tickets.create_order(s, alice, "DC_COMMON", dc(db_id), comment="x").order_id
        by = users[named_by].user_id if named_by else None
        s.execute(update(Instance).values(dba_assigned_by=by))
    with store.session() as s:
        with pytest.raises(DmsError) as hidden:
            tickets.get_order(s, dba, order_id)
        assert hidden.value.code is ErrorCode.ORDER_NOT_FOUND
        for scope in ("AS_OWNER", "AS_HANDLER", "AS_COMMITTER"):
            listed = tickets.list_orders(s, dba, tickets.OrderFilter(scope=scope), 1, 10)
            assert listed.items == [], scope
        with pytest.raises(DmsError):
            lifecycle.close(s, dba, order_id, "mine now")
    with store.session() as s:  # an administrator's word makes them the DBA
        s.execute(update(Instance).values(dba_assigned_by=users["admin"].user_id))
    with store.session() as s:
        assert tickets.get_order(s, dba, order_id).order_id == order_id
        owned = tickets.list_orders(s, dba, tickets.OrderFilter(scope="AS_OWNER"), 1, 10)
        assert [o.order_id for o in owned.items] == [order_id]
