"""Every action in the table against the official SDK (alibabacloud_dms_enterprise20181101).

* Requests: the wire names we declare are exactly those the SDK's client sends, with types
  that agree; a request model built by the SDK with every field set, serialised by the SDK's
  own client code, parses in our request model to the same values.
* Responses: realistic calls through the in-process app, made by the SDK client itself (only
  its socket is replaced), return JSON that the SDK's response model keeps unchanged, with the
  value types its model declares.

Parametrised over ``opendms.actions.ALL``: an action added later is checked automatically, and
fails loudly until it has a realistic scenario in ``SCENARIOS``.
"""

from __future__ import annotations

import enum
import json
import sys
import typing
import uuid
from collections.abc import Callable, Iterator
from copy import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as sdk_models
from alibabacloud_dms_enterprise20181101.client import Client as SdkClient
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.model import DaraModel
from darabonba.runtime import RuntimeOptions
from pydantic import create_model
from pydantic.fields import FieldInfo
from sqlalchemy import select

from opendms.actions import ALL
from opendms.approvals import acts, flow
from opendms.catalog import permissions
from opendms.execution import cleanup
from opendms.execution import service as execution
from opendms.exports import service as exports
from opendms.files import service as files
from opendms.gateway.errors import GatewayError
from opendms.gateway.pipeline import ActingFor
from opendms.gateway.table import Action
from opendms.gateway.wire import WIRE_TIME, WireModel
from opendms.identity import service
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.jobs.runner import Work
from opendms.rulebook import rule_sets, templates
from opendms.store.models import Instance, SqlJob, User, WorkflowInstance, utcnow
from opendms.tickets import service as tickets
from tests import sdk_spec
from tests.conftest import LOOPBACK, Api, route_new_sdk_to
from tests.local_servers import closed_port
from tests.wire_fields import field_choices

# The DMS actions; OpenDMS's own extensions (no SDK sends them) are tested on their own.
DMS_ACTIONS = [a for a in ALL if not a.extension]
ACTIONS = pytest.mark.parametrize("action", DMS_ACTIONS, ids=[a.name for a in DMS_ACTIONS])
TRICKY = "héllo wörld 中文 *~'()!+/"


def _fields(model: type[WireModel]) -> dict[str, tuple[str, FieldInfo]]:
    """Wire name -> (attribute, field) of one of our wire models."""
    return {(fi.alias or name): (name, fi) for name, fi in model.model_fields.items()}


def _ours(action: Action) -> dict[str, tuple[str, FieldInfo]]:
    """Wire name -> (attribute, field) of our request model."""
    return _fields(action.request)


# What the gateway reads for every action, before the action's own model (RealLoginUserUid).
GATEWAY_READS = _fields(ActingFor)


def _model_for(action: Action, wire: str) -> type[WireModel]:
    """The model of ours that reads ``wire`` for ``action``."""
    return ActingFor if wire in GATEWAY_READS else action.request


# ====================================================================== request fields


@ACTIONS
def test_request_fields_are_the_sdks(action: Action) -> None:
    ours = set(_ours(action))
    sdk = set(sdk_spec.request_fields(action.name)) - set(GATEWAY_READS)
    assert not ours - sdk, f"{action.name}: we declare parameters the SDK never sends"
    assert not sdk - ours, f"{action.name}: the SDK sends parameters we silently drop"
    assert not ours & set(GATEWAY_READS), f"{action.name}: reads what the gateway reads"


