"""Tenants and users (dms-api.md A.8) over real HTTP, through the new SDK (V3 and V1 signing)
and the old ``aliyunsdkcore`` SDK, asserting on the SDK's parsed response models."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.e2e.conftest import FLAVORS, REQUEST_ID, Creds, Dms, Flavor, Server

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

_uids = itertools.count(7_300_000_000_000_001)


def fresh_uid() -> str:
    """A 16-digit account id nobody in this module's server has used yet."""
    return str(next(_uids))


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> Flavor:
    value: Flavor = request.param
    return value


@pytest.fixture
def admin(server: Server, flavor: Flavor) -> Dms:
    """The bootstrap administrator of the default tenant, through one client flavour."""
    return Dms(server, server.admin, flavor)


def ok(body: Any) -> None:
    """A successful business envelope."""
    assert body.success is True, body.to_map()
    assert REQUEST_ID.match(body.request_id), body.request_id
    assert body.error_code is None, body.to_map()


def refused(body: Any, code: str) -> None:
    """A business error: HTTP 200, Success=false, ErrorCode and ErrorMessage set."""
    assert body.success is False, body.to_map()
    assert body.error_code == code, body.to_map()
    assert body.error_message
    assert REQUEST_ID.match(body.request_id)


# ------------------------------------------------------------------ tenants


@dataclass(frozen=True)
class TwoTenants:
    """A user who belongs to the default tenant (active) and to a second one."""

    creds: Creds
    second_tid: int


@pytest.fixture(scope="module")
def two_tenants(server: Server) -> TwoTenants:
    member = server.create_user("USER", nick="wanderer")
    second = server.create_tenant("second")
    server.cli("user", "create", "--uid", member.uid, "--tid", str(second), "--roles", "DBA")
    return TwoTenants(member, second)


def test_get_user_active_tenant(server: Server, admin: Dms) -> None:
    body = admin.call("GetUserActiveTenant")
    ok(body)
    assert isinstance(body.tenant, dms_models.GetUserActiveTenantResponseBodyTenant)
    assert body.tenant.tid == server.admin.tid == server.init["Tid"]
    assert body.tenant.tenant_name == "default"
    assert body.tenant.status == "ACTIVE"


def test_list_user_tenants_of_the_administrator(server: Server, admin: Dms) -> None:
    body = admin.call("ListUserTenants")
    ok(body)
    assert [(t.tid, t.tenant_name, t.status) for t in body.tenant_list] == [
        (server.admin.tid, "default", "ACTIVE")
    ]


def test_a_user_of_two_tenants(server: Server, two_tenants: TwoTenants, flavor: Flavor) -> None:
    dms = Dms(server, two_tenants.creds, flavor)
    first, second = server.admin.tid, two_tenants.second_tid

    body = dms.call("ListUserTenants")
    ok(body)
    assert [(t.tid, t.status) for t in body.tenant_list] == [
        (first, "ACTIVE"),
        (second, "IN_ACTIVE"),
    ]
    assert [t.tenant_name for t in body.tenant_list] == ["default", "second"]

    # Tid picks the tenant a call runs in; the user has a different role there
    body = dms.call("GetUserActiveTenant", tid=second)
    ok(body)
    assert (body.tenant.tid, body.tenant.tenant_name, body.tenant.status) == (
        second,
        "second",
        "ACTIVE",
    )
    body = dms.call("ListUserTenants", tid=second)
    assert [(t.tid, t.status) for t in body.tenant_list] == [
        (first, "IN_ACTIVE"),
        (second, "ACTIVE"),
    ]
    me = dms.call("GetUser", tid=second).user
    assert me.uid == two_tenants.creds.uid
    assert me.role_name_list.role_names == ["DBA"]
    me = dms.call("GetUser").user
    assert me.role_name_list.role_names == ["USER"]
    assert me.nick_name == "wanderer"

    # without Tid the account's active tenant is used
    body = dms.call("GetUserActiveTenant")
    assert (body.tenant.tid, body.tenant.status) == (first, "ACTIVE")


# ------------------------------------------------------------------ RegisterUser / GetUser


