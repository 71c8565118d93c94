"""RealLoginUserUid over real HTTP with the official SDK: an administrator's access key files
a ticket for another user, who then finds it as their own, submits it and sees it run when
the administrator's key starts it for them; the SQL audit names both. A user who is no
administrator is refused."""

from __future__ import annotations

import time
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.e2e.conftest import (
    Dms,
    Server,
    grant_correct,
    prechecked,
    refused,
    register_target,
    target_database,
    wait_for,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.usefixtures("server_still_healthy"),
]

SETUP = (
    "CREATE TABLE acct (id INT PRIMARY KEY, n INT NOT NULL)",
    "INSERT INTO acct VALUES (1, 10), (2, 20)",
)
FIX = "UPDATE acct SET n = 11 WHERE id = 1"


def _change(db_id: int) -> dms_models.CreateDataCorrectOrderRequestParam:
    return dms_models.CreateDataCorrectOrderRequestParam().from_map(
        {
            "DbItemList": [{"DbId": db_id, "Logic": False}],
            "EstimateAffectRows": 1,
            "SqlType": "TEXT",
            "ExecSQL": FIX,
        }
    )


def _window() -> dict[str, str]:
    now = time.time()
    return {
        "start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 3600)),
        "end_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 3600)),
    }


def test_an_admins_key_files_and_runs_a_ticket_for_a_user(server: Server) -> None:
    admin = Dms(server, server.admin, "v3")
    alice_creds = server.create_user("USER", nick="alice-acted-for")
    alice = Dms(server, alice_creds, "v3")
    assert alice_creds.user_id is not None
    with target_database("mariadb", *SETUP) as (name, query, where):
        db_id = register_target(server, admin, name, where, "acting-mariadb", "DC_COMMON")
        grant_correct(admin, alice_creds.user_id, db_id)

        made = admin.call(
            "CreateDataCorrectOrder",
            param=_change(db_id),
            comment="for alice",
            real_login_user_uid=alice_creds.uid,
        )
        assert made.success is True, admin.last_raw
        (order_id,) = made.create_order_result
        line = server.log_line(made.request_id)
        assert f"user={alice_creds.uid} by={server.admin.uid}" in line

        # alice sees it as hers: her ticket list, its committer, and she may submit it
        mine = alice.call("ListOrders", order_result_type="AS_COMMITTER")
        assert mine.success is True, alice.last_raw
        assert [(o.order_id, o.committer_id) for o in mine.orders.order] == [
            (order_id, alice_creds.user_id)
        ]
        info = alice.call("GetOrderBaseInfo", order_id=order_id).order_base_info
        assert info.committer_id == alice_creds.user_id
        assert prechecked(alice, order_id).status == "precheck_success", alice.last_raw
        assert alice.call("SubmitOrderApproval", order_id=order_id).success is True

        # only the committer starts it (ExecMode COMMITOR): the admin's key, acting for her
        mine_to_start = admin.call("ExecuteDataCorrect", order_id=order_id)
        refused(mine_to_start, "PermissionDenied", "started by the committer")
        started = admin.call(
            "ExecuteDataCorrect", order_id=order_id, real_login_user_uid=alice_creds.uid
        )
        assert started.success is True, admin.last_raw
        wait_for("the change", lambda: query("SELECT n FROM acct WHERE id = 1") == ((11,),))

        def audited() -> list[Any]:
            found = admin.call("ListSQLExecAuditLog", **_window(), page_size=100)
            assert found.success is True, admin.last_raw
            return [a for a in found.sqlexec_audit_log_list.sqlexec_audit_log if a.sql == FIX]

        (row,) = wait_for("the audit row", audited)
        assert (row.user_id, row.user_name) == (alice_creds.user_id, "alice-acted-for")
        assert "called by" in row.remark and "with RealLoginUserUid" in row.remark

        # a user who is no administrator may not act for anyone
        no = alice.call(
            "CreateDataCorrectOrder",
            param=_change(db_id),
            comment="as the admin",
            real_login_user_uid=server.admin.uid,
        )
        refused(no, "PermissionDenied", f"RealLoginUserUid {server.admin.uid}", "only an ADMIN")
        unknown = admin.call(
            "CreateDataCorrectOrder",
            param=_change(db_id),
            comment="for nobody",
            real_login_user_uid="987654321",
        )
        refused(unknown, "UserNotFound", "RealLoginUserUid 987654321")
        assert alice.call("ListOrders", order_result_type="AS_COMMITTER").total_count == 1
