"""Table shapes from the catalog, for SQL review (``sql.review.Catalog``).

A ticket's SQL runs in each of its databases, so an unqualified table exists for it only if
it exists in every one of them, and has the columns all of them have. A qualified name
(``schema.table``) is looked up in that schema on the ticket's instances. Each name is read
from the store once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.sql.review import TRANSACTIONAL_ENGINES, TableShape
from opendms.store.models import Database, DbColumn, DbIndex, DbTable
from opendms.store.states import DatabaseState


class CatalogShapes:
    def __init__(self, s: Session, databases: Sequence[Database]) -> None:
        self.s = s
        self.home = list(databases)
        self.instance_ids = sorted({d.instance_id for d in databases})
        self.cache: dict[str, TableShape | None] = {}

    def table(self, name: str) -> TableShape | None:
        if name not in self.cache:
            self.cache[name] = self._read(name.lower())
        return self.cache[name]

    def walk_key(self, name: str) -> tuple[str, ...] | None:
        """The key a chunked change walks in table ``name`` (``sql.chunks.chunking``'s
        ``key_of``); None when the table is unknown or has none."""
        shape = self.table(name)
        return shape.walk_key or None if shape is not None else None

    def _read(self, name: str) -> TableShape | None:
        schema, _, short = name.rpartition(".")
        if schema:
            db_ids = list(
                self.s.scalars(
                    select(Database.db_id).where(
                        Database.instance_id.in_(self.instance_ids),
                        func.lower(Database.schema_name) == schema,
                        Database.state == DatabaseState.NORMAL,
                    )
                )
            )[:1]
        else:
            db_ids = [d.db_id for d in self.home]
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
