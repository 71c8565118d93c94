"""Finding the catalog's instances, databases, tables, columns and indexes, within a tenant:
a lookup by id or address (an id of another tenant is not found), and the paged listings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.store.models import Database, DbColumn, DbIndex, DbTable, Instance, Owner
from opendms.store.paging import Page, paged
from opendms.store.search import matches
from opendms.store.states import InstanceState


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


def get_database_on(s: Session, tid: int, db_id: int) -> tuple[Database, Instance]:
    """A database and its instance, in one query (the SQL console's every request)."""
    row = s.execute(
        select(Database, Instance)
        .join(Instance, Instance.instance_id == Database.instance_id)
        .where(Database.db_id == db_id, Database.tid == tid)
    ).first()
    if row is None:
        raise DmsError(ErrorCode.DATABASE_NOT_FOUND, f"Database {db_id} does not exist.")
    return row[0], row[1]


def get_table(s: Session, tid: int, table_id: int) -> tuple[DbTable, Database]:
    row = s.execute(
        select(DbTable, Database)
        .join(Database, Database.db_id == DbTable.db_id)
        .where(DbTable.table_id == table_id, Database.tid == tid)
    ).first()
    if row is None:
        raise DmsError(ErrorCode.TABLE_NOT_FOUND, f"Table {table_id} does not exist.")
    return row[0], row[1]


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


def search_name(db: Database, inst: Instance) -> str:
    """How DMS names a database for people: ``schema@host:port``."""
    return f"{db.schema_name}@{inst.host}:{inst.port}"


# ------------------------------------------------------------------ listings


def list_instances(
    s: Session,
    tid: int,
    *,
    search: str | None = None,
    db_type: str | None = None,
    env_type: str | None = None,
    source: str | None = None,
    state: InstanceState | None = None,
    net_type: str | None = None,
    page: int = 1,
    size: int = 10,
) -> Page:
    query = select(Instance).where(Instance.tid == tid)
    if search:
        query = query.where(matches(search, Instance.alias, Instance.host))
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
    if search:  # a PostgreSQL database's name (its catalog) finds its schemas too
        query = query.where(matches(search, Database.schema_name, Database.catalog_name))
    return paged(s, query.order_by(Database.db_id), page, size)


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
    if search:  # a PostgreSQL database's name (its catalog) finds its schemas too
        query = query.where(matches(search, Database.schema_name, Database.catalog_name))
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


def database_choices(s: Session, tid: int, limit: int) -> list[tuple[int, str, str, str]]:
    """The databases search_databases finds with no filter, at most ``limit`` of them, as
    (DbId, catalog, schema, the instance's alias or host): what a picker shows, in one query."""
    rows = s.execute(
        select(
            Database.db_id,
            Database.catalog_name,
            Database.schema_name,
            func.coalesce(func.nullif(Instance.alias, ""), Instance.host),
        )
        .join(Instance, Instance.instance_id == Database.instance_id)
        .where(Database.tid == tid)
        .order_by(Database.db_id)
        .limit(limit)
    ).all()
    return [(db_id, catalog, schema, where) for db_id, catalog, schema, where in rows]


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
        query = query.where(matches(search, DbTable.name))
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
