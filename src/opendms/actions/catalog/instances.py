"""Instances: registering, reading, changing, deleting and syncing them (dms-api.md A.9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from opendms.actions.catalog.fields import (
    EnvType,
    HostText,
    PageNumber,
    PageSize,
    PortNumber,
    Text,
    owners_payload,
)
from opendms.catalog import instances, ownership, queries, sync
from opendms.catalog.instances import InstanceSpec
from opendms.errors import DmsError, ErrorCode
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import (
    Bool,
    Digits,
    Int,
    Long,
    TenantScoped,
    WireModel,
    missing_param,
)
from opendms.identity import service as identity
from opendms.store.models import Instance, User
from opendms.store.states import InstanceState

Secret = Annotated[str, Field(max_length=1024)]
Seconds = Annotated[Int, Field(ge=1, le=86400)]
InstanceSource = Literal["PUBLIC_OWN", "RDS", "ECS_OWN", "VPC_IDC"]
NetworkType = Literal["CLASSIC", "VPC"]
YesNo = Literal["Y", "N"]


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
        **owners_payload(owners),
    }


def _instances_page(ctx: Context, items: Sequence[Instance], *, listed: bool) -> list[Payload]:
    owners = ownership.owners_of(ctx.session, "INSTANCE", [i.instance_id for i in items])
    dbas = identity.users_by_id(ctx.session, [i.dba_user_id for i in items if i.dba_user_id])
    return [
        _instance(i, dbas.get(i.dba_user_id or 0), owners[i.instance_id], listed=listed)
        for i in items
    ]


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
    instances.register_instance(
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
    instances.register_instance(
        ctx.session,
        ctx.secrets,
        ctx.targets,
        ctx.caller.tid,
        req.spec(req.dba_id),
        actor=ctx.caller,
    )
    return {}


class SimplyAddInstanceRequest(WireModel):  # the SDK sends no Tid here: the key's tenant
    database_user: Annotated[str, Field(min_length=1, max_length=256)]
    database_password: Secret
    host: HostText | None = None
    port: Annotated[Int, Field(ge=1, le=65535)] | None = None
    instance_id: Text | None = None
    instance_region: Text | None = None

    @model_validator(mode="after")
    def _needs_an_address(self) -> SimplyAddInstanceRequest:
        if self.instance_id is None and (self.host is None or self.port is None):
            raise missing_param("Host" if self.host is None else "Port")
        return self


def simply_add_instance(ctx: Context, req: SimplyAddInstanceRequest) -> Payload:
    if req.host is None or req.port is None:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            "OpenDMS cannot look up an Alibaba Cloud InstanceId: give the instance's Host "
            "and Port instead.",
        )
    inst = instances.add_by_address(
        ctx.session,
        ctx.secrets,
        ctx.targets,
        ctx.caller.tid,
        (req.host, req.port),
        (req.database_user, req.database_password),
        actor=ctx.caller,
    )
    return {
        "Instance": {
            "InstanceId": str(inst.instance_id),
            "Host": inst.host,
            "Port": str(inst.port),  # a string in this response's model
        }
    }


class InstanceAddressRequest(TenantScoped):
    host: HostText
    port: PortNumber
    sid: Text | None = None


def get_instance(ctx: Context, req: InstanceAddressRequest) -> Payload:
    inst = queries.find_instance(ctx.session, ctx.caller.tid, req.host, req.port, req.sid)
    return {"Instance": _instances_page(ctx, [inst], listed=False)[0]}


class ListInstancesRequest(TenantScoped):
    search_key: Text | None = None
    db_type: Text | None = None
    env_type: EnvType | None = None
    instance_source: InstanceSource | None = None
    instance_state: InstanceState | None = None
    net_type: NetworkType | None = None
    region: Text | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 10


def list_instances(ctx: Context, req: ListInstancesRequest) -> Payload:
    page = queries.list_instances(
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
    instances.update_instance(
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
    instances.delete_instance(ctx.session, ctx.caller.tid, req.host, req.port, req.sid)
    return {}


class SyncInstanceMetaRequest(TenantScoped):
    instance_id: Digits
    ignore_table: Bool | None = None


def sync_instance_meta(ctx: Context, req: SyncInstanceMetaRequest) -> Payload:
    sync.sync_instance(
        ctx.session,
        ctx.secrets,
        ctx.targets,
        ctx.caller.tid,
        int(req.instance_id),
        with_tables=not req.ignore_table,
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
        "SimplyAddInstance",
        SimplyAddInstanceRequest,
        simply_add_instance,
        Access.CREATE,
        "Register the MySQL, MariaDB or PostgreSQL server at Host:Port (engine detected; "
        "a dev instance, the caller its DBA), or return the one already there.",
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
)
