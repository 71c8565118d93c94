"""Data permissions (dms-api.md A.10, B.12): grant, revoke and list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from opendms.catalog import permissions as perms
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import WIRE_TIME, Bool, Digits, Int, Long, TenantScoped, WireTime

Text = Annotated[str, Field(max_length=256)]
DsType = Literal["INSTANCE", "DATABASE", "LOGIC_DATABASE", "TABLE", "LOGIC_TABLE"]
Level = Literal["DATABASE", "TABLE", "COLUMN", "INSTANCE"]


def _perm_list(value: str) -> str:
    names = [p.strip().upper() for p in value.split(",") if p.strip()]
    if not names or any(n not in perms.PERM_TYPES for n in names):
        raise ValueError(f"must list some of {', '.join(perms.PERM_TYPES)}")
    return value


PermTypes = Annotated[str, Field(max_length=256), AfterValidator(_perm_list)]


class _Target(TenantScoped):
    user_id: Digits
    ds_type: DsType
    perm_types: PermTypes
    db_id: Digits | None = None
    instance_id: Long | None = None
    table_id: Digits | None = None
    table_name: Text | None = None
    logic: Bool | None = None

    def target(self, ctx: Context) -> perms.GrantTarget:
        return perms.resolve_target(
            ctx.session,
            ctx.caller.tid,
            self.ds_type,
            instance_id=self.instance_id,
            db_id=int(self.db_id) if self.db_id else None,
            table_id=int(self.table_id) if self.table_id else None,
            table_name=self.table_name,
        )


class GrantUserPermissionRequest(_Target):
    expire_date: WireTime


def grant_user_permission(ctx: Context, req: GrantUserPermissionRequest) -> Payload:
    perms.grant(
        ctx.session,
        ctx.caller.tid,
        int(req.user_id),
        req.target(ctx),
        req.perm_types,
        datetime.strptime(req.expire_date, WIRE_TIME),
    )
    return {}


class RevokeUserPermissionRequest(_Target):
    user_access_id: Digits


def revoke_user_permission(ctx: Context, req: RevokeUserPermissionRequest) -> Payload:
    perms.revoke(
        ctx.session, ctx.caller.tid, int(req.user_id), int(req.user_access_id), req.perm_types
    )
    return {}


def _permission(g: perms.Grouped) -> Payload:
    db = g.database
    inst = g.instance
    return {
        "UserId": str(g.user.user_id),
        "UserNickName": g.user.nick_name,
        "DsType": g.ds_type,
        "InstanceId": str(inst.instance_id),
        "DbId": str(db.db_id) if db else "",
        "SchemaName": db.schema_name if db else "",
        "SearchName": f"{db.schema_name}@{inst.host}:{inst.port}" if db else inst.alias,
        "TableId": str(g.table_id) if g.table_id else "",
        "TableName": g.table_name,
        "ColumnName": "",
        "Logic": False,
        "DbType": inst.instance_type,
        "EnvType": inst.env_type,
        "Alias": inst.alias,
        "Host": inst.host,
        "Port": inst.port,
        "PermDetails": {
            "PermDetail": [
                {
                    "PermType": d.perm_type,
                    "UserAccessId": str(d.id),
                    "CreateDate": f"{d.created_at:{WIRE_TIME}}",
                    "ExpireDate": f"{d.expire_at:{WIRE_TIME}}",
                    "OriginFrom": d.origin_from,
                    "ExtraData": "",
                }
                for d in g.details
            ]
        },
    }


def _page(total: int, groups: Sequence[perms.Grouped], *, with_address: bool) -> Payload:
    rows = [_permission(g) for g in groups]
    if not with_address:  # ListDatabaseUserPermssions has no Host/Port
        for row in rows:
            row.pop("Host")
            row.pop("Port")
    return {"TotalCount": total, "UserPermissions": {"UserPermission": rows}}


class ListUserPermissionsRequest(TenantScoped):
    user_id: Digits
    perm_type: Level
    database_name: Text | None = None
    db_type: Text | None = None
    env_type: Text | None = None
    search_key: Text | None = None
    logic: Bool | None = None
    page_number: Annotated[Int, Field(ge=1)] = 1
    page_size: Annotated[Int, Field(ge=1, le=1000)] = 10


def list_user_permissions(ctx: Context, req: ListUserPermissionsRequest) -> Payload:
    if int(req.user_id) != ctx.caller.user_id:
        perms.require_overseer(ctx.caller)
    page = perms.list_for_user(
        ctx.session,
        ctx.caller.tid,
        int(req.user_id),
        level=req.perm_type,
        search=req.search_key or req.database_name,
        db_type=req.db_type,
        env_type=req.env_type,
        page=req.page_number,
        size=req.page_size,
    )
    return _page(page.total, page.items, with_address=True)


class ListDatabaseUserPermssionsRequest(TenantScoped):
    db_id: Digits
    perm_type: Level
    user_name: Text | None = None
    logic: Bool | None = None
    page_number: Annotated[Int, Field(ge=1)] = 1
    page_size: Annotated[Int, Field(ge=1, le=1000)] = 10


def list_database_user_permssions(ctx: Context, req: ListDatabaseUserPermssionsRequest) -> Payload:
    perms.require_overseer(ctx.caller, db_id=int(req.db_id), session=ctx.session)
    page = perms.list_for_database(
        ctx.session,
        ctx.caller.tid,
        int(req.db_id),
        level=req.perm_type,
        user_name=req.user_name,
        page=req.page_number,
        size=req.page_size,
    )
    return _page(page.total, page.items, with_address=False)


ACTIONS = (
    Action(
        "GrantUserPermission",
        GrantUserPermissionRequest,
        grant_user_permission,
        Access.UPDATE,
        "Grant QUERY/EXPORT/CORRECT on an instance, database or table.",
        methods=frozenset({"POST"}),
    ),
    Action(
        "RevokeUserPermission",
        RevokeUserPermissionRequest,
        revoke_user_permission,
        Access.UPDATE,
        "Revoke privileges of one grant (UserAccessId).",
    ),
    Action(
        "ListUserPermissions",
        ListUserPermissionsRequest,
        list_user_permissions,
        Access.LIST,
        "A user's privileges, one row per resource.",
    ),
    Action(
        "ListDatabaseUserPermssions",
        ListDatabaseUserPermssionsRequest,
        list_database_user_permssions,
        Access.LIST,
        "Who holds privileges on a database (the SDK spells it Permssions).",
    ),
)
