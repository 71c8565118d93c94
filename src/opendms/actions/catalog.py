"""Instances, databases, tables, columns, indexes and owners (dms-api.md A.9, B.11)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from opendms.catalog import service as catalog
from opendms.catalog.service import InstanceSpec
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Bool, CommaIds, Digits, Int, Long, TenantScoped, missing_param
from opendms.identity import service as identity
from opendms.store.models import Database, DbColumn, DbIndex, DbTable, Instance, User

Text = Annotated[str, Field(max_length=256)]
HostText = Annotated[str, Field(min_length=1, max_length=1024)]
Secret = Annotated[str, Field(max_length=1024)]
PortNumber = Annotated[Int, Field(ge=0, le=65535)]
Seconds = Annotated[Int, Field(ge=1, le=86400)]
EnvType = Literal["product", "dev", "pre", "test", "sit", "uat", "pet", "stag"]
InstanceSource = Literal["PUBLIC_OWN", "RDS", "ECS_OWN", "VPC_IDC"]
NetworkType = Literal["CLASSIC", "VPC"]
PageNumber = Annotated[Int, Field(ge=1)]
PageSize = Annotated[Int, Field(ge=1, le=1000)]
YesNo = Literal["Y", "N"]


def _owners(users: Sequence[User]) -> Payload:
    return {
        "OwnerIdList": {"OwnerIds": [str(u.user_id) for u in users]},
        "OwnerNameList": {"OwnerNames": [u.nick_name for u in users]},
    }


def _instance(inst: Instance, dba: User | None, owners: Sequence[User], *, listed: bool) -> Payload:
    return {
        "InstanceId": str(inst.instance_id),
        "InstanceAlias": inst.alias,
        "InstanceType": inst.instance_type,
        "InstanceSource": inst.instance_source,
        "EnvType": inst.env_type,
        "Host": inst.host,
        "Port": inst.port,
        "Sid": inst.sid,
        "DatabaseUser": inst.database_user,
        "DbaId": str(inst.dba_user_id) if inst.dba_user_id else "",
        "DbaNickName": dba.nick_name if dba else "",
        "SafeRuleId": inst.safe_rule,
        "QueryTimeout": inst.query_timeout,
        "ExportTimeout": inst.export_timeout,
        "DdlOnline": inst.ddl_online,
        "UseDsql": inst.use_dsql,
        "DataLinkName": inst.data_link_name,
        "EcsInstanceId": inst.ecs_instance_id,
        "EcsRegion": inst.ecs_region,
        "VpcId": inst.vpc_id,
        "State": inst.state,
        # The SDK types SellSitd as a string in GetInstance and a boolean in ListInstances.
        "SellSitd": inst.sell_sitd if listed else ("Y" if inst.sell_sitd else "N"),
        "SellTrust": "N",
        "StandardGroup": {"GroupMode": inst.control_mode, "GroupName": inst.safe_rule},
        **_owners(owners),
    }


def _database(db: Database, inst: Instance, dba: User | None, owners: Sequence[User]) -> Payload:
    return {
        "DatabaseId": str(db.db_id),
        "InstanceId": str(inst.instance_id),
        "SchemaName": db.schema_name,
        "CatalogName": db.catalog_name,
        "SearchName": catalog.search_name(db, inst),
        "DbType": inst.instance_type,
        "EnvType": inst.env_type,
        "Encoding": db.encoding,
        "Host": inst.host,
        "Port": inst.port,
        "Sid": inst.sid,
        "State": db.state,
        "DbaId": str(inst.dba_user_id) if inst.dba_user_id else "",
        "DbaName": dba.nick_name if dba else "",
        **_owners(owners),
    }


def _instances_page(ctx: Context, items: Sequence[Instance], *, listed: bool) -> list[Payload]:
    owners = catalog.owners_of(ctx.session, "INSTANCE", [i.instance_id for i in items])
    dbas = identity.users_by_id(ctx.session, [i.dba_user_id for i in items if i.dba_user_id])
    return [
        _instance(i, dbas.get(i.dba_user_id or 0), owners[i.instance_id], listed=listed)
        for i in items
    ]


def _databases_page(ctx: Context, items: Sequence[Database]) -> list[Payload]:
    owners = catalog.owners_of(ctx.session, "DATABASE", [d.db_id for d in items])
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


# ------------------------------------------------------------------ instances


class _InstanceOptions(TenantScoped):
    """The optional instance fields every instance call shares."""

    database_user: Text | None = None
    database_password: Secret | None = None
    sid: Text | None = None
    data_link_name: Text | None = None
    ddl_online: Annotated[Int, Field(ge=0, le=2)] | None = None
    use_dsql: Annotated[Int, Field(ge=0, le=1)] | None = None
    ecs_instance_id: Text | None = None
    ecs_region: Text | None = None
    vpc_id: Text | None = None
    enable_sell_sitd: YesNo | None = None
    skip_test: Bool | None = None
    template_id: Long | None = None
    template_type: Text | None = None

    def _spec(self, **named: Any) -> InstanceSpec:
        return InstanceSpec(
            sid=self.sid,
            database_user=self.database_user,
            database_password=self.database_password,
            ddl_online=self.ddl_online,
            use_dsql=self.use_dsql,
            sell_sitd=None if self.enable_sell_sitd is None else self.enable_sell_sitd == "Y",
            data_link_name=self.data_link_name,
            ecs_instance_id=self.ecs_instance_id,
            ecs_region=self.ecs_region,
            vpc_id=self.vpc_id,
            **named,
        )


class _InstanceFields(_InstanceOptions):
    """What RegisterInstance and AddInstance require."""

    host: HostText
    port: PortNumber
    instance_type: Annotated[str, Field(min_length=1, max_length=32)]
    instance_alias: Text
    instance_source: InstanceSource
    network_type: NetworkType
    env_type: EnvType
    safe_rule: Text
    query_timeout: Seconds
    export_timeout: Seconds

    def spec(self, dba_user_id: int | None) -> InstanceSpec:
        return self._spec(
            alias=self.instance_alias,
            instance_type=self.instance_type,
            host=self.host,
            port=self.port,
            env_type=self.env_type,
            instance_source=self.instance_source,
            network_type=self.network_type,
            dba_user_id=dba_user_id,
            safe_rule=self.safe_rule,
            query_timeout=self.query_timeout,
            export_timeout=self.export_timeout,
        )


class RegisterInstanceRequest(_InstanceFields):
    dba_uid: Long | None = None
    dba_uid_by_string: Digits | None = None
    resource_group: Text | None = None

    @model_validator(mode="after")
    def _needs_a_dba(self) -> RegisterInstanceRequest:
        if self.dba_uid is None and self.dba_uid_by_string is None:
            raise missing_param("DbaUid")
        return self


def register_instance(ctx: Context, req: RegisterInstanceRequest) -> Payload:
    dba = req.dba_uid if req.dba_uid is not None else int(req.dba_uid_by_string or 0)
    catalog.register_instance(
        ctx.session, ctx.secrets, ctx.targets, ctx.caller.tid, req.spec(dba), actor=ctx.caller
    )
    return {}


class AddInstanceRequest(_InstanceFields):
    dba_id: Long
    enable_sell_common: YesNo | None = None
    enable_sell_stable: YesNo | None = None
    enable_sell_trust: YesNo | None = None
    role_arn: Text | None = None
    use_ssl: Annotated[Int, Field(ge=0, le=1)] | None = None


def add_instance(ctx: Context, req: AddInstanceRequest) -> Payload:
    catalog.register_instance(
        ctx.session,
        ctx.secrets,
        ctx.targets,
        ctx.caller.tid,
        req.spec(req.dba_id),
        actor=ctx.caller,
    )
    return {}


class InstanceAddressRequest(TenantScoped):
    host: HostText
    port: PortNumber
    sid: Text | None = None
    real_login_user_uid: Text | None = None


def get_instance(ctx: Context, req: InstanceAddressRequest) -> Payload:
    inst = catalog.find_instance(ctx.session, ctx.caller.tid, req.host, req.port, req.sid)
    return {"Instance": _instances_page(ctx, [inst], listed=False)[0]}


class ListInstancesRequest(TenantScoped):
    search_key: Text | None = None
    db_type: Text | None = None
    env_type: EnvType | None = None
    instance_source: InstanceSource | None = None
    instance_state: Literal["NORMAL", "DISABLE"] | None = None
    net_type: NetworkType | None = None
    region: Text | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 10
    real_login_user_uid: Text | None = None


def list_instances(ctx: Context, req: ListInstancesRequest) -> Payload:
    page = catalog.list_instances(
        ctx.session,
        ctx.caller.tid,
        search=req.search_key,
        db_type=req.db_type,
        env_type=req.env_type,
        source=req.instance_source,
        state=req.instance_state,
        net_type=req.net_type,
        page=req.page_number,
        size=req.page_size,
    )
    return {
        "TotalCount": page.total,
        "InstanceList": {"Instance": _instances_page(ctx, page.items, listed=True)},
    }


class UpdateInstanceRequest(_InstanceOptions):
    instance_id: Digits
    host: HostText | None = None
    port: PortNumber | None = None
    instance_type: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    instance_alias: Text | None = None
    instance_source: InstanceSource | None = None
    env_type: EnvType | None = None
    safe_rule_id: Text | None = None
    query_timeout: Seconds | None = None
    export_timeout: Seconds | None = None
    dba_id: Digits | None = None


def update_instance(ctx: Context, req: UpdateInstanceRequest) -> Payload:
    spec = req._spec(
        alias=req.instance_alias,
        instance_type=req.instance_type,
        host=req.host,
        port=req.port,
        env_type=req.env_type,
        instance_source=req.instance_source,
        dba_user_id=int(req.dba_id) if req.dba_id else None,
        safe_rule=req.safe_rule_id,
        query_timeout=req.query_timeout,
        export_timeout=req.export_timeout,
    )
    catalog.update_instance(
        ctx.session,
        ctx.secrets,
        ctx.targets,
        ctx.caller.tid,
        int(req.instance_id),
        spec,
        actor=ctx.caller,
    )
    return {}


class DeleteInstanceRequest(TenantScoped):
    host: HostText
    port: PortNumber
    sid: Text | None = None


def delete_instance(ctx: Context, req: DeleteInstanceRequest) -> Payload:
    catalog.delete_instance(ctx.session, ctx.caller.tid, req.host, req.port, req.sid)
    return {}


class SyncInstanceMetaRequest(TenantScoped):
    instance_id: Digits
    ignore_table: Bool | None = None


def sync_instance_meta(ctx: Context, req: SyncInstanceMetaRequest) -> Payload:
    catalog.sync_instance(
        ctx.session,
        ctx.secrets,
        ctx.targets,
        ctx.caller.tid,
        int(req.instance_id),
        with_tables=not req.ignore_table,
    )
    return {}


# ------------------------------------------------------------------ databases and tables


class ListDatabasesRequest(TenantScoped):
    instance_id: Digits
    search_key: Text | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 10


def list_databases(ctx: Context, req: ListDatabasesRequest) -> Payload:
    page = catalog.list_databases(
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
    real_login_user_uid: Text | None = None


def get_database(ctx: Context, req: GetDatabaseRequest) -> Payload:
    db = catalog.find_database(
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
    real_login_user_uid: Text | None = None


def search_database(ctx: Context, req: SearchDatabaseRequest) -> Payload:
    if req.search_target == "LOGIC_DB":  # no logical databases (yet): nothing matches
        return {"TotalCount": 0, "SearchDatabaseList": {"SearchDatabase": []}}
    page = catalog.search_databases(
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
    catalog.sync_database(ctx.session, ctx.secrets, ctx.targets, ctx.caller.tid, int(req.db_id))
    return {}


class ListTablesRequest(TenantScoped):
    database_id: Digits
    search_name: Text | None = None
    return_guid: Bool | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 10
    real_login_user_uid: Text | None = None


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
        **_owners(owners),
    }
    if guid:
        out["TableGuid"] = f"IDB_{db.db_id}.{db.schema_name}.{t.name}"
    return out


def list_tables(ctx: Context, req: ListTablesRequest) -> Payload:
    db = catalog.get_database(ctx.session, ctx.caller.tid, int(req.database_id))
    page = catalog.list_tables(
        ctx.session,
        ctx.caller.tid,
        db.db_id,
        search=req.search_name,
        page=req.page_number,
        size=req.page_size,
    )
    owners = catalog.owners_of(ctx.session, "TABLE", [t.table_id for t in page.items])
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
        "ColumnId": str(c.column_id),
        "ColumnName": c.name,
        "ColumnType": c.column_type,
        "DataLength": c.data_length,
        "DataPrecision": c.data_precision,
        "DataScale": c.data_scale,
        "Nullable": c.nullable,
        "AutoIncrement": c.auto_increment,
        "DefaultValue": c.default_value,
        "Description": c.description,
        "Sensitive": False,
        "SecurityLevel": "",
        "FunctionType": "",
    }
    return {k: v for k, v in out.items() if v is not None}


def list_columns(ctx: Context, req: TableRequest) -> Payload:
    columns = catalog.list_columns(ctx.session, ctx.caller.tid, int(req.table_id))
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
    indexes = catalog.list_indexes(ctx.session, ctx.caller.tid, int(req.table_id))
    return {"IndexList": {"Index": [_index(i) for i in indexes]}}


# ------------------------------------------------------------------ owners


class SetOwnersRequest(TenantScoped):
    resource_id: Digits
    owner_type: Literal["INSTANCE", "DATABASE", "LOGIC_DATABASE", "TABLE", "LOGIC_TABLE"]
    owner_ids: Annotated[CommaIds, Field(min_length=1)]


def set_owners(ctx: Context, req: SetOwnersRequest) -> Payload:
    if req.owner_type.startswith("LOGIC_"):
        catalog.no_logical_resources(req.owner_type)
    catalog.set_owners(
        ctx.session, ctx.caller.tid, req.owner_type, int(req.resource_id), req.owner_ids
    )
    return {}


ACTIONS = (
    Action(
        "RegisterInstance",
        RegisterInstanceRequest,
        register_instance,
        Access.CREATE,
        "Register a database server: connection checked, password encrypted, metadata read.",
    ),
    Action(
        "AddInstance",
        AddInstanceRequest,
        add_instance,
        Access.CREATE,
        "Register a database server (newer spelling of RegisterInstance).",
    ),
    Action(
        "GetInstance",
        InstanceAddressRequest,
        get_instance,
        Access.GET,
        "One instance, by Host and Port.",
    ),
    Action(
        "ListInstances",
        ListInstancesRequest,
        list_instances,
        Access.LIST,
        "Instances of the tenant, filtered and paged.",
    ),
    Action(
        "UpdateInstance",
        UpdateInstanceRequest,
        update_instance,
        Access.UPDATE,
        "Change an instance; new addresses or credentials are checked first.",
    ),
    Action(
        "DeleteInstance",
        DeleteInstanceRequest,
        delete_instance,
        Access.DELETE,
        "Forget an instance and its metadata.",
    ),
    Action(
        "SyncInstanceMeta",
        SyncInstanceMetaRequest,
        sync_instance_meta,
        Access.UPDATE,
        "Read an instance's databases and tables again.",
    ),
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