def _probe(action: Action, attr: str, fi: FieldInfo) -> type[WireModel]:
    """Our model reduced to one field: its type and rules, without cross-field validators."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{action.request.__name__}_{attr}", __base__=WireModel, **{attr: (fi.annotation, copy(fi))}
    )


def _parse_one(probe: type[WireModel], attr: str, wire: str, text: str) -> Any:
    """Our parsed value for ``text``, or the ``GatewayError`` code it was refused with."""
    try:
        return getattr(probe.from_params({wire: text}), attr)
    except GatewayError as exc:
        assert exc.code == f"Invalid{wire}", (wire, text, exc.code, exc.message)
        return exc


def _sample_for(annotation: str) -> Any:
    """A plausible SDK-side value for a request annotation (used for JSON-string params)."""
    if annotation.startswith("List[") or annotation.startswith("list["):
        inner = annotation[5:-1]
        return [_sample_for(inner)]
    if "Dict" in annotation or "dict" in annotation or "main_models." in annotation:
        return {}
    return {"int": 1, "bool": True, "float": 1.5}.get(annotation, "x")


def _sdk_arg(field: sdk_spec.SdkField, value: Any) -> Any:
    """``value`` as the SDK request model wants it: nested models are model objects."""
    if value is None:
        return None
    if field.annotation == "int":
        return int(value)
    name = field.annotation.split("main_models.")[-1]
    if "main_models." in field.annotation and "List[" not in field.annotation:
        return getattr(sdk_models, name)().from_map(value)
    return value


def _check_field_type(action: Action, wire: str, sdk_field: sdk_spec.SdkField) -> None:
    attr, fi = _fields(_model_for(action, wire))[wire]
    probe = _probe(action, attr, fi)

    def parse(text: str) -> Any:
        return _parse_one(probe, attr, wire, text)

    where = f"{action.name}.{wire} (SDK {sdk_field.annotation}, style {sdk_field.style})"
    if sdk_field.style == "json":
        value = parse(json.dumps(_sample_for(sdk_field.annotation)))
        assert not isinstance(value, str | GatewayError), f"{where}: not parsed as JSON"
    elif sdk_field.style is not None or sdk_field.annotation not in ("int", "str", "bool"):
        pytest.fail(f"{where}: no wire rule for this kind of SDK parameter yet")
    elif sdk_field.annotation == "int":
        assert parse("1") == 1, f"{where}: the SDK sends integers"
        assert isinstance(parse("not a number"), GatewayError), where
        assert isinstance(parse("True"), GatewayError), where
    elif sdk_field.annotation == "bool":
        # the new Python SDK sends str(True) == "True"; other SDKs send "true"
        parsed = [parse(t) for t in ("True", "true", "False", "false")]
        assert parsed == [True, True, False, False], where
    else:
        taken = [
            v
            for v in (parse(t) for t in [*field_choices(fi), "x", "1", REALISTIC.get(wire, "x")])
            if not isinstance(v, GatewayError)
        ]
        assert taken, f"{where}: the SDK sends strings, we accept none"


@ACTIONS
def test_request_field_types_agree_with_the_sdk(action: Action) -> None:
    for wire, sdk_field in sdk_spec.request_fields(action.name).items():
        _check_field_type(action, wire, sdk_field)


# ---------------------------------------------------------------------- SDK serialisation


# Values our rules accept for parameters whose shape is constrained beyond the SDK's type.
REALISTIC: dict[str, Any] = {
    "Uid": "1234567890123456",
    "UidString": "1234567890123457",
    "UserId": "2",
    "Role": "DBA",
    "UserState": "NORMAL",
    "RoleNames": "DBA,USER",
    "Mobile": "+86 138-0000-0000",
    "PageNumber": 2,
    "PageSize": 20,
    "Tid": 1,
    "MaxExecuteCount": 2**40,
    "MaxResultCount": 0,
    "InstanceSource": "RDS",
    "NetworkType": "VPC",
    "NetType": "CLASSIC",
    "EnvType": "product",
    "InstanceType": "mysql",
    "DbType": "mysql",
    "InstanceState": "NORMAL",
    "Port": 3306,
    "CompareType": "ALTER_TABLE",
    "QueryTimeout": 60,
    "ExportTimeout": 600,
    "DdlOnline": 2,
    "UseDsql": 1,
    "UseSsl": 0,
    "EnableSellSitd": "Y",
    "EnableSellCommon": "N",
    "EnableSellStable": "N",
    "EnableSellTrust": "Y",
    "DbaId": "7",
    "DbaUidByString": "7",
    "InstanceId": "12",
    "DatabaseId": "3",
    "DbId": "3",
    "TableId": "9",
    "ResourceId": "5",
    "OwnerType": "DATABASE",
    "OwnerIds": "1,2",
    "SearchTarget": "DB",
    "SearchRange": "HAS_PERMSSION",
    "DsType": "DATABASE",
    "PermTypes": "QUERY,EXPORT",
    "PermType": "TABLE",
    "ExpireDate": "2099-12-31 23:59:59",
    "UserAccessId": "4",
    "PluginType": "DC_COMMON",
    # CreateOrder sends a comma list, the dedicated calls a JSON array: one value per SDK type.
    "RelatedUserList": {"str": "1,2", "List[int]": [1, 2]},
    "OrderResultType": "AS_COMMITTER",
    "OrderStatus": "ALL",
    "SearchDateType": "CREATE_TIME",
    "StartTime": "2026-01-01 00:00:00",
    "EndTime": "2026-12-31 23:59:59",
    "OrderId": 7,
    "FileSource": "datacorrect",
    "UploadURL": "https://example.com/fix.sql",
    "FileName": "fix.sql",
    "ApprovalType": "AGREE",
    "ApprovalNodePos": "POST_ADD_APPROVAL_NODE",
    "NewApproverList": "1,2",
    "ExecState": "SUCCESS",
    "Type": "ALL",
    "ActionDetail": {"startTime": "2099-01-01 00:00:00", "transaction": True, "backupData": False},
}


def _sdk_value(f: sdk_spec.SdkField, *, realistic: bool) -> Any:
    value: Any = REALISTIC.get(f.wire) if realistic else None
    if isinstance(value, dict) and f.annotation in value:
        value = value[f.annotation]
    if value is None:
        value = (
            _sample_for(f.annotation)
            if f.style
            else {"int": 42, "bool": True}.get(f.annotation, TRICKY)
        )
    if f.annotation == "int":
        return int(value)
    return value


def _sdk_wire(action: Action, values: dict[str, Any]) -> dict[str, str]:
    """The parameters the SDK's own ``<action>_with_options`` puts on the wire for
    ``values`` (wire name -> value), captured where it hands them to the transport."""
    fields = sdk_spec.request_fields(action.name)
    request = getattr(sdk_models, f"{action.name}Request")(
        **{fields[w].attr: _sdk_arg(fields[w], v) for w, v in values.items()}
    )
    captured: list[Any] = []

    def call_api(params: Any, req: Any, runtime: Any) -> dict[str, Any]:
        captured.append((params, req))
        return {"body": {}, "headers": {}, "statusCode": 200}

    client = SdkClient.__new__(SdkClient)
    client.call_api = call_api  # type: ignore[method-assign]
    getattr(client, sdk_spec.method_name(action.name))(request, RuntimeOptions())
    ((params, req),) = captured
    assert params.action == action.name
    assert params.version == "2018-11-01"
    wire = {**(req.query or {}), **Utils.query(req.body or {})}
    assert all(isinstance(v, str) for v in wire.values()), wire
    return wire


def _same(sdk_value: Any, ours: Any) -> bool:
    if isinstance(ours, enum.Enum):
        ours = ours.value
    if isinstance(ours, WireModel):
        ours = ours.model_dump(by_alias=True, exclude_none=True)
    if isinstance(sdk_value, DaraModel):
        sdk_value = sdk_value.to_map()
    if isinstance(ours, list) and isinstance(sdk_value, str):  # "1,2" parsed to ids
        sdk_value = [int(p) for p in sdk_value.split(",") if p.strip()]
    return bool(ours == sdk_value)


@ACTIONS
def test_sdk_serialisation_reaches_our_parser_intact(action: Action) -> None:
    fields = sdk_spec.request_fields(action.name)
    values = {w: _sdk_value(f, realistic=True) for w, f in fields.items()}
    wire = _sdk_wire(action, values)
    assert set(wire) == set(values)
    parsed = {model: model.from_params(wire) for model in (action.request, ActingFor)}
    for w, value in values.items():
        model = _model_for(action, w)
        got = getattr(parsed[model], _fields(model)[w][0])
        sent = _sdk_arg(fields[w], value)  # a nested model goes out as the SDK serialises it
        assert _same(sent, got), f"{action.name}.{w}: SDK set {value!r}, we parsed {got!r}"


@ACTIONS
def test_sdk_serialisation_of_arbitrary_values_parses_or_is_refused_by_name(
    action: Action,
) -> None:
    fields = sdk_spec.request_fields(action.name)
    values = {w: _sdk_value(f, realistic=False) for w, f in fields.items()}
    wire = _sdk_wire(action, values)
    for model in (action.request, ActingFor):
        try:
            model.from_params(wire)
        except GatewayError as exc:
            assert exc.status == 400
            assert exc.code in {f"Invalid{w}" for w in fields}, (exc.code, exc.message)
    # one field at a time, the others absent: each either parses or names itself
    for w, f in fields.items():
        one = _sdk_wire(action, {w: _sdk_value(f, realistic=False)})
        try:
            _model_for(action, w).from_params(one)
        except GatewayError as exc:
            assert exc.code in {f"Invalid{w}"} | {f"Missing{x}" for x in fields}, exc.code


# ====================================================================== responses


@cache
def _hints(model: type) -> dict[str, Any]:
    module = vars(sys.modules[model.__module__])
    return {k: v for k, v in typing.get_type_hints(model.__init__, module).items() if k != "return"}


def _probe_value(hint: Any) -> Any:
    if isinstance(hint, type) and issubclass(hint, DaraModel):
        return hint()
    if typing.get_origin(hint) is list:
        (inner,) = typing.get_args(hint)
        return [_probe_value(inner)]
    return "x"


@cache
def _wire_names(model: type) -> dict[str, Any]:
    """Wire name -> type hint, for each attribute of an SDK response model."""
    out: dict[str, Any] = {}
    empty = model().to_map()  # lists come out as [] even when unset
    for attr, hint in _hints(model).items():
        probed = model(**{attr: _probe_value(hint)}).to_map()
        (wire,) = (k for k, v in probed.items() if k not in empty or empty[k] != v)
        out[wire] = hint
    return out


def conform(hint: Any, value: Any, path: str = "$") -> None:
    """Assert ``value`` (parsed JSON) has the type the SDK's model declares for it."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return
    if origin is list:
        assert isinstance(value, list), f"{path}: {value!r} is not a list"
        (inner,) = typing.get_args(hint)
        for i, item in enumerate(value):
            conform(inner, item, f"{path}[{i}]")
    elif origin is dict or hint is dict:
        assert isinstance(value, dict), f"{path}: {value!r} is not an object"
    elif isinstance(hint, type) and issubclass(hint, DaraModel):
        assert isinstance(value, dict), f"{path}: {value!r} is not an object"
        known = _wire_names(hint)
        for key, item in value.items():
            assert key in known, f"{path}.{key}: the SDK model {hint.__name__} has no such field"
            conform(known[key], item, f"{path}.{key}")
    elif hint is bool:
        assert isinstance(value, bool), f"{path}: {value!r} is not a boolean"
    elif hint is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r} not int"
    elif hint is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), path
    elif hint is str:
        assert isinstance(value, str), f"{path}: {value!r} is not a string"
    else:  # pragma: no cover - a shape this checker does not know yet
        assert not isinstance(hint, UnionType), hint
        pytest.fail(f"{path}: unknown SDK type {hint!r}")


def assert_sdk_keeps(action: str, body: dict[str, Any]) -> None:
    assert sdk_spec.roundtrip(action, body) == body, f"{action}: the SDK drops or reshapes"
    conform(sdk_spec.response_model(action), body)


# ---------------------------------------------------------------------- scenarios


@dataclass
class World:
    """An app with a few users in every interesting state."""

    api: Api
    rich_uid: str  # every column set, registered by the admin (has a ParentUid)
    rich_user_id: int
    spare: list[str] = field(default_factory=list)  # plain USERs to delete/disable/enable
    target: str = ""  # a registered SQLite target file
    spare_target: str = ""  # an unregistered one, to register
    instance_id: int = 0
    db_id: int = 0
    table_id: int = 0
    grant_id: int = 0  # the UserAccessId of a QUERY grant on the database
    attachment_key: str = ""
    order_id: int = 0  # a DC_COMMON ticket filed by the admin
    approvals: dict[str, int] = field(default_factory=dict)  # see _approval_setup
    job_key: str = ""  # an upload job of the admin's (it failed: nothing listens there)

    @property
    def tid(self) -> int:
        return self.api.tid


@dataclass(frozen=True)
class Call:
    params: dict[str, Any]
    success: bool = True
    error_code: str | None = None


Scenario = Callable[[World], list[Call]]


def _register_update(w: World) -> list[Call]:
    return [
        Call(
            {
                "Uid": int(w.rich_uid),
                "UserNick": TRICKY,
                "Mobile": "13900000000",
                "RoleNames": "DBA",
                "MaxExecuteCount": 10,
                "MaxResultCount": 1000,
            }
        ),
        Call({"UidString": w.rich_uid, "Tid": w.tid, "UserNick": "again"}),
        Call({"UidString": "1"}, False, "UserNotFound"),
    ]


def _instance_fields(w: World, **over: Any) -> dict[str, Any]:
    return {
        "Host": w.spare_target,
        "Port": 0,
        "InstanceType": "sqlite",
        "InstanceAlias": TRICKY,
        "InstanceSource": "PUBLIC_OWN",
        "NetworkType": "VPC",
        "EnvType": "dev",
        "SafeRule": "default",
        "QueryTimeout": 60,
        "ExportTimeout": 600,
        "DdlOnline": 0,
        "UseDsql": 0,
        "EnableSellSitd": "Y",
        "Tid": w.tid,
        **over,
    }


def _register(dba_field: str) -> Scenario:
    def calls(w: World) -> list[Call]:
        return [
            Call(_instance_fields(w, **{dba_field: w.rich_user_id})),
            Call(
                _instance_fields(w, **{dba_field: w.rich_user_id}), False, "InstanceAlreadyExists"
            ),
            Call(
                _instance_fields(w, InstanceType="oracle", **{dba_field: 1}),
                False,
                "UnsupportedDbType",
            ),
            Call(
                _instance_fields(
                    w,
                    InstanceType="mysql",
                    Host="10.1.2.3",
                    Port=3306,
                    DatabaseUser="u",
                    DatabasePassword="p",
                    **{dba_field: 1},
                ),
                False,
                "TargetHostNotAllowed",
            ),
            Call(
                _instance_fields(w, Host="/etc/hosts", **{dba_field: 1}),
                False,
                "TargetHostNotAllowed",
            ),
        ]

    return calls


