"""What the assistant may show a caller of one database: its engine, and the tables the
caller may read there with their columns and indexes from the catalog.

The console's rule decides what "may read" means: administrators and the instance's DBA
read every table; anyone else the tables they hold QUERY on
(``catalog.permissions.holds_named``), all of them with QUERY on the database or instance.
Nothing here reads the target database itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.catalog import dba, permissions, queries
from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.sql.statements import DIALECTS
from opendms.store.models import Database, DbColumn, DbIndex, DbTable, Instance
from opendms.store.states import DatabaseState

_BATCH = 500  # table ids per IN (...) list


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    comment: str = ""


@dataclass(frozen=True)
class Index:
    name: str
    kind: str  # PRIMARY, UNIQUE, NORMAL
    columns: tuple[str, ...]  # in key order, as the database spells them


@dataclass(frozen=True)
class TableMeta:
    name: str  # as the database spells it
    comment: str
    rows: int
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]

    def has_column(self, name: str) -> bool:
        return any(c.name.lower() == name.lower() for c in self.columns)

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Scope:
    db: Database
    inst: Instance
    tables: dict[str, TableMeta]  # lower-cased name -> the table; only those readable
    everything: bool  # the caller may read every table of the database

    @property
    def engine(self) -> str:
        return self.inst.instance_type

    @property
    def dialect(self) -> str:
        return DIALECTS.get(self.engine, "mysql")

    def table(self, name: str) -> TableMeta | None:
        """A table as a statement names it ("t" or "schema.t"): only this database's."""
        schema, _, short = name.lower().rpartition(".")
        if schema and schema != self.db.schema_name.lower():
            return None
        return self.tables.get(short)


def _may_read(s: Session, caller: Caller, db: Database, inst: Instance) -> bool:
    return (
        caller.is_admin
        or dba.is_instance_dba(inst, caller.user_id)
        or permissions.holds_named(s, caller.tid, caller.user_id, db, "QUERY", "")
    )


def _batches(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _BATCH):
        yield ids[i : i + _BATCH]


def scope_of(s: Session, caller: Caller, db_id: int) -> Scope:
    """The database ``db_id`` as ``caller`` may see it; DatabaseNotFound as the console says
    it when the database is not there (or not in the caller's tenant)."""
    db = queries.get_database(s, caller.tid, db_id)
    if db.state != DatabaseState.NORMAL:
        raise DmsError(ErrorCode.DATABASE_NOT_FOUND, f"Database {db_id} is {db.state}.")
    inst = queries.get_instance(s, caller.tid, db.instance_id)
    everything = _may_read(s, caller, db, inst)
    rows = s.scalars(select(DbTable).where(DbTable.db_id == db.db_id).order_by(DbTable.name))
    found = [
        t
        for t in rows
        if everything
        or permissions.holds_named(s, caller.tid, caller.user_id, db, "QUERY", t.name.lower())
    ]
    ids = [t.table_id for t in found]
    columns: dict[int, list[Column]] = {i: [] for i in ids}
    indexes: dict[int, list[Index]] = {i: [] for i in ids}
    for batch in _batches(ids):
        for c in s.scalars(
            select(DbColumn)
            .where(DbColumn.table_id.in_(batch))
            .order_by(DbColumn.table_id, DbColumn.position)
        ):
            columns[c.table_id].append(Column(c.name, c.column_type, c.nullable, c.description))
        for x in s.scalars(
            select(DbIndex).where(DbIndex.table_id.in_(batch)).order_by(DbIndex.name)
        ):
            key = tuple(x.columns)
            indexes[x.table_id].append(Index(x.name, x.index_type, key))
    tables = {
        t.name.lower(): TableMeta(
            t.name,
            t.description,
            t.num_rows,
            tuple(columns[t.table_id]),
            tuple(indexes[t.table_id]),
        )
        for t in found
    }
    return Scope(db, inst, tables, everything)
