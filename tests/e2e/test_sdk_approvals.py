"""Approval workflows over real HTTP with the official SDKs (dms-api.md A.2.3, A.2.4, A.2.6,
A.6 PreviewWorkflow): a production ticket routed Owner -> DBA by the default security rules,
every ApprovalType (AGREE, REJECT, CANCEL, TRANSFER, ADD_APPROVAL_NODE), a double click sent
twice at once, and the signed webhook events the approvals queue.

The targets are copies of the embedded demo SQLite database (``orders``: 5,000 rows,
``customers``: 200), registered with ``AddInstance``. One server, one set of users and the
instances serve every test but the webhook one, which starts a server of its own.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from opendms.targets.demo import ensure_demo_target
from tests.e2e.conftest import (
    REQUEST_ID,
    Creds,
    Dms,
    Flavor,
    Server,
    base_info,
    cli_batch,
    file_change,
    grant_correct,
    new_users,
    prechecked,
    refused,
    running_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

FIX_SQL = "UPDATE orders SET status = 'paid' WHERE id = 1"
WIRE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
NO_SUCH_NODE = 987_654_321
PAIR_RULES = """\
description: every ticket of the pair instance goes through Pair A then Pair B
self_approval: false
one_node_per_approver: true
default_risk: HIGH
templates:
  LOW: Pair
  MIDDLE: Pair
  HIGH: Pair
  HIGHEST: Pair
"""


# ------------------------------------------------------------------ the module's world


def add_demo_instance(
    dms: Dms, server: Server, name: str, *, env: str, dba: Creds
) -> tuple[int, int]:
    """A copy of the demo SQLite database registered with AddInstance; (InstanceId, DbId)."""
    path = ensure_demo_target(server.data_dir / "targets" / name)
    added = dms.call(
        "AddInstance",
        instance_alias=name,
        instance_source="VPC_IDC",
        network_type="VPC",
        env_type=env,
        safe_rule="default",
        query_timeout=60,
        export_timeout=600,
        dba_id=dba.user_id,
        host=str(path),
        port=0,
        instance_type="sqlite",
        database_user="",
        database_password="",
    )
    assert added.success is True, dms.last_raw
    got = dms.call("GetInstance", host=str(path), port=0)
    assert got.success is True, dms.last_raw
    assert (got.instance.env_type, got.instance.dba_id) == (env, str(dba.user_id))
    instance_id = int(got.instance.instance_id)
    dbs = dms.call("ListDatabases", instance_id=str(instance_id), page_size=100)
    assert dbs.success is True, dms.last_raw
    (db,) = dbs.database_list.database
    return instance_id, int(db.database_id)


def set_owner(dms: Dms, db_id: int, *owners: Creds) -> None:
    resp = dms.call(
        "SetOwners",
        resource_id=str(db_id),
        owner_type="DATABASE",
        owner_ids=",".join(str(o.user_id) for o in owners),
    )
    assert resp.success is True, dms.last_raw


@dataclass(frozen=True)
class World:
    server: Server
    admin: Creds  # ADMIN: registers the instances, adds nodes
    dba: Creds  # the DBA of every instance
    owner: Creds  # owner of the production database
    committer: Creds  # files every ticket
    helper: Creds  # transfer targets
    helper2: Creds
    security: Creds  # the approver of the "Security Review" node
    pair_x: Creds  # approver of both nodes of the Pair template
    pair_y: Creds  # the other approver of Pair B
    prod_db: int  # EnvType product, DBA dba, owner owner
    dev_db: int  # EnvType dev, DBA dba
    pair_db: int  # EnvType product, follows the "pair" rule set
    pair_instance: int

    def dms(self, who: Creds, flavor: Flavor = "v3") -> Dms:
        return Dms(self.server, who, flavor)


@pytest.fixture(scope="module")
def world(server: Server, tmp_path_factory: pytest.TempPathFactory) -> World:
    admin, dba, owner, committer, helper, helper2, security, pair_x, pair_y = new_users(
        server,
        [
            ("ADMIN", None, "Ada Admin"),
            ("DBA", None, "Dora DBA"),
            ("USER", None, "Otto Owner"),
            ("USER", None, "Cora Committer"),
            ("USER", None, "Hal Helper"),
            ("USER", None, "Hana Helper"),
            ("USER", None, "Sam Security"),
            ("USER", None, "Xavier Pair"),
            ("USER", None, "Yara Pair"),
        ],
    )
    dms = Dms(server, admin, "v3")
    _, prod_db = add_demo_instance(dms, server, "prod", env="product", dba=dba)
    _, dev_db = add_demo_instance(dms, server, "dev", env="dev", dba=dba)
    pair_instance, pair_db = add_demo_instance(dms, server, "pair", env="product", dba=dba)
    set_owner(Dms(server, admin, "v1"), prod_db, owner)
    grant_correct(dms, committer.user_id, prod_db, dev_db, pair_db)

    # The Pair template: X approves node A, X or Y node B; the "pair" rule set routes every
    # ticket of the pair instance through it.
    rules_file = tmp_path_factory.mktemp("rules") / "pair.yaml"
    rules_file.write_text(PAIR_RULES, encoding="utf-8")
    made = cli_batch(
        server,
        [
            ["workflow", "node", "Pair A", "--approvers", str(pair_x.user_id)],
            ["workflow", "node", "Pair B", "--approvers", f"{pair_x.user_id},{pair_y.user_id}"],
            ["workflow", "template", "Pair", "--nodes", "Pair A,Pair B"],
            ["workflow", "node", "Security Review", "--approvers", str(security.user_id)],
            ["workflow", "node", "Owner Deputy", "--approvers", str(owner.user_id)],
            ["rules", "load", str(rules_file), "--name", "pair"],
            ["rules", "assign", str(pair_instance), "pair"],
            ["rules", "test", "pair", "--env", "product", "--rows", "1"],
        ],
    )
    loaded, assigned, tested = made[-3:]
    assert "'pair' version 1 is in force" in loaded, loaded
    assert f"Instance {pair_instance} (pair) follows rule set 'pair'" in assigned, assigned
    assert "risk HIGH -> template Pair" in tested, tested
    return World(
        server,
        admin,
        dba,
        owner,
        committer,
        helper,
        helper2,
        security,
        pair_x,
        pair_y,
        prod_db,
        dev_db,
        pair_db,
        pair_instance,
    )


# ------------------------------------------------------------------ helpers


def file_fix(
    dms: Dms, db_id: int, sql: str = FIX_SQL, comment: str = "fix order 1", rows: int = 1
) -> int:
    """A DC_COMMON ticket filed with CreateDataCorrectOrder, its precheck passed; its OrderId."""
    order_id = file_change(
        dms,
        db_id,
        sql,
        rows,
        comment,
        RollbackSqlType="TEXT",
        RollbackSQL="UPDATE orders SET status = 'new' WHERE id = 1",
        ExecMode="COMMITOR",
        Classify="fix",
    )
    assert prechecked(dms, order_id).status == "precheck_success", dms.last_raw
    return order_id


def submit(dms: Dms, order_id: int) -> int:
    """SubmitOrderApproval; the WorkflowInstanceId GetOrderBaseInfo then shows."""
    resp = dms.call("SubmitOrderApproval", order_id=order_id)
    assert resp.success is True, dms.last_raw
    assert REQUEST_ID.match(resp.request_id)
    info = base_info(dms, order_id)
    assert info.status_code == "toaudit", dms.last_raw
    assert isinstance(info.workflow_instance_id, int) and info.workflow_instance_id > 0
    return int(info.workflow_instance_id)


def act(dms: Dms, wf: int, kind: str, **params: Any) -> Any:
    return dms.call("ApproveOrder", workflow_instance_id=wf, approval_type=kind, **params)


def agree(dms: Dms, wf: int, comment: str = "") -> None:
    resp = act(dms, wf, "AGREE", comment=comment)
    assert resp.success is True, dms.last_raw


def approval(dms: Dms, wf: int) -> Any:
    """GetApprovalDetail's ApprovalDetail model, as the SDK parsed it."""
    resp = dms.call("GetApprovalDetail", workflow_instance_id=wf)
    assert resp.success is True, dms.last_raw
    detail = resp.approval_detail
    assert isinstance(detail, dms_models.GetApprovalDetailResponseBodyApprovalDetail)
    assert detail.audit_id == wf
    return detail


