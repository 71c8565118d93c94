"""What one schema-change statement does, as the schema-change rules ask it: the table it
changes, the columns and keys it defines, the names it gives, and the table's definition
before and after it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlglot import exp

from opendms.schema.model import Column, Index, Table
from opendms.sql import ddl
from opendms.sql.overlay import command_words, renamed_tables
from opendms.sql.review_base import DDL, Subject
from opendms.sql.statements import table_name

MYSQL = frozenset({"mysql", "mariadb"})


def target(node: exp.Expression) -> exp.Table | None:
    """The table a schema change changes (the first, for DROP TABLE and TRUNCATE of several)."""
    if isinstance(node, exp.Create):
        made = ddl.index_of_create(node, "mysql")
        return made[0] if made is not None else ddl.created_table(node)
    if isinstance(node, exp.Alter):
        kind = str(node.args.get("kind") or "").upper()
        return node.this if kind == "TABLE" and isinstance(node.this, exp.Table) else None
    if isinstance(node, exp.Comment):
        if isinstance(node.this, exp.Table) and str(node.args.get("kind")).upper() == "TABLE":
            return node.this
        if isinstance(node.this, exp.Column):
            parts = [p for p in (node.this.args.get("db"), node.this.args.get("table")) if p]
            if parts:
                return exp.Table(
                    this=parts[-1].copy(), db=parts[0].copy() if len(parts) > 1 else None
                )
    return None


def name_of(s: Subject) -> str:
    def read() -> str:
        found = target(s.node)
        return table_name(found) if found is not None else ""

    return s.tables.memo(s.node, "name", read)


def actions(node: exp.Expression) -> list[exp.Expression]:
    return list(node.args.get("actions") or ()) if isinstance(node, exp.Alter) else []


def added_columns(node: exp.Expression) -> list[exp.ColumnDef]:
    """Columns a CREATE TABLE defines or an ALTER TABLE adds."""
    created = isinstance(node, exp.Create) and ddl.created_table(node) is not None
    if created and isinstance(node.this, exp.Schema):
        return [c for c in node.this.expressions if isinstance(c, exp.ColumnDef)]
    return [a for a in actions(node) if isinstance(a, exp.ColumnDef)]


def redefined_columns(node: exp.Expression, engine: str) -> list[tuple[str, exp.ColumnDef]]:
    """MySQL's MODIFY and CHANGE: (the column's name before, its new definition)."""
    out = []
    for a in actions(node):
        if isinstance(a, exp.ModifyColumn) and isinstance(a.this, exp.ColumnDef):
            old = ddl.ident(a.args.get("rename_from"), engine) or ddl.ident(a.this.this, engine)
            out.append((old, a.this))
    return out


def column_defs(node: exp.Expression, engine: str) -> list[exp.ColumnDef]:
    """Every column definition a statement writes: added ones and redefined ones."""
    return added_columns(node) + [c for _, c in redefined_columns(node, engine)]


def before(s: Subject) -> Table | None:
    name = name_of(s)
    return s.tables.definition(name) if name else None


def after(s: Subject) -> Table | None:
    """The changed table's definition as the statement leaves it; None if not known."""
    return s.tables.memo(s.node, "after", lambda: _after(s))


def read_column(s: Subject, cdef: exp.ColumnDef) -> Column:
    """A column definition of the statement, read (once)."""
    return s.tables.memo(cdef, "column", lambda: ddl.column_of(cdef, s.engine))


def _after(s: Subject) -> Table | None:
    node, engine = s.node, s.engine
    if isinstance(node, exp.Create):
        if ddl.created_table(node) is not None:
            return ddl.table_of(node, engine)
        made = ddl.index_of_create(node, engine)
        found = before(s)
        if made is None or found is None:
            return None
        return replace(found, indexes=(*found.indexes, made[1]))
    if isinstance(node, exp.Alter):
        found = before(s)
        return ddl.altered(found, node, engine) if found is not None else None
    return None


def added_indexes(s: Subject) -> tuple[Table, list[Index]] | None:
    """The table as the statement leaves it, and the indexes (the primary key as one named
    PRIMARY) the statement adds to it."""
    return s.tables.memo(s.node, "added_indexes", lambda: _added_indexes(s))


def _added_indexes(s: Subject) -> tuple[Table, list[Index]] | None:
    was, now = before(s), after(s)
    if now is None:
        return None
    had = {i.name.lower() for i in was.indexes} if was is not None else set()
    new = [i for i in now.indexes if i.name.lower() not in had]
    if now.primary_key and (was is None or tuple(was.primary_key) != tuple(now.primary_key)):
        new.insert(0, primary_index(now))
    if isinstance(s.node, exp.Create) and ddl.created_table(s.node) is not None:
        new = ([primary_index(now)] if now.primary_key else []) + list(now.indexes)
    return now, new


