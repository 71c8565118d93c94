"""Tenants and users (dms-api.md A.8): GetUserActiveTenant … DisableUser."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Digits, Int, Long, TenantScoped, missing_param
from opendms.identity import service
from opendms.identity.roles import ROLE_IDS, Role, parse_roles
from opendms.store.models import User
from opendms.store.states import UserState

Text = Annotated[str, Field(max_length=256)]


def _tenant(tid: int, name: str, active: bool) -> Payload:
    return {"Tid": tid, "TenantName": name, "Status": "ACTIVE" if active else "IN_ACTIVE"}


def _user(user: User, *, parent_uid_as_int: bool) -> Payload:
    roles = parse_roles(user.roles)
    parent: Any = user.parent_uid
    if parent is not None and parent_uid_as_int:
        parent = int(parent)
    out: Payload = {
        "UserId": str(user.user_id),
        "Uid": user.uid,
        "ParentUid": parent,
        "NickName": user.nick_name,
        "State": user.state,
        "RoleIdList": {"RoleIds": [ROLE_IDS[r] for r in roles]},
        "RoleNameList": {"RoleNames": [r.value for r in roles]},
        "Mobile": user.mobile,
        "Email": user.email,
        "NotificationMode": user.notification_mode,
        "MaxExecuteCount": user.max_execute_count,
        "MaxResultCount": user.max_result_count,
        "CurExecuteCount": 0,
        "CurResultCount": 0,
        "LastLoginTime": user.last_login_at.strftime("%Y-%m-%d %H:%M:%S")
        if user.last_login_at
        else None,
    }
    return {k: v for k, v in out.items() if v is not None}


# ------------------------------------------------------------------ tenants


class GetUserActiveTenantRequest(TenantScoped):
    pass


def get_user_active_tenant(ctx: Context, _req: GetUserActiveTenantRequest) -> Payload:
    return {"Tenant": _tenant(ctx.caller.tid, ctx.caller.tenant_name, True)}


class ListUserTenantsRequest(TenantScoped):
    pass


def list_user_tenants(ctx: Context, _req: ListUserTenantsRequest) -> Payload:
    members = service.tenants_of(ctx.session, ctx.caller.uid)
    return {
        "TenantList": [
            _tenant(m.tenant.tid, m.tenant.name, m.tenant.tid == ctx.caller.tid) for m in members
        ]
    }


# ------------------------------------------------------------------ users


class RegisterUserRequest(TenantScoped):
    uid: Digits
    user_nick: Text | None = None
    mobile: Annotated[str, Field(max_length=64)] | None = None
    role_names: Text | None = None


def register_user(ctx: Context, req: RegisterUserRequest) -> Payload:
    service.register_user(
        ctx.session,
        ctx.caller,
        ctx.caller.tid,
        req.uid,
        nick_name=req.user_nick,
        mobile=req.mobile,
        roles=req.role_names or "USER",
    )
    return {}


class GetUserRequest(TenantScoped):
    uid: Digits | None = None
    user_id: Digits | None = None


def get_user(ctx: Context, req: GetUserRequest) -> Payload:
    if req.user_id is None and req.uid is None:  # no selector: the caller
        user = service.find_user(ctx.session, ctx.caller.tid, user_id=ctx.caller.user_id)
    else:
        user = service.find_user(
            ctx.session,
            ctx.caller.tid,
            user_id=int(req.user_id) if req.user_id is not None else None,
            uid=req.uid,
        )
    return {"User": _user(user, parent_uid_as_int=True)}


class ListUsersRequest(TenantScoped):
    page_number: Annotated[Int, Field(ge=1)] = 1
    page_size: Annotated[Int, Field(ge=1, le=100)] = 10
    role: Role | None = None
    search_key: Text | None = None
    user_state: UserState | None = None


def list_users(ctx: Context, req: ListUsersRequest) -> Payload:
    page = service.list_users(
        ctx.session,
        ctx.caller.tid,
        role=req.role,
        state=req.user_state,
        search=req.search_key,
        page=req.page_number,
        size=req.page_size,
    )
    return {
        "TotalCount": page.total,
        "UserList": {"User": [_user(u, parent_uid_as_int=False) for u in page.users]},
    }


class UpdateUserRequest(TenantScoped):
    uid: Long | None = None
    uid_string: Digits | None = None  # replaces the long Uid when given
    user_nick: Text | None = None
    mobile: Annotated[str, Field(max_length=64)] | None = None
    role_names: Text | None = None
    max_execute_count: Annotated[Long, Field(ge=0)] | None = None
    max_result_count: Annotated[Long, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _needs_a_uid(self) -> UpdateUserRequest:
        if self.uid is None and self.uid_string is None:
            raise missing_param("Uid")
        return self

    @property
    def target_uid(self) -> str:
        return self.uid_string if self.uid_string is not None else str(self.uid)


def update_user(ctx: Context, req: UpdateUserRequest) -> Payload:
    service.update_user(
        ctx.session,
        ctx.caller,
        ctx.caller.tid,
        req.target_uid,
        nick_name=req.user_nick,
        mobile=req.mobile,
        roles=req.role_names,
        max_execute_count=req.max_execute_count,
        max_result_count=req.max_result_count,
    )
    return {}


class UserByUidRequest(TenantScoped):
    uid: Digits


def _state_setter(state: UserState) -> Any:
    def handler(ctx: Context, req: UserByUidRequest) -> Payload:
        service.set_user_state(ctx.session, ctx.caller, ctx.caller.tid, req.uid, state)
        return {}

    return handler


ACTIONS = (
    Action(
        "GetUserActiveTenant",
        GetUserActiveTenantRequest,
        get_user_active_tenant,
        Access.GET,
        "The tenant this call runs in.",
        blocking=False,
    ),
    Action(
        "ListUserTenants",
        ListUserTenantsRequest,
        list_user_tenants,
        Access.LIST,
        "Tenants the caller belongs to.",
    ),
    Action(
        "RegisterUser",
        RegisterUserRequest,
        register_user,
        Access.CREATE,
        "Make an account a user of the tenant.",
    ),
    Action("GetUser", GetUserRequest, get_user, Access.GET, "One user, by UserId or Uid."),
    Action("ListUsers", ListUsersRequest, list_users, Access.LIST, "Users of the tenant, paged."),
    Action(
        "UpdateUser",
        UpdateUserRequest,
        update_user,
        Access.UPDATE,
        "Change a user's nickname, mobile, roles or quotas.",
    ),
    Action(
        "DeleteUser",
        UserByUidRequest,
        _state_setter(UserState.DELETE),
        Access.DELETE,
        "Remove a user from the tenant.",
    ),
    Action(
        "EnableUser",
        UserByUidRequest,
        _state_setter(UserState.NORMAL),
        Access.UPDATE,
        "Let a disabled user in again.",
    ),
    Action(
        "DisableUser",
        UserByUidRequest,
        _state_setter(UserState.DISABLE),
        Access.UPDATE,
        "Stop a user; their keys stop working at once.",
    ),
)
