"""Data permissions: QUERY / EXPORT / CORRECT (and LOGIN, PERF) on an instance, a database or
a table, each with an expiry. Stored one row per privilege: that row's id is the
``UserAccessId`` a revoke names. Later issues check them with :func:`holds`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from opendms.catalog.queries import get_database, get_instance, get_table
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.store.models import Database, DbTable, Instance, Owner, Permission, User, utcnow
from opendms.store.paging import Page
from opendms.store.search import matches
from opendms.store.states import DatabaseState

PERM_TYPES = ("QUERY", "EXPORT", "CORRECT", "LOGIN", "PERF")
DS_TYPES = ("INSTANCE", "DATABASE", "TABLE")


@dataclass(frozen=True)
class GrantTarget:
    """What a grant names: an instance, one of its databases, or a table in one."""

    ds_type: str
    instance_id: int
    db_id: int | None = None
    table_name: str = ""


def resolve_target(
    s: Session,
    tid: int,
    ds_type: str,
    *,
    instance_id: int | None = None,
    db_id: int | None = None,
    table_id: int | None = None,
    table_name: str | None = None,
) -> GrantTarget:
    """What a grant or revoke points at, checked to exist in the caller's tenant."""
    if ds_type not in DS_TYPES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"DsType {ds_type!r}: logical databases and tables are not supported; "
            f"use one of {', '.join(DS_TYPES)}.",
        )
    if ds_type == "INSTANCE":
        if instance_id is None:
            raise DmsError(
                ErrorCode.INVALID_PARAMETER, "InstanceId is required for DsType=INSTANCE."
            )
        return GrantTarget("INSTANCE", get_instance(s, tid, instance_id).instance_id)
    if ds_type == "DATABASE" or table_id is None:
        if db_id is None:
            raise DmsError(ErrorCode.INVALID_PARAMETER, f"DbId is required for DsType={ds_type}.")
        db = get_database(s, tid, db_id)
        if ds_type == "DATABASE":
            return GrantTarget("DATABASE", db.instance_id, db.db_id)
        if not table_name:
            raise DmsError(
                ErrorCode.INVALID_PARAMETER, "TableId or TableName is required for DsType=TABLE."
            )
        known = s.scalar(
            select(DbTable.table_id).where(DbTable.db_id == db.db_id, DbTable.name == table_name)
        )
        if known is None:
            raise DmsError(
                ErrorCode.TABLE_NOT_FOUND,
                f"No table {table_name[:128]!r} in database {db.db_id}; sync it if it is new.",
            )
        return GrantTarget("TABLE", db.instance_id, db.db_id, table_name)
    table, db = get_table(s, tid, table_id)
    return GrantTarget("TABLE", db.instance_id, db.db_id, table.name)


def _perm_types(text: str) -> list[str]:
    wanted = list(dict.fromkeys(p.strip().upper() for p in text.split(",") if p.strip()))
    bad = [p for p in wanted if p not in PERM_TYPES]
    if not wanted or bad:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"PermTypes must list some of {', '.join(PERM_TYPES)}; got {text[:64]!r}.",
        )
    return wanted


def _same_target(target: GrantTarget) -> list[object]:
    return [
        Permission.ds_type == target.ds_type,
        Permission.instance_id == target.instance_id,
        Permission.db_id.is_(None) if target.db_id is None else Permission.db_id == target.db_id,
        Permission.table_name == target.table_name,
    ]


def grant(
    s: Session, tid: int, user_id: int, target: GrantTarget, perm_types: str, expire_at: datetime
) -> list[Permission]:
    """Grant each privilege in ``perm_types``; granting again moves the expiry."""
    identity.member(s, tid, user_id)
    out = []
    for perm in _perm_types(perm_types):
        row = s.scalars(
            select(Permission).where(
                Permission.tid == tid,
                Permission.user_id == user_id,
                Permission.perm_type == perm,
                *_same_target(target),  # type: ignore[arg-type]
            )
        ).first()
        if row is None:
            row = Permission(
                tid=tid,
                user_id=user_id,
                ds_type=target.ds_type,
                instance_id=target.instance_id,
                db_id=target.db_id,
                table_name=target.table_name,
                perm_type=perm,
            )
            s.add(row)
        row.expire_at = expire_at
        out.append(row)
    s.flush()
    return out


def revoke(s: Session, tid: int, user_id: int, user_access_id: int, perm_types: str) -> int:
    wanted = _perm_types(perm_types)
    gone = len(
        s.execute(
            delete(Permission)
            .where(
                Permission.id == user_access_id,
                Permission.tid == tid,
                Permission.user_id == user_id,
                Permission.perm_type.in_(wanted),
            )
            .returning(Permission.id)
        ).all()
    )
    if not gone:
        raise DmsError(
            ErrorCode.PERMISSION_NOT_FOUND,
            f"User {user_id} has no grant {user_access_id} of {', '.join(wanted)}.",
        )
    return gone


def holds(
    s: Session, tid: int, user_id: int, db_id: int, perm_type: str, table: str | None = None
) -> bool:
    """Whether the user holds ``perm_type`` on the database (or on ``table`` in it) now."""
    db = s.get(Database, db_id)
    if db is None or db.tid != tid:
        return False
    scopes = [
        and_(Permission.ds_type == "INSTANCE", Permission.instance_id == db.instance_id),
        and_(Permission.ds_type == "DATABASE", Permission.db_id == db_id),
    ]
    if table is not None:
        scopes.append(
            and_(
                Permission.ds_type == "TABLE",
                Permission.db_id == db_id,
                Permission.table_name == table,
            )
        )
    found = s.scalar(
        select(func.count())
        .select_from(Permission)
        .where(
            Permission.tid == tid,
            Permission.user_id == user_id,
            Permission.perm_type == perm_type,
            Permission.expire_at > utcnow(),
            or_(*scopes),
        )
    )
    return bool(found)