def test_register_then_get_user_three_ways(server: Server, admin: Dms) -> None:
    uid = fresh_uid()
    body = admin.call(
        "RegisterUser", uid=uid, user_nick="Ada Lovelace", mobile="13800000000", role_names="DBA"
    )
    ok(body)
    assert isinstance(body, dms_models.RegisterUserResponseBody)

    by_uid = admin.call("GetUser", uid=uid)
    ok(by_uid)
    user = by_uid.user
    assert isinstance(user, dms_models.GetUserResponseBodyUser)
    assert user.uid == uid
    assert user.nick_name == "Ada Lovelace"
    assert user.mobile == "13800000000"
    assert user.state == "NORMAL"
    assert user.role_name_list.role_names == ["DBA"]
    assert user.role_id_list.role_ids == [2]
    assert user.parent_uid == int(server.admin.uid)  # a long in GetUser
    assert user.user_id and user.user_id.isdigit()  # a string on the wire
    assert (user.cur_execute_count, user.cur_result_count) == (0, 0)
    if admin.flavor == "old":
        assert admin.last_raw is not None
        assert isinstance(admin.last_raw["User"]["ParentUid"], int)
        assert isinstance(admin.last_raw["User"]["UserId"], str)

    by_id = admin.call("GetUser", user_id=user.user_id)
    ok(by_id)
    assert by_id.user.to_map() == user.to_map()

    # no selector: the caller
    me = admin.call("GetUser")
    ok(me)
    assert me.user.uid == server.admin.uid
    assert me.user.nick_name == server.init["UserName"] == "admin"
    assert me.user.role_name_list.role_names == ["ADMIN"]
    assert me.user.role_id_list.role_ids == [3]


def test_register_defaults_and_duplicates(admin: Dms) -> None:
    uid = fresh_uid()
    ok(admin.call("RegisterUser", uid=uid))
    user = admin.call("GetUser", uid=uid).user
    assert user.role_name_list.role_names == ["USER"]
    assert user.nick_name == uid  # no nick: the Uid stands in

    refused(admin.call("RegisterUser", uid=uid, user_nick="again"), "UserAlreadyExists")
    assert admin.call("GetUser", uid=uid).user.nick_name == uid  # unchanged


def test_business_errors_are_http_200_not_exceptions(admin: Dms) -> None:
    body = admin.call("GetUser", user_id="999999")  # the new SDK asserts status 200 in call()
    refused(body, "UserNotFound")
    assert "999999" in body.error_message
    assert body.user is None
    refused(admin.call("GetUser", uid="999999999"), "UserNotFound")
    refused(admin.call("RegisterUser", uid=fresh_uid(), role_names="KING"), "InvalidParameter")


# ------------------------------------------------------------------ ListUsers


@dataclass(frozen=True)
class Roster:
    """A tenant with a known population: 1 ADMIN, 12 USERs (one disabled) and 2 DBAs."""

    admin: Creds
    tid: int
    members: dict[str, str]  # nick -> uid
    disabled_nick: str


@pytest.fixture(scope="module")
def roster(server: Server) -> Roster:
    tid = server.create_tenant("roster")
    boss = server.create_user("ADMIN", tid=tid, nick="roster-boss")
    dms = Dms(server, boss, "v3")
    members: dict[str, str] = {}
    for i in range(1, 13):
        members[f"member-{i:02d}"] = fresh_uid()
    for i in (1, 2):
        members[f"dba-{i}"] = fresh_uid()
    for nick, uid in members.items():
        role = "DBA" if nick.startswith("dba") else "USER"
        ok(dms.call("RegisterUser", uid=uid, user_nick=nick, role_names=role))
    ok(dms.call("DisableUser", uid=members["member-07"]))
    return Roster(boss, tid, members, "member-07")


@pytest.fixture
def roster_admin(server: Server, roster: Roster, flavor: Flavor) -> Dms:
    return Dms(server, roster.admin, flavor)


def _nicks(body: Any) -> list[str]:
    users = body.user_list.user
    assert all(isinstance(u, dms_models.ListUsersResponseBodyUserListUser) for u in users)
    return [u.nick_name for u in users]


