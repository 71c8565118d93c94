"""Users and roles in the console: the list, registering, roles and nick, disable/enable and
the console password, through the same actions and rules as the API; refused to those who do
not manage users."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opendms.identity import service as identity
from opendms.store.models import Account, User
from opendms.store.states import UserState
from tests.approval_world import World
from tests.conftest import Api
from tests.unit.web.admin_helpers import Console, field_error, sign_in, signed_in, world_in


@pytest.fixture
def world(api: Api) -> World:
    return world_in(api)


@pytest.fixture
def admin(api: Api, world: World) -> Console:
    return signed_in(api, world, "admin")


def _user(api: Api, world: World, uid: str) -> User | None:
    with api.store.session() as s:
        return s.scalars(select(User).where(User.tid == world.tid, User.uid == uid)).first()


def test_the_list_filters_and_pages_the_tenants_users(
    api: Api, world: World, admin: Console
) -> None:
    page = admin.get("/admin/users")
    assert page.status_code == 200
    for name in ("alice", "owen", "carol", "dba"):
        assert f">{name}</a>" in page.text
    assert "6 in all" in page.text
    found = admin.get("/admin/users", SearchKey="ali")
    assert ">alice</a>" in found.text and ">carol</a>" not in found.text
    dbas = admin.get("/admin/users", Role="DBA")
    assert ">dba</a>" in dbas.text and ">alice</a>" not in dbas.text
    # a filter the action refuses shows beside its field, not as a broken page
    bad = admin.get("/admin/users", UserState="SLEEPING")
    assert bad.status_code == 200 and field_error(bad, "UserState")
    with api.store.session() as s:
        for n in range(25):
            identity.register_user(s, None, world.tid, str(900 + n), nick_name=f"p{n:02}")
    first, second = admin.get("/admin/users"), admin.get("/admin/users", page=2)
    assert "31 in all · page 1 of 2" in first.text and 'rel="next"' in first.text
    assert ">p24</a>" in second.text and ">alice</a>" not in second.text
    assert admin.get("/admin/users", page="x").status_code == 400


def test_an_admin_registers_a_user_once_with_the_roles_chosen(
    api: Api, world: World, admin: Console
) -> None:
    answer = admin.post(
        "/admin/users",
        {"Uid": "4242", "UserNick": "dora", "Mobile": "", "RoleNames": ["DBA", "USER"]},
        once="tok-1",
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/admin/users/4242")
    user = _user(api, world, "4242")
    assert user is not None and user.nick_name == "dora" and user.roles == "USER,DBA"
    shown = admin.get("/admin/users/4242")
    assert "dora" in shown.text and "USER, DBA" in shown.text
    # the same form again (a double click): nothing more happens
    again = admin.post("/admin/users", {"Uid": "4243", "RoleNames": ["USER"]}, once="tok-1")
    assert again.status_code == 303 and "Already+sent" in again.headers["location"]
    assert _user(api, world, "4243") is None
    # no Uid: a new account is made for the user
    fresh = admin.post("/admin/users", {"Uid": "", "UserNick": "eve", "RoleNames": ["USER"]})
    uid = fresh.headers["location"].split("/admin/users/")[1].split("?")[0]
    assert uid.isdigit() and _user(api, world, uid) is not None


def test_registering_shows_each_problem_beside_its_field(
    api: Api, world: World, admin: Console
) -> None:
    bad_uid = admin.post("/admin/users", {"Uid": "12ab", "UserNick": "x", "RoleNames": ["USER"]})
    assert bad_uid.status_code == 400 and field_error(bad_uid, "Uid")
    assert 'value="x"' in bad_uid.text  # what was typed is kept
    taken = admin.post("/admin/users", {"Uid": world.users["alice"].uid, "RoleNames": ["USER"]})
    assert "already user" in field_error(taken, "Uid")
    role = admin.post("/admin/users", {"Uid": "77", "RoleNames": ["KING"]})
    assert "Unknown role" in field_error(role, "RoleNames")
    assert _user(api, world, "77") is None


def test_roles_nick_and_state_change_through_the_actions(
    api: Api, world: World, admin: Console
) -> None:
    alice = world.users["alice"].uid
    saved = admin.post(
        f"/admin/users/{alice}",
        {"UserNick": "alice b", "Mobile": "+1 555", "RoleNames": ["USER", "DBA"]},
    )
    assert saved.status_code == 303
    user = _user(api, world, alice)
    assert user is not None and user.nick_name == "alice b" and user.roles == "USER,DBA"
    assert admin.post(f"/admin/users/{alice}/state", {"State": "DISABLE"}).status_code == 303
    assert (_user(api, world, alice) or user).state == UserState.DISABLE
    assert admin.post(f"/admin/users/{alice}/state", {"State": "NORMAL"}).status_code == 303
    assert (_user(api, world, alice) or user).state == UserState.NORMAL
    # the rules stay the service's: nobody disables themself, the last ADMIN stays one
    me = world.users["admin"].uid
    self_off = admin.post(f"/admin/users/{me}/state", {"State": "DISABLE"})
    assert self_off.status_code == 400 and "cannot disable" in field_error(self_off, "State")
    demote = admin.post(f"/admin/users/{me}", {"UserNick": "admin", "RoleNames": ["USER"]})
    assert "last active ADMIN" in field_error(demote, "RoleNames")
    assert admin.post(f"/admin/users/{me}/state", {"State": "ASLEEP"}).status_code == 400
    assert admin.get("/admin/users/99999").status_code == 404


def test_an_admin_sets_a_console_password_that_signs_the_user_in(
    api: Api, world: World, admin: Console
) -> None:
    carol = world.users["carol"].uid
    differ = admin.post(
        f"/admin/users/{carol}/password", {"Password": "a" * 14, "Password2": "b" * 14}
    )
    assert differ.status_code == 400 and field_error(differ, "Password2")
    short = admin.post(
        f"/admin/users/{carol}/password", {"Password": "short", "Password2": "short"}
    )
    assert "at least 12" in field_error(short, "Password")
    typed = "a new password for carol"
    done = admin.post(f"/admin/users/{carol}/password", {"Password": typed, "Password2": typed})
    assert done.status_code == 303
    sign_in(api, carol, typed)
    made = admin.post(f"/admin/users/{carol}/password", {"Generate": "yes"})
    assert made.status_code == 200
    shown = made.text.split('id="new-password">')[1].split("<")[0]
    sign_in(api, carol, shown)
    assert shown not in admin.get(f"/admin/users/{carol}").text  # shown once


def test_a_security_admin_manages_users_but_sets_no_password(api: Api, world: World) -> None:
    with api.store.session() as s:
        identity.update_user(s, None, world.tid, world.users["owen"].uid, roles="SECURITY_ADMIN")
    owen = signed_in(api, world, "owen")
    assert owen.get("/admin/users").status_code == 200
    carol = world.users["carol"].uid
    before = _password_hash(api, carol)
    refused = owen.post(f"/admin/users/{carol}/password", {"Generate": "yes"})
    assert refused.status_code == 403
    assert "Only an ADMIN sets console passwords" in field_error(refused, "_form")
    assert _password_hash(api, carol) == before
    assert 'id="Password"' not in owen.get(f"/admin/users/{carol}").text  # not offered


def _password_hash(api: Api, uid: str) -> str | None:
    with api.store.session() as s:
        account = s.get(Account, uid)
        return account.password_hash if account else None


def test_a_dba_is_refused_the_users_pages_and_their_actions(api: Api, world: World) -> None:
    dba = signed_in(api, world, "dba")
    for path in ("/admin/users", f"/admin/users/{world.users['alice'].uid}"):
        page = dba.get(path)
        assert page.status_code == 403 and "Not allowed" in page.text
        assert "dms:UpdateUser" in page.text
    assert 'href="/console/admin/users"' not in dba.get("/admin").text  # no link to it
    posted = dba.post("/admin/users", {"Uid": "5150", "RoleNames": ["ADMIN"]})
    assert posted.status_code == 403 and "Forbidden" not in posted.headers.get("location", "")
    assert _user(api, world, "5150") is None
    off = dba.post(f"/admin/users/{world.users['alice'].uid}/state", {"State": "DISABLE"})
    assert off.status_code == 403
    assert (_user(api, world, world.users["alice"].uid) or world.users["alice"]).state == "NORMAL"