def holds_named(
    s: Session, tid: int, user_id: int, db: Database, perm_type: str, name: str
) -> bool:
    """Whether the user holds ``perm_type`` on the table a statement run in ``db`` names:
    ``name`` as :func:`opendms.sql.statements.table_name` gives it ("t" or "schema.t",
    lower-cased; "" for the database itself). A schema-qualified name is looked up among the
    same instance's databases; the catalog's spelling of the table is what grants name."""
    if not name:
        return holds(s, tid, user_id, db.db_id, perm_type)
    schema, _, short = name.rpartition(".")
    db_id = db.db_id
    if schema and schema != db.schema_name.lower():
        other = s.scalar(
            select(Database.db_id).where(
                Database.instance_id == db.instance_id,
                func.lower(Database.schema_name) == schema,
                Database.state == DatabaseState.NORMAL,
            )
        )
        if other is None:
            return False
        db_id = other
    real = s.scalar(
        select(DbTable.name).where(DbTable.db_id == db_id, func.lower(DbTable.name) == short)
    )
    return holds(s, tid, user_id, db_id, perm_type, real or short)


OVERSEERS = frozenset({Role.ADMIN, Role.SECURITY_ADMIN, Role.DBA})


def require_overseer(
    caller: Caller, *, db_id: int | None = None, session: Session | None = None
) -> None:
    """Other people's privileges are for administrators, DBAs and the database's owners."""
    if OVERSEERS & set(caller.roles):
        return
    if db_id is not None and session is not None:
        owned = session.scalar(
            select(func.count())
            .select_from(Owner)
            .where(
                Owner.resource_type == "DATABASE",
                Owner.resource_id == db_id,
                Owner.user_id == caller.user_id,
            )
        )
        if owned:
            return
    raise DmsError(
        ErrorCode.PERMISSION_DENIED,
        "Only administrators, DBAs and the database's owners see other users' privileges.",
    )


@dataclass
class Grouped:
    """The privileges one user holds on one resource (one ``UserPermission`` on the wire)."""

    user: User
    ds_type: str
    instance: Instance
    database: Database | None
    table_name: str
    table_id: int | None
    details: list[Permission] = field(default_factory=list)


def _group(s: Session, rows: Sequence[Permission]) -> list[Grouped]:
    groups: dict[tuple[object, ...], Grouped] = {}
    for row in rows:
        key = (row.user_id, row.ds_type, row.instance_id, row.db_id, row.table_name)
        if key not in groups:
            user = s.get(User, row.user_id)
            inst = s.get(Instance, row.instance_id)
            db = s.get(Database, row.db_id) if row.db_id is not None else None
            table_id = None
            if db is not None and row.table_name:
                table_id = s.scalar(
                    select(DbTable.table_id).where(
                        DbTable.db_id == db.db_id, DbTable.name == row.table_name
                    )
                )
            assert user is not None and inst is not None
            groups[key] = Grouped(user, row.ds_type, inst, db, row.table_name, table_id)
        groups[key].details.append(row)
    return list(groups.values())


def _paged_groups(s: Session, query: object, page: int, size: int) -> Page:
    rows = s.scalars(query).all()  # type: ignore[call-overload]
    groups = _group(s, rows)
    return Page(len(groups), groups[(page - 1) * size : page * size])


def list_for_user(
    s: Session,
    tid: int,
    user_id: int,
    *,
    level: str | None = None,
    search: str | None = None,
    db_type: str | None = None,
    env_type: str | None = None,
    page: int = 1,
    size: int = 10,
) -> Page:
    identity.member(s, tid, user_id)
    query = (
        select(Permission)
        .join(Instance, Instance.instance_id == Permission.instance_id)
        .outerjoin(Database, Database.db_id == Permission.db_id)
        .where(Permission.tid == tid, Permission.user_id == user_id)
    )
    if level == "COLUMN":  # there are no column privileges (yet): nothing at that level
        return Page(0, [])
    if level in DS_TYPES:
        query = query.where(Permission.ds_type == level)
    if search:
        query = query.where(
            matches(search, Database.schema_name, Permission.table_name, Instance.alias)
        )
    if db_type:
        query = query.where(Instance.instance_type == db_type.lower())
    if env_type:
        query = query.where(Instance.env_type == env_type)
    return _paged_groups(s, query.order_by(Permission.id), page, size)


def list_for_database(
    s: Session,
    tid: int,
    db_id: int,
    *,
    level: str | None = None,
    user_name: str | None = None,
    page: int = 1,
    size: int = 10,
) -> Page:
    get_database(s, tid, db_id)
    query = (
        select(Permission)
        .join(User, User.user_id == Permission.user_id)
        .where(Permission.tid == tid, Permission.db_id == db_id)
    )
    if level == "COLUMN":  # there are no column privileges (yet): nothing at that level
        return Page(0, [])
    if level in DS_TYPES:
        query = query.where(Permission.ds_type == level)
    if user_name:
        query = query.where(matches(user_name, User.nick_name))
    return _paged_groups(s, query.order_by(Permission.user_id, Permission.id), page, size)