def test_list_users_pages(roster: Roster, roster_admin: Dms) -> None:
    everyone = {"roster-boss", *roster.members}
    first = roster_admin.call("ListUsers", page_number=1, page_size=10)
    ok(first)
    assert first.total_count == 15
    assert len(first.user_list.user) == 10
    second = roster_admin.call("ListUsers", page_number=2, page_size=10)
    assert second.total_count == 15
    assert len(second.user_list.user) == 5
    assert set(_nicks(first)).isdisjoint(_nicks(second))
    assert set(_nicks(first)) | set(_nicks(second)) == everyone
    past_the_end = roster_admin.call("ListUsers", page_number=3, page_size=10)
    ok(past_the_end)
    assert past_the_end.total_count == 15
    assert past_the_end.user_list.user == []

    default_page = roster_admin.call("ListUsers")  # PageSize defaults to 10
    assert default_page.total_count == 15
    assert _nicks(default_page) == _nicks(first)
    big = roster_admin.call("ListUsers", page_size=50)
    assert set(_nicks(big)) == everyone

    user_ids = [int(u.user_id) for u in big.user_list.user]
    assert user_ids == sorted(user_ids)  # a stable order, so that pages do not overlap


def test_list_users_item_shape(server: Server, roster: Roster, roster_admin: Dms) -> None:
    body = roster_admin.call("ListUsers", search_key="dba-1")
    assert body.total_count == 1
    (user,) = body.user_list.user
    assert user.uid == roster.members["dba-1"]
    assert user.nick_name == "dba-1"
    assert user.state == "NORMAL"
    assert user.role_name_list.role_names == ["DBA"]
    assert user.role_id_list.role_ids == [2]
    assert user.parent_uid == roster.admin.uid  # a string in ListUsers (a long in GetUser)
    assert user.user_id and user.user_id.isdigit()
    if roster_admin.flavor == "old":
        assert roster_admin.last_raw is not None
        assert isinstance(roster_admin.last_raw["UserList"]["User"][0]["ParentUid"], str)


def test_list_users_role_filter(roster_admin: Dms) -> None:
    dbas = roster_admin.call("ListUsers", role="DBA")
    ok(dbas)
    assert dbas.total_count == 2
    assert sorted(_nicks(dbas)) == ["dba-1", "dba-2"]
    admins = roster_admin.call("ListUsers", role="ADMIN")
    assert (admins.total_count, _nicks(admins)) == (1, ["roster-boss"])
    users = roster_admin.call("ListUsers", role="USER", page_size=20)
    assert users.total_count == 12
    nobody = roster_admin.call("ListUsers", role="SECURITY_ADMIN")
    assert (nobody.total_count, nobody.user_list.user) == (0, [])


def test_list_users_search_key(roster: Roster, roster_admin: Dms) -> None:
    body = roster_admin.call("ListUsers", search_key="MEMBER-0", page_size=20)  # case-insensitive
    assert body.total_count == 9
    assert sorted(_nicks(body)) == [f"member-{i:02d}" for i in range(1, 10)]
    uid = roster.members["member-11"]
    by_uid = roster_admin.call("ListUsers", search_key=uid[-6:])
    assert uid in [u.uid for u in by_uid.user_list.user]
    # DMS search patterns: _ and % are wildcards, a backslash makes one a character
    wild = roster_admin.call("ListUsers", search_key="member_0%", page_size=20)
    assert sorted(_nicks(wild)) == [f"member-{i:02d}" for i in range(1, 10)]
    none = roster_admin.call("ListUsers", search_key="member\\_0")
    assert (none.total_count, none.user_list.user) == (0, [])


def test_list_users_state_filter(roster: Roster, roster_admin: Dms) -> None:
    disabled = roster_admin.call("ListUsers", user_state="DISABLE")
    assert disabled.total_count == 1
    (user,) = disabled.user_list.user
    assert (user.nick_name, user.state) == (roster.disabled_nick, "DISABLE")
    normal = roster_admin.call("ListUsers", user_state="NORMAL", page_size=20)
    assert normal.total_count == 14
    assert roster.disabled_nick not in _nicks(normal)
    combined = roster_admin.call("ListUsers", user_state="NORMAL", role="USER", page_size=20)
    assert combined.total_count == 11


