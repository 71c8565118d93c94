"""Reading an instance's metadata into the store. Remote metadata is fetched before the store
is written, and a sync keeps the ids of databases and tables that still exist (tickets refer
to them)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from opendms.catalog.connect import endpoint_of, read_metadata
from opendms.catalog.queries import get_database, get_instance
from opendms.identity.secrets import SecretBox
from opendms.store.models import Database, DbColumn, DbIndex, DbTable, Instance, utcnow
from opendms.store.states import DatabaseState
from opendms.targets.base import SchemaInfo, TableInfo, TargetPolicy


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
    version, schemas = read_metadata(endpoint_of(inst, box), targets)
    if not with_tables:
        schemas = [SchemaInfo(x.catalog, x.schema, x.encoding, []) for x in schemas]
    inst.server_version = version
    store_schemas(s, inst, schemas, only=None, with_tables=with_tables)
    return inst


def sync_database(
    s: Session, box: SecretBox, targets: TargetPolicy, tid: int, db_id: int
) -> Database:
    db = get_database(s, tid, db_id)
    inst = get_instance(s, tid, db.instance_id)
    _, schemas = read_metadata(
        endpoint_of(inst, box), targets, only=(db.catalog_name, db.schema_name)
    )
    store_schemas(s, inst, schemas, only=(db.catalog_name, db.schema_name))
    return db


def store_schemas(
    s: Session,
    inst: Instance,
    schemas: list[SchemaInfo],
    *,
    only: tuple[str, str] | None,
    with_tables: bool = True,
) -> None:
    """Write what was read of ``inst``; a database not read is marked gone, unless the read
    covered ``only`` one database and it is another."""
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
        db.state = DatabaseState.NORMAL
        db.synced_at = now
        if with_tables:
            _store_tables(s, db, info.tables)
    for key, db in existing.items():
        if key not in seen and (only is None or key == only):
            db.state = DatabaseState.NOT_EXIST  # kept: tickets may still point at it
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
                columns=list(i.columns),
                comment=i.comment,
            )
            for i in info.indexes
        )
    for gone in current.values():
        s.delete(gone)
