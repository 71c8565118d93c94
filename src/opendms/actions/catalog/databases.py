"""Databases, tables, columns, indexes and owners (dms-api.md A.9, B.11)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from opendms.actions.catalog.fields import (
    EnvType,
    HostText,
    PageNumber,
    PageSize,
    PortNumber,
    Text,
    column_payload,
    owners_payload,
)
from opendms.catalog import guids, ownership, queries, sync
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Bool, CommaIds, Digits, TenantScoped
from opendms.identity import service as identity
from opendms.store.models import Database, DbColumn, DbIndex, DbTable, Instance, User


def _database(db: Database, inst: Instance, dba: User | None, owners: Sequence[User]) -> Payload:
    return {
        "DatabaseId": str(db.db_id),
        "InstanceId": str(inst.instance_id),
        "SchemaName": db.schema_name,
        "CatalogName": db.catalog_name,
        "SearchName": queries.search_name(db, inst),
        "DbType": inst.instance_type,
        "EnvType": inst.env_type,
        "Encoding": db.encoding,
        "Host": inst.host,
        "Port": inst.port,
        "Sid": inst.sid,
        "State": db.state,
        "DbaId": str(inst.dba_user_id) if inst.dba_user_id else "",
        "DbaName": dba.nick_name if dba else "",
        **owners_payload(owners),
    }


def _databases_page(ctx: Context, items: Sequence[Database]) -> list[Payload]:
    owners = ownership.owners_of(ctx.session, "DATABASE", [d.db_id for d in items])
    instances = {d.instance_id: ctx.session.get(Instance, d.instance_id) for d in items}
    dbas = identity.users_by_id(
        ctx.session, [i.dba_user_id for i in instances.values() if i and i.dba_user_id]
    )
    out = []
    for d in items:
        inst = instances[d.instance_id]
        assert inst is not None
        out.append(_database(d, inst, dbas.get(inst.dba_user_id or 0), owners[d.db_id]))
    return out


# ------------------------------------------------------------------ requests


class ListDatabasesRequest(TenantScoped):
    instance_id: Digits
    search_key: Text | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 10


def list_databases(ctx: Context, req: ListDatabasesRequest) -> Payload:
    page = queries.list_databases(
        ctx.session,
        ctx.caller.tid,
        int(req.instance_id),
        search=req.search_key,
        page=req.page_number,
        size=req.page_size,
    )
    return {
        "TotalCount": page.total,
        "DatabaseList": {"Database": _databases_page(ctx, page.items)},
    }


class GetDatabaseRequest(TenantScoped):
    host: HostText
    port: PortNumber
    schema_name: Text
    sid: Text | None = None


def get_database(ctx: Context, req: GetDatabaseRequest) -> Payload:
    db = queries.find_database(
        ctx.session, ctx.caller.tid, req.host, req.port, req.schema_name, req.sid
    )
    (shown,) = _databases_page(ctx, [db])
    inst = ctx.session.get(Instance, db.instance_id)
    return {"Database": {**shown, "InstanceAlias": inst.alias if inst else ""}}


class SearchDatabaseRequest(TenantScoped):
    search_key: Text | None = None
    db_type: Text | None = None
    env_type: EnvType | None = None
    search_target: Literal["DB", "SINGLE_DB", "LOGIC_DB"] | None = None
    search_range: Literal["HAS_PERMSSION", "OWNER", "MY_FOCUS", "UNKNOWN"] | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 10


def search_database(ctx: Context, req: SearchDatabaseRequest) -> Payload:
    if req.search_target == "LOGIC_DB":  # no logical databases (yet): nothing matches
        return {"TotalCount": 0, "SearchDatabaseList": {"SearchDatabase": []}}
    page = queries.search_databases(
        ctx.session,
        ctx.caller.tid,
        search=req.search_key,
        db_type=req.db_type,
        env_type=req.env_type,
        owner_user_id=ctx.caller.user_id if req.search_range == "OWNER" else None,
        page=req.page_number,
        size=req.page_size,
    )
    rows = []
    for shown, db in zip(_databases_page(ctx, page.items), page.items, strict=True):
        inst = ctx.session.get(Instance, db.instance_id)
        rows.append(
            {
                key: shown[key]
                for key in (
                    "CatalogName",
                    "DatabaseId",
                    "DbType",
                    "DbaId",
                    "Encoding",
                    "EnvType",
                    "Host",
                    "Port",
                    "SchemaName",
                    "SearchName",
                    "Sid",
                    "OwnerIdList",
                    "OwnerNameList",
                )
            }
            | {
                "Alias": inst.alias if inst else "",
                "DatalinkName": inst.data_link_name if inst else "",
                "Logic": False,
            }
        )
    return {"TotalCount": page.total, "SearchDatabaseList": {"SearchDatabase": rows}}


class SyncDatabaseMetaRequest(TenantScoped):
    db_id: Digits
    logic: Bool | None = None


def sync_database_meta(ctx: Context, req: SyncDatabaseMetaRequest) -> Payload:
    sync.sync_database(ctx.session, ctx.secrets, ctx.targets, ctx.caller.tid, int(req.db_id))
    return {}


class ListTablesRequest(TenantScoped):
    database_id: Digits
    search_name: Text | None = None
    return_guid: Bool | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 10


def _table(t: DbTable, db: Database, owners: Sequence[User], guid: bool) -> Payload:
    out: Payload = {
        "TableId": str(t.table_id),
        "DatabaseId": str(db.db_id),
        "TableName": t.name,
        "TableSchemaName": db.schema_name,
        "TableType": t.table_type,
        "Engine": t.engine,
        "Encoding": t.encoding,
        "NumRows": t.num_rows,
        "StoreCapacity": t.size_bytes // (1024 * 1024),  # MB, as DMS reports it
        "Description": t.description,
        **owners_payload(owners),
    }
    if guid:
        out["TableGuid"] = guids.table_guid(db, t.name)
    return out


def list_tables(ctx: Context, req: ListTablesRequest) -> Payload:
    db = queries.get_database(ctx.session, ctx.caller.tid, int(req.database_id))
    page = queries.list_tables(
        ctx.session,
        ctx.caller.tid,
        db.db_id,
        search=req.search_name,
        page=req.page_number,
        size=req.page_size,
    )
    owners = ownership.owners_of(ctx.session, "TABLE", [t.table_id for t in page.items])
    return {
        "TotalCount": page.total,
        "TableList": {
            "Table": [_table(t, db, owners[t.table_id], bool(req.return_guid)) for t in page.items]
        },
    }


class TableRequest(TenantScoped):
    table_id: Digits
    logic: Bool | None = None


def _column(c: DbColumn) -> Payload:
    out: Payload = {
        **column_payload(c),
        "DefaultValue": c.default_value,
        "Sensitive": False,
        "SecurityLevel": "",
        "FunctionType": "",
    }
    return {k: v for k, v in out.items() if v is not None}


def list_columns(ctx: Context, req: TableRequest) -> Payload:
    columns = queries.list_columns(ctx.session, ctx.caller.tid, int(req.table_id))
    return {"ColumnList": {"Column": [_column(c) for c in columns]}}


def _index(i: DbIndex) -> Payload:
    return {
        "IndexId": str(i.index_id),
        "IndexName": i.name,
        "IndexType": i.index_type,
        "IndexComment": i.comment,
        "TableId": str(i.table_id),
    }


def list_indexes(ctx: Context, req: TableRequest) -> Payload:
    indexes = queries.list_indexes(ctx.session, ctx.caller.tid, int(req.table_id))
    return {"IndexList": {"Index": [_index(i) for i in indexes]}}


# ------------------------------------------------------------------ owners


class SetOwnersRequest(TenantScoped):
    resource_id: Digits
    owner_type: Literal["INSTANCE", "DATABASE", "LOGIC_DATABASE", "TABLE", "LOGIC_TABLE"]
    owner_ids: Annotated[CommaIds, Field(min_length=1)]


def set_owners(ctx: Context, req: SetOwnersRequest) -> Payload:
    if req.owner_type.startswith("LOGIC_"):
        ownership.no_logical_resources(req.owner_type)
    ownership.set_owners(
        ctx.session, ctx.caller.tid, req.owner_type, int(req.resource_id), req.owner_ids
    )
    return {}


ACTIONS = (
    Action(
        "ListDatabases",
        ListDatabasesRequest,
        list_databases,
        Access.LIST,
        "Databases (schemas) of an instance.",
    ),
    Action(
        "GetDatabase",
        GetDatabaseRequest,
        get_database,
        Access.GET,
        "One database, by Host, Port and SchemaName.",
    ),
    Action(
        "SearchDatabase",
        SearchDatabaseRequest,
        search_database,
        Access.LIST,
        "Databases of the tenant matching a name.",
    ),
    Action(
        "SyncDatabaseMeta",
        SyncDatabaseMetaRequest,
        sync_database_meta,
        Access.UPDATE,
        "Read one database's tables again.",
    ),
    Action("ListTables", ListTablesRequest, list_tables, Access.LIST, "Tables of a database."),
    Action("ListColumns", TableRequest, list_columns, Access.LIST, "Columns of a table."),
    Action("ListIndexes", TableRequest, list_indexes, Access.LIST, "Indexes of a table."),
    Action(
        "SetOwners",
        SetOwnersRequest,
        set_owners,
        Access.UPDATE,
        "Set the owners of an instance, database or table.",
    ),
)