def nodes(detail: Any) -> list[tuple[str, str | None, int | None]]:
    """(NodeName, WorkflowInsCode, OperatorId) of every node, in order."""
    return [
        (n.node_name, n.workflow_ins_code, n.operator_id)
        for n in detail.workflow_nodes.workflow_node
    ]


def handlers(detail: Any) -> list[int]:
    return [h.id for h in detail.current_handlers.current_handler]


def events(world: World, who: Creds, wf: int) -> list[dict[str, Any]]:
    """ListApprovalEvents, an OpenDMS extension the SDKs have no model for: a raw V3 call."""
    prepared = who.signer(world.server).v3("ListApprovalEvents", {"WorkflowInstanceId": str(wf)})
    resp = world.server.send(prepared)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["Success"] is True, body
    found = body["ApprovalEvents"]
    assert all(WIRE_TIME.match(e["Time"]) for e in found), found
    return list(found)


def trail(world: World, who: Creds, wf: int) -> list[tuple[str, int | None, str]]:
    """(Action, OperatorId, NodeName) of every act on the approval, in order."""
    return [(e["Action"], e["OperatorId"], e["NodeName"]) for e in events(world, who, wf)]


def node_id(dms: Dms, name: str) -> int:
    """A node's NodeId as ListWorkFlowNodes reports it."""
    resp = dms.call("ListWorkFlowNodes", search_name=name)
    assert resp.success is True, dms.last_raw
    (found,) = [n for n in resp.workflow_nodes.workflow_node if n.node_name == name]
    assert found.node_type == "USER_LIST"
    return int(found.node_id)


