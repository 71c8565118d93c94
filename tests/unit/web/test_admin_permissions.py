"""Data permissions in the console: a user's grants listed and paged, granting and revoking
through GrantUserPermission and RevokeUserPermission, each problem beside its field; other
people's grants are for overseers, granting for whoever may call the action."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from opendms.store.models import Permission, utcnow
from tests.approval_world import World
from tests.conftest import Api
from tests.unit.web.admin_helpers import Console, field_error, signed_in, world_in


@pytest.fixture
def world(api: Api) -> World:
    return world_in(api)


@pytest.fixture
def admin(api: Api, world: World) -> Console:
    return signed_in(api, world, "admin")


def _grants(api: Api, world: World, name: str) -> list[tuple[str, str, str]]:
    with api.store.session() as s:
        rows = s.scalars(
            select(Permission)
            .where(Permission.user_id == world.id(name))
            .order_by(Permission.perm_type)
        ).all()
        return [(p.ds_type, p.table_name, p.perm_type) for p in rows]


def _grant(world: World, name: str, **changes: object) -> dict[str, object]:
    later = utcnow() + timedelta(days=7)
    return {
        "UserId": str(world.id(name)),
        "DsType": "DATABASE",
        "DbId": str(world.db_id),
        "TableName": "",
        "PermTypes": ["QUERY", "EXPORT"],
        "ExpireDate": f"{later:%Y-%m-%dT%H:%M}",
        **changes,
    }


def test_an_admin_grants_lists_and_revokes(api: Api, world: World, admin: Console) -> None:
    carol = str(world.id("carol"))
    page = admin.get("/admin/permissions", UserId=carol)
    assert page.status_code == 200 and "No database permission" in page.text
    assert "Grant</button>" in page.text and 'value="QUERY" checked' in page.text
    done = admin.post("/admin/permissions", _grant(world, "carol"))
    assert done.status_code == 303 and "Granted+QUERY%2C+EXPORT" in done.headers["location"]
    assert _grants(api, world, "carol") == [("DATABASE", "", "EXPORT"), ("DATABASE", "", "QUERY")]
    shown = admin.get("/admin/permissions", UserId=carol)
    assert shown.text.count("Revoke</button>") == 2
    table = admin.post(
        "/admin/permissions",
        _grant(world, "carol", DsType="TABLE", TableName="orders", PermTypes=["CORRECT"]),
    )
    assert table.status_code == 303
    tables = admin.get("/admin/permissions", UserId=carol, PermType="TABLE")
    assert "orders" in tables.text and "CORRECT" in tables.text
    with api.store.session() as s:
        query_grant = s.scalars(
            select(Permission).where(
                Permission.user_id == world.id("carol"), Permission.perm_type == "QUERY"
            )
        ).one()
    gone = admin.post(
        "/admin/permissions/revoke",
        {
            "UserId": carol,
            "DsType": "DATABASE",
            "UserAccessId": str(query_grant.id),
            "PermTypes": "QUERY",
        },
    )
    assert gone.status_code == 303
    assert ("DATABASE", "", "QUERY") not in _grants(api, world, "carol")
    again = admin.post(
        "/admin/permissions/revoke",
        {
            "UserId": carol,
            "DsType": "DATABASE",
            "UserAccessId": str(query_grant.id),
            "PermTypes": "QUERY",
        },
    )
    assert again.status_code == 404 and "has no grant" in again.text


def test_granting_shows_each_problem_beside_its_field(
    api: Api, world: World, admin: Console
) -> None:
    past = admin.post("/admin/permissions", _grant(world, "carol", ExpireDate="2001-01-01T00:00"))
    assert past.status_code == 400 and "has passed" in field_error(past, "ExpireDate")
    garbled = admin.post("/admin/permissions", _grant(world, "carol", ExpireDate="soon"))
    assert "such as" in field_error(garbled, "ExpireDate")
    none = admin.post("/admin/permissions", _grant(world, "carol", PermTypes=[]))
    assert "QUERY" in field_error(none, "PermTypes")
    no_db = admin.post("/admin/permissions", _grant(world, "carol", DbId=""))
    assert "DbId is required" in field_error(no_db, "DbId")
    no_table = admin.post("/admin/permissions", _grant(world, "carol", DsType="TABLE"))
    assert "TableName" in field_error(no_table, "TableName")
    unknown = admin.post(
        "/admin/permissions", _grant(world, "carol", DsType="TABLE", TableName="nope")
    )
    assert unknown.status_code == 404 and "No table" in field_error(unknown, "TableName")
    assert 'value="nope"' in unknown.text  # what was typed is kept
    assert _grants(api, world, "carol") == []


def test_a_user_sees_their_own_grants_and_nobody_elses(api: Api, world: World) -> None:
    alice = signed_in(api, world, "alice")
    mine = alice.get("/admin/permissions")
    assert mine.status_code == 200 and "CORRECT" in mine.text and "EXPORT" in mine.text
    assert "Grant</button>" not in mine.text and "Revoke</button>" not in mine.text
    theirs = alice.get("/admin/permissions", UserId=str(world.id("carol")))
    assert theirs.status_code == 403 and "Not allowed" in theirs.text


def test_a_dba_oversees_grants_but_may_not_grant(api: Api, world: World) -> None:
    dba = signed_in(api, world, "dba")
    seen = dba.get("/admin/permissions", UserId=str(world.id("alice")))
    assert seen.status_code == 200 and "CORRECT" in seen.text
    assert "Grant</button>" not in seen.text  # the form is not offered
    refused = dba.post("/admin/permissions", _grant(world, "carol"))
    assert refused.status_code == 403 and "dms:GrantUserPermission" in field_error(refused, "_form")
    assert _grants(api, world, "carol") == []