def _simply_add(w: World) -> list[Call]:
    """An address already registered answers its instance (no connection); the others fail
    before anything registers (the integration tests register real servers)."""
    port = closed_port()
    with w.api.store.session() as s:
        s.add(
            Instance(tid=w.tid, alias="known", instance_type="mysql", host="127.0.0.1", port=port)
        )
    login = {"DatabaseUser": "u", "DatabasePassword": "p"}
    return [
        Call({"Host": "127.0.0.1", "Port": port, "InstanceRegion": "cn-hangzhou", **login}),
        Call({"Host": "127.0.0.1", "Port": closed_port(), **login}, False, "TargetConnectFailed"),
        Call({"Host": "10.1.2.3", "Port": 3306, **login}, False, "TargetHostNotAllowed"),
        Call({"InstanceId": "rm-bp1abc", **login}, False, "InvalidParameter"),
    ]


def _grant(w: World, **over: Any) -> dict[str, Any]:
    params = {
        "UserId": str(w.rich_user_id),
        "DsType": "DATABASE",
        "DbId": str(w.db_id),
        "PermTypes": "QUERY,EXPORT",
        "ExpireDate": "2099-01-01 00:00:00",
        "Tid": w.tid,
        **over,
    }
    return {k: v for k, v in params.items() if v is not None}


def _dc(w: World, **over: Any) -> dict[str, Any]:
    param = {
        "DbItemList": [{"DbId": w.db_id, "Logic": False}],
        "EstimateAffectRows": 2,
        "SqlType": "TEXT",
        "ExecSQL": "UPDATE orders SET status = 'paid' WHERE id IN (1, 2)",
        "RollbackSqlType": "TEXT",
        "RollbackSQL": "UPDATE orders SET status = 'new' WHERE id IN (1, 2)",
        "ExecMode": "COMMITOR",
        "Classify": "fix",
        **over,
    }
    return {
        "Comment": TRICKY,
        "Param": param,
        "RelatedUserList": [w.rich_user_id],
        "AttachmentKey": w.attachment_key,
        "Tid": w.tid,
    }


def _cron(w: World, **over: Any) -> dict[str, Any]:
    param = {
        "DbItemList": [{"DbId": w.db_id, "Logic": False}],
        "CronClearItemList": [
            {
                "TableName": "orders",
                "ColumnName": "created_at",
                "RemainDays": 30,
                "FilterSQL": "status = 'cancelled'",
            }
        ],
        "CronFormat": "0 0 2 ? * 1-5",
        "specifyDuration": True,
        "DurationHour": 2,
        **over,
    }
    return {"Comment": "purge", "Param": param}


def _export(w: World, **over: Any) -> dict[str, Any]:
    param = {
        "DbId": w.db_id,
        "InstanceId": w.instance_id,
        "Logic": False,
        "ExeSQL": "SELECT * FROM orders",
        "Classify": "report",
        "AffectRows": 5000,
        "IgnoreAffectRows": False,
        **over,
    }
    return {"Comment": "export", "PluginParam": param, "RelatedUserList": [w.rich_user_id]}


def _approval_setup(w: World) -> dict[str, int]:
    """A committer who may change the world's database, and a rule set on the world's
    instance that sends every ticket to one USER_LIST node whose approver is the admin (who
    sends the scenarios' calls)."""
    if not w.approvals:
        with w.api.store.session() as s:
            committer = service.register_user(s, None, w.tid, "7777777777", nick_name="committer")
            permissions.grant(
                s,
                w.tid,
                committer.user_id,
                permissions.GrantTarget("DATABASE", w.instance_id, w.db_id),
                "CORRECT",
                datetime(2099, 1, 1),
            )
            admin = service.find_user(s, w.tid, uid=w.api.admin_uid).user_id
            node = templates.create_node(s, w.tid, "Compat approvers", [admin])
            templates.create_template(s, w.tid, "Compat", ["Compat approvers"])
            rule_sets.load(
                s,
                w.tid,
                "compat",
                "templates: {LOW: Compat, MIDDLE: Compat, HIGH: Compat, HIGHEST: Compat}\n"
                "rules:\n  - name: exports need no approval\n"
                "    when: {ticket_types: [DATA_EXPORT]}\n    risk: NONE\n",
            )
            rule_sets.assign(s, w.tid, w.instance_id, "compat")
            w.approvals.update(committer=committer.user_id, node=node.node_id)
    return w.approvals


def _new_order(w: World, *, by_admin: bool = False, **param: Any) -> int:
    """A DC_COMMON ticket, prechecked."""
    setup = _approval_setup(w)
    with w.api.store.session() as s:
        committer = service.caller_for(
            s, w.tid, None if by_admin else s.get(User, setup["committer"]).uid
        )
        order_id = tickets.create_order(
            s, committer, "DC_COMMON", _dc(w, **param)["Param"], comment="approve me"
        ).order_id
    w.api.run_jobs()
    return order_id


def _cleanup_run(w: World) -> int:
    """An approved cleanup ticket of the committer's, whose schedule fired one run (run
    here); its OrderId."""
    setup = _approval_setup(w)
    with w.api.store.session() as s:
        committer = service.caller_for(s, w.tid, s.get(User, setup["committer"]).uid)
        order_id = tickets.create_order(
            s, committer, "DC_CRON_CLEAR", _cron(w)["Param"], comment="purge"
        ).order_id
    w.api.run_jobs()  # its precheck
    with w.api.store.session() as s:
        wf = flow.submit(s, committer, order_id).workflow_instance_id
        acts.act(s, service.caller_for(s, w.tid, None), wf, acts.Act("AGREE"))
        armed = cleanup.schedule_job(s, order_id)
        assert armed is not None
        job_id = armed.job_id
    later = utcnow() + timedelta(days=8)  # a week-day fire time has passed by then
    cleanup.Schedule(lambda: later)(Work(job_id, order_id, "cron", 1, w.api.store), {})
    w.api.run_jobs()
    with w.api.store.session() as s:
        views, total = cleanup.history(s, service.caller_for(s, w.tid, None), order_id, 1, 9)
        assert total == 1 and views[0].status == "SUCCESS", views
    return order_id


def _approval(w: World, **param: Any) -> int:
    """A ticket submitted by the committer, waiting on the admin: its WorkflowInstanceId."""
    order_id = _new_order(w, **param)
    with w.api.store.session() as s:
        committer = service.caller_for(s, w.tid, s.get(User, _approval_setup(w)["committer"]).uid)
        return flow.submit(s, committer, order_id).workflow_instance_id


def _approved(w: World) -> int:
    """A ticket the admin approved last (ExecMode LAST_AUDITOR: the admin starts it)."""
    wf = _approval(w, ExecMode="LAST_AUDITOR")
    with w.api.store.session() as s:
        admin = service.caller_for(s, w.tid, None)
        acts.act(s, admin, wf, acts.Act("AGREE"))
        return s.get(WorkflowInstance, wf).order_id


def _exportable(w: World, *, start: str | None = None, run: bool = False) -> tuple[int, int]:
    """An approved export ticket of the admin's (exports need no approval in the world's
    rule set): its OrderId, and with ``start`` or ``run`` the JobId of its export, queued
    for then or run to its end."""
    _approval_setup(w)
    with w.api.store.session() as s:
        admin = service.caller_for(s, w.tid, None)
        order_id = tickets.create_order(
            s, admin, "DATA_EXPORT", _export(w)["PluginParam"], comment="export"
        ).order_id
    w.api.run_jobs()  # its precheck
    with w.api.store.session() as s:
        admin = service.caller_for(s, w.tid, None)
        flow.submit(s, admin, order_id)
        if start is None and not run:
            return order_id, 0
        plan = exports.checked_plan(start=start)
        job_id = exports.execute(s, admin, order_id, plan).job_id
    if run:
        w.api.run_jobs()
    return order_id, job_id


def _export_scenarios() -> dict[str, Scenario]:
    missing = Call({"OrderId": 999999}, False, "OrderNotFound")
    later = "2099-01-01 00:00:00"

    def job(order_id: int, job_id: int) -> dict[str, Any]:
        return {"OrderId": order_id, "JobId": job_id}

    def stopping(w: World) -> list[Call]:
        order_id, job_id = _exportable(w, start=later)
        return [
            Call(job(order_id, job_id)),
            Call(job(order_id, job_id), False, "InvalidOrderStatus"),
            Call(job(order_id, 999999), False, "InvalidParameter"),
        ]

    return {
        "ExecuteDataExport": lambda w: [
            Call(
                {
                    "OrderId": (ready := _exportable(w)[0]),
                    "ActionDetail": {"mode": "FAST", "encoding": "UTF8", "fileType": "CSV"},
                }
            ),
            Call({"OrderId": ready}, False, "InvalidOrderStatus"),
            Call(
                {"OrderId": _exportable(w)[0], "ActionDetail": {"fileType": "PDF"}},
                False,
                "InvalidParameter",
            ),
            Call({"OrderId": _new_order(w)}, False, "UnsupportedPluginType"),
            missing,
        ],
        "GetDataExportOrderDetail": lambda w: [
            Call({"OrderId": _exportable(w, run=True)[0], "Tid": w.tid}),
            Call({"OrderId": _exportable(w)[0]}),
            missing,
        ],
        "GetDataExportPreCheckDetail": lambda w: [
            Call({"OrderId": _exportable(w)[0]}),
            missing,
        ],
        "GetDataExportDownloadURL": lambda w: [
            Call({"OrderId": _exportable(w, run=True)[0], "RealLoginUserUid": w.api.admin_uid}),
            Call({"OrderId": _exportable(w)[0]}),  # nothing yet: HasResult false
            missing,
        ],
        "PauseDataExportJob": stopping,
        "SuspendDataExportJob": stopping,
        "RestartDataExportJob": lambda w: [
            Call(job(*(stopped := _stopped(w)))),
            Call(job(*stopped), False, "InvalidOrderStatus"),
            Call(job(stopped[0], 999999), False, "InvalidParameter"),
        ],
        "RemoveDataExportJob": lambda w: [
            Call(job(*_exportable(w, run=True))),
            Call(job(*_exportable(w, start=later)), False, "InvalidOrderStatus"),
            Call(job(999999, 1), False, "OrderNotFound"),
        ],
    }


