"""Review rules for schema changes: what a statement may name and create, how its tables,
columns and names are shaped, and the column types it chooses.

Each rule reads one statement against the tables as the statements before it leave them
(``Subject.tables``, an :class:`~opendms.sql.overlay.Overlay` over the catalog); a rule that
needs a table's definition stays silent where it is not known. MySQL and MariaDB are one
dialect here except where their servers differ (noted in the rule).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlglot import exp

from opendms.schema.model import Column, Table
from opendms.sql import column_types as types
from opendms.sql import ddl, names
from opendms.sql.overlay import comment_target, renamed_tables, validates
from opendms.sql.review_base import DDL, Subject, rule
from opendms.sql.review_ddl_base import (
    MYSQL,
    actions,
    added_columns,
    after,
    before,
    column_defs,
    column_label,
    effective_charset,
    given_names,
    name_of,
    opaque_words,
    read_column,
    redefined_columns,
    target,
)
from opendms.sql.statements import table_name

# CREATE / ALTER / DROP of these are what the schema-change rules read; of anything else
# (views, routines, triggers, sequences, types, schemas, users) they read nothing.
REVIEWED_OBJECTS = frozenset({"TABLE", "INDEX"})
# Names of columns that hold money: an approximate type loses cents there.
MONEY_NAMES = re.compile(
    r"(^|_)(price|amount|amt|money|cost|fee|fees|balance|total|salary|pay|paid|refund|"
    r"discount|tax|charge|revenue|income|payment)(_|$)"
)


def _alters(s: Subject) -> list[exp.Expression]:
    return actions(s.node)


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
    for ref in _references(s):
        yield ref, False


def _references(s: Subject) -> Iterator[str]:
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


def _plain(name: str) -> bool:
    """A key part that names a column (not an expression such as lower(name))."""
    return re.fullmatch(r"[\w$]+", name) is not None


def _missing_columns(s: Subject) -> Iterator[tuple[str, str]]:
    """(table, column) pairs the statement needs and the table does not have."""
    table = name_of(s)
    was, now = before(s), after(s)
    node = s.node
    if isinstance(node, exp.Create) and ddl.created_table(node) is not None and now is not None:
        for key in [now.primary_key, *(i.columns for i in now.indexes)]:
            for c in key:
                if _plain(c) and now.column(c) is None:
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
            if _plain(c) and was.column(c) is None:
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
    for a in _alters(s):
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
    for a in _alters(s):
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
    for a in _alters(s):
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


# ------------------------------------------------------------------ names


@rule(
    "NAME_TOO_LONG",
    "ERROR",
    "A table, column or index name longer than the engine allows (64 characters on "
    "MySQL/MariaDB, 63 bytes on PostgreSQL).",
    kinds=DDL,
)
def _too_long(s: Subject) -> Iterator[str]:
    for n in given_names(s):
        limit = names.too_long(n.name, s.engine)
        if limit is not None:
            effect = (
                "PostgreSQL would cut it short, so the object would not have the name the "
                "design gives it"
                if s.engine == "postgresql"
                else "the server refuses it"
            )
            yield f"The {n.what} name {n.name} is over {limit} characters: {effect}. Shorten it."


@rule(
    "NAME_RESERVED_WORD",
    "WARNING",
    "A reserved word as a name: every statement that names it must quote it.",
    kinds=DDL,
)
def _reserved(s: Subject) -> Iterator[str]:
    words = names.reserved(s.engine)
    for n in given_names(s):
        if n.name.lower() in words:
            unquoted = "" if n.quoted else " (unquoted here, the server may refuse this one too)"
            yield (
                f"The {n.what} name {n.name} is a reserved word in {s.engine}: every query must "
                f"quote it, and one that forgets fails{unquoted}. Choose another name."
            )


def _snake(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^a-z0-9_]+", "_", spaced.lower()).strip("_") or "name"


@rule(
    "NAME_NOT_SNAKE_CASE",
    "WARNING",
    "A name that is not lower-case snake_case (letters, digits and _, starting with a letter).",
    kinds=DDL,
)
def _not_snake(s: Subject) -> Iterator[str]:
    for n in given_names(s):
        if n.what in ("table", "column", "index") and not names.snake_case(n.name):
            why = (
                "PostgreSQL needs it quoted in every query"
                if s.engine == "postgresql" and n.name.lower() != n.name and n.quoted
                else "mixed case and other characters read differently across servers "
                "(lower_case_table_names) and tools"
            )
            yield (
                f"The {n.what} name {n.name} is not lower-case snake_case: {why}. Call it "
                f"{_snake(n.name)}."
            )


@rule(
    "INDEX_NAME_PREFIX",
    "WARNING",
    f"An index name without its prefix: {names.INDEX_PREFIX} for an index, "
    f"{names.UNIQUE_PREFIX} for a unique one (or no name at all).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _index_prefix(s: Subject) -> Iterator[str]:
    was, now = before(s), after(s)
    if now is None:
        return
    had = {i.name.lower() for i in was.indexes} if was is not None else set()
    named = {n.name.lower() for n in given_names(s) if n.what in ("index", "constraint")}
    for index in now.indexes:
        if index.name.lower() in had or index.method in ("fulltext", "spatial"):
            continue
        prefix = names.UNIQUE_PREFIX if index.unique else names.INDEX_PREFIX
        if index.name.lower().startswith(prefix):
            continue
        columns = "_".join(c for c in index.columns if _plain(c)) or "expr"
        suggestion = f"{prefix}{columns}"
        what = f"{'unique ' if index.unique else ''}index"
        if index.name.lower() not in named:
            yield (
                f"The {what} on {now.name} ({', '.join(index.columns)}) has no name: the server "
                f"makes one up. Name it {suggestion}."
            )
        else:
            yield (
                f"The {what} {index.name} on {now.name} should start with {prefix}: call it "
                f"{suggestion}."
            )


# ------------------------------------------------------------------ tables


@rule(
    "PRIMARY_KEY_MISSING",
    "WARNING",
    "CREATE TABLE without a primary key, or ALTER TABLE that drops it without a new one.",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _primary_key_missing(s: Subject) -> Iterator[str]:
    now = after(s)
    if now is None or now.primary_key or not (isinstance(s.node, exp.Create) or before(s)):
        return
    if isinstance(s.node, exp.Create) and ddl.created_table(s.node) is None:
        return
    was = before(s)
    if isinstance(s.node, exp.Alter) and (was is None or not was.primary_key):
        return
    verb = "has" if isinstance(s.node, exp.Create) else "would have"
    yield (
        f"Table {now.name} {verb} no primary key: replicas apply its row changes by scanning, "
        "lock-free changes and OpenDMS's chunked changes and backups need one. Add one (for "
        "example id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, or bigint GENERATED ALWAYS AS "
        "IDENTITY PRIMARY KEY on PostgreSQL)."
    )


@rule(
    "TABLE_WITHOUT_COMMENT",
    "WARNING",
    "CREATE TABLE without a comment (MySQL COMMENT=; PostgreSQL COMMENT ON TABLE later in "
    "the script).",
    kinds=frozenset({"CREATE"}),
)
def _table_comment(s: Subject) -> Iterator[str]:
    now = after(s) if ddl.created_table(s.node) is not None else None
    if now is None or now.comment or s.engine not in (*MYSQL, "postgresql"):
        return
    if (name_of(s), "") not in s.tables.commented:
        how = (
            f"COMMENT ON TABLE {now.name} IS '…' after it"
            if s.engine == "postgresql"
            else "COMMENT='…' at its end"
        )
        yield f"Table {now.name} has no comment: say what it holds ({how})."


@rule(
    "COLUMN_WITHOUT_COMMENT",
    "WARNING",
    "A new column without a comment (MySQL COMMENT '…'; PostgreSQL COMMENT ON COLUMN later in "
    "the script).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _column_comment(s: Subject) -> Iterator[str]:
    if s.engine not in (*MYSQL, "postgresql"):
        return
    table = name_of(s)
    for cdef in added_columns(s.node):
        column = read_column(s, cdef)
        if column.comment or (table, column.name.lower()) in s.tables.commented:
            continue
        how = (
            f"COMMENT ON COLUMN {table}.{column.name} IS '…' after it"
            if s.engine == "postgresql"
            else "COMMENT '…' in its definition"
        )
        yield f"Column {table}.{column.name} has no comment: say what it holds ({how})."


def _charset_words(s: Subject) -> Iterator[tuple[str, str]]:
    """(where, charset or collation) the statement sets, for MySQL/MariaDB."""
    table = name_of(s)
    opts = ddl.table_options(s.node) if isinstance(s.node, exp.Create | exp.Alter) else {}
    for key in ("charset", "collation"):
        if key in opts:
            yield f"table {table}", opts[key]
    for cdef in column_defs(s.node, s.engine):
        column = read_column(s, cdef)
        for value in (column.charset, column.collation):
            if value:
                yield f"column {table}.{column.name}", value
    words = [w.lower() for w in opaque_words(s)]
    for i, w in enumerate(words):
        if w in ("set", "charset", "collate") and i + 1 < len(words) and words[i - 1] != "default":
            value = words[i + 1].strip("=;,'\"")
            if value and value != "=":
                yield f"table {table or (words[2] if len(words) > 2 else '')}", value


@rule(
    "CHARSET_NOT_UTF8MB4",
    "WARNING",
    "A character set or collation other than utf8mb4 (MySQL/MariaDB).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _charset(s: Subject) -> Iterator[str]:
    if s.engine not in MYSQL:
        return
    for where, value in _charset_words(s):
        if value in {"binary", "utf8mb4"} or value.startswith("utf8mb4_"):
            continue
        note = (
            " (utf8 is utf8mb3: three bytes a character, no emoji or rarer CJK characters)"
            if value.startswith(("utf8_", "utf8mb3")) or value == "utf8"
            else ""
        )
        yield f"The {where} uses {value}{note}: use utf8mb4 (and a utf8mb4_ collation)."


@rule(
    "COLUMN_CHARSET_DIFFERS",
    "WARNING",
    "A column whose character set or collation differs from its table's (MySQL/MariaDB).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _column_charset(s: Subject) -> Iterator[str]:
    now = after(s)
    if s.engine not in MYSQL or now is None:
        return
    for cdef in column_defs(s.node, s.engine):
        column = read_column(s, cdef)
        differs = [
            (what, mine, theirs)
            for what, mine, theirs in (
                ("character set", column.charset, now.charset),
                ("collation", column.collation, now.collation),
            )
            if mine and theirs and mine != theirs
        ]
        for what, mine, theirs in differs:
            yield (
                f"Column {now.name}.{column.name} uses the {what} {mine}, table {now.name} "
                f"{theirs}: comparing or joining it with other columns converts every value "
                "and cannot use an index. Leave the column's own setting out."
            )


@rule(
    "NON_INNODB_ENGINE",
    "WARNING",
    "A table on a storage engine other than InnoDB (MySQL/MariaDB).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _engine(s: Subject) -> Iterator[str]:
    if s.engine not in MYSQL or not isinstance(s.node, exp.Create | exp.Alter):
        return
    engine = ddl.table_options(s.node).get("engine", "")
    if engine and engine != "innodb":
        yield (
            f"Table {name_of(s)} would use {engine.upper()}, which cannot roll back a change or "
            "recover from a crash, and data change tickets are refused on it "
            "(NON_TRANSACTIONAL_TABLE): use InnoDB."
        )


@rule(
    "PARTITIONED_TABLE",
    "WARNING",
    "A partitioned table (PARTITION BY).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _partitioned(s: Subject) -> Iterator[str]:
    words = [w.upper() for w in opaque_words(s)]
    if ddl.partitioned(s.node) or "PARTITION" in words:
        yield (
            f"Table {name_of(s) or ' '.join(words[2:3]).lower()} is partitioned: every unique key "
            "must contain the partitioning columns, a query that does not filter on them reads "
            "every partition, and lock-free changes cannot copy it. Make sure the data needs it."
        )


@rule(
    "TOO_MANY_COLUMNS",
    "WARNING",
    "A table with more columns than the limit (64).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _too_many_columns(s: Subject) -> Iterator[str]:
    now = after(s)
    if now is not None and added_columns(s.node) and len(now.columns) > s.limits.max_columns:
        yield (
            f"Table {now.name} would have {len(now.columns)} columns (limit "
            f"{s.limits.max_columns}): split what is read together from what is not into "
            "another table."
        )


@rule(
    "ROW_TOO_WIDE",
    "ERROR",
    "Columns wider than MySQL/MariaDB's 65,535-byte row: the server refuses the table.",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _row_too_wide(s: Subject) -> Iterator[str]:
    now = after(s)
    if s.engine not in MYSQL or now is None or not column_defs(s.node, s.engine):
        return
    total = (sum(c.nullable for c in now.columns) + 7) // 8
    for column in now.columns:
        dtype = types.datatype(column.type, s.engine)
        if dtype is None:
            return  # a type OpenDMS cannot size: say nothing rather than guess
        total += types.row_bytes(dtype, effective_charset(column, now))
    if total > types.MAX_ROW_BYTES:
        yield (
            f"Table {now.name}'s columns take up to {total:,} bytes a row, over MySQL's "
            f"{types.MAX_ROW_BYTES:,} (utf8mb4 counts 4 bytes a character): the server refuses "
            "it. Make the longest VARCHAR columns shorter, or TEXT."
        )


# ------------------------------------------------------------------ column types


def _new_columns(s: Subject) -> Iterator[tuple[exp.ColumnDef, Column, exp.DataType]]:
    """Each column definition the statement writes, read, with its type."""
    for cdef in column_defs(s.node, s.engine):
        dtype = cdef.args.get("kind")
        if isinstance(dtype, exp.DataType):
            yield cdef, read_column(s, cdef), dtype
    for a in _alters(s):  # PostgreSQL's ALTER COLUMN … TYPE
        if isinstance(a, exp.AlterColumn) and isinstance(a.args.get("dtype"), exp.DataType):
            was = before(s)
            found = was.column(ddl.ident(a.this, s.engine)) if was is not None else None
            if found is not None:
                yield exp.ColumnDef(this=a.this.copy()), found, a.args["dtype"]


@rule(
    "FLOAT_TYPE",
    "WARNING",
    "FLOAT, REAL or DOUBLE columns: approximate numbers (wrong for money).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _float(s: Subject) -> Iterator[str]:
    table = name_of(s)
    for _, column, dtype in _new_columns(s):
        if dtype.this not in types.FLOATS:
            continue
        spelled = dtype.sql(dialect=ddl.dialect_of(s.engine))
        if MONEY_NAMES.search(column.name.lower()):
            yield (
                f"Column {table}.{column.name} is {spelled}, which stores approximations "
                "(0.1 + 0.2 is not 0.3): an amount of money needs DECIMAL(p, s) (NUMERIC on "
                "PostgreSQL)."
            )
        else:
            yield (
                f"Column {table}.{column.name} is {spelled}, an approximate number: use DECIMAL "
                "for exact values; keep a float type only for measurements."
            )


@rule(
    "ENUM_OR_SET",
    "WARNING",
    "ENUM or SET columns (MySQL/MariaDB).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _enum(s: Subject) -> Iterator[str]:
    table = name_of(s)
    for _, column, dtype in _new_columns(s):
        if dtype.this in (types.T.ENUM, types.T.SET):
            yield (
                f"Column {table}.{column.name} is {dtype.this.value}: adding a value anywhere but "
                "the end rebuilds the table, and it sorts by position, not by name. Use a "
                "VARCHAR or TINYINT (with a CHECK), or a lookup table."
            )


@rule(
    "TIMESTAMP_2038",
    "WARNING",
    "MySQL/MariaDB TIMESTAMP columns, which end in January 2038.",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _timestamp(s: Subject) -> Iterator[str]:
    if s.engine not in MYSQL:
        return
    table = name_of(s)
    for _, column, dtype in _new_columns(s):
        if dtype.this == types.T.TIMESTAMPTZ:  # how sqlglot reads MySQL's TIMESTAMP
            yield (
                f"Column {table}.{column.name} is TIMESTAMP, whose range ends at "
                "2038-01-19 03:14:07 UTC (MariaDB 11.5 and later on 64-bit: 2106): use "
                "DATETIME."
            )


@rule(
    "AUTO_INCREMENT_TYPE",
    "WARNING",
    "An auto-increment column that is not an integer, is signed (MySQL/MariaDB) or narrower "
    "than BIGINT (PostgreSQL serial and identity).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _auto_increment(s: Subject) -> Iterator[str]:
    table = name_of(s)
    for _, column, dtype in _new_columns(s):
        if not column.auto_increment:
            continue
        label = f"{table}.{column.name}"
        if dtype.this not in types.INTEGERS:
            yield f"Column {label} is AUTO_INCREMENT but {column.type}: make it BIGINT UNSIGNED."
        elif s.engine in MYSQL and dtype.this not in types.UNSIGNED:
            yield (
                f"Column {label} is a signed AUTO_INCREMENT {column.type}: its negative half is "
                "never used. Make it UNSIGNED (BIGINT UNSIGNED for a table that grows)."
            )
        elif s.engine == "postgresql" and dtype.this not in (
            types.T.BIGINT,
            types.T.BIGSERIAL,
        ):
            yield (
                f"Column {label} counts in {column.type}, which runs out at 2,147,483,647 (or "
                "32,767): use bigint (bigserial, or bigint GENERATED … AS IDENTITY)."
            )


@rule(
    "LOB_DEFAULT",
    "ERROR",
    "A literal DEFAULT on a TEXT, BLOB, JSON or GEOMETRY column, which MySQL refuses "
    "(MariaDB accepts it).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _lob_default(s: Subject) -> Iterator[str]:
    if s.engine != "mysql":
        return
    table = name_of(s)
    for cdef, column, dtype in _new_columns(s):
        default = ddl.default_of(cdef)
        if dtype.this in types.LOBS and default is not None:
            if isinstance(default, exp.Null | exp.Paren):
                continue  # NULL, or an expression default (MySQL 8.0.13+)
            yield (
                f"Column {table}.{column.name} is {dtype.this.value} with DEFAULT "
                f"{default.sql(dialect='mysql')}: MySQL refuses a literal default there. Leave it "
                "out, or write it as an expression: DEFAULT (…)."
            )


_DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}(:?\d{2})?|Z)?"
)
_TIME = re.compile(r"-?\d{1,3}:\d{2}(:\d{2}(\.\d+)?)?")
# PostgreSQL's special date and time inputs ('now' is read when the default is evaluated)
_PG_SPECIAL_DATES = frozenset(
    {"now", "today", "tomorrow", "yesterday", "infinity", "-infinity", "epoch", "allballs"}
)
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _default_mismatch(
    column: Column, dtype: exp.DataType, default: exp.Expression, s: Subject
) -> str | None:
    t = dtype.this
    if isinstance(default, exp.Null):
        if not column.nullable and s.engine in MYSQL:
            return "is NOT NULL with DEFAULT NULL"
        return None
    if not isinstance(default, exp.Literal) or not default.is_string:
        return None
    text = default.name
    if t in types.NUMBERS - {types.T.BOOLEAN, types.T.BIT} and not _NUMBER.fullmatch(text):
        return f"is {column.type} with the text default '{text}'"
    if t in types.CHARS:
        size = types.length(dtype)
        if size is not None and len(text) > size:
            # PostgreSQL takes the definition and fails each write that uses the default
            later = " (PostgreSQL: every row that takes it)" if s.engine == "postgresql" else ""
            return f"is {column.type} with a {len(text)}-character default{later}"
    if t in (types.T.ENUM, types.T.SET):
        members = {e.name for e in dtype.expressions if isinstance(e, exp.Literal)}
        chosen = text.split(",") if t == types.T.SET and text else [text]
        if any(x not in members for x in chosen):
            return f"is {column.type} with the default '{text}', not one of its values"
    if t in types.DATES:
        pattern = _TIME if t == types.T.TIME else _DATE
        special = s.engine == "postgresql" and text.strip().lower() in _PG_SPECIAL_DATES
        if not special and not pattern.fullmatch(text.strip()):
            return f"is {column.type} with the default '{text}', which is not a {t.value.lower()}"
        if text.startswith("0000-00-00") and s.engine == "mysql":  # MariaDB's mode allows it
            return f"is {column.type} with the zero date '{text}' (MySQL's default SQL mode)"
    return None


@rule(
    "DEFAULT_TYPE_MISMATCH",
    "ERROR",
    "A DEFAULT its column's type cannot hold (text in a number, too long, not a date, not "
    "among the ENUM's values, NULL on NOT NULL).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _default_type(s: Subject) -> Iterator[str]:
    table = name_of(s)
    for cdef, column, dtype in _new_columns(s):
        default = ddl.default_of(cdef)
        if default is None:
            continue
        wrong = _default_mismatch(column, dtype, default, s)
        if wrong is not None:
            yield (
                f"Column {table}.{column.name} {wrong}: the server refuses it. Give a default "
                "of the column's type, or none."
            )
    for a in _alters(s):
        default = a.args.get("default") if isinstance(a, exp.AlterColumn) else None
        was = before(s)
        found = (
            was.column(ddl.ident(a.this, s.engine))
            if was is not None and default is not None
            else None
        )
        read = types.datatype(found.type, s.engine) if found is not None else None
        if found is not None and read is not None and isinstance(default, exp.Expression):
            wrong = _default_mismatch(found, read, default, s)
            if wrong is not None:
                yield (
                    f"Column {table}.{found.name} {wrong}: the server refuses it. Give a default "
                    "of the column's type, or none."
                )


@rule(
    "FOREIGN_KEY",
    "WARNING",
    "A foreign key.",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _foreign_key(s: Subject) -> Iterator[str]:
    table = name_of(s)
    existing = isinstance(s.node, exp.Alter) and not s.tables.created(table)
    late = (
        " On PostgreSQL add it NOT VALID, then VALIDATE CONSTRAINT in a later statement, so that "
        "checking the rows does not block writes."
        if s.engine == "postgresql" and existing and not s.node.args.get("not_valid")
        else ""
    )
    refs = list(_references(s))
    for ref in refs:
        yield (
            f"Table {table} gets a foreign key to {ref}: every write to either table checks and "
            "locks the other, deletes may cascade, and lock-free changes cannot copy a table "
            f"that has one. Prefer keeping the relation in the application (with an index).{late}"
        )
