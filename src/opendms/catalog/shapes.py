"""Table shapes and definitions from the catalog, for SQL review (``sql.tables.Catalog``).

A ticket's SQL runs in each of its databases, so an unqualified table exists for it only if
it exists in every one of them, and has the columns all of them have. A qualified name
(``schema.table``) is looked up in that schema on the ticket's instances. Each name is read
from the store once.

A table's definition (what the schema-change rules read) is the first database's: the
catalog keeps columns with their types, nullability, defaults, comments and auto-increment,
the primary key and indexes (unique or not), the table's engine, character set, comment and
row estimate. It does not keep foreign keys, checks, index prefix lengths or methods, nor
column character sets, so a definition read here has none of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.schema.model import Column, Index, Table
from opendms.sql.tables import TRANSACTIONAL_ENGINES, TableShape
from opendms.store.models import Database, DbColumn, DbIndex, DbTable, Instance
from opendms.store.states import DatabaseState


class CatalogShapes:
    def __init__(self, s: Session, databases: Sequence[Database]) -> None:
        self.s = s
        self.home = list(databases)
        self.instance_ids = sorted({d.instance_id for d in databases})
        self.cache: dict[str, TableShape | None] = {}
        self.definitions: dict[str, Table | None] = {}

    def table(self, name: str) -> TableShape | None:
        if name not in self.cache:
            self.cache[name] = self._read(name.lower())
        return self.cache[name]

    def walk_key(self, name: str) -> tuple[str, ...] | None:
        """The key a chunked change walks in table ``name`` (``sql.chunks.chunking``'s
        ``key_of``); None when the table is unknown or has none."""
        shape = self.table(name)
        return shape.walk_key or None if shape is not None else None

    def definition(self, name: str) -> Table | None:
        """Table ``name``'s definition as the catalog last synced it (see the module's note);
        None if some database of the ticket lacks it."""
        if name not in self.definitions:
            self.definitions[name] = self._define(name.lower())
        return self.definitions[name]

    def _db_ids(self, name: str) -> tuple[list[int], str]:
        """The databases ``name`` is looked up in, and its unqualified name."""
        schema, _, short = name.rpartition(".")
        if not schema:
            return [d.db_id for d in self.home], short
        found = self.s.scalars(
            select(Database.db_id).where(
                Database.instance_id.in_(self.instance_ids),
                func.lower(Database.schema_name) == schema,
                Database.state == DatabaseState.NORMAL,
            )
        )
        return list(found)[:1], short

    def _read(self, name: str) -> TableShape | None:
        db_ids, short = self._db_ids(name)
        shapes = [self._in(db_id, short) for db_id in db_ids]
        if not shapes or any(shape is None for shape in shapes):
            return None
        known = [shape for shape in shapes if shape is not None]
        columns = frozenset.intersection(*(shape.columns for shape in known))
        engines = {shape.engine for shape in known} - TRANSACTIONAL_ENGINES
        return TableShape(
            columns,
            known[0].primary_key,
            min(engines, default=known[0].engine),
            known[0].walk_key if all(k.walk_key == known[0].walk_key for k in known) else (),
            known[0].auto_increment
            if all(k.auto_increment == known[0].auto_increment for k in known)
            else "",
        )

    def _in(self, db_id: int, name: str) -> TableShape | None:
        found = self.s.execute(
            select(DbTable.table_id, DbTable.engine).where(
                DbTable.db_id == db_id, func.lower(DbTable.name) == name
            )
        ).first()
        if found is None:
            return None
        table_id, engine = found
        columns: dict[str, bool] = {}
        auto = ""
        for column, nullable, generated in self.s.execute(
            select(DbColumn.name, DbColumn.nullable, DbColumn.auto_increment).where(
                DbColumn.table_id == table_id
            )
        ):
            columns[column.lower()] = nullable
            auto = column.lower() if generated else auto
        primary: tuple[str, ...] = ()
        unique: list[tuple[str, ...]] = []
        for kind, listed in self.s.execute(
            select(DbIndex.index_type, DbIndex.columns)
            .where(DbIndex.table_id == table_id, DbIndex.index_type != "NORMAL")
            .order_by(DbIndex.index_id)
        ):
            key = tuple(listed)  # as spelled: PostgreSQL's "Id" is not id
            if kind == "PRIMARY":
                primary = key
            elif key and all(columns.get(c.lower()) is False for c in key):
                unique.append(key)
        walk = primary or min(unique, key=len, default=())
        lowered = tuple(c.lower() for c in primary)
        return TableShape(frozenset(columns), lowered, (engine or "").lower(), walk, auto)

    def _define(self, name: str) -> Table | None:
        db_ids, short = self._db_ids(name)
        if not db_ids or self.table(name) is None:
            return None
        found = self.s.execute(
            select(DbTable, Instance.instance_type)
            .join(Database, Database.db_id == DbTable.db_id)
            .join(Instance, Instance.instance_id == Database.instance_id)
            .where(DbTable.db_id == db_ids[0], func.lower(DbTable.name) == short)
        ).first()
        if found is None:
            return None
        row, engine = found
        columns = tuple(
            Column(
                name=c.name,
                type=model_type(c.column_type, engine),
                nullable=c.nullable,
                default=c.default_value,
                auto_increment=c.auto_increment,
                comment=c.description or "",
            )
            for c in self.s.scalars(
                select(DbColumn)
                .where(DbColumn.table_id == row.table_id)
                .order_by(DbColumn.position)
            )
        )
        primary: tuple[str, ...] = ()
        primary_name = ""
        indexes = []
        for index in self.s.scalars(
            select(DbIndex).where(DbIndex.table_id == row.table_id).order_by(DbIndex.index_id)
        ):
            if index.index_type == "PRIMARY":
                primary = tuple(index.columns)
                primary_name = "" if index.name == "PRIMARY" else index.name
            else:
                indexes.append(
                    Index(index.name, tuple(index.columns), unique=index.index_type == "UNIQUE")
                )
        return Table(
            name=row.name,
            columns=columns,
            primary_key=primary,
            primary_key_name=primary_name,
            indexes=tuple(sorted(indexes, key=lambda i: i.name)),
            comment=row.description or "",
            engine=(row.engine or "").lower(),
            charset=(row.encoding or "").lower() if engine in ("mysql", "mariadb") else "",
            rows=row.num_rows or 0,
            size_bytes=row.size_bytes or 0,
        )


def model_type(reported: str, engine: str) -> str:
    """A column type as the model spells it: lower-cased, PostgreSQL's ``character
    varying(n)`` and ``character(n)`` as ``varchar(n)`` and ``char(n)``."""
    text = (reported or "").lower()
    if engine == "postgresql":
        text = text.replace("character varying", "varchar")
        if text.startswith("character"):
            text = "char" + text[len("character") :]
    return text
