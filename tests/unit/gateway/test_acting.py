"""RealLoginUserUid (``identity.acting``, read in ``gateway.pipeline``): an ADMIN's access key
calls for another user of the tenant, under that user's data rules, and the audit names both.

The approval world (tests/approval_world.py) in the in-process app: admin, dba, alice (who
may change and export the demo database), owen and olga (its owners), carol; each with a key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from opendms.identity import service as identity
from opendms.store.models import ApprovalEvent, Order, SqlAudit, utcnow
from tests.approval_world import World
from tests.conftest import Api
from tests.signer import Signer

PEOPLE = ("admin", "dba", "alice", "olga", "carol")


@dataclass
class Acting:
    api: Api
    world: World
    keys: dict[str, Signer]

    def uid(self, name: str) -> str:
        return self.world.users[name].uid

    def call(self, who: str, action: str, **params: Any) -> dict[str, Any]:
        """``action`` signed with ``who``'s key in the world's tenant; the JSON answer of a
        business call (HTTP 200, whether it succeeded or not)."""
        resp = self.api.call(action, self.keys[who], Tid=self.world.tid, **params)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def ok(self, who: str, action: str, **params: Any) -> dict[str, Any]:
        body = self.call(who, action, **params)
        assert body["Success"] is True, body
        return body

    def refused(self, who: str, action: str, code: str, *says: str, **params: Any) -> str:
        body = self.call(who, action, **params)
        assert (body["Success"], body["ErrorCode"]) == (False, code), body
        for fragment in says:
            assert fragment in body["ErrorMessage"], body
        return str(body["ErrorMessage"])

    def file_change(self, who: str, **params: Any) -> int:
        """CreateDataCorrectOrder of one DELETE on the demo database: its OrderId."""
        param = {
            "DbItemList": [{"DbId": self.world.db_id, "Logic": False}],
            "EstimateAffectRows": 1,
            "SqlType": "TEXT",
            "ExecSQL": "DELETE FROM orders WHERE id = 1",
        }
        body = self.ok(
            who, "CreateDataCorrectOrder", Comment="fix", Param=json.dumps(param), **params
        )
        (order_id,) = body["CreateOrderResult"]
        return int(order_id)

    def orders(self) -> int:
        with self.api.store.session() as s:
            return int(s.scalar(select(func.count()).select_from(Order)) or 0)


@pytest.fixture
def acting(api: Api) -> Acting:
    world = World.build(api.store, api.box, api.sqlite_targets)
    keys = {}
    with api.store.session() as s:
        for name in PEOPLE:
            key, secret = identity.create_access_key(s, api.box, world.users[name].uid, actor=None)
            keys[name] = Signer(key.access_key_id, secret)
    return Acting(api, world, keys)


def test_a_ticket_filed_for_a_user_is_theirs(acting: Acting, caplog) -> None:
    w = acting.world
    with caplog.at_level(logging.INFO, logger="opendms.gateway"):
        order_id = acting.file_change("admin", RealLoginUserUid=acting.uid("alice"))
    with acting.api.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None and order.committer_id == w.id("alice")
    mine = acting.ok("alice", "ListOrders", OrderResultType="AS_COMMITTER")["Orders"]["Order"]
    assert [o["OrderId"] for o in mine] == [order_id]
    assert mine[0]["Committer"] == "alice"
    admins = acting.ok("admin", "ListOrders", OrderResultType="AS_COMMITTER")
    assert admins["TotalCount"] == 0
    # the request's log line names the user it ran as and the key's owner
    logged = [r.getMessage() for r in caplog.records if "CreateDataCorrectOrder" in r.getMessage()]
    assert any(f"user={acting.uid('alice')} by={acting.uid('admin')}" in m for m in logged)


def test_acting_for_a_user_sees_only_what_they_see(acting: Acting) -> None:
    order_id = acting.world.file()  # alice's
    acting.ok("admin", "GetOrderBaseInfo", OrderId=order_id)  # an ADMIN sees every ticket
    acting.ok("admin", "GetOrderBaseInfo", OrderId=order_id, RealLoginUserUid=acting.uid("alice"))
    acting.refused(
        "admin",
        "GetOrderBaseInfo",
        "OrderNotFound",
        OrderId=order_id,
        RealLoginUserUid=acting.uid("carol"),
    )
    listed = acting.ok("admin", "ListOrders", RealLoginUserUid=acting.uid("carol"))
    assert listed["TotalCount"] == 0


def test_only_an_admin_acts_for_others(acting: Acting) -> None:
    before = acting.orders()
    for who, whom in (("dba", "alice"), ("alice", "carol"), ("dba", "999999")):
        message = acting.refused(
            who,
            "CreateDataCorrectOrder",
            "PermissionDenied",
            f"RealLoginUserUid {acting.uid(whom) if whom in PEOPLE else whom}",
            "only an ADMIN",
            Comment="fix",
            Param="{}",
            RealLoginUserUid=acting.uid(whom) if whom in PEOPLE else whom,
        )
        # one who may not act for others learns nothing of who exists
        assert "no user" not in message
    assert acting.orders() == before


def test_the_user_acted_for_must_be_an_active_user_of_the_tenant(acting: Acting) -> None:
    with acting.api.store.session() as s:
        identity.set_user_state(s, None, acting.world.tid, acting.uid("carol"), "DISABLE")
    before = acting.orders()
    cases = {
        "999999": "no user with that Uid in tenant",
        acting.uid("carol"): "the user is DISABLE",
        acting.api.admin_uid: "no user with that Uid in tenant",  # a user of another tenant
    }
    for uid, says in cases.items():
        acting.refused(
            "admin",
            "CreateDataCorrectOrder",
            "UserNotFound",
            f"RealLoginUserUid {uid}",
            says,
            Comment="fix",
            Param=json.dumps({"DbItemList": [{"DbId": acting.world.db_id}], "ExecSQL": "x"}),
            RealLoginUserUid=uid,
        )
    assert acting.orders() == before
    resp = acting.api.call("GetUser", acting.keys["admin"], RealLoginUserUid="1" * 65)
    assert (resp.status_code, resp.json()["Code"]) == (400, "InvalidRealLoginUserUid")


def test_ones_own_uid_or_none_changes_nothing(acting: Acting, caplog) -> None:
    w = acting.world
    with caplog.at_level(logging.INFO, logger="opendms.gateway"):
        mine = acting.file_change("alice", RealLoginUserUid=acting.uid("alice"))
        blank = acting.file_change("dba", RealLoginUserUid=" ")
    with acting.api.store.session() as s:
        assert s.get(Order, mine).committer_id == w.id("alice")  # type: ignore[union-attr]
        assert s.get(Order, blank).committer_id == w.id("dba")  # type: ignore[union-attr]
    lines = [r.getMessage() for r in caplog.records if "CreateDataCorrectOrder" in r.getMessage()]
    assert len(lines) == 2 and all(" by=" not in line for line in lines)
    assert f"user={acting.uid('alice')}" in lines[0]


def test_the_access_keys_policies_decide_what_may_be_called(acting: Acting) -> None:
    order_id = acting.world.file()
    deny = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:GetOrderBaseInfo"}]}'
    with acting.api.store.session() as s:
        identity.attach_policy(s, acting.world.tid, acting.uid("alice"), "no", deny, actor=None)
    # alice's own policy does not bind the admin's key calling for her
    acting.ok("admin", "GetOrderBaseInfo", OrderId=order_id, RealLoginUserUid=acting.uid("alice"))
    with acting.api.store.session() as s:
        identity.attach_policy(s, acting.world.tid, acting.uid("admin"), "no", deny, actor=None)
    resp = acting.api.call(
        "GetOrderBaseInfo",
        acting.keys["admin"],
        OrderId=order_id,
        RealLoginUserUid=acting.uid("alice"),
    )
    assert (resp.status_code, resp.json()["Code"]) == (403, "Forbidden.RAM")


def _events(acting: Acting, wf: int) -> list[tuple[str, int | None, int | None]]:
    with acting.api.store.session() as s:
        rows = s.scalars(
            select(ApprovalEvent)
            .where(ApprovalEvent.workflow_instance_id == wf)
            .order_by(ApprovalEvent.event_id)
        )
        return [(e.action, e.actor_id, e.by_user_id) for e in rows]


def test_approval_events_name_whose_key_acted(acting: Acting) -> None:
    w = acting.world
    order_id = w.file()
    acting.ok(
        "admin", "SubmitOrderApproval", OrderId=order_id, RealLoginUserUid=acting.uid("alice")
    )
    with acting.api.store.session() as s:
        wf = s.get(Order, order_id).workflow_instance_id  # type: ignore[union-attr]
    acting.ok(
        "admin",
        "ApproveOrder",
        WorkflowInstanceId=wf,
        ApprovalType="AGREE",
        RealLoginUserUid=acting.uid("olga"),
    )
    acting.ok("alice", "CloseOrder", OrderId=order_id, CloseReason="not needed")
    admin, alice, olga = w.id("admin"), w.id("alice"), w.id("olga")
    assert _events(acting, wf) == [
        ("SUBMIT", alice, admin),
        ("AGREE", olga, admin),
        ("CLOSE", alice, None),
    ]
    listed = acting.ok("admin", "ListApprovalEvents", WorkflowInstanceId=wf)["ApprovalEvents"]
    assert [e["ByUserId"] for e in listed] == [admin, admin, None]


def test_closing_for_a_user_is_recorded_with_the_key_owner(acting: Acting) -> None:
    w = acting.world
    order_id = w.file()
    wf = w.submit(order_id)
    acting.ok(
        "admin",
        "CloseOrder",
        OrderId=order_id,
        CloseReason="not needed",
        RealLoginUserUid=acting.uid("alice"),
    )
    assert _events(acting, wf)[-1] == ("CLOSE", w.id("alice"), w.id("admin"))


def _audit(acting: Acting, order_id: int) -> list[tuple[int, int | None]]:
    with acting.api.store.session() as s:
        rows = s.scalars(select(SqlAudit).where(SqlAudit.order_id == order_id))
        return [(a.user_id, a.by_user_id) for a in rows]


def test_sql_audit_rows_name_whose_key_started_the_run(acting: Acting) -> None:
    w = acting.world.free_of_approval("DC_COMMON", "DATA_EXPORT")
    alice, admin = acting.uid("alice"), w.id("admin")
    change = w.file()
    w.submit(change)
    acting.ok("admin", "ExecuteDataCorrect", OrderId=change, RealLoginUserUid=alice)
    export = w.export("SELECT * FROM orders WHERE id < 10")
    w.submit(export)
    acting.ok("admin", "ExecuteDataExport", OrderId=export, RealLoginUserUid=alice)
    acting.api.run_jobs()
    assert _audit(acting, change) == [(w.id("alice"), admin)]
    assert _audit(acting, export) == [(w.id("alice"), admin)]
    # run by alice herself, the rows name nobody else
    own = w.file("DELETE FROM orders WHERE id = 2")
    w.submit(own)
    acting.ok("alice", "ExecuteDataCorrect", OrderId=own)
    acting.api.run_jobs()
    assert _audit(acting, own) == [(w.id("alice"), None)]
    # ListSQLExecAuditLog has no field for it: its Remark says so
    now = utcnow()
    logged = acting.ok(
        "admin",
        "ListSQLExecAuditLog",
        StartTime=f"{now - timedelta(hours=1):%Y-%m-%d %H:%M:%S}",
        EndTime=f"{now + timedelta(hours=1):%Y-%m-%d %H:%M:%S}",
        PageSize=100,
    )["SQLExecAuditLogList"]["SQLExecAuditLog"]
    remarks = {row["SQL"]: row["Remark"] for row in logged}
    called = f"called by admin (UserId {admin}) with RealLoginUserUid"
    assert called in remarks["DELETE FROM orders WHERE id = 1"]
    assert called in remarks["SELECT * FROM orders WHERE id < 10"]
    assert "called by" not in remarks["DELETE FROM orders WHERE id = 2"]
