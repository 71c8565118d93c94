"""MySQL and MariaDB DDL: one ALTER TABLE per table for what it changes, with the foreign
keys it drops in a statement before and those it adds in one after."""

from __future__ import annotations

import re

from opendms.schema.ddl import SyncPlan, Work, Writer, is_column
from opendms.schema.model import Column, ForeignKey, Index, Table
from opendms.schema.translate import SchemaRefused

# A default the server takes as it is; any other expression goes in parentheses (MySQL 8
# requires them for expression defaults; MariaDB accepts them).
_LITERAL = re.compile(
    r"^(?:'(?:[^'\\]|''|\\.)*'|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[bBxX]'[0-9a-fA-F]*'|NULL|TRUE|FALSE"
    r"|CURRENT_TIMESTAMP(?:\(\d*\))?)$",
    re.IGNORECASE,
)


class MysqlWriter(Writer):
    def column(self, column: Column) -> str:
        parts = [self.q(column.name), self.type_of(column)]
        if column.charset:
            parts.append(f"CHARACTER SET {column.charset}")
        if column.collation:
            parts.append(f"COLLATE {column.collation}")
        if column.generated:
            kind = "STORED" if column.generated_stored else "VIRTUAL"
            parts.append(f"GENERATED ALWAYS AS ({column.generated}) {kind}")
        if not column.generated:
            parts.append("NULL" if column.nullable else "NOT NULL")
        elif not column.nullable:
            parts.append("NOT NULL")  # MySQL's; MariaDB takes no NULL or NOT NULL here
        if column.default is not None and not column.generated:
            default = column.default
            parts.append(f"DEFAULT {default if _LITERAL.match(default) else f'({default})'}")
        if column.on_update:
            parts.append(f"ON UPDATE {column.on_update}")
        if column.auto_increment:
            parts.append("AUTO_INCREMENT")
        if column.comment:
            parts.append(f"COMMENT {self.lit(column.comment)}")
        return " ".join(parts)

    def index(self, index: Index, table: Table) -> str:
        """An index as CREATE TABLE lists it and ALTER TABLE … ADD adds it; a MySQL 8
        functional key part is its expression in parentheses, as the reader keeps it."""
        kind = {"fulltext": "FULLTEXT INDEX", "spatial": "SPATIAL INDEX"}.get(
            index.method, "UNIQUE INDEX" if index.unique else "INDEX"
        )
        parts = []
        for i, name in enumerate(index.columns):
            part = self.q(name) if is_column(name, table) else name
            if i < len(index.lengths) and index.lengths[i] is not None:
                part += f"({index.lengths[i]})"
            if i < len(index.descending) and index.descending[i]:
                part += " DESC"
            parts.append(part)
        text = f"{kind} {self.q(index.name)} ({', '.join(parts)})"
        if index.method == "hash":
            text += " USING HASH"
        if index.comment:
            text += f" COMMENT {self.lit(index.comment)}"
        return text

    def options(self, table: Table, which: tuple[str, ...]) -> list[str]:
        out = []
        if "engine" in which and table.engine:
            out.append(f"ENGINE={table.engine}")
        if "charset" in which and table.charset:
            out.append(f"DEFAULT CHARSET={table.charset}")
        if "collation" in which and table.collation:
            out.append(f"COLLATE={table.collation}")
        return out

    def create(self, table: Table) -> SyncPlan:
        body = [self.column(c) for c in table.columns]
        if table.primary_key:
            body.append(f"PRIMARY KEY ({self.names(table.primary_key)})")
        body += [self.index(i, table) for i in table.indexes]
        body += [f"CONSTRAINT {self.q(c.name)} CHECK ({c.expression})" for c in table.checks]
        options = self.options(table, ("engine", "charset", "collation"))
        if table.comment:
            options.append(f"COMMENT={self.lit(table.comment)}")
        text = f"CREATE TABLE {self.q(table.name)} ({', '.join(body)})"
        if options:
            text += " " + " ".join(options)
        return SyncPlan(main=(self.finish(text),), after=self._add_keys(table.foreign_keys))

    def drop(self, table: Table) -> SyncPlan:
        return SyncPlan(main=(self.finish(f"DROP TABLE {self.q(table.name)}"),))

    def _add_keys(self, keys: tuple[ForeignKey, ...] | list[ForeignKey]) -> tuple[str, ...]:
        if not keys:
            return ()
        clauses = ", ".join(f"ADD {self.foreign_key(f)}" for f in keys)
        return (self.finish(f"ALTER TABLE {self.q(self.table)} {clauses}"),)

    def alter(self, work: Work) -> SyncPlan:
        source, target = work.source, work.target
        for mine, theirs, attributes in work.modified:
            if "generated" in attributes and not mine.generated and not theirs.generated_stored:
                raise SchemaRefused(
                    f"table {self.table}, column {mine.name}: a VIRTUAL generated column "
                    f"cannot become a stored one in place on {self.engine}; made again, it "
                    "would lose the values it shows"
                )
        before: tuple[str, ...] = ()
        if work.drop_fks:
            drops = ", ".join(f"DROP FOREIGN KEY {self.q(f.name)}" for f in work.drop_fks)
            before = (self.finish(f"ALTER TABLE {self.q(self.table)} {drops}"),)
        # MySQL names a CHECK's drop so; MariaDB (and MySQL 8.0.19+) DROP CONSTRAINT
        verb = "DROP CHECK" if self.engine == "mysql" else "DROP CONSTRAINT"
        clauses = [f"{verb} {self.q(c.name)}" for c in work.drop_checks]
        clauses += [f"DROP INDEX {self.q(i.name)}" for i in work.drop_indexes]
        if work.primary_key and target.primary_key:
            clauses.append("DROP PRIMARY KEY")
        dropped = [c.name for c in work.dropped]
        dropped += [c.name for c in source.columns if work.key(c.name) in work.rebuilt]
        clauses += [f"DROP COLUMN {self.q(name)}" for name in dropped]
        clauses += self._columns(work)
        if work.primary_key and source.primary_key:
            clauses.append(f"ADD PRIMARY KEY ({self.names(source.primary_key)})")
        clauses += [f"ADD {self.index(i, source)}" for i in work.add_indexes]
        clauses += [
            f"ADD CONSTRAINT {self.q(c.name)} CHECK ({c.expression})" for c in work.add_checks
        ]
        clauses += self.options(source, work.options)
        if work.comment:
            clauses.append(f"COMMENT={self.lit(source.comment)}")
        main: tuple[str, ...] = ()
        if clauses:
            main = (self.finish(f"ALTER TABLE {self.q(self.table)} {', '.join(clauses)}"),)
        return SyncPlan(before, main, self._add_keys(work.add_fks))

    def _columns(self, work: Work) -> list[str]:
        """Columns added, changed and moved, in the source's order, each placed after the
        one before it there: MySQL applies an ALTER's clauses one after another, so every
        column placed lands right after its predecessor, which already stands where it
        should."""
        out = []
        added = {work.key(c.name) for c in work.added} | work.rebuilt
        previous = ""
        for column in work.source.columns:
            key = work.key(column.name)
            place = f" AFTER {self.q(previous)}" if previous else " FIRST"
            previous = column.name
            if key in added:
                out.append(f"ADD COLUMN {self.column(column)}{place}")
            elif key in work.moved:
                out.append(f"MODIFY COLUMN {self.column(column)}{place}")
            elif work.modified_column(column.name):
                out.append(f"MODIFY COLUMN {self.column(column)}")
        return out