# ------------------------------------------------------------------ 1. the story


def test_production_ticket_goes_owner_then_dba(world: World) -> None:
    committer = world.dms(world.committer)
    order_id = file_fix(committer, world.prod_db, comment="set order 1 paid")
    assert base_info(committer, order_id).status_code == "new"

    # PreviewWorkflow: the default rules route a production change through Owner -> DBA
    preview = committer.call("PreviewWorkflow", order_id=order_id)
    assert preview.success is True, committer.last_raw
    wf_detail = preview.workflow_detail
    assert wf_detail.wf_cate_name == "Owner->DBA"
    assert "Rule 'production change' of rule set 'default' sets risk HIGH." in wf_detail.comment
    assert "affected rows 1." in wf_detail.comment  # as its precheck counted them
    previewed = [
        (n.node_name, n.node_type, [(u.user_id, u.nick_name) for u in n.audit_user_list.audit_user])
        for n in wf_detail.workflow_node_list.workflow_node
    ]
    assert previewed == [
        ("Owner", "SYS", [(world.owner.user_id, "Otto Owner")]),
        ("DBA", "SYS", [(world.dba.user_id, "Dora DBA")]),
    ]
    assert base_info(committer, order_id).status_code == "new"  # a preview changes nothing

    wf = submit(committer, order_id)
    info = base_info(committer, order_id)
    assert (info.status_code, info.workflow_instance_id) == ("toaudit", wf)
    assert info.workflow_status_desc == "waiting for node 'Owner'"
    detail = approval(committer, wf)
    assert detail.workflow_ins_code == "AUDITING"
    assert nodes(detail) == [("Owner", "AUDITING", None), ("DBA", None, None)]
    assert [(h.id, h.nick_name) for h in detail.current_handlers.current_handler] == [
        (world.owner.user_id, "Otto Owner")
    ]

    # nobody approves their own ticket; the DBA waits for the owner; submitting twice fails
    refused(act(committer, wf, "AGREE"), "SelfApprovalForbidden", str(order_id))
    dba = world.dms(world.dba, "old")
    refused(act(dba, wf, "AGREE"), "NotCurrentApprover", "Owner")
    refused(committer.call("SubmitOrderApproval", order_id=order_id), "InvalidOrderStatus")

    # the owner agrees through V1, the DBA through the old SDK
    agree(world.dms(world.owner, "v1"), wf, "owner: looks right")
    mid = approval(committer, wf)
    assert nodes(mid) == [("Owner", "APPROVED", world.owner.user_id), ("DBA", "AUDITING", None)]
    assert handlers(mid) == [world.dba.user_id]
    assert base_info(committer, order_id).status_code == "toaudit"
    # the ticket is in the DBA's queue now, no longer in the owner's
    for who, queued in ((world.dba, True), (world.owner, False)):
        page = world.dms(who).call("ListOrders", order_result_type="AS_HANDLER")
        assert (order_id in [o.order_id for o in page.orders.order]) is queued
    agree(dba, wf, "dba: ok to run")

    info = base_info(committer, order_id)
    assert (info.status_code, info.status_desc) == ("Approved", "Approved")
    assert info.workflow_status_desc == "approved"

    # GetApprovalDetail tells the whole story, as both SDK generations parse it
    for flavor in ("v3", "old"):
        done = approval(world.dms(world.committer, flavor), wf)
        assert done.workflow_ins_code == "APPROVED"
        assert (done.order_id, done.order_type, done.description) == (
            order_id,
            "DATA_CORRECT",
            "set order 1 paid",
        )
        assert str(order_id) in done.title
        assert WIRE_TIME.match(done.create_time)
        assert handlers(done) == []
        owner_node, dba_node = done.workflow_nodes.workflow_node
        for node, who, comment in (
            (owner_node, world.owner, "owner: looks right"),
            (dba_node, world.dba, "dba: ok to run"),
        ):
            assert node.workflow_ins_code == "APPROVED"
            assert node.operator_id == who.user_id
            assert node.operate_comment == comment
            assert WIRE_TIME.match(node.operate_time), node.operate_time
            assert node.audit_user_id_list.audit_user_ids == [str(who.user_id)]
        assert (owner_node.node_name, dba_node.node_name) == ("Owner", "DBA")
        reasons = done.reason_list.reasons
        assert "Rule 'production change' of rule set 'default' sets risk HIGH." in reasons
        assert "Risk HIGH needs template 'Owner->DBA'." in reasons

    # a repeated AGREE is answered Success and changes nothing
    agree(dba, wf, "clicked again")
    assert nodes(approval(committer, wf))[1] == ("DBA", "APPROVED", world.dba.user_id)
    assert base_info(committer, order_id).status_code == "Approved"
    assert trail(world, world.committer, wf) == [
        ("SUBMIT", world.committer.user_id, ""),
        ("AGREE", world.owner.user_id, "Owner"),
        ("AGREE", world.dba.user_id, "DBA"),
        ("REPEAT", world.dba.user_id, ""),
    ]


