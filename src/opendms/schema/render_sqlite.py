"""SQLite DDL, for the demo target: SQLite alters a table only by adding or dropping a column
(and its indexes by CREATE/DROP INDEX); anything else would rebuild the table, which a sync
does not do: it is refused, saying what."""

from __future__ import annotations

from opendms.schema.ddl import SyncPlan, Work, Writer, is_column
from opendms.schema.model import Column, Index, Table
from opendms.schema.translate import SchemaRefused


class SqliteWriter(Writer):
    def column(self, column: Column, *, key: bool = False) -> str:
        parts = [self.q(column.name), self.type_of(column)]
        if key:
            parts.append("PRIMARY KEY")  # INTEGER PRIMARY KEY: the rowid, numbered by SQLite
        if not column.nullable and not key:
            parts.append("NOT NULL")
        if column.generated:
            kind = "STORED" if column.generated_stored else "VIRTUAL"
            parts.append(f"GENERATED ALWAYS AS ({column.generated}) {kind}")
        elif column.default is not None:
            parts.append(f"DEFAULT {column.default}")
        return " ".join(parts)

    def create_index(self, index: Index, table: Table) -> str:
        parts = []
        for i, part in enumerate(index.columns):
            text = self.q(part) if is_column(part, table) else f"({part})"
            if i < len(index.descending) and index.descending[i]:
                text += " DESC"
            parts.append(text)
        unique = "UNIQUE " if index.unique else ""
        where = f" WHERE {index.where}" if index.where else ""
        return self.finish(
            f"CREATE {unique}INDEX {self.q(index.name)} ON {self.q(self.table)} "
            f"({', '.join(parts)}){where}"
        )

    def create(self, table: Table) -> SyncPlan:
        rowid = (
            len(table.primary_key) == 1
            and (column := table.column(table.primary_key[0])) is not None
            and column.auto_increment
        )
        body = [self.column(c, key=rowid and c.name == table.primary_key[0]) for c in table.columns]
        if table.primary_key and not rowid:
            body.append(f"PRIMARY KEY ({self.names(table.primary_key)})")
        body += [f"UNIQUE ({self.names(i.columns)})" for i in table.indexes if i.constraint]
        body += [self.foreign_key(f) for f in table.foreign_keys]  # SQLite adds none later
        body += [f"CONSTRAINT {self.q(c.name)} CHECK ({c.expression})" for c in table.checks]
        main = [self.finish(f"CREATE TABLE {self.q(self.table)} ({', '.join(body)})")]
        main += [self.create_index(i, table) for i in table.indexes if not i.constraint]
        return SyncPlan(main=tuple(main))

    def drop(self, table: Table) -> SyncPlan:
        return SyncPlan(main=(self.finish(f"DROP TABLE {self.q(table.name)}"),))

    def alter(self, work: Work) -> SyncPlan:
        refused = []
        if work.modified or work.rebuilt:
            refused.append("changing columns " + ", ".join(s.name for s, _, _ in work.modified))
        if work.primary_key:
            refused.append("its primary key")
        if work.drop_fks or work.add_fks:
            refused.append("foreign keys")
        if work.drop_checks or work.add_checks:
            refused.append("checks")
        if any(i.constraint for i in [*work.drop_indexes, *work.add_indexes]):
            refused.append("UNIQUE constraints")
        if refused:
            raise SchemaRefused(
                f"table {self.table}: SQLite cannot alter {'; '.join(refused)} without "
                "rebuilding the table"
            )
        main = [self.finish(f"DROP INDEX {self.q(i.name)}") for i in work.drop_indexes]
        main += [
            self.finish(f"ALTER TABLE {self.q(self.table)} DROP COLUMN {self.q(c.name)}")
            for c in work.dropped
        ]
        main += [
            self.finish(f"ALTER TABLE {self.q(self.table)} ADD COLUMN {self.column(c)}")
            for c in work.added
        ]
        main += [self.create_index(i, work.source) for i in work.add_indexes]
        return SyncPlan(main=tuple(main))
