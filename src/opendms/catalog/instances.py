"""Registering, changing and deleting instances. An address or credentials are proven (a
connection test and a metadata read) before they are kept."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from opendms.catalog import dba
from opendms.catalog.connect import check_allowed, engine_at, read_metadata
from opendms.catalog.queries import find_instance, get_instance
from opendms.catalog.sync import store_schemas
from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.identity.secrets import SecretBox
from opendms.store.models import Database, Instance, Owner
from opendms.targets.base import Endpoint, TargetPolicy
from opendms.targets.registry import CONNECTORS, DEFAULT_PORTS

ENV_TYPES = ("product", "dev", "pre", "test", "sit", "uat", "pet", "stag")


@dataclass(frozen=True)
class InstanceSpec:
    """What a caller says about an instance; ``None`` leaves a field as it is on update."""

    alias: str | None = None
    instance_type: str | None = None
    host: str | None = None
    port: int | None = None
    sid: str | None = None
    database_user: str | None = None
    database_password: str | None = None
    env_type: str | None = None
    instance_source: str | None = None
    network_type: str | None = None
    dba_user_id: int | None = None
    safe_rule: str | None = None
    query_timeout: int | None = None
    export_timeout: int | None = None
    ddl_online: int | None = None
    use_dsql: int | None = None
    sell_sitd: bool | None = None
    data_link_name: str | None = None
    ecs_instance_id: str | None = None
    ecs_region: str | None = None
    vpc_id: str | None = None


def _check_spec(spec: InstanceSpec) -> InstanceSpec:
    engine = (spec.instance_type or "").strip().lower()
    if engine not in CONNECTORS:
        raise DmsError(
            ErrorCode.UNSUPPORTED_ENGINE,
            f"InstanceType {spec.instance_type!r} is not supported; use one of "
            f"{', '.join(sorted(CONNECTORS))}.",
        )
    if spec.env_type is not None and spec.env_type not in ENV_TYPES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"EnvType {spec.env_type!r} is not one of {', '.join(ENV_TYPES)}.",
        )
    host = (spec.host or "").strip()
    if not host:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "Host is required.")
    if engine != "sqlite" and not spec.database_user:
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"DatabaseUser is required for {engine}.")
    port = spec.port if spec.port else DEFAULT_PORTS[engine]
    return replace(spec, instance_type=engine, host=host, port=port, sid=spec.sid or "")


def register_instance(
    s: Session,
    box: SecretBox,
    targets: TargetPolicy,
    tid: int,
    spec: InstanceSpec,
    *,
    actor: Caller | None,
) -> Instance:
    """Check the connection, store the instance (password encrypted) and collect its metadata.
    ``actor`` None is the local operator; who may name the DBA is :func:`dba.assign`'s."""
    spec = _check_spec(spec)
    assert spec.instance_type is not None and spec.host is not None and spec.port is not None
    endpoint = Endpoint(
        spec.instance_type,
        spec.host,
        spec.port,
        spec.database_user or "",
        spec.database_password or "",
        spec.sid or "",
    )
    version, schemas = read_metadata(endpoint, targets)
    _refuse_taken_address(s, tid, spec, keep=None)
    inst = Instance(tid=tid, alias=spec.alias or spec.host, server_version=version)
    dba.assign(s, actor, inst, spec.dba_user_id, new=True)
    _apply(inst, spec, box)
    s.add(inst)
    s.flush()
    store_schemas(s, inst, schemas, only=None)
    return inst


def _refuse_taken_address(s: Session, tid: int, spec: InstanceSpec, keep: int | None) -> None:
    """One instance per (host, port, SID) in a tenant; ``keep`` is the one being changed."""
    query = select(Instance.instance_id).where(
        Instance.tid == tid,
        Instance.host == spec.host,
        Instance.port == spec.port,
        Instance.sid == spec.sid,
    )
    if keep is not None:
        query = query.where(Instance.instance_id != keep)
    taken = s.scalars(query).first()
    if taken is not None:
        raise DmsError(
            ErrorCode.INSTANCE_ALREADY_EXISTS,
            f"{spec.host}:{spec.port} is already instance {taken}.",
        )