def test_the_rules_route_large_and_development_changes(world: World) -> None:
    committer = world.dms(world.committer)
    # three whole-table UPDATEs of orders: 15,000 rows counted in production
    whole = "UPDATE orders SET status = 'paid' WHERE id > 0"
    large = file_fix(committer, world.prod_db, sql=";\n".join([whole] * 3), rows=15_000)
    preview = committer.call("PreviewWorkflow", order_id=large).workflow_detail
    assert preview.wf_cate_name == "Owner->DBA->Admin", committer.last_raw
    assert "Rule 'large production change' of rule set 'default' sets risk HIGHEST." in (
        preview.comment
    )
    chain = preview.workflow_node_list.workflow_node
    assert [n.node_name for n in chain] == ["Owner", "DBA", "Admin"]
    admins = [u.user_id for u in chain[2].audit_user_list.audit_user]
    assert world.admin.user_id in admins and world.committer.user_id not in admins

    small_dev = file_fix(committer, world.dev_db)
    preview = committer.call("PreviewWorkflow", order_id=small_dev).workflow_detail
    assert preview.wf_cate_name == "DBA", committer.last_raw
    assert "Rule 'test and development' of rule set 'default' sets risk LOW." in preview.comment
    (only,) = preview.workflow_node_list.workflow_node
    assert [u.user_id for u in only.audit_user_list.audit_user] == [world.dba.user_id]
    wf = submit(committer, small_dev)
    agree(world.dms(world.dba), wf)
    assert base_info(committer, small_dev).status_code == "Approved"


# ------------------------------------------------------------------ 2. REJECT


def test_a_rejected_ticket_stays_rejected(world: World) -> None:
    committer = world.dms(world.committer)
    order_id = file_fix(committer, world.prod_db)
    wf = submit(committer, order_id)
    owner = world.dms(world.owner)
    resp = act(owner, wf, "REJECT", comment="wrong order id")
    assert resp.success is True, owner.last_raw

    info = base_info(committer, order_id)
    assert (info.status_code, info.status_desc) == ("reject", "Rejected")
    detail = approval(committer, wf)
    assert detail.workflow_ins_code == "REJECT"
    (rejected, waiting) = detail.workflow_nodes.workflow_node
    assert (rejected.node_name, rejected.workflow_ins_code) == ("Owner", "REJECT")
    assert (rejected.operator_id, rejected.operate_comment) == (
        world.owner.user_id,
        "wrong order id",
    )
    assert WIRE_TIME.match(rejected.operate_time)
    assert (waiting.node_name, waiting.workflow_ins_code, waiting.operator_id) == (
        "DBA",
        None,
        None,
    )

    for who in (world.dba, world.admin):
        refused(act(world.dms(who), wf, "AGREE"), "InvalidOrderStatus", "REJECT")
    refused(act(committer, wf, "CANCEL"), "InvalidOrderStatus")
    assert act(owner, wf, "REJECT").success is True  # a retried reject is answered
    for closer in (world.committer, world.admin):
        resp = world.dms(closer, "v1").call("CloseOrder", order_id=order_id, close_reason="x")
        refused(resp, "InvalidOrderStatus", "reject")
    refused(committer.call("SubmitOrderApproval", order_id=order_id), "InvalidOrderStatus")
    assert base_info(committer, order_id).status_code == "reject"
    assert [a for a, _, _ in trail(world, world.owner, wf)] == ["SUBMIT", "REJECT", "REPEAT"]


# ------------------------------------------------------------------ 3. TRANSFER, nodes, CANCEL


