"""Instances and their metadata. Remote metadata is fetched before the store is written, and a
sync keeps the ids of databases and tables that still exist (tickets refer to them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from opendms.catalog import dba
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.secrets import SecretBox
from opendms.store.models import (
    Database,
    DbColumn,
    DbIndex,
    DbTable,
    Instance,
    Owner,
    User,
    utcnow,
)
from opendms.targets.base import (
    Connector,
    Endpoint,
    SchemaInfo,
    TableInfo,
    TargetError,
    TargetPolicy,
)
from opendms.targets.registry import CONNECTORS, DEFAULT_PORTS, connector_for

ENV_TYPES = ("product", "dev", "pre", "test", "sit", "uat", "pet", "stag")
OWNER_TYPES = ("INSTANCE", "DATABASE", "TABLE")


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


@dataclass(frozen=True)
class Page:
    total: int
    items: Sequence[Any]


# ------------------------------------------------------------------ lookups


def get_instance(s: Session, tid: int, instance_id: int) -> Instance:
    inst = s.get(Instance, instance_id)
    if inst is None or inst.tid != tid:
        raise DmsError(ErrorCode.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
    return inst


def find_instance(s: Session, tid: int, host: str, port: int, sid: str | None) -> Instance:
    query = select(Instance).where(
        Instance.tid == tid, Instance.host == host, Instance.port == port
    )
    if sid:
        query = query.where(Instance.sid == sid)
    inst = s.scalars(query.order_by(Instance.instance_id)).first()
    if inst is None:
        raise DmsError(ErrorCode.INSTANCE_NOT_FOUND, f"No instance at {host}:{port}.")
    return inst


def get_database(s: Session, tid: int, db_id: int) -> Database:
    db = s.get(Database, db_id)
    if db is None or db.tid != tid:
        raise DmsError(ErrorCode.DATABASE_NOT_FOUND, f"Database {db_id} does not exist.")
    return db


def get_table(s: Session, tid: int, table_id: int) -> tuple[DbTable, Database]:
    row = s.execute(
        select(DbTable, Database)
        .join(Database, Database.db_id == DbTable.db_id)
        .where(DbTable.table_id == table_id, Database.tid == tid)
    ).first()
    if row is None:
        raise DmsError(ErrorCode.TABLE_NOT_FOUND, f"Table {table_id} does not exist.")
    return row[0], row[1]


# ------------------------------------------------------------------ register / sync


def search_name(db: Database, inst: Instance) -> str:
    """How DMS names a database for people: ``schema@host:port``."""
    return f"{db.schema_name}@{inst.host}:{inst.port}"


def endpoint_of(inst: Instance, box: SecretBox) -> Endpoint:
    return Endpoint(
        engine=inst.instance_type,
        host=inst.host,
        port=inst.port,
        user=inst.database_user,
        password=box.decrypt(inst.password_enc) if inst.password_enc else "",
        database=inst.sid,
    )


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


def connector_of(endpoint: Endpoint, targets: TargetPolicy) -> Connector:
    """The connector for ``endpoint``, if this server may open it."""
    refusal = targets.refusal(endpoint)
    if refusal is not None:
        raise DmsError(ErrorCode.TARGET_NOT_ALLOWED, refusal)
    return connector_for(endpoint)


def _fetch(
    endpoint: Endpoint, targets: TargetPolicy, only: tuple[str, str] | None = None
) -> tuple[str, list[SchemaInfo]]:
    """Test the connection, within seconds (a port that speaks something else must not hold
    a request for minutes), then read the metadata."""
    connector = connector_of(
        replace(endpoint, connect_timeout=targets.test_connect_seconds), targets
    )
    try:
        return connector.ping(targets.test_read_seconds), connector.schemas(only)
    except TargetError as exc:
        code = ErrorCode.TARGET_AUTH_FAILED if exc.auth else ErrorCode.TARGET_CONNECT_FAILED
        raise DmsError(code, exc.message) from exc


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
    version, schemas = _fetch(endpoint, targets)
    _refuse_taken_address(s, tid, spec, keep=None)
    inst = Instance(tid=tid, alias=spec.alias or spec.host, server_version=version)
    dba.assign(s, actor, inst, spec.dba_user_id, new=True)
    _apply(inst, spec, box)
    s.add(inst)
    s.flush()
    _store_schemas(s, inst, schemas, only=None)
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
        _fetch(
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


def sync_instance(
    s: Session,
    box: SecretBox,
    targets: TargetPolicy,
    tid: int,
    instance_id: int,
    *,
    with_tables: bool = True,
) -> Instance:
    inst = get_instance(s, tid, instance_id)
    version, schemas = _fetch(endpoint_of(inst, box), targets)
    if not with_tables:
        schemas = [SchemaInfo(x.catalog, x.schema, x.encoding, []) for x in schemas]
    inst.server_version = version
    _store_schemas(s, inst, schemas, only=None, with_tables=with_tables)
    return inst


def sync_database(
    s: Session, box: SecretBox, targets: TargetPolicy, tid: int, db_id: int
) -> Database:
    db = get_database(s, tid, db_id)
    inst = get_instance(s, tid, db.instance_id)
    _, schemas = _fetch(endpoint_of(inst, box), targets, only=(db.catalog_name, db.schema_name))
    _store_schemas(s, inst, schemas, only=(db.catalog_name, db.schema_name))
    return db


def _store_schemas(
    s: Session,
    inst: Instance,
    schemas: list[SchemaInfo],
    *,
    only: tuple[str, str] | None,
    with_tables: bool = True,
) -> None:
    now = utcnow()
    existing = {
        (d.catalog_name, d.schema_name): d
        for d in s.scalars(select(Database).where(Database.instance_id == inst.instance_id))
    }
    seen: set[tuple[str, str]] = set()
    for info in schemas:
        key = (info.catalog, info.schema)
        seen.add(key)
        db = existing.get(key)
        if db is None:
            db = Database(
                instance_id=inst.instance_id,
                tid=inst.tid,
                catalog_name=info.catalog,
                schema_name=info.schema,
            )
            s.add(db)
            s.flush()
        db.encoding = info.encoding
        db.state = "NORMAL"
        db.synced_at = now
        if with_tables:
            _store_tables(s, db, info.tables)
    for key, db in existing.items():
        if key not in seen and (only is None or key == only):
            db.state = "NOT_EXIST"  # kept: tickets may still point at it
    inst.synced_at = now
    s.flush()


def _store_tables(s: Session, db: Database, tables: list[TableInfo]) -> None:
    current = {t.name: t for t in s.scalars(select(DbTable).where(DbTable.db_id == db.db_id))}
    for info in tables:
        row = current.pop(info.name, None)
        if row is None:
            row = DbTable(db_id=db.db_id, name=info.name)
            s.add(row)
            s.flush()
        row.table_type = info.table_type
        row.engine = info.engine
        row.encoding = info.encoding
        row.num_rows = info.rows
        row.size_bytes = info.size_bytes
        row.description = info.comment
        s.execute(delete(DbColumn).where(DbColumn.table_id == row.table_id))
        s.execute(delete(DbIndex).where(DbIndex.table_id == row.table_id))
        s.add_all(
            DbColumn(
                table_id=row.table_id,
                position=c.position,
                name=c.name,
                column_type=c.column_type,
                data_length=c.data_length,
                data_precision=c.data_precision,
                data_scale=c.data_scale,
                nullable=c.nullable,
                auto_increment=c.auto_increment,
                default_value=c.default_value,
                description=c.comment,
            )
            for c in info.columns
        )
        s.add_all(
            DbIndex(
                table_id=row.table_id,
                name=i.name,
                index_type=i.kind,
                columns=",".join(i.columns),
                comment=i.comment,
            )
            for i in info.indexes
        )
    for gone in current.values():
        s.delete(gone)


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
    found = s.scalars(
        select(Instance).where(
            Instance.tid == tid, Instance.host == checked.host, Instance.port == checked.port
        )
    ).first()
    return found or register_instance(s, box, targets, tid, spec, actor=actor)


# ------------------------------------------------------------------ listings


def paged(s: Session, query: Any, page: int, size: int) -> Page:
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    found = s.execute(query.offset((page - 1) * size).limit(size))
    # select(Entity) pages entities; select(Entity, Other, …) pages rows of them
    items = found.all() if len(query.column_descriptions) > 1 else found.scalars().all()
    return Page(total, items)


def list_instances(
    s: Session,
    tid: int,
    *,
    search: str | None = None,
    db_type: str | None = None,
    env_type: str | None = None,
    source: str | None = None,
    state: str | None = None,
    net_type: str | None = None,
    page: int = 1,
    size: int = 10,
) -> Page:
    query = select(Instance).where(Instance.tid == tid)
    if search:
        query = query.where(
            or_(
                Instance.alias.icontains(search, autoescape=True),
                Instance.host.icontains(search, autoescape=True),
            )
        )
    for column, value in (
        (Instance.instance_type, db_type and db_type.lower()),
        (Instance.env_type, env_type),
        (Instance.instance_source, source),
        (Instance.state, state),
        (Instance.network_type, net_type),
    ):
        if value:
            query = query.where(column == value)
    return paged(s, query.order_by(Instance.instance_id), page, size)


def list_databases(
    s: Session,
    tid: int,
    instance_id: int,
    *,
    search: str | None = None,
    page: int = 1,
    size: int = 10,
) -> Page:
    get_instance(s, tid, instance_id)
    query = select(Database).where(Database.instance_id == instance_id)
    if search:
        query = query.where(Database.schema_name.icontains(search, autoescape=True))
    return paged(s, query.order_by(Database.db_id), page, size)


def find_database(
    s: Session, tid: int, host: str, port: int, schema: str, sid: str | None
) -> Database:
    inst = find_instance(s, tid, host, port, sid)
    db = s.scalars(
        select(Database)
        .where(Database.instance_id == inst.instance_id, Database.schema_name == schema)
        .order_by(Database.db_id)
    ).first()
    if db is None:
        raise DmsError(ErrorCode.DATABASE_NOT_FOUND, f"No database {schema} on {host}:{port}.")
    return db


def search_databases(
    s: Session,
    tid: int,
    *,
    search: str | None = None,
    db_type: str | None = None,
    env_type: str | None = None,
    owner_user_id: int | None = None,
    page: int = 1,
    size: int = 10,
) -> Page:
    query = (
        select(Database)
        .join(Instance, Instance.instance_id == Database.instance_id)
        .where(Database.tid == tid)
    )
    if search:
        query = query.where(Database.schema_name.icontains(search, autoescape=True))
    if db_type:
        query = query.where(Instance.instance_type == db_type.lower())
    if env_type:
        query = query.where(Instance.env_type == env_type)
    if owner_user_id is not None:
        query = query.where(
            Database.db_id.in_(
                select(Owner.resource_id).where(
                    Owner.resource_type == "DATABASE", Owner.user_id == owner_user_id
                )
            )
        )
    return paged(s, query.order_by(Database.db_id), page, size)


def list_tables(
    s: Session,
    tid: int,
    db_id: int,
    *,
    search: str | None = None,
    page: int = 1,
    size: int = 10,
) -> Page:
    get_database(s, tid, db_id)
    query = select(DbTable).where(DbTable.db_id == db_id)
    if search:
        query = query.where(DbTable.name.icontains(search, autoescape=True))
    return paged(s, query.order_by(DbTable.name), page, size)


def list_columns(s: Session, tid: int, table_id: int) -> Sequence[DbColumn]:
    get_table(s, tid, table_id)
    return s.scalars(
        select(DbColumn).where(DbColumn.table_id == table_id).order_by(DbColumn.position)
    ).all()


def list_indexes(s: Session, tid: int, table_id: int) -> Sequence[DbIndex]:
    get_table(s, tid, table_id)
    return s.scalars(
        select(DbIndex).where(DbIndex.table_id == table_id).order_by(DbIndex.name)
    ).all()


# ------------------------------------------------------------------ owners


def set_owners(
    s: Session, tid: int, owner_type: str, resource_id: int, user_ids: Sequence[int]
) -> None:
    """Replace the owners of one instance, database or table."""
    if owner_type not in OWNER_TYPES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"OwnerType {owner_type!r} is not one of {', '.join(OWNER_TYPES)}.",
        )
    if owner_type == "INSTANCE":
        get_instance(s, tid, resource_id)
    elif owner_type == "DATABASE":
        get_database(s, tid, resource_id)
    else:
        get_table(s, tid, resource_id)
    for uid in user_ids:
        identity.member(s, tid, uid)
    s.execute(
        delete(Owner).where(Owner.resource_type == owner_type, Owner.resource_id == resource_id)
    )
    s.add_all(
        Owner(tid=tid, resource_type=owner_type, resource_id=resource_id, user_id=uid)
        for uid in dict.fromkeys(user_ids)
    )
    s.flush()


def no_logical_resources(kind: str) -> None:
    raise DmsError(
        ErrorCode.INVALID_PARAMETER, f"{kind}: logical databases and tables are not supported."
    )


def owners_of(s: Session, owner_type: str, resource_ids: Sequence[int]) -> dict[int, list[User]]:
    """Owners per resource id, for a page of resources in one query."""
    out: dict[int, list[User]] = {rid: [] for rid in resource_ids}
    if not resource_ids:
        return out
    rows = s.execute(
        select(Owner.resource_id, User)
        .join(User, User.user_id == Owner.user_id)
        .where(Owner.resource_type == owner_type, Owner.resource_id.in_(resource_ids))
        .order_by(User.user_id)
    ).all()
    for rid, user in rows:
        out[rid].append(user)
    return out