def _imported(w: World) -> int:
    """A prechecked import ticket of the admin's: a SQL file of two statements."""
    script = (
        b"INSERT INTO orders (id, customer_id, status, amount_cents, created_at) "
        b"VALUES (9001, 1, 'x', 1, 't');\nUPDATE orders SET status = 'y' WHERE id = 9001;\n"
    )
    with w.api.store.session() as s:
        admin = service.caller_for(s, w.tid, None)
        limits = files.UploadLimits(max_bytes=1 << 20, timeout_seconds=5)
        key = files.save_attachment(
            s, w.api.app.means.files, admin, "load.sql", "big-file", [script], limits
        ).attachment_key
        param = {"DbItemList": [{"DbId": w.db_id}], "AttachmentName": key, "FileType": "SQL"}
        order_id = tickets.create_order(s, admin, "DC_BIG_FILE", param, comment="load").order_id
    w.api.run_jobs()
    return order_id


def _sync_target(w: World) -> int:
    """A second SQLite target, a copy of the world's without its ``orders`` table, registered
    under a rule set that lets structure syncs through without approval: its DbId."""
    import sqlite3

    from opendms.catalog import instances, queries
    from opendms.targets.base import TargetPolicy

    path = Path(w.spare_target).parent.parent / f"sync-{uuid.uuid4().hex[:8]}" / "target.db"
    path.parent.mkdir()
    path.write_bytes(Path(w.target).read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE orders")
    with w.api.store.session() as s:
        rule_sets.load(
            s,
            w.tid,
            "sync",  # (loading it again makes a new version of the same rules)
            "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
            "rules:\n  - name: syncs need no approval\n"
            "    when: {ticket_types: [TABLE_SYNC]}\n    risk: NONE\n",
        )
        spec = instances.InstanceSpec(
            instance_type="sqlite", host=str(path), alias="sync target", safe_rule="sync"
        )
        policy = TargetPolicy("", w.api.sqlite_targets)
        inst = instances.register_instance(s, w.api.box, policy, w.tid, spec, actor=None)
        (db,) = queries.list_databases(s, w.tid, inst.instance_id, page=1, size=10).items
        return db.db_id


def _sync(w: World, *, approved: bool = False, executed: bool = False) -> int:
    """A structure sync of the admin's from the world's database to a copy lacking a table,
    compared (its precheck run); approved (no approval needed), or executed to its end."""
    target = _sync_target(w)
    param = {"Source": {"DbId": w.db_id}, "Target": {"DbId": target}}
    with w.api.store.session() as s:
        admin = service.caller_for(s, w.tid, None)
        order_id = tickets.create_order(s, admin, "TABLE_SYNC", param, comment="sync").order_id
    w.api.run_jobs()
    if approved or executed:
        with w.api.store.session() as s:
            flow.submit(s, service.caller_for(s, w.tid, None), order_id)
    if executed:
        with w.api.store.session() as s:
            admin = service.caller_for(s, w.tid, None)
            execution.execute(s, admin, order_id, execution.ExecutionPlan())
        w.api.run_jobs()
    return order_id


def _sync_detail(w: World) -> int:
    """The JobDetailId of a DDL statement an executed structure sync ran."""
    order_id = _sync(w, executed=True)
    with w.api.store.session() as s:
        from opendms.store.models import SqlJobDetail

        return (
            s.scalars(
                select(SqlJobDetail.detail_id)
                .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
                .where(SqlJob.order_id == order_id)
            ).first()
            or 0
        )


def _struct_sync_scenarios() -> dict[str, Scenario]:
    missing = Call({"OrderId": 999999}, False, "OrderNotFound")
    return {
        "CreateStructSyncOrder": lambda w: [
            Call(
                {
                    "Comment": TRICKY,
                    "Param": {
                        "Source": {"DbId": w.db_id, "DbSearchName": "demo", "Logic": False},
                        "Target": {"DbId": _sync_target(w)},
                        "TableInfoList": [{"SourceTableName": "orders"}],
                        "IgnoreError": False,
                    },
                    "Tid": w.tid,
                }
            ),
            Call(
                {
                    "Comment": "same",
                    "Param": {"Source": {"DbId": w.db_id}, "Target": {"DbId": w.db_id}},
                },
                False,
                "InvalidParameter",
            ),
        ],
        "GetStructSyncJobAnalyzeResult": lambda w: [
            Call({"OrderId": (order := _sync(w)), "PageNumber": 1, "PageSize": 10}),
            Call({"OrderId": order, "CompareType": "CREATE_TABLE"}),
            missing,
        ],
        "GetStructSyncExecSqlDetail": lambda w: [
            Call({"OrderId": _sync(w), "PageNumber": 1, "PageSize": 10}),
            Call({"OrderId": w.order_id}, False, "InvalidParameter"),
            missing,
        ],
        "SubmitStructSyncOrderApproval": lambda w: [
            Call({"OrderId": (order := _sync(w))}),
            Call({"OrderId": order}, False, "InvalidOrderStatus"),
            missing,
        ],
        "ExecuteStructSync": lambda w: [
            Call({"OrderId": _sync(w, approved=True)}),
            Call({"OrderId": _sync(w)}, False, "InvalidOrderStatus"),
            missing,
        ],
        "GetStructSyncOrderDetail": lambda w: [Call({"OrderId": _sync(w)}), missing],
        "GetStructSyncJobDetail": lambda w: [
            Call({"OrderId": _sync(w)}),
            Call({"OrderId": _sync(w, executed=True), "Tid": w.tid}),
            missing,
        ],
        "GetOnlineDDLProgress": lambda w: [
            Call({"JobDetailId": _sync_detail(w)}),
            Call({"JobDetailId": 999999}, False, "InvalidParameter"),
        ],
    }


def _import_scenarios() -> dict[str, Scenario]:
    missing = Call({"OrderId": 999999}, False, "OrderNotFound")
    return {
        "ListDataImportSQLType": lambda w: [
            Call({"OrderId": _imported(w), "Tid": w.tid}),
            Call({"OrderId": _new_order(w)}, False, "UnsupportedPluginType"),
            missing,
        ],
        "ListDataImportSQLPreCheckDetail": lambda w: [
            Call({"OrderId": (found := _imported(w)), "PageNumer": 1, "PageSize": 10}),
            Call({"OrderId": found, "SqlType": "UPDATE", "StatusCode": "SUCCESS"}),
            missing,
        ],
    }


def _stopped(w: World) -> tuple[int, int]:
    order_id, job_id = _exportable(w, start="2099-01-01 00:00:00")
    with w.api.store.session() as s:
        exports.stop(s, service.caller_for(s, w.tid, None), order_id, job_id)
    return order_id, job_id


@dataclass(frozen=True)
class Executed:
    order_id: int
    group_id: int
    sql_job_id: int


def _started(w: World, *, paused: bool = False) -> Executed:
    """A ticket started to run in a far future (its SQL job waits, whatever jobs the next
    scenario step runs), or paused before it ran."""
    order_id = _approved(w)
    with w.api.store.session() as s:
        admin = service.caller_for(s, w.tid, None)
        plan = execution.ExecutionPlan(start="2099-01-01 00:00:00")
        group = execution.execute(s, admin, order_id, plan).job_id
        if paused:
            execution.pause(s, admin, order_id, "ALL", None)
        sql_job = s.scalars(select(SqlJob).where(SqlJob.group_id == group)).one()
        return Executed(order_id, group, sql_job.sql_job_id)


def _executed(w: World, *, backup: bool = False) -> Executed:
    """A ticket executed to its end on the world's demo target."""
    order_id = _approved(w)
    with w.api.store.session() as s:
        admin = service.caller_for(s, w.tid, None)
        group = execution.execute(s, admin, order_id, execution.ExecutionPlan(backup=backup)).job_id
    w.api.run_jobs()
    with w.api.store.session() as s:
        sql_job = s.scalars(select(SqlJob).where(SqlJob.group_id == group)).one()
        assert sql_job.status == "SUCCESS", sql_job.log
        return Executed(order_id, group, sql_job.sql_job_id)


def _console_calls(w: World) -> list[Call]:
    return [
        Call(
            {
                "DbId": w.db_id,
                "Logic": False,
                "Script": "SELECT id, name FROM customers WHERE id <= 2 ORDER BY id;\n"
                "SELECT count(*) AS n FROM orders",
            }
        ),
        Call({"DbId": w.db_id, "Logic": False, "Script": "GRANT ALL ON t TO x"}),  # refused
        Call({"DbId": w.db_id, "Logic": True, "Script": "SELECT 1"}, False, "InvalidParameter"),
    ]


def _audit_calls(w: World) -> list[Call]:
    _executed(w)
    now = utcnow()
    return [
        Call(
            {
                "StartTime": f"{now - timedelta(hours=1):{WIRE_TIME}}",
                "EndTime": f"{now + timedelta(hours=1):{WIRE_TIME}}",
                "ExecState": "SUCCESS",
                "SearchName": "main",
                "PageSize": 100,
            }
        ),
        Call({"StartTime": "2000-01-01 00:00:00", "EndTime": "2000-01-02 00:00:00"}),
        Call(
            {"StartTime": "2026-01-01 00:00:00", "EndTime": "2026-03-01 00:00:00"},
            False,
            "InvalidParameter",
        ),
    ]


def _data_correct_scenarios() -> dict[str, Scenario]:
    missing = Call({"OrderId": 999999}, False, "OrderNotFound")
    no_job = Call({"JobId": 999999}, False, "OrderNotFound")
    wrong_estimate = {"EstimateAffectRows": 5}
    return {
        "GetDataCorrectOrderDetail": lambda w: [
            Call({"OrderId": _new_order(w), "Tid": w.tid}),
            Call({"OrderId": _new_order(w, **wrong_estimate)}),
            Call({"OrderId": _executed(w).order_id}),
            missing,
        ],
        "ListDataCorrectPreCheckSQL": lambda w: [
            Call({"OrderId": _new_order(w), "DbId": w.db_id, "PageNumber": 1, "PageSize": 5}),
            missing,
        ],
        "ListDataCorrectPreCheckDB": lambda w: [Call({"OrderId": _new_order(w)}), missing],
        "RetryDataCorrectPreCheck": lambda w: [
            Call({"OrderId": _new_order(w, by_admin=True), "RealLoginUserUid": w.api.admin_uid}),
            Call({"OrderId": _approved(w)}, False, "InvalidOrderStatus"),
            missing,
        ],
        "SkipDataCorrectRowCheck": lambda w: [
            Call({"OrderId": _new_order(w, by_admin=True, **wrong_estimate), "Reason": TRICKY}),
            Call(
                {"OrderId": _new_order(w, by_admin=True), "Reason": "no"},
                False,
                "InvalidOrderStatus",
            ),
            Call({"OrderId": 999999, "Reason": "x"}, False, "OrderNotFound"),
        ],
        "ModifyDataCorrectExecSQL": lambda w: [
            Call(
                {
                    "OrderId": _new_order(w, by_admin=True),
                    "ExecSQL": "UPDATE orders SET status = 'x' WHERE id = 3",
                }
            ),
            Call({"OrderId": _approved(w), "ExecSQL": "SELECT 1"}, False, "InvalidOrderStatus"),
        ],
        "ExecuteDataCorrect": lambda w: [
            Call(
                {
                    "OrderId": (approved := _approved(w)),
                    "ActionDetail": {"transaction": True, "backupData": False},
                }
            ),
            Call({"OrderId": approved}, False, "InvalidOrderStatus"),
            Call(
                {"OrderId": _approved(w), "ActionDetail": {"start": 1}}, False, "InvalidParameter"
            ),
            missing,
        ],
        "GetDataCorrectTaskDetail": lambda w: [
            Call({"OrderId": _executed(w).order_id}),
            Call({"OrderId": _new_order(w)}, False, "InvalidOrderStatus"),
            missing,
        ],
        "ListDBTaskSQLJob": lambda w: [
            Call({"DBTaskGroupId": _executed(w).group_id, "PageNumber": 1, "PageSize": 10}),
            Call({"DBTaskGroupId": 999999}, False, "OrderNotFound"),
        ],
        "ListDBTaskSQLJobDetail": lambda w: [
            Call({"JobId": _executed(w).sql_job_id, "PageNumber": 1, "PageSize": 10}),
            no_job,
        ],
        "GetDBTaskSQLJobLog": lambda w: [Call({"JobId": _executed(w).sql_job_id}), no_job],
        "PauseDataCorrectSQLJob": lambda w: [
            Call({"OrderId": (started := _started(w)).order_id, "Type": "ALL"}),
            Call({"OrderId": started.order_id, "Type": "ALL"}, False, "InvalidOrderStatus"),
            Call({"OrderId": _started(w).order_id, "Type": "SINGLE"}, False, "InvalidParameter"),
            Call({"OrderId": _approved(w), "Type": "ALL"}, False, "InvalidOrderStatus"),
            Call({"OrderId": 999999, "Type": "ALL"}, False, "OrderNotFound"),
        ],
        "RestartDataCorrectSQLJob": lambda w: [
            Call(
                {
                    "OrderId": (paused := _started(w, paused=True)).order_id,
                    "Type": "SINGLE",
                    "JobId": paused.sql_job_id,
                }
            ),
            Call({"OrderId": paused.order_id, "Type": "ALL"}, False, "InvalidOrderStatus"),
            Call(
                {"OrderId": paused.order_id, "Type": "SINGLE", "JobId": 999999},
                False,
                "OrderNotFound",
            ),
            Call({"OrderId": 999999, "Type": "ALL"}, False, "OrderNotFound"),
        ],
        "ListSQLExecAuditLog": _audit_calls,
        "ExecuteScript": _console_calls,
        "GetDataCronClearConfig": lambda w: [
            Call({"OrderId": _cleanup_run(w)}),
            Call({"OrderId": _new_order(w)}, False, "UnsupportedPluginType"),
            missing,
        ],
        "GetDataCronClearTaskDetailList": lambda w: [
            Call({"OrderId": (cleaned := _cleanup_run(w)), "PageNumber": 1, "PageSize": 10}),
            Call({"OrderId": cleaned, "PageNumber": 2, "PageSize": 10}),
            missing,
        ],
        "GetDataCorrectBackupFiles": lambda w: [
            Call({"OrderId": _executed(w, backup=True).order_id, "ActionDetail": {}}),
            Call({"OrderId": _executed(w).order_id}),  # no backup: no links
            missing,
        ],
        "GetDataCorrectRollbackFile": lambda w: [Call({"OrderId": _new_order(w)}), missing],
        "GetDataCorrectSQLFile": lambda w: [
            Call({"OrderId": _new_order(w), "Tid": w.tid}),
            missing,
        ],
    }


def _submit_calls(w: World) -> list[Call]:
    order_id = _new_order(w, by_admin=True)
    return [
        Call({"OrderId": order_id, "Tid": w.tid}),
        Call({"OrderId": order_id}, False, "InvalidOrderStatus"),
        Call({"OrderId": 999999}, False, "OrderNotFound"),
    ]


def _approve_calls(w: World) -> list[Call]:
    done, open_ = _approval(w), _approval(w)
    node = _approval_setup(w)["node"]
    committer = _approval_setup(w)["committer"]
    return [
        Call({"WorkflowInstanceId": done, "ApprovalType": "AGREE", "Comment": TRICKY}),
        Call({"WorkflowInstanceId": done, "ApprovalType": "AGREE"}),  # a retry: answered
        Call({"WorkflowInstanceId": done, "ApprovalType": "REJECT"}, False, "InvalidOrderStatus"),
        Call(
            {
                "WorkflowInstanceId": open_,
                "ApprovalType": "ADD_APPROVAL_NODE",
                "ApprovalNodeId": node,
                "ApprovalNodePos": "POST_ADD_APPROVAL_NODE",
            }
        ),
        Call(
            {"WorkflowInstanceId": open_, "ApprovalType": "TRANSFER", "NewApprover": committer},
            False,
            "SelfApprovalForbidden",
        ),
        Call({"WorkflowInstanceId": open_, "ApprovalType": "TRANSFER"}, False, "InvalidParameter"),
        Call({"WorkflowInstanceId": open_, "ApprovalType": "CANCEL"}, False, "PermissionDenied"),
        Call({"WorkflowInstanceId": open_, "ApprovalType": "REJECT", "Comment": "no"}),
        Call(
            {"WorkflowInstanceId": 999999, "ApprovalType": "AGREE"},
            False,
            "WorkflowInstanceNotFound",
        ),
    ]


def _assistant_scenarios() -> dict[str, Scenario]:
    """No language model is configured here: Fix and Optimize answer from OpenDMS's own
    analysis, Generate and Answer say how to configure one (tests/e2e/test_sdk_assistant.py
    drives them against a model)."""
    unknown_db = Call({"DbId": 999999, "Sql": "SELECT 1"}, False, "DatabaseNotFound")
    return {
        "FixSqlByMetaAgent": lambda w: [
            Call({"DbId": w.db_id, "Sql": "SELECT TOP 3 stauts FROM orders", "Error": TRICKY}),
            Call({"DbId": w.db_id, "Sql": "SELECT 1", "Query": TRICKY}),
            Call({"DbId": w.db_id, "Sql": "SELECT 1", "Model": "qwen"}, False, "InvalidParameter"),
            unknown_db,
        ],
        "OptimizeSqlByMetaAgent": lambda w: [
            Call({"DbId": w.db_id, "Sql": "SELECT id FROM orders WHERE status = 'x'"}),
            unknown_db,
        ],
        "GenerateSqlFromNL": lambda w: [
            Call(
                {"DbId": w.db_id, "Question": TRICKY, "Knowledge": "k", "TableNames": "orders"},
                False,
                "LlmNotConfigured",
            ),
        ],
        "AnswerSqlSyntaxByMetaAgent": lambda w: [
            Call({"DbId": w.db_id, "Query": "LIMIT?"}, False, "LlmNotConfigured"),
        ],
    }


SCENARIOS: dict[str, Scenario] = {
    **_data_correct_scenarios(),
    **_export_scenarios(),
    **_import_scenarios(),
    **_struct_sync_scenarios(),
    "SubmitOrderApproval": _submit_calls,
    "ApproveOrder": _approve_calls,
    "GetApprovalDetail": lambda w: [
        Call({"WorkflowInstanceId": _approval(w), "Tid": w.tid}),
        Call({"WorkflowInstanceId": 999999}, False, "WorkflowInstanceNotFound"),
    ],
    "PreviewWorkflow": lambda w: [
        Call({"OrderId": _new_order(w)}),
        Call({"OrderId": 999999}, False, "OrderNotFound"),
    ],
    "ListWorkFlowTemplates": lambda w: [
        Call({}),
        Call({"SearchName": "Owner", "Tid": w.tid}),
        Call({"SearchName": "no such template"}),
    ],
    "ListWorkFlowNodes": lambda w: [
        Call({}),
        Call({"SearchName": "Release", "Tid": w.tid}),
    ],
    "CreateUploadFileJob": lambda w: [
        # nothing listens on port 1: the job is created and records the failure
        Call(
            {
                "FileName": "fix.sql",
                "FileSource": "datacorrect",
                "UploadURL": "http://127.0.0.1:1/fix.sql",
            }
        ),
        Call(
            {"FileName": "fix.sql", "FileSource": "datacorrect", "UploadURL": "file:///etc/passwd"},
            False,
            "InvalidParameter",
        ),
        Call(
            {
                "FileName": "fix.sql",
                "FileSource": "datacorrect",
                "UploadURL": "http://10.9.9.9/fix.sql",
            },
            False,
            "TargetHostNotAllowed",
        ),
        Call(
            {"FileName": "fix.sql", "FileSource": "elsewhere", "UploadURL": "http://127.0.0.1:1/x"},
            False,
            "InvalidParameter",
        ),
    ],
    "GetUserUploadFileJob": lambda w: [
        Call({"JobKey": w.job_key}),
        Call({"JobKey": "job-none"}, False, "UploadJobNotFound"),
    ],
    "GetOrderAttachmentFile": lambda w: [
        Call({"OrderId": w.order_id}),
        Call({"OrderId": 999999}, False, "OrderNotFound"),
    ],
    "CreateOrder": lambda w: [
        Call(
            {
                "Comment": "c",
                "PluginType": "DC_COMMON",
                "RelatedUserList": str(w.rich_user_id),
                "PluginParam": {
                    "dbItemList": [{"dbId": w.db_id, "logic": False}],
                    "estimateAffectRows": 1,
                    "sqlType": "TEXT",
                    "execSQL": "DELETE FROM orders WHERE id = 1",
                },
            }
        ),
        Call(
            {
                "Comment": "c",
                "PluginType": "DATA_EXPORT",
                "PluginParam": {
                    "dbId": w.db_id,
                    "logic": False,
                    "exeSQL": "SELECT 1",
                    "classify": "x",
                    "affectRows": 1,
                    "ignoreAffectRows": False,
                },
            }
        ),
        Call(
            {
                "Comment": "c",
                "PluginType": "NDDL",
                "PluginParam": {"title": "new table", "dbId": w.db_id, "relatedIds": [1]},
            }
        ),
        Call(
            {"Comment": "c", "PluginType": "DATA_CORRECT", "PluginParam": {}},
            False,
            "UnsupportedPluginType",
        ),
        Call(
            {"Comment": "c", "PluginType": "DC_COMMON", "PluginParam": {"sqlType": "TEXT"}},
            False,
            "InvalidParameter",
        ),
    ],
    "CreateDataCorrectOrder": lambda w: [
        Call(_dc(w)),
        Call(_dc(w, SqlType="ATTACHMENT", ExecSQL=None, AttachmentName=w.attachment_key)),
        Call(
            _dc(w, SqlType="ATTACHMENT", ExecSQL=None, AttachmentName="nope"),
            False,
            "AttachmentNotFound",
        ),
        Call(_dc(w, DbItemList=[{"DbId": 999999, "Logic": False}]), False, "DatabaseNotFound"),
        Call(_dc(w, EstimateAffectRows=None), False, "InvalidParameter"),
    ],
    "CreateFreeLockCorrectOrder": lambda w: [
        Call({**_dc(w, EstimateAffectRows=None), "AttachmentKey": None}),
        Call(
            _dc(w, SqlType="ATTACHMENT", AttachmentName=w.attachment_key), False, "InvalidParameter"
        ),
    ],
    "CreateDataCronClearOrder": lambda w: [
        Call(_cron(w)),
        Call(_cron(w, specifyDuration=False, DurationHour=None)),
        Call(_cron(w, CronFormat="0 0 2 * *"), False, "InvalidParameter"),
        Call(_cron(w, DurationHour=None), False, "InvalidParameter"),
    ],
    "CreateDataImportOrder": lambda w: [
        Call(
            {
                "Comment": "load",
                "Param": {
                    "DbItemList": [{"DbId": w.db_id, "Logic": False}],
                    "AttachmentName": w.attachment_key,
                    "FileType": "CSV",
                    "TableName": "orders",
                    "CsvFirstRowIsColumnDef": True,
                    "InsertType": "INSERT_IGNORE",
                    "FileEncoding": "UTF-8",
                    "ImportMode": "SAFE_MODE",
                    "IgnoreError": False,
                    "ExecMode": "AUTO",
                },
            }
        ),
        Call(
            {
                "Comment": "load",
                "Param": {
                    "DbItemList": [{"DbId": w.db_id, "Logic": False}],
                    "AttachmentName": w.attachment_key,
                    "FileType": "CSV",
                },
            },
            False,
            "InvalidParameter",
        ),
    ],
    "CreateDataExportOrder": lambda w: [
        Call(_export(w)),
        Call(
            _export(
                w,
                IgnoreAffectRows=True,
                IgnoreAffectRowsReason="big",
                Watermark={
                    "WatermarkTypes": ["DATA"],
                    "DataWatermark": "w",
                    "ColumnName": "status",
                    "Keys": ["id"],
                },
            )
        ),
        Call(_export(w, InstanceId=999999), False, "InvalidParameter"),
    ],
    "GetOrderBaseInfo": lambda w: [
        Call({"OrderId": w.order_id}),
        Call({"OrderId": 999999, "Tid": w.tid}, False, "OrderNotFound"),
    ],
    "ListOrders": lambda w: [
        Call({}),
        Call(
            {
                "OrderResultType": "AS_ADMIN",
                "OrderStatus": "RUNNING",
                "PluginType": "DATA_CORRECT",
                "SearchContent": "orders",
                "SearchDateType": "CREATE_TIME",
                "StartTime": "2020-01-01 00:00:00",
                "EndTime": "2099-01-01 00:00:00",
                "PageNumber": 1,
                "PageSize": 20,
            }
        ),
        Call({"OrderResultType": "AS_Related", "OrderStatus": "FINISHED"}),
    ],
    "CloseOrder": lambda w: [
        Call({"OrderId": w.order_id, "CloseReason": "not needed"}),
        Call({"OrderId": w.order_id, "CloseReason": "again"}, False, "InvalidOrderStatus"),
        Call({"OrderId": 999999, "CloseReason": "x"}, False, "OrderNotFound"),
    ],
    "GrantUserPermission": lambda w: [
        Call(_grant(w)),
        Call(_grant(w, DsType="TABLE", TableId=str(w.table_id), PermTypes="CORRECT")),
        Call(_grant(w, DsType="TABLE", TableName="orders", DbId=str(w.db_id))),
        Call(_grant(w, DsType="INSTANCE", InstanceId=w.instance_id, DbId=None)),
        Call(_grant(w, DbId="999999"), False, "DatabaseNotFound"),
        Call(_grant(w, UserId="999999"), False, "UserNotFound"),
        Call(_grant(w, DsType="LOGIC_TABLE"), False, "InvalidParameter"),
    ],
    "RevokeUserPermission": lambda w: [
        Call(_grant(w, UserAccessId=str(w.grant_id), PermTypes="QUERY", ExpireDate=None)),
        Call(
            _grant(w, UserAccessId=str(w.grant_id), PermTypes="QUERY", ExpireDate=None),
            False,
            "UserPermissionNotFound",
        ),
    ],
    "ListUserPermissions": lambda w: [
        Call({"UserId": str(w.rich_user_id), "PermType": "DATABASE"}),
        Call(
            {
                "UserId": str(w.rich_user_id),
                "PermType": "TABLE",
                "SearchKey": "ord",
                "DbType": "sqlite",
                "EnvType": "dev",
                "PageNumber": 1,
                "PageSize": 5,
            }
        ),
        Call({"UserId": "999999", "PermType": "DATABASE"}, False, "UserNotFound"),
    ],
    "ListDatabaseUserPermssions": lambda w: [
        Call({"DbId": str(w.db_id), "PermType": "DATABASE"}),
        Call({"DbId": str(w.db_id), "PermType": "TABLE", "UserName": "rich", "PageSize": 5}),
        Call({"DbId": "999999", "PermType": "DATABASE"}, False, "DatabaseNotFound"),
    ],
    "RegisterInstance": _register("DbaUid"),
    "AddInstance": _register("DbaId"),
    "GetInstance": lambda w: [
        Call({"Host": w.target, "Port": 0}),
        Call({"Host": w.target, "Port": 0, "Sid": "", "Tid": w.tid}),
        Call({"Host": "nowhere", "Port": 1}, False, "InstanceNotFound"),
    ],
    "ListInstances": lambda w: [
        Call({}),
        Call(
            {
                "SearchKey": "demo",
                "DbType": "sqlite",
                "EnvType": "dev",
                "PageNumber": 1,
                "PageSize": 20,
                "InstanceSource": "PUBLIC_OWN",
                "InstanceState": "NORMAL",
                "NetType": "VPC",
                "Tid": w.tid,
            }
        ),
    ],
    "UpdateInstance": lambda w: [
        Call(
            {
                "InstanceId": str(w.instance_id),
                "InstanceAlias": "renamed",
                "QueryTimeout": 30,
                "DbaId": str(w.rich_user_id),
                "EnvType": "test",
            }
        ),
        Call({"InstanceId": "999999"}, False, "InstanceNotFound"),
    ],
    "DeleteInstance": lambda w: [
        Call({"Host": w.target, "Port": 0}),
        Call({"Host": w.target, "Port": 0}, False, "InstanceNotFound"),
    ],
    "SyncInstanceMeta": lambda w: [
        Call({"InstanceId": str(w.instance_id)}),
        Call({"InstanceId": str(w.instance_id), "IgnoreTable": True}),
        Call({"InstanceId": "999999"}, False, "InstanceNotFound"),
    ],
    "ListDatabases": lambda w: [
        Call({"InstanceId": str(w.instance_id)}),
        Call({"InstanceId": str(w.instance_id), "SearchKey": "ma", "PageSize": 1}),
        Call({"InstanceId": "999999"}, False, "InstanceNotFound"),
    ],
    "GetDatabase": lambda w: [
        Call({"Host": w.target, "Port": 0, "SchemaName": "main"}),
        Call({"Host": w.target, "Port": 0, "SchemaName": "nope"}, False, "DatabaseNotFound"),
    ],
    "SearchDatabase": lambda w: [
        Call({}),
        Call(
            {
                "SearchKey": "main",
                "DbType": "sqlite",
                "EnvType": "dev",
                "SearchTarget": "DB",
                "SearchRange": "UNKNOWN",
                "PageNumber": 1,
                "PageSize": 10,
            }
        ),
        Call({"SearchRange": "OWNER"}),
        Call({"SearchTarget": "LOGIC_DB"}),
    ],
    "SyncDatabaseMeta": lambda w: [
        Call({"DbId": str(w.db_id)}),
        Call({"DbId": "999999"}, False, "DatabaseNotFound"),
    ],
    "ListTables": lambda w: [
        Call({"DatabaseId": str(w.db_id)}),
        Call(
            {
                "DatabaseId": str(w.db_id),
                "SearchName": "ord",
                "ReturnGuid": True,
                "PageNumber": 1,
                "PageSize": 50,
            }
        ),
        Call({"DatabaseId": "999999"}, False, "DatabaseNotFound"),
    ],
    "ListColumns": lambda w: [
        Call({"TableId": str(w.table_id)}),
        Call({"TableId": str(w.table_id), "Logic": False}),
        Call({"TableId": "999999"}, False, "TableNotFound"),
    ],
    "ListIndexes": lambda w: [
        Call({"TableId": str(w.table_id)}),
        Call({"TableId": "999999"}, False, "TableNotFound"),
    ],
    "GetMetaTableDetailInfo": lambda w: [
        Call({"TableGuid": f"IDB_{w.db_id}.main.orders"}),
        Call({"TableGuid": f"IDB_{w.db_id}.main.orders", "Tid": w.tid}),
        Call({"TableGuid": "orders"}, False, "InvalidParameter"),
        Call({"TableGuid": f"IDB_{w.db_id}.main.nope"}, False, "TableNotFound"),
    ],
    "GetMetaTableColumn": lambda w: [
        Call({"TableGuid": f"IDB_{w.db_id}.main.orders"}),
        Call({"TableGuid": "IDB_L_1.db.t"}, False, "InvalidParameter"),
        Call({"TableGuid": "IDB_999999.main.orders"}, False, "TableNotFound"),
    ],
    "SimplyAddInstance": _simply_add,
    "SetOwners": lambda w: [
        Call(
            {"ResourceId": str(w.db_id), "OwnerType": "DATABASE", "OwnerIds": str(w.rich_user_id)}
        ),
        Call(
            {
                "ResourceId": str(w.table_id),
                "OwnerType": "TABLE",
                "OwnerIds": f"{w.rich_user_id},{w.rich_user_id}",
            }
        ),
        Call(
            {"ResourceId": str(w.instance_id), "OwnerType": "INSTANCE", "OwnerIds": "999999"},
            False,
            "UserNotFound",
        ),
        Call(
            {"ResourceId": "1", "OwnerType": "LOGIC_TABLE", "OwnerIds": "1"},
            False,
            "InvalidParameter",
        ),
    ],
    "GetUserActiveTenant": lambda w: [Call({}), Call({"Tid": w.tid})],
    "ListUserTenants": lambda w: [Call({}), Call({"Tid": w.tid})],
    "RegisterUser": lambda w: [
        Call(
            {
                "Uid": "1234567890123456",
                "UserNick": TRICKY,
                "Mobile": "13800000000",
                "RoleNames": "DBA,USER",
                "Tid": w.tid,
            }
        ),
        Call({"Uid": "1234567890123457"}),
        Call({"Uid": w.rich_uid}, False, "UserAlreadyExists"),
    ],
    "GetUser": lambda w: [
        Call({}),
        Call({"Uid": w.rich_uid}),
        Call({"UserId": str(w.rich_user_id), "Tid": w.tid}),
        Call({"UserId": "999999"}, False, "UserNotFound"),
    ],
    "ListUsers": lambda w: [
        Call({}),
        Call(
            {
                "PageNumber": 1,
                "PageSize": 100,
                "Role": "DBA",
                "SearchKey": "rich",
                "UserState": "NORMAL",
                "Tid": w.tid,
            }
        ),
        Call({"PageNumber": 99, "PageSize": 1}),
        Call({"UserState": "DISABLE"}),
    ],
    "UpdateUser": _register_update,
    "DisableUser": lambda w: [
        Call({"Uid": w.spare[0]}),
        Call({"Uid": w.spare[0]}),
        Call({"Uid": "1"}, False, "UserNotFound"),
    ],
    "EnableUser": lambda w: [Call({"Uid": w.spare[1]}), Call({"Uid": w.spare[1], "Tid": w.tid})],
    "DeleteUser": lambda w: [Call({"Uid": w.spare[2]}), Call({"Uid": "1"}, False, "UserNotFound")],
    **_assistant_scenarios(),
}


def _world(api: Api) -> World:
    rich = service.new_uid()
    with api.store.session() as s:
        admin = s.query(User).filter_by(uid=api.admin_uid).one()
        actor = Caller(
            api.admin.access_key_id,
            admin.uid,
            admin.user_id,
            api.tid,
            "default",
            (Role.ADMIN,),
            "admin",
        )
        user = service.register_user(
            s, actor, api.tid, rich, nick_name="rich user", mobile="13700000000", roles="DBA,USER"
        )
        user.email = "rich@example.com"
        user.notification_mode = "MAIL"
        user.last_login_at = datetime(2024, 5, 6, 7, 8, 9)
        user.max_execute_count = 100
        user.max_result_count = 2000
        s.flush()
        rich_user_id = user.user_id
    spare = [api.new_user()[0] for _ in range(3)]
    with api.store.session() as s:  # EnableUser needs a disabled user to enable
        service.set_user_state(s, None, api.tid, spare[1], "DISABLE")
    world = World(api, rich, rich_user_id, spare)
    _with_catalog(world)
    return world


def _with_catalog(w: World) -> None:
    """A registered demo target (owned by the rich user) and a second file to register."""
    from opendms.catalog import instances, ownership, queries
    from opendms.targets.base import TargetPolicy
    from opendms.targets.demo import ensure_demo_target

    target = ensure_demo_target(w.api.sqlite_targets)
    spare = w.api.sqlite_targets / "spare" / target.name
    spare.parent.mkdir()
    spare.write_bytes(target.read_bytes())
    policy = TargetPolicy("", w.api.sqlite_targets)
    with w.api.store.session() as s:
        inst = instances.register_instance(
            s,
            w.api.box,
            policy,
            w.tid,
            instances.InstanceSpec(
                alias="demo",
                instance_type="sqlite",
                host=str(target),
                env_type="dev",
                dba_user_id=w.rich_user_id,
                safe_rule="default",
            ),
            actor=None,
        )
        (db,) = queries.list_databases(s, w.tid, inst.instance_id).items
        table = next(t for t in queries.list_tables(s, w.tid, db.db_id).items if t.name == "orders")
        ownership.set_owners(s, w.tid, "INSTANCE", inst.instance_id, [w.rich_user_id])
        from opendms.catalog import permissions

        query, _export = permissions.grant(
            s,
            w.tid,
            w.rich_user_id,
            permissions.GrantTarget("DATABASE", inst.instance_id, db.db_id),
            "QUERY,EXPORT",
            datetime(2099, 1, 1),
        )
        permissions.grant(
            s,
            w.tid,
            w.rich_user_id,
            permissions.GrantTarget("TABLE", inst.instance_id, db.db_id, "orders"),
            "CORRECT",
            datetime(2099, 1, 1),
        )
        w.grant_id = query.id
        from opendms.rulebook import templates

        rm = templates.create_node(
            s,
            w.tid,
            "Release managers",
            [w.rich_user_id],
            comment="people who ship",
            creator=w.rich_user_id,
        )
        templates.create_template(s, w.tid, "RM then DBA", [rm.name, "DBA"], creator=w.rich_user_id)
        from opendms.store.models import Attachment

        s.add(
            Attachment(
                attachment_key="att-1",
                tid=w.tid,
                user_id=w.rich_user_id,
                file_name="fix.sql",
                size_bytes=10,
                sha256="0" * 64,
            )
        )
        s.flush()
        w.attachment_key = "att-1"
        admin = s.query(User).filter_by(uid=w.api.admin_uid).one()
        caller = Caller(
            w.api.admin.access_key_id,
            admin.uid,
            admin.user_id,
            w.tid,
            "default",
            (Role.ADMIN,),
            "admin",
        )
        w.order_id = tickets.create_order(
            s,
            caller,
            "DC_COMMON",
            {
                "DbItemList": [{"DbId": db.db_id}],
                "EstimateAffectRows": 1,
                "SqlType": "TEXT",
                "ExecSQL": "DELETE FROM orders WHERE id = 3",
            },
            comment="seed",
            related_user_ids=[w.rich_user_id],
            attachment_key="att-1",
        ).order_id
        from opendms.files import service as files
        from opendms.files.addresses import UploadHosts

        w.job_key = files.create_upload_job(
            s,
            caller,
            url="http://127.0.0.1:1/x.sql",  # (when run, it fails: loopback, port 1)
            file_name="x.sql",
            source="datacorrect",
            limits=files.UploadLimits(hosts=UploadHosts(LOOPBACK)),
        ).job_key
        w.target, w.spare_target = str(target), str(spare)
        w.instance_id, w.db_id, w.table_id = inst.instance_id, db.db_id, table.table_id


@pytest.fixture
def sdk(make_api: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, list[Any]]]:
    """A world, and the new SDK's transport replaced by the in-process app; yields the raw
    JSON bodies the app answered, in order."""
    # uploads may be pointed at loopback (port 1: nothing listens; the job records that)
    api = make_api(rate_limit=1e6, upload_hosts=LOOPBACK)
    seen: list[Any] = []
    route_new_sdk_to(api, monkeypatch, seen)
    yield _world(api), seen