def test_transfer_add_a_node_then_withdraw_and_submit_again(world: World) -> None:
    committer = world.dms(world.committer)
    order_id = file_fix(committer, world.prod_db)
    wf = submit(committer, order_id)
    owner = world.dms(world.owner)

    # TRANSFER needs someone to hand over to, and never to the committer
    refused(act(owner, wf, "TRANSFER"), "InvalidParameter", "NewApprover")
    refused(
        act(owner, wf, "TRANSFER", new_approver_list=str(world.committer.user_id)),
        "SelfApprovalForbidden",
    )
    # somebody the ticket does not concern may not even see its approval
    refused(act(world.dms(world.helper), wf, "AGREE"), "WorkflowInstanceNotFound")
    resp = act(
        owner,
        wf,
        "TRANSFER",
        new_approver_list=f"{world.helper.user_id},{world.helper2.user_id}",
        comment="on leave",
    )
    assert resp.success is True, owner.last_raw
    detail = approval(committer, wf)
    assert handlers(detail) == [world.helper.user_id, world.helper2.user_id]
    assert nodes(detail)[0] == ("Owner", "AUDITING", None)
    refused(act(owner, wf, "AGREE"), "NotCurrentApprover", "Owner")  # handed over
    refused(  # a regular approver does not hand over someone else's task
        act(
            world.dms(world.helper),
            wf,
            "TRANSFER",
            new_approver=world.security.user_id,
            old_approver=world.helper2.user_id,
        ),
        "PermissionDenied",
    )

    # ADD_APPROVAL_NODE: a USER_LIST node after the current one
    security_node = node_id(world.dms(world.admin), "Security Review")
    helper = world.dms(world.helper, "old")
    refused(
        act(helper, wf, "ADD_APPROVAL_NODE", approval_node_id=security_node),
        "InvalidParameter",
        "ApprovalNodePos",
    )
    refused(
        act(
            helper,
            wf,
            "ADD_APPROVAL_NODE",
            approval_node_id=NO_SUCH_NODE,
            approval_node_pos="POST_ADD_APPROVAL_NODE",
        ),
        "WorkflowNodeNotFound",
    )
    resp = act(
        helper,
        wf,
        "ADD_APPROVAL_NODE",
        approval_node_id=security_node,
        approval_node_pos="POST_ADD_APPROVAL_NODE",
        comment="touches payments",
    )
    assert resp.success is True, helper.last_raw
    assert nodes(approval(committer, wf)) == [
        ("Owner", "AUDITING", None),
        ("Security Review", None, None),
        ("DBA", None, None),
    ]
    agree(helper, wf, "fine by me")
    detail = approval(committer, wf)
    assert nodes(detail) == [
        ("Owner", "APPROVED", world.helper.user_id),
        ("Security Review", "AUDITING", None),
        ("DBA", None, None),
    ]
    assert handlers(detail) == [world.security.user_id]
    agree(world.dms(world.security), wf)
    assert handlers(approval(committer, wf)) == [world.dba.user_id]

    # CANCEL: only the committer withdraws; the ticket goes back to new
    refused(act(world.dms(world.dba), wf, "CANCEL"), "PermissionDenied")
    resp = act(committer, wf, "CANCEL", comment="needs a WHERE on customer")
    assert resp.success is True, committer.last_raw
    info = base_info(committer, order_id)
    assert info.status_code == "new"
    detail = approval(committer, wf)
    assert detail.workflow_ins_code == "CANCEL"
    assert nodes(detail) == [
        ("Owner", "APPROVED", world.helper.user_id),
        ("Security Review", "APPROVED", world.security.user_id),
        ("DBA", "CANCEL", world.committer.user_id),
    ]
    refused(act(world.dms(world.dba), wf, "AGREE"), "InvalidOrderStatus")
    assert [a for a, _, _ in trail(world, world.committer, wf)] == [
        "SUBMIT",
        "TRANSFER",
        "ADD_APPROVAL_NODE",
        "AGREE",
        "AGREE",
        "CANCEL",
    ]

    # submitted again: a new workflow instance that starts from the template afresh
    again = submit(committer, order_id)
    assert again != wf
    assert base_info(committer, order_id).workflow_instance_id == again
    fresh = approval(committer, again)
    assert nodes(fresh) == [("Owner", "AUDITING", None), ("DBA", None, None)]
    assert handlers(fresh) == [world.owner.user_id]
    agree(owner, again)
    agree(world.dms(world.dba), again)
    assert base_info(committer, order_id).status_code == "Approved"


# ------------------------------------------------------------------ 4. the double click


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = calls[n]()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results


def test_a_double_click_sent_twice_at_once_approves_one_node(world: World) -> None:
    committer = world.dms(world.committer)
    order_id = file_fix(committer, world.pair_db)
    # without the one-node-per-approver rule X could approve both nodes
    preview = committer.call("PreviewWorkflow", order_id=order_id).workflow_detail
    assert preview.wf_cate_name == "Pair", committer.last_raw
    assert [
        (n.node_name, [u.user_id for u in n.audit_user_list.audit_user])
        for n in preview.workflow_node_list.workflow_node
    ] == [
        ("Pair A", [world.pair_x.user_id]),
        ("Pair B", [world.pair_x.user_id, world.pair_y.user_id]),
    ]
    rounds = 3
    for i in range(rounds):
        order = order_id if i == 0 else file_fix(committer, world.pair_db)
        wf = submit(committer, order)
        clients = [world.dms(world.pair_x, "v3"), world.dms(world.pair_x, "v1")]
        answers = at_once(
            [
                functools.partial(act, dms, wf, "AGREE", comment=f"click {n}")
                for n, dms in enumerate(clients)
            ]
        )
        assert [a.success for a in answers] == [True, True], [a.to_map() for a in answers]

        detail = approval(committer, wf)
        assert detail.workflow_ins_code == "AUDITING"
        assert nodes(detail) == [
            ("Pair A", "APPROVED", world.pair_x.user_id),
            ("Pair B", "AUDITING", None),
        ]
        assert handlers(detail) == [world.pair_y.user_id]  # X approved a node already
        assert [a for a, _, _ in trail(world, world.pair_x, wf)] == ["SUBMIT", "AGREE", "REPEAT"]
        assert base_info(committer, order).status_code == "toaudit"

    # the one left to approve finishes the last ticket
    agree(world.dms(world.pair_y), wf)
    assert base_info(committer, order).status_code == "Approved"


