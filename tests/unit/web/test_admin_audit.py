"""The audit trail in the console: statements run on targets (ListSQLExecAuditLog, filtered
and paged), approval acts on the tickets one may see, and console sign-ins, which are the
tenant's ADMINs' to read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from opendms.store.models import SqlAudit, utcnow
from opendms.store.states import ExecState
from tests.approval_world import World
from tests.conftest import Api
from tests.unit.web.admin_helpers import BASE, field_error, signed_in, world_in


@pytest.fixture
def world(api: Api) -> World:
    world = world_in(api)
    now = utcnow()
    with api.store.session() as s:
        for who, sql, state, ago in (
            ("alice", "SELECT * FROM orders", ExecState.SUCCESS, 1),
            ("alice", "SELECT nope FROM orders", ExecState.FAIL, 2),
            ("carol", "SELECT count(*) FROM customers", ExecState.SUCCESS, 3),
            ("carol", "SELECT 1", ExecState.SUCCESS, 24 * 40),  # outside a day, and a month
        ):
            s.add(
                SqlAudit(
                    tid=world.tid,
                    user_id=world.id(who),
                    instance_id=world.instance_id,
                    db_id=world.db_id,
                    schema_name="main",
                    sql_text=sql,
                    sql_type="SELECT",
                    affect_rows=1,
                    elapsed_ms=3,
                    exec_state=state,
                    op_time=now - timedelta(hours=ago),
                )
            )
    return world


def test_the_sql_audit_is_filtered_paged_and_seen_as_the_action_shows_it(
    api: Api, world: World
) -> None:
    admin = signed_in(api, world, "admin")
    day = admin.get("/admin/audit")
    assert day.status_code == 200 and "3 in all" in day.text
    assert "customers" in day.text  # the fourth ran 40 days ago
    failed = admin.get("/admin/audit", ExecState="FAIL")
    assert "1 in all" in failed.text and "nope" in failed.text
    by_carol = admin.get("/admin/audit", OpUserName="carol")
    assert "1 in all" in by_carol.text
    month = (utcnow() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    assert "3 in all" in admin.get("/admin/audit", StartTime=month).text
    # alice sees what ran for her only: the action's own rule
    alice = signed_in(api, world, "alice")
    mine = alice.get("/admin/audit")
    assert "2 in all" in mine.text and "customers" not in mine.text


def test_a_bad_window_shows_beside_its_field(api: Api, world: World) -> None:
    admin = signed_in(api, world, "admin")
    garbled = admin.get("/admin/audit", StartTime="yesterday")
    assert garbled.status_code == 400 and "such as" in field_error(garbled, "StartTime")
    backwards = admin.get("/admin/audit", StartTime="2030-01-02T00:00", EndTime="2030-01-01T00:00")
    assert "EndTime is before StartTime" in field_error(backwards, "EndTime")
    wide = admin.get("/admin/audit", StartTime="2020-01-01T00:00", EndTime="2020-03-01T00:00")
    assert "31 days" in field_error(wide, "StartTime")
    assert field_error(admin.get("/admin/audit", ExecState="MAYBE"), "ExecState")


def test_approval_acts_are_seen_on_the_tickets_one_may_see(api: Api, world: World) -> None:
    order_id = world.file()
    world.submit(order_id)
    admin = signed_in(api, world, "admin")
    trail = admin.get("/admin/audit/approvals")
    assert trail.status_code == 200 and f"#{order_id}</a>" in trail.text and "SUBMIT" in trail.text
    assert f"#{order_id}</a>" in admin.get("/admin/audit/approvals", OrderId=str(order_id)).text
    assert "No approval act matches" in admin.get("/admin/audit/approvals", Action="REJECT").text
    assert f"#{order_id}</a>" in signed_in(api, world, "alice").get("/admin/audit/approvals").text
    carol = signed_in(api, world, "carol").get("/admin/audit/approvals")
    assert carol.status_code == 200 and f"#{order_id}</a>" not in carol.text
    bad = admin.get("/admin/audit/approvals", OrderId="x", Action="SHRUG")
    assert bad.status_code == 400 and field_error(bad, "OrderId") and field_error(bad, "Action")


def _try_sign_in(api: Api, name: str, password: str) -> None:
    client = TestClient(api.app, base_url=BASE, follow_redirects=False)
    client.get("/console/sign-in")
    client.post(
        "/console/sign-in",
        data={"csrf_token": client.cookies["odms_sign_in"], "username": name, "password": password},
    )


def test_sign_ins_that_named_the_tenants_people_are_its_admins(api: Api, world: World) -> None:
    admin = signed_in(api, world, "admin")
    _try_sign_in(api, "alice", "not her password at all")
    _try_sign_in(api, world.users["carol"].uid, "nor carol's")
    _try_sign_in(api, "somebody-else", "whoever")
    _try_sign_in(api, api.admin_uid, "the other tenant's admin")
    page = admin.get("/admin/audit/sign-ins")
    assert page.status_code == 200
    assert "<td>alice</td>" in page.text and f"<td>{world.users['carol'].uid}</td>" in page.text
    assert "somebody-else" not in page.text and api.admin_uid not in page.text
    assert "Signed in" in page.text  # the admin's own sign-in
    wrong = admin.get("/admin/audit/sign-ins", Outcome="wrong")
    assert "2 in all" in wrong.text and "<td>alice</td>" in wrong.text
    assert "1 in all" in admin.get("/admin/audit/sign-ins", UserName="alice").text
    bad = admin.get("/admin/audit/sign-ins", Outcome="lucky")
    assert bad.status_code == 400 and field_error(bad, "Outcome")


def test_a_dba_is_refused_the_sign_ins(api: Api, world: World) -> None:
    dba = signed_in(api, world, "dba")
    page = dba.get("/admin/audit/sign-ins")
    assert page.status_code == 403 and "Only an ADMIN" in page.text
    assert "/admin/audit/sign-ins" not in dba.get("/admin/audit").text