def test_every_action_has_a_scenario() -> None:
    missing = sorted(a.name for a in DMS_ACTIONS if a.name not in SCENARIOS)
    assert not missing, f"add realistic calls for {missing} to SCENARIOS"
    stale = sorted(set(SCENARIOS) - {a.name for a in DMS_ACTIONS})
    assert not stale, f"SCENARIOS names actions that do not exist: {stale}"


@ACTIONS
@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3", "v1"])
def test_responses_survive_the_sdk_model(
    action: Action, algorithm: str | None, sdk: tuple[World, list[Any]]
) -> None:
    world, seen = sdk
    scenario = SCENARIOS.get(action.name)
    if scenario is None:
        pytest.fail(f"no realistic scenario for {action.name}; add one to SCENARIOS")
    client = SdkClient(
        Config(
            access_key_id=world.api.admin.access_key_id,
            access_key_secret=world.api.admin.secret,
            endpoint="testserver",
            protocol="http",
            signature_algorithm=algorithm,
        )
    )
    fields = sdk_spec.request_fields(action.name)
    request_cls = getattr(sdk_models, f"{action.name}Request")
    send = getattr(client, sdk_spec.method_name(action.name))
    for call in scenario(world):
        kwargs = {fields[w].attr: _sdk_arg(fields[w], v) for w, v in call.params.items()}
        response = send(request_cls(**kwargs), RuntimeOptions())
        raw = seen[-1]
        assert raw["Success"] is call.success, (call, raw)
        if call.error_code:
            assert raw["ErrorCode"] == call.error_code, raw
            assert raw["ErrorMessage"]
        assert response.status_code == 200
        assert_sdk_keeps(action.name, raw)
        parsed = response.body.to_map()
        assert {k: parsed.get(k) for k in raw} == raw