def test_a_double_click_on_submit_starts_one_approval(world: World) -> None:
    committer = world.dms(world.committer)
    order_id = file_fix(committer, world.pair_db)
    answers = at_once(
        [
            functools.partial(
                world.dms(world.committer, f).call, "SubmitOrderApproval", order_id=order_id
            )
            for f in ("v3", "v1", "v3")
        ]
    )
    assert sorted(a.success for a in answers) == [False, False, True], [a.to_map() for a in answers]
    for answer in answers:
        if not answer.success:
            refused(answer, "InvalidOrderStatus", "toaudit")
    wf = base_info(committer, order_id).workflow_instance_id
    assert [a for a, _, _ in trail(world, world.committer, wf)] == ["SUBMIT"]
    # no second workflow instance was started next to it
    later = committer.call("GetApprovalDetail", workflow_instance_id=wf + 1)
    refused(later, "WorkflowInstanceNotFound")


def test_closing_while_the_last_approver_agrees(world: World) -> None:
    """CloseOrder and the last AGREE at the same moment: whichever comes first wins, the other
    is refused or applies after it, and the ticket and its approval agree with each other."""
    committer = world.dms(world.committer)
    for _ in range(2):
        order_id = file_fix(committer, world.dev_db)  # DBA only
        wf = submit(committer, order_id)
        closed, agreed = at_once(
            [
                functools.partial(
                    world.dms(world.committer, "v1").call,
                    "CloseOrder",
                    order_id=order_id,
                    close_reason="not needed after all",
                ),
                functools.partial(act, world.dms(world.dba), wf, "AGREE"),
            ]
        )
        assert closed.success is True, closed.to_map()  # Approved is not final: it closes
        assert base_info(committer, order_id).status_code == "closed"
        detail = approval(committer, wf)
        if agreed.success:
            assert detail.workflow_ins_code == "APPROVED"
            assert nodes(detail) == [("DBA", "APPROVED", world.dba.user_id)]
        else:
            refused(agreed, "InvalidOrderStatus")
            assert detail.workflow_ins_code == "CANCEL"
            assert nodes(detail) == [("DBA", "CANCEL", None)]


# ------------------------------------------------------------------ the one-node rule, transfers


def test_a_node_added_in_front_does_not_let_its_approver_approve_the_next(world: World) -> None:
    """One person approves at most one node: once the owner approved the node added in front
    of "Owner", they are no approver of "Owner" any more, and their second click is a repeat.
    (At 87e0d5a the node kept its approvers and the second click approved it too.)"""
    committer = world.dms(world.committer)
    order_id = file_fix(committer, world.prod_db)
    wf = submit(committer, order_id)
    admin = world.dms(world.admin)
    deputy = node_id(admin, "Owner Deputy")  # USER_LIST: the owner
    resp = act(
        admin,
        wf,
        "ADD_APPROVAL_NODE",
        approval_node_id=deputy,
        approval_node_pos="PRE_ADD_APPROVAL_NODE",
    )
    assert resp.success is True, resp.to_map()
    detail = approval(committer, wf)
    assert nodes(detail) == [
        ("Owner Deputy", "AUDITING", None),
        ("Owner", None, None),
        ("DBA", None, None),
    ]
    assert handlers(detail) == [world.owner.user_id]

    owner = world.dms(world.owner)
    agree(owner, wf, "first click")
    agree(owner, wf, "second click")
    detail = approval(committer, wf)
    assert nodes(detail) == [
        ("Owner Deputy", "APPROVED", world.owner.user_id),
        ("Owner", "AUDITING", None),
        ("DBA", None, None),
    ]
    assert handlers(detail) == []
    assert any("already approved a node" in r for r in detail.reason_list.reasons), (
        detail.reason_list.reasons
    )
    status = base_info(committer, order_id).workflow_status_desc
    assert status.startswith("waiting for an administrator"), status
    assert [a for a, _, _ in trail(world, world.owner, wf)][-2:] == ["AGREE", "REPEAT"]

    # the stalled node: only an administrator hands it over
    refused(
        act(owner, wf, "TRANSFER", new_approver=world.helper.user_id),
        "PermissionDenied",
        "administrator",
    )
    refused(  # nor to somebody who approved a node already
        act(admin, wf, "TRANSFER", new_approver=world.owner.user_id),
        "InvalidParameter",
        "already approved a node",
    )
    assert act(admin, wf, "TRANSFER", new_approver=world.helper.user_id).success is True
    agree(world.dms(world.helper), wf)
    agree(world.dms(world.dba), wf)
    assert base_info(committer, order_id).status_code == "Approved"