def primary_index(t: Table) -> Index:
    return Index(t.primary_key_name or "PRIMARY", tuple(t.primary_key), unique=True)


def every_index(t: Table) -> list[Index]:
    return ([primary_index(t)] if t.primary_key else []) + list(t.indexes)


@dataclass(frozen=True)
class Name:
    what: str  # table, column, index, constraint
    name: str  # as given
    quoted: bool


def _quoted(node: exp.Expression | None) -> bool:
    if isinstance(node, exp.Table | exp.Column):
        node = node.this
    return isinstance(node, exp.Identifier) and bool(node.args.get("quoted"))


def _name(what: str, node: exp.Expression | None) -> Iterator[Name]:
    if isinstance(node, exp.Expression) and node.name:
        yield Name(what, node.name, _quoted(node))


def _key_names(node: exp.Expression) -> Iterator[Name]:
    if isinstance(node, exp.Constraint):
        yield from _name("constraint", node.this)
    elif isinstance(node, exp.IndexColumnConstraint):
        yield from _name("index", node.this)
    elif isinstance(node, exp.UniqueColumnConstraint) and isinstance(node.this, exp.Schema):
        yield from _name("index", node.this.this)


def given_names(s: Subject) -> Iterator[Name]:
    """Every name the statement gives: a table it creates or renames to, columns it adds or
    renames to, indexes and constraints it names."""
    node = s.node
    created = ddl.created_table(node) if isinstance(node, exp.Create) else None
    if created is not None:
        yield from _name("table", created)
        if isinstance(node.this, exp.Schema):
            for item in node.this.expressions:
                if isinstance(item, exp.ColumnDef):
                    yield from _name("column", item.this)
                else:
                    yield from _key_names(item)
    elif isinstance(node, exp.Create) and isinstance(node.this, exp.Index):
        yield from _name("index", node.this.this)
    for a in actions(node):
        if isinstance(a, exp.ColumnDef):
            yield from _name("column", a.this)
        elif isinstance(a, exp.ModifyColumn) and a.args.get("rename_from") is not None:
            yield from _name("column", a.this.this)
        elif isinstance(a, exp.RenameColumn):
            yield from _name("column", a.args.get("to"))
        elif isinstance(a, exp.RenameIndex):
            yield from _name("index", a.args.get("to"))
        elif isinstance(a, exp.AlterRename):
            kind = str(node.args.get("kind") or "").upper()
            yield from _name("index" if kind == "INDEX" else "table", a.this)
        elif isinstance(a, exp.AddConstraint):
            for item in a.expressions:
                yield from _key_names(item)
    if isinstance(node, exp.Command):
        for _, new in renamed_tables(node):
            yield Name("table", new.rpartition(".")[2], False)


def is_ddl(s: Subject) -> bool:
    return s.kind in DDL


def opaque_words(s: Subject) -> list[str]:
    return command_words(s.node) if isinstance(s.node, exp.Command) else []


def effective_charset(column: Column, table: Table | None) -> str:
    return column.charset or (table.charset if table is not None else "")


def rows_note(t: Table | None) -> str:
    """', about N rows' when the catalog has an estimate."""
    return f" (about {t.rows:,} rows)" if t is not None and t.rows else ""


def existing(s: Subject) -> bool:
    """The changed table exists before the script (so it may hold rows)."""
    if isinstance(s.node, exp.Create) and ddl.created_table(s.node) is not None:
        return False  # CREATE TABLE makes a new, empty one (or, IF NOT EXISTS, nothing)
    name = name_of(s)
    return bool(name) and s.tables.exists(name) is True and not s.tables.created(name)


def column_label(table: str, column: str) -> str:
    return f"{table}.{column}" if table else column


def plain_column(name: str) -> bool:
    """A key part that names a column (not an expression such as lower(name))."""
    return re.fullmatch(r"[\w$]+", name) is not None


def references(s: Subject) -> Iterator[str]:
    """Tables the statement's foreign keys point to (not the table itself)."""
    for fk in s.node.find_all(exp.ForeignKey):
        ref = fk.args.get("reference")
        schema = ref.this if isinstance(ref, exp.Reference) else None
        if isinstance(schema, exp.Schema) and isinstance(schema.this, exp.Table):
            yield table_name(schema.this)
    for c in s.node.find_all(exp.ColumnConstraint):
        ref = c.args.get("kind")
        target = ref.this if isinstance(ref, exp.Reference) else None
        if isinstance(target, exp.Schema) and isinstance(target.this, exp.Table):
            yield table_name(target.this)