def test_sdk_spec_reads_every_sdk_action() -> None:
    """The helpers themselves: every action the SDK knows resolves, wire names and all."""
    methods = [m for m in dir(SdkClient) if m.endswith("_with_options")]
    actions = {m.removesuffix("_with_options") for m in methods}
    resolved = 0
    for name in dir(sdk_models):
        if not name.endswith("Request") or sdk_spec.snake(name[:-7]) not in actions:
            continue
        fields = sdk_spec.request_fields(name[:-7])
        assert all(f.location in ("query", "body") for f in fields.values()), name
        resolved += 1
    assert resolved == len(actions) > 300
    json_style = sdk_spec.request_fields("CreateDataCorrectOrder")
    assert json_style["Param"].style == "json" and json_style["Param"].attr == "param"
    assert json_style["Tid"].style is None and json_style["Tid"].annotation == "int"
    assert sdk_spec.method_name("ListSLARules") == "list_slarules_with_options"


# ---------------------------------------------------------------------- the user shapes


def test_user_objects_carry_every_field_with_the_sdks_types(make_api: Any) -> None:
    api = make_api(rate_limit=1e6)
    world = _world(api)
    body = api.call("GetUser", Uid=world.rich_uid).json()
    assert_sdk_keeps("GetUser", body)
    user = body["User"]
    assert set(user) == {
        "UserId",
        "Uid",
        "ParentUid",
        "NickName",
        "State",
        "RoleIdList",
        "RoleNameList",
        "Mobile",
        "Email",
        "NotificationMode",
        "MaxExecuteCount",
        "MaxResultCount",
        "CurExecuteCount",
        "CurResultCount",
        "LastLoginTime",
    }
    assert user["UserId"] == str(world.rich_user_id)
    assert user["RoleIdList"] == {"RoleIds": [1, 2]}  # ints, in a wrapper object
    assert user["RoleNameList"] == {"RoleNames": ["USER", "DBA"]}
    assert user["ParentUid"] == int(api.admin_uid)  # a long in GetUser ...
    assert user["LastLoginTime"] == "2024-05-06 07:08:09"

    listed = api.call("ListUsers", SearchKey="rich user").json()
    assert_sdk_keeps("ListUsers", listed)
    assert listed["TotalCount"] == 1
    (item,) = listed["UserList"]["User"]  # a list inside a wrapper object
    assert item["ParentUid"] == api.admin_uid  # ... but a string in ListUsers
    assert item["UserId"] == str(world.rich_user_id)
    assert item["RoleIdList"] == {"RoleIds": [1, 2]}
    assert {k: v for k, v in item.items() if k != "ParentUid"} == {
        k: v for k, v in user.items() if k != "ParentUid"
    }