def test_transfers_that_keep_the_giver_and_on_behalf_of_another(world: World) -> None:
    """A NewApproverList naming the giver keeps them (at 87e0d5a it removed them, and a list
    of only the giver left the node with nobody); a DBA hands over for someone else."""
    committer = world.dms(world.committer)
    wf = submit(committer, file_fix(committer, world.prod_db))
    owner = world.dms(world.owner, "old")
    resp = act(owner, wf, "TRANSFER", new_approver_list=str(world.owner.user_id))
    assert resp.success is True, owner.last_raw
    assert handlers(approval(committer, wf)) == [world.owner.user_id]
    resp = act(
        owner,
        wf,
        "TRANSFER",
        new_approver_list=f"{world.owner.user_id},{world.helper.user_id}",
    )
    assert resp.success is True, owner.last_raw
    assert handlers(approval(committer, wf)) == [world.owner.user_id, world.helper.user_id]

    # the DBA role may hand over on another approver's behalf
    resp = act(
        world.dms(world.dba, "v1"),
        wf,
        "TRANSFER",
        old_approver=world.helper.user_id,
        new_approver=world.helper2.user_id,
        comment="Hal is away",
    )
    assert resp.success is True, resp.to_map()
    assert handlers(approval(committer, wf)) == [world.owner.user_id, world.helper2.user_id]
    refused(act(world.dms(world.helper), wf, "AGREE"), "NotCurrentApprover")
    (on_behalf,) = [e for e in events(world, world.admin, wf) if e["OnBehalfOf"]]
    assert (on_behalf["Action"], on_behalf["OperatorId"], on_behalf["OnBehalfOf"]) == (
        "TRANSFER",
        world.dba.user_id,
        world.helper.user_id,
    )
    assert on_behalf["Comment"] == "Hal is away"
    agree(world.dms(world.helper2), wf)
    assert nodes(approval(committer, wf))[0] == ("Owner", "APPROVED", world.helper2.user_id)


# ------------------------------------------------------------------ 5. webhooks