def _apply(inst: Instance, spec: InstanceSpec, box: SecretBox) -> None:
    plain = {
        "alias": spec.alias,
        "instance_type": spec.instance_type,
        "host": spec.host,
        "port": spec.port,
        "sid": spec.sid,
        "database_user": spec.database_user,
        "env_type": spec.env_type,
        "instance_source": spec.instance_source,
        "network_type": spec.network_type,
        "safe_rule": spec.safe_rule,
        "query_timeout": spec.query_timeout,
        "export_timeout": spec.export_timeout,
        "ddl_online": spec.ddl_online,
        "use_dsql": spec.use_dsql,
        "sell_sitd": spec.sell_sitd,
        "data_link_name": spec.data_link_name,
        "ecs_instance_id": spec.ecs_instance_id,
        "ecs_region": spec.ecs_region,
        "vpc_id": spec.vpc_id,
    }
    for name, value in plain.items():
        if value is not None:
            setattr(inst, name, value)
    if spec.database_password is not None:
        inst.password_enc = box.encrypt(spec.database_password) if spec.database_password else ""


def password_for(inst: Instance, to: InstanceSpec, given: str | None, box: SecretBox) -> str:
    """The password to log in to ``inst`` as ``to`` describes it: the one ``given``, else
    the stored one, but only while the host, port and user it was given for stay. A stored
    secret is never sent anywhere else: whoever may move an instance could otherwise point
    it at a server of theirs that asks for the password in clear."""
    if given is not None:
        return given
    stored = box.decrypt(inst.password_enc) if inst.password_enc else ""
    moved = [
        name
        for name, before, after in (
            ("Host", inst.host, to.host),
            ("Port", inst.port, to.port),
            ("DatabaseUser", inst.database_user, to.database_user),
        )
        if before != after
    ]
    if stored and moved:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"DatabasePassword is required when {' or '.join(moved)} change: the stored "
            "password is only sent to the address and user it was given for.",
        )
    return stored


def update_instance(
    s: Session,
    box: SecretBox,
    targets: TargetPolicy,
    tid: int,
    instance_id: int,
    spec: InstanceSpec,
    *,
    actor: Caller | None,
) -> Instance:
    inst = get_instance(s, tid, instance_id)
    merged = InstanceSpec(
        **{
            **{
                k: getattr(inst, k)
                for k in (
                    "alias",
                    "instance_type",
                    "host",
                    "port",
                    "sid",
                    "database_user",
                    "env_type",
                )
            },
            **{k: v for k, v in vars(spec).items() if v is not None},
        }
    )
    checked = _check_spec(merged)
    moved = any(
        getattr(spec, k) is not None
        for k in ("instance_type", "host", "port", "sid", "database_user", "database_password")
    )
    if moved:  # new address or credentials: prove them before keeping them
        password = password_for(inst, checked, spec.database_password, box)
        assert checked.instance_type and checked.host and checked.port is not None
        read_metadata(
            Endpoint(
                checked.instance_type,
                checked.host,
                checked.port,
                checked.database_user or "",
                password or "",
                checked.sid or "",
            ),
            targets,
        )
    _refuse_taken_address(s, tid, checked, keep=inst.instance_id)
    dba.assign(s, actor, inst, spec.dba_user_id, new=False)
    # the address as checked (host trimmed, port defaulted), not as typed
    _apply(
        inst,
        replace(
            spec,
            instance_type=checked.instance_type,
            host=checked.host if spec.host is not None else None,
            port=checked.port if spec.port is not None else None,
        ),
        box,
    )
    s.flush()
    return inst


