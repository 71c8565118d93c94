"""Review rules for what a schema change may touch: statements OpenDMS cannot read or does
not review, CREATE TABLE … AS SELECT, and the tables, columns and indexes a statement needs
(or must not find) as the statements before it leave them (``Subject.tables``, an
:class:`~opendms.sql.overlay.Overlay` over the catalog)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from opendms.schema.model import Table
from opendms.sql import ddl
from opendms.sql.overlay import comment_target, renamed_tables, validates
from opendms.sql.review_base import DDL, Subject, rule
from opendms.sql.review_ddl_base import (
    MYSQL,
    actions,
    after,
    before,
    column_label,
    name_of,
    opaque_words,
    plain_column,
    redefined_columns,
    references,
    target,
)
from opendms.sql.statements import table_name

# CREATE / ALTER / DROP of these are what the schema-change rules read; of anything else
# (views, routines, triggers, sequences, types, schemas, users) they read nothing.
REVIEWED_OBJECTS = frozenset({"TABLE", "INDEX"})


# ------------------------------------------------------------------ what can be reviewed


@rule(
    "DDL_NOT_PARSED",
    "WARNING",
    "A schema change OpenDMS cannot read (its parser keeps it as text): nothing checked it.",
    kinds=DDL,
)
def _not_parsed(s: Subject) -> Iterator[str]:
    understood = isinstance(s.node, exp.Command) and (renamed_tables(s.node) or validates(s.node))
    if isinstance(s.node, exp.Command) and not understood:
        words = " ".join(opaque_words(s)[:4])
        yield (
            f"OpenDMS cannot read '{words} …' (its parser keeps this form as plain text): no "
            "review rule checked it, and the rules that need the table's definition stay "
            "silent for the rest of the script. Review it by hand, or write it in a form "
            "OpenDMS reads (one ADD COLUMN per column; ALGORITHM and LOCK left out)."
        )


@rule(
    "DDL_OBJECT_NOT_REVIEWED",
    "WARNING",
    "CREATE/ALTER/DROP of a view, routine, trigger, sequence, schema…: not a table change, "
    "so no rule reads it.",
    kinds=DDL,
)
def _object_not_reviewed(s: Subject) -> Iterator[str]:
    if not isinstance(s.node, exp.Create | exp.Alter | exp.Drop):
        return
    what = str(s.node.args.get("kind") or "").upper()
    if what and what not in REVIEWED_OBJECTS:
        found = s.node.this if not isinstance(s.node, exp.Drop) else None
        tables = s.node.args.get("tables") if isinstance(s.node, exp.Drop) else None
        named = found or (tables[0] if tables else None)
        label = f" {named.sql()}" if isinstance(named, exp.Table) else ""
        yield (
            f"{s.kind} {what}{label} is not a change to a table, column or index: no review "
            "rule reads it, and a schema design cannot compare it between stages. Review it by "
            "hand."
        )


@rule(
    "CREATE_TABLE_AS_SELECT",
    "ERROR",
    "CREATE TABLE … AS SELECT: a table without keys, filled in one statement.",
    kinds=frozenset({"CREATE"}),
)
def _create_as_select(s: Subject) -> Iterator[str]:
    created = ddl.created_table(s.node)
    if created is not None and isinstance(s.node.args.get("expression"), exp.Query):
        gtid = ", and MySQL refuses it under GTID replication" if s.engine in MYSQL else ""
        yield (
            f"CREATE TABLE {table_name(created)} AS SELECT copies rows into a table without a "
            f"primary key or indexes in one long statement that holds locks on what it "
            f"reads{gtid}. Create the table with its columns and keys, then fill it with a "
            "data change ticket (INSERT … SELECT)."
        )


# ------------------------------------------------------------------ what must (not) exist


def _referenced_tables(s: Subject) -> Iterator[tuple[str, bool]]:
    """Tables the statement needs to exist before it runs, and whether it says IF EXISTS."""
    node = s.node
    if isinstance(node, exp.Create):
        if ddl.index_of_create(node, s.engine) is not None:
            found = target(node)
            if found is not None:
                yield table_name(found), False
        like = node.args.get("properties")
        for p in like.expressions if isinstance(like, exp.Properties) else ():
            if isinstance(p, exp.LikeProperty) and isinstance(p.this, exp.Table):
                yield table_name(p.this), False
    elif isinstance(node, exp.Alter) and target(node) is not None:
        yield name_of(s), bool(node.args.get("exists"))
    elif isinstance(node, exp.Drop) and str(node.args.get("kind") or "").upper() == "TABLE":
        for t in node.args.get("tables") or ():
            if isinstance(t, exp.Table):
                yield table_name(t), bool(node.args.get("exists"))
    elif isinstance(node, exp.Drop) and isinstance(node.args.get("cluster"), exp.OnProperty):
        on = node.args["cluster"].this
        if isinstance(on, exp.Table):
            yield table_name(on), False
    elif isinstance(node, exp.TruncateTable):
        for t in node.expressions:
            if isinstance(t, exp.Table):
                yield table_name(t), False
    elif isinstance(node, exp.Comment) and target(node) is not None:
        yield name_of(s), False
    elif isinstance(node, exp.Command):
        for old, _ in renamed_tables(node):
            yield old, False
    for ref in references(s):
        yield ref, False


@rule(
    "TABLE_NOT_FOUND",
    "ERROR",
    "A schema change to a table the database does not have (counting what the script has "
    "created, renamed and dropped so far).",
    kinds=DDL,
)
def _table_not_found(s: Subject) -> Iterator[str]:
    own = name_of(s) if ddl.created_table(s.node) is not None else ""
    seen = set()
    for name, if_exists in _referenced_tables(s):
        if name in seen or if_exists or name == own:
            continue
        seen.add(name)
        if s.tables.exists(name) is False:
            earlier = " (the script dropped or renamed it earlier)" if s.tables.gone(name) else ""
            yield (
                f"Table {name} does not exist on this database{earlier}: create it first (in "
                "this script or an earlier stage), or correct the name."
            )


def _missing_columns(s: Subject) -> Iterator[tuple[str, str]]:
    """(table, column) pairs the statement needs and the table does not have."""
    table = name_of(s)
    was, now = before(s), after(s)
    node = s.node
    if isinstance(node, exp.Create) and ddl.created_table(node) is not None and now is not None:
        for key in [now.primary_key, *(i.columns for i in now.indexes)]:
            for c in key:
                if plain_column(c) and now.column(c) is None:
                    yield table, c
        for fk in now.foreign_keys:
            for c in fk.columns:
                if now.column(c) is None:
                    yield table, c
        return
    if was is None:
        return
    if isinstance(node, exp.Create) and now is not None:  # CREATE INDEX
        for c in now.indexes[-1].columns:
            if plain_column(c) and was.column(c) is None:
                yield table, c
        return
    if isinstance(node, exp.Comment) and isinstance(node.this, exp.Column):
        _, column = comment_target(node.this)
        if was.column(column) is None:
            yield table, column
        return
    yield from _missing_in_alter(s, table, was, now)


def _missing_in_alter(
    s: Subject, table: str, was: Table, now: Table | None
) -> Iterator[tuple[str, str]]:
    engine = s.engine
    for old, _ in redefined_columns(s.node, engine):
        if was.column(old) is None:
            yield table, old
    for a in actions(s.node):
        if isinstance(a, exp.Drop) and str(a.args.get("kind")).upper() == "COLUMN":
            if not a.args.get("exists"):
                for c in a.args.get("tables") or ():
                    if was.column(ddl.ident(c, engine)) is None:
                        yield table, ddl.ident(c, engine)
        elif isinstance(a, exp.RenameColumn | exp.AlterColumn):
            name = ddl.ident(a.this, engine)
            if was.column(name) is None:
                yield table, name
        elif isinstance(a, exp.ColumnDef):
            position = a.args.get("position")
            if isinstance(position, exp.ColumnPosition) and position.this is not None:
                name = ddl.ident(position.this, engine)
                if now is not None and now.column(name) is None:
                    yield table, name
        elif isinstance(a, exp.AddConstraint) and now is not None:
            for part in a.find_all(exp.Identifier, exp.Column):
                parent = part.parent
                if isinstance(part, exp.Identifier) and isinstance(parent, exp.Column | exp.Table):
                    continue  # read as its Column, or a referenced table's name
                if isinstance(parent, exp.Schema) and isinstance(parent.parent, exp.Reference):
                    continue  # the referenced table's columns
                if part.find_ancestor(exp.CheckColumnConstraint) is not None:
                    continue
                if (
                    isinstance(parent, exp.Constraint | exp.IndexColumnConstraint)
                    and part is parent.this
                ) or (isinstance(parent, exp.Schema) and part is parent.this):
                    continue  # the key's own name
                name = ddl.ident(part, engine)
                if now.column(name) is None:
                    yield table, name


@rule(
    "COLUMN_NOT_FOUND",
    "ERROR",
    "A schema change that names a column its table does not have.",
    kinds=DDL,
)
def _column_not_found(s: Subject) -> Iterator[str]:
    seen = set()
    for table, column in _missing_columns(s):
        if (table, column.lower()) in seen:
            continue
        seen.add((table, column.lower()))
        yield (
            f"Column {column_label(table, column)} does not exist: add it first, or correct the "
            "name."
        )


def _created_twice(s: Subject, created: exp.Table) -> Iterator[str]:
    name = table_name(created)
    if not s.node.args.get("exists") and s.tables.exists(name):
        yield f"Table {name} already exists: drop it first, or use another name."
    now = ddl.table_of(s.node, s.engine) if isinstance(s.node, exp.Create) else None
    seen: set[str] = set()
    for c in now.columns if now is not None else ():
        if c.name.lower() in seen:
            yield f"Column {name}.{c.name} is defined twice."
        seen.add(c.name.lower())


def _added_twice(s: Subject, table: str, was: Table) -> Iterator[str]:
    """Columns and a primary key an ALTER TABLE adds where the table already has them."""
    engine = s.engine
    columns = {c.name.lower() for c in was.columns}
    primary = bool(was.primary_key)
    for a in actions(s.node):
        if isinstance(a, exp.DropPrimaryKey):
            primary = False
        elif isinstance(a, exp.ColumnDef) and not a.args.get("exists"):
            name = ddl.ident(a.this, engine)
            if name.lower() in columns:
                yield f"Column {table}.{name} already exists: ALTER it, or use another name."
            columns.add(name.lower())
        elif isinstance(a, exp.RenameColumn | exp.ModifyColumn):
            old = ddl.ident(
                a.this if isinstance(a, exp.RenameColumn) else a.args.get("rename_from"), engine
            )
            new = ddl.ident(
                a.args.get("to") if isinstance(a, exp.RenameColumn) else a.this.this, engine
            )
            if old and new.lower() != old.lower() and new.lower() in columns:
                yield f"Column {table}.{new} already exists: {table} cannot have two."
        elif isinstance(a, exp.AddConstraint):
            keys = [
                k
                for key in a.expressions
                for k in (key.expressions if isinstance(key, exp.Constraint) else [key])
            ]
            if primary and any(isinstance(k, exp.PrimaryKey) for k in keys):
                yield (
                    f"Table {table} already has a primary key ({', '.join(was.primary_key)}): "
                    "drop it in the same statement first."
                )


def _exists_twice(s: Subject) -> Iterator[str]:
    node = s.node
    created = ddl.created_table(node) if isinstance(node, exp.Create) else None
    if created is not None:
        yield from _created_twice(s, created)
        return
    was, table = before(s), name_of(s)
    if isinstance(node, exp.Command):
        for _, new in renamed_tables(node):
            if s.tables.exists(new):
                yield f"Table {new} already exists: RENAME TABLE cannot replace it."
    if was is None:
        return
    if isinstance(node, exp.Create):  # CREATE INDEX
        made = ddl.index_of_create(node, s.engine)
        if made is not None and not node.args.get("exists") and was.index(made[1].name):
            yield f"Index {made[1].name} already exists on {table}: use another name."
        return
    yield from _added_twice(s, table, was)
    now = after(s)
    counted: set[str] = set()
    for index in now.indexes if now is not None else ():
        if index.name.lower() in counted:
            yield f"Index {index.name} already exists on {table}: use another name."
        counted.add(index.name.lower())
    renamed = ddl.renamed_to(node) if isinstance(node, exp.Alter) else None
    if renamed is not None and s.tables.exists(table_name(renamed)):
        yield f"Table {table_name(renamed)} already exists: {table} cannot be renamed to it."


@rule(
    "ALREADY_EXISTS",
    "ERROR",
    "A table, column, index or primary key created where one of that name already is.",
    kinds=DDL,
)
def _already_exists(s: Subject) -> Iterator[str]:
    yield from _exists_twice(s)


@rule(
    "INDEX_NOT_FOUND",
    "ERROR",
    "DROP or RENAME of an index (or primary key) the table does not have.",
    kinds=frozenset({"ALTER", "DROP"}),
)
def _index_not_found(s: Subject) -> Iterator[str]:
    node = s.node
    if isinstance(node, exp.Drop) and str(node.args.get("kind")).upper() == "INDEX":
        if node.args.get("exists"):
            return
        on = node.args.get("cluster")
        for t in node.args.get("tables") or ():
            owner = (
                table_name(on.this)
                if isinstance(on, exp.OnProperty) and isinstance(on.this, exp.Table)
                else s.tables.index_owner(table_name(t))
            )
            found = s.tables.definition(owner) if owner else None
            if found is not None and found.index(t.name) is None:
                yield f"Index {t.name} does not exist on {owner}: check its name (SHOW INDEX)."
        return
    was, table = before(s), name_of(s)
    if was is None:
        return
    known = {i.name.lower() for i in was.indexes}
    for a in actions(s.node):
        kind = str(a.args.get("kind") or "").upper() if isinstance(a, exp.Drop) else ""
        if kind in ("INDEX", "KEY") and not a.args.get("exists"):
            for t in a.args.get("tables") or ():
                if t.name.lower() not in known:
                    yield f"Index {t.name} does not exist on {table}: check its name."
        elif isinstance(a, exp.DropPrimaryKey) and not was.primary_key:
            yield f"Table {table} has no primary key to drop."
        elif isinstance(a, exp.RenameIndex):
            old = a.this.name if a.this is not None else ""
            if old.lower() not in known:
                yield f"Index {old} does not exist on {table}: check its name."