class Receiver:
    """A local webhook receiver: records every request; answers the first one 500."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = 500 if not receiver.requests else 200
                    receiver.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "status": status,
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/hooks/opendms"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening: from now on its port refuses connections."""
        if self.thread.is_alive():
            self.http.shutdown()
            self.http.server_close()
            self.thread.join(timeout=10)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)

    def delivered(self) -> dict[int, dict[str, Any]]:
        """The requests answered 200, by delivery id."""
        return {
            int(r["headers"]["x-opendms-delivery"]): r
            for r in self.snapshot()
            if r["status"] == 200
        }


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def webhook_log(server: Server) -> dict[int, dict[str, str]]:
    """``opendms webhook log`` parsed: delivery id -> Event, State, Attempts, HTTP, Error."""
    out = server.cli("webhook", "log", "--limit", "200")
    rows: dict[int, dict[str, str]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 7 and cells[0].isdigit():
            rows[int(cells[0])] = dict(
                zip(
                    ("Event", "State", "Attempts", "HTTP", "Created", "Error"),
                    cells[1:],
                    strict=True,
                )
            )
    return rows


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


SECRET = "e2e-webhook-secret-0123456789"


def test_webhooks_report_every_act_signed_and_retried() -> None:
    env = {
        "OPENDMS_WEBHOOK_BACKOFF_SECONDS": "0.2",
        "OPENDMS_WEBHOOK_MAX_ATTEMPTS": "3",
        "OPENDMS_WEBHOOK_TIMEOUT_SECONDS": "5",
    }
    with Receiver() as receiver, running_server(env) as server:
        tid = int(server.init["Tid"])
        *made, configured, pinged = cli_batch(
            server,
            [
                ["user", "create", "--roles", roles, "--with-key", "--nick", nick]
                for roles, nick in (("DBA", "Hook DBA"), ("USER", "Hook Owner"), ("USER", "Hook C"))
            ]
            + [["webhook", "set", receiver.url, "--secret", SECRET], ["webhook", "ping"]],
        )
        dba, owner, committer_creds = (
            Creds(int(m["Tid"]), str(m["Uid"]), m["AccessKeyId"], m["AccessKeySecret"], m["UserId"])
            for m in map(json.loads, made)
        )
        assert json.loads(configured) == {"Url": receiver.url, "Secret": SECRET}
        assert "queued" in pinged, pinged
        admin = Dms(server, server.admin, "v3")
        _, db_id = add_demo_instance(admin, server, "hooked", env="product", dba=dba)
        set_owner(admin, db_id, owner)
        grant_correct(admin, committer_creds.user_id, db_id)

        committer = Dms(server, committer_creds, "v3")
        approved_id = file_fix(committer, db_id, comment="approve me")
        approved_wf = submit(committer, approved_id)
        agree(Dms(server, owner, "v3"), approved_wf, "owner ok")
        agree(Dms(server, dba, "v3"), approved_wf, "dba ok")
        rejected_id = file_fix(committer, db_id, comment="reject me")
        rejected_wf = submit(committer, rejected_id)
        resp = act(Dms(server, owner, "v3"), rejected_wf, "REJECT", comment="not today")
        assert resp.success is True, resp.to_map()

        def key(body: bytes) -> tuple[str, int | None]:
            payload = json.loads(body)
            return payload["event"], payload.get("order", {}).get("order_id")

        wanted = {
            ("webhook.ping", None),
            ("order.submitted", approved_id),
            ("order.approved", approved_id),
            ("order.submitted", rejected_id),
            ("order.rejected", rejected_id),
        }

        def got_all() -> dict[int, dict[str, Any]]:
            done = receiver.delivered()
            return done if wanted <= {key(r["body"]) for r in done.values()} else {}

        delivered = wait_for("the ping and the four order events", got_all)
        assert sorted(map(key, (r["body"] for r in delivered.values())), key=str) == sorted(
            wanted, key=str
        )

        payloads: dict[tuple[str, int | None], dict[str, Any]] = {}
        for delivery_id, request in delivered.items():
            headers, body = request["headers"], request["body"]
            assert (request["method"], request["path"]) == ("POST", "/hooks/opendms")
            assert headers["content-type"] == "application/json"
            payload = json.loads(body)
            assert headers["x-opendms-event"] == payload["event"]
            assert headers["x-opendms-delivery"] == str(payload["delivery_id"]) == str(delivery_id)
            stamp = headers["x-opendms-timestamp"]
            assert stamp.isdigit() and abs(int(stamp) - time.time()) < 300, stamp
            assert headers["x-opendms-signature"] == expected_signature(SECRET, stamp, body)
            assert not hmac.compare_digest(  # the signature covers the timestamp
                headers["x-opendms-signature"],
                expected_signature(SECRET, str(int(stamp) + 1), body),
            )
            assert payload["tenant_id"] == tid
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", payload["occurred_at"])
            payloads[key(body)] = payload

        ping = payloads[("webhook.ping", None)]
        assert "order" not in ping and "workflow" not in ping, ping
        submitted = payloads[("order.submitted", approved_id)]
        assert submitted["order"] == {
            "order_id": approved_id,
            "plugin_type": "DC_COMMON",
            "status_code": "toaudit",
            "committer_id": committer_creds.user_id,
            "comment": "approve me",
        }
        assert submitted["workflow"] == {
            "workflow_instance_id": approved_wf,
            "status": "AUDITING",
            "template": "Owner->DBA",
            "risk": "HIGH",
            "current_node": "Owner",
            "current_approvers": [owner.user_id],
        }
        assert submitted["actor"] == {"user_id": committer_creds.user_id, "nick_name": "Hook C"}
        approved = payloads[("order.approved", approved_id)]
        assert approved["order"]["status_code"] == "Approved"
        assert approved["workflow"]["status"] == "APPROVED"
        assert approved["workflow"]["current_node"] is None
        assert approved["workflow"]["current_approvers"] == []
        assert approved["actor"] == {"user_id": dba.user_id, "nick_name": "Hook DBA"}
        rejected = payloads[("order.rejected", rejected_id)]
        assert rejected["order"]["status_code"] == "reject"
        assert rejected["workflow"]["workflow_instance_id"] == rejected_wf
        assert rejected["workflow"]["status"] == "REJECT"
        assert rejected["workflow"]["current_node"] == "Owner"
        assert rejected["actor"]["user_id"] == owner.user_id
        assert rejected["comment"] == "not today"
        assert payloads[("order.submitted", rejected_id)]["workflow"]["status"] == "AUDITING"

        # the first request was answered 500: the same delivery came again, signed afresh
        requests = receiver.snapshot()
        assert [r["status"] for r in requests] == [500] + [200] * 5
        first = requests[0]
        retried = int(first["headers"]["x-opendms-delivery"])
        assert delivered[retried]["body"] == first["body"]
        assert first["headers"]["x-opendms-signature"] == expected_signature(
            SECRET, first["headers"]["x-opendms-timestamp"], first["body"]
        )

        # a webhook nobody listens to any more never holds up or fails an approval
        receiver.close()
        order_id = file_fix(committer, db_id, comment="nobody hears this")
        wf = submit(committer, order_id)
        agree(Dms(server, owner, "v1"), wf)
        agree(Dms(server, dba, "old"), wf)
        assert base_info(committer, order_id).status_code == "Approved"

        def gave_up() -> dict[int, dict[str, str]]:
            rows = webhook_log(server)
            dead = [r for k, r in rows.items() if k > max(delivered)]
            if sorted(r["Event"] for r in dead) != ["order.approved", "order.submitted"]:
                return {}
            return rows if all(r["State"] == "failed" for r in dead) else {}

        rows = wait_for("the dead webhook's deliveries to fail", gave_up)
        for delivery_id, row in rows.items():
            if delivery_id > max(delivered):  # to the dead port: tried 3 times, then given up
                assert (row["State"], row["Attempts"], row["HTTP"]) == ("failed", "3", ""), row
                assert row["Error"], row
                continue
            # to the receiver: delivered, the one first answered 500 at the second attempt
            assert row["Event"] == json.loads(delivered[delivery_id]["body"])["event"]
            assert (row["State"], row["HTTP"]) == ("delivered", "200"), row
            assert row["Attempts"] == ("2" if delivery_id == retried else "1"), row
        assert set(rows) > set(delivered)
        assert len(receiver.snapshot()) == 6
        assert base_info(committer, order_id).status_code == "Approved"
        assert server.proc.poll() is None
        assert "Traceback" not in server.log(), server.log()[-4000:]