def test_sdk_models_disagree_on_parent_uid_as_we_do() -> None:
    """The reason for the int/str split above, straight from the SDK's models."""
    get_user = _wire_names(sdk_models.GetUserResponseBodyUser)
    list_user = _wire_names(sdk_models.ListUsersResponseBodyUserListUser)
    assert get_user["ParentUid"] is int
    assert list_user["ParentUid"] is str
    assert get_user["UserId"] is str and list_user["UserId"] is str


def test_conform_catches_a_wrong_type() -> None:
    good = {"RequestId": "r", "Success": True, "User": {"ParentUid": 1, "UserId": "1"}}
    conform(sdk_models.GetUserResponseBody, good)
    for bad in (
        {"User": {"ParentUid": "1"}},
        {"User": {"UserId": 1}},
        {"User": {"RoleIdList": {"RoleIds": ["1"]}}},
        {"User": {"RoleIdList": [1]}},
        {"Success": "true"},
        {"User": {"Nope": 1}},
    ):
        with pytest.raises(AssertionError):
            conform(sdk_models.GetUserResponseBody, bad)
    assert sdk_spec.roundtrip("GetUser", {"User": {"Nope": 1}}) != {"User": {"Nope": 1}}


def test_backup_links_serve_the_rollback_and_say_when_the_target_is_gone(
    sdk: tuple[World, list[Any]],
) -> None:
    world, _ = sdk
    executed = _executed(world, backup=True)
    answer = world.api.call("GetDataCorrectBackupFiles", OrderId=executed.order_id).json()
    (url,) = answer["DataCorrectBackupFiles"]["FileUrl"]
    path = url.split("testserver", 1)[1]
    served = world.api.client.get(path)
    assert served.status_code == 200 and "-- statement 1: undo UPDATE of orders" in served.text
    Path(world.target).unlink()
    gone = world.api.client.get(path)
    assert gone.status_code == 502
    assert gone.json()["Code"] == "TargetConnectFailed" and "does not exist" in gone.text