def test_list_users_is_scoped_to_the_tenant(server: Server, roster: Roster, admin: Dms) -> None:
    """The default tenant's administrator sees none of the roster."""
    body = admin.call("ListUsers", search_key="member-", page_size=100)
    ok(body)
    assert body.total_count == 0


# ------------------------------------------------------------------ UpdateUser


def test_update_user_roles_and_nick(admin: Dms) -> None:
    uid = fresh_uid()
    ok(admin.call("RegisterUser", uid=uid, user_nick="before"))
    ok(admin.call("UpdateUser", uid=int(uid), role_names="DBA,USER", user_nick="after"))
    user = admin.call("GetUser", uid=uid).user
    assert user.nick_name == "after"
    assert user.role_name_list.role_names == ["USER", "DBA"]
    assert user.role_id_list.role_ids == [1, 2]

    ok(admin.call("UpdateUser", uid=int(uid), max_execute_count=5, max_result_count=100))
    user = admin.call("GetUser", uid=uid).user
    assert (user.max_execute_count, user.max_result_count) == (5, 100)
    assert user.nick_name == "after"  # untouched fields keep their values

    refused(admin.call("UpdateUser", uid=999_999_999, user_nick="x"), "UserNotFound")


def test_update_user_by_uid_string(server: Server) -> None:
    """UidString (new SDK only; the old SDK has no setter for it) replaces the long Uid."""
    dms = Dms(server, server.admin, "v3")
    uid = fresh_uid()
    ok(dms.call("RegisterUser", uid=uid))
    ok(dms.call("UpdateUser", uid_string=uid, user_nick="by-string"))
    assert dms.call("GetUser", uid=uid).user.nick_name == "by-string"


def test_last_admin_cannot_lose_the_role(server: Server, roster: Roster, flavor: Flavor) -> None:
    dms = Dms(server, roster.admin, flavor)
    refused(
        dms.call("UpdateUser", uid=int(roster.admin.uid), role_names="USER"), "LastAdministrator"
    )
    assert dms.call("GetUser").user.role_name_list.role_names == ["ADMIN"]


# ------------------------------------------------------------------ Disable / Enable / Delete


def test_disable_enable_delete_lifecycle(admin: Dms) -> None:
    uid = fresh_uid()
    ok(admin.call("RegisterUser", uid=uid, user_nick="lifecycle"))

    ok(admin.call("DisableUser", uid=uid))
    assert admin.call("GetUser", uid=uid).user.state == "DISABLE"
    listed = admin.call("ListUsers", search_key="lifecycle", user_state="DISABLE")
    assert [u.uid for u in listed.user_list.user] == [uid]

    ok(admin.call("EnableUser", uid=uid))
    assert admin.call("GetUser", uid=uid).user.state == "NORMAL"

    ok(admin.call("DeleteUser", uid=uid))
    assert admin.call("GetUser", uid=uid).user.state == "DELETE"
    refused(admin.call("EnableUser", uid=uid), "UserNotFound")
    refused(admin.call("UpdateUser", uid=int(uid), user_nick="ghost"), "UserNotFound")

    # registering again brings the user back
    ok(admin.call("RegisterUser", uid=uid, role_names="DBA"))
    user = admin.call("GetUser", uid=uid).user
    assert (user.state, user.nick_name, user.role_name_list.role_names) == (
        "NORMAL",
        "lifecycle",
        ["DBA"],
    )


def test_state_changes_are_idempotent_and_checked(server: Server, admin: Dms) -> None:
    uid = fresh_uid()
    ok(admin.call("RegisterUser", uid=uid))
    ok(admin.call("DisableUser", uid=uid))
    ok(admin.call("DisableUser", uid=uid))
    ok(admin.call("EnableUser", uid=uid))
    ok(admin.call("EnableUser", uid=uid))
    refused(admin.call("DisableUser", uid="999999999"), "UserNotFound")
    refused(admin.call("DeleteUser", uid=server.admin.uid), "CannotChangeSelf")
    refused(admin.call("DisableUser", uid=server.admin.uid), "CannotChangeSelf")
    assert admin.call("GetUser").user.state == "NORMAL"