def delete_instance(s: Session, tid: int, host: str, port: int, sid: str | None) -> None:
    inst = find_instance(s, tid, host, port, sid)
    s.execute(
        delete(Owner).where(
            or_(
                (Owner.resource_type == "INSTANCE") & (Owner.resource_id == inst.instance_id),
                (Owner.resource_type == "DATABASE")
                & Owner.resource_id.in_(
                    select(Database.db_id).where(Database.instance_id == inst.instance_id)
                ),
            )
        )
    )
    s.delete(inst)
    s.flush()


def set_throttle(
    s: Session,
    tid: int,
    instance_id: int,
    max_running: int | None,
    max_lag_seconds: float | None,
    replica_instance_id: int | None,
) -> dict[str, Any]:
    """When chunked changes on the instance hold back (``execution.pace.Limits``): more than
    ``max_running`` statements running, or a replica lagging more than ``max_lag_seconds``;
    ``replica_instance_id``: a registered instance replicating from this one, to watch. None
    leaves a setting as it was; the result is what is now set."""
    inst = get_instance(s, tid, instance_id)
    found: dict[str, Any] = dict(inst.throttle or {})
    if max_running is not None:
        if max_running < 1:
            raise DmsError(ErrorCode.INVALID_PARAMETER, "max_running must be at least 1.")
        found["max_running"] = max_running
    if max_lag_seconds is not None:
        if not 0 < max_lag_seconds <= 86400:
            raise DmsError(ErrorCode.INVALID_PARAMETER, "max_lag_seconds must be in (0, 86400].")
        found["max_lag_seconds"] = max_lag_seconds
    if replica_instance_id is not None:
        if replica_instance_id == instance_id:
            raise DmsError(ErrorCode.INVALID_PARAMETER, "An instance is not its own replica.")
        get_instance(s, tid, replica_instance_id)  # of the same tenant
        found["replica_instance_id"] = replica_instance_id
    inst.throttle = found
    return dict(found)


def ensure_registered(
    s: Session,
    box: SecretBox,
    targets: TargetPolicy,
    tid: int,
    spec: InstanceSpec,
    *,
    actor: Caller | None,
) -> Instance:
    """The instance at ``spec``'s address, registered now if it is not yet."""
    checked = _check_spec(spec)
    assert checked.host is not None and checked.port is not None
    found = registered_at(s, tid, checked.host, checked.port)
    return found or register_instance(s, box, targets, tid, spec, actor=actor)


def registered_at(s: Session, tid: int, host: str, port: int) -> Instance | None:
    return s.scalars(
        select(Instance)
        .where(Instance.tid == tid, Instance.host == host, Instance.port == port)
        .order_by(Instance.instance_id)
    ).first()


def add_by_address(
    s: Session,
    box: SecretBox,
    targets: TargetPolicy,
    tid: int,
    address: tuple[str, int],
    login: tuple[str, str],
    *,
    actor: Caller,
) -> Instance:
    """SimplyAddInstance: the instance at ``address``, registered now if it is not yet, as
    whatever engine answers there (``targets.detect``), with safe defaults: a dev instance
    named after its address, ``actor`` its DBA (which, named by themselves, grants no DBA
    rights: catalog/dba.py); ``login`` (user, password) is proven and its catalog read as
    RegisterInstance does."""
    host, port = address[0].strip(), address[1]
    if not host:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "Host is required.")
    check_allowed(Endpoint("", host, port), targets)  # before anything, even a lookup
    found = registered_at(s, tid, host, port)
    if found is not None:
        return found
    engine = engine_at(host, port, targets)
    spec = InstanceSpec(
        alias=f"{host}:{port}",
        instance_type=engine,
        host=host,
        port=port,
        database_user=login[0],
        database_password=login[1],
        env_type="dev",
        dba_user_id=actor.user_id,
    )
    return ensure_registered(s, box, targets, tid, spec, actor=actor)
