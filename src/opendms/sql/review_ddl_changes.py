"""Review rules for changes to tables that already hold rows: what destroys data, what fails
on a non-empty table, what makes the server rewrite or scan the whole table, and what breaks
programs that still use the old names.

"Already hold rows" means the table exists before the script: one created earlier in the same
script is empty, and these rules leave it alone. The catalog's row estimate is named in the
messages where known; it describes the database reviewed, while a design is carried on to
other stages (product) whose tables are bigger, so most rules do not wait for a big estimate.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from opendms.schema.model import Column, Table
from opendms.sql import column_types as types
from opendms.sql import ddl
from opendms.sql.overlay import opaque_table, renamed_tables
from opendms.sql.review_base import DDL, Subject, rule
from opendms.sql.review_ddl_base import (
    MYSQL,
    actions,
    added_columns,
    before,
    effective_charset,
    existing,
    name_of,
    opaque_words,
    read_column,
    redefined_columns,
    rows_note,
)
from opendms.sql.statements import table_name

PRODUCT = "product"
# Defaults evaluated once per row (PostgreSQL volatile functions; MySQL's expression defaults
# that no ALGORITHM=INSTANT can store): adding such a column writes every row.
VOLATILE = frozenset(
    {
        "random",
        "rand",
        "clock_timestamp",
        "timeofday",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuid",
        "uuid_short",
        "nextval",
        "sysdate",
    }
)


def _destroyed(s: Subject) -> Iterator[tuple[str, str, Table | None]]:
    """What the statement destroys: (what, name, the table's definition if known). A table
    created earlier in the script holds nothing yet."""
    node = s.node
    kind = str(node.args.get("kind") or "").upper()
    if isinstance(node, exp.Drop) and kind == "TABLE":
        for t in node.args.get("tables") or ():
            name = table_name(t)
            if isinstance(t, exp.Table) and s.tables.exists(name) and not s.tables.created(name):
                yield "DROP TABLE", name, s.tables.definition(name)
    elif isinstance(node, exp.Drop) and kind in ("DATABASE", "SCHEMA"):
        for t in node.args.get("tables") or ():
            yield f"DROP {kind}", t.sql(), None
    elif isinstance(node, exp.TruncateTable):
        for t in node.expressions:
            name = table_name(t) if isinstance(t, exp.Table) else ""
            if name and s.tables.exists(name) is not False and not s.tables.created(name):
                yield "TRUNCATE", name, s.tables.definition(name)
    elif isinstance(node, exp.Alter) and existing(s):
        table, was = name_of(s), before(s)
        for a in actions(node):
            if isinstance(a, exp.Drop) and str(a.args.get("kind")).upper() == "COLUMN":
                for c in a.args.get("tables") or ():
                    column = ddl.ident(c, s.engine)
                    known = was is None or was.column(column) is not None
                    if known and not s.tables.added(table, column):
                        yield "DROP COLUMN", f"{table}.{column}", was


@rule(
    "DESTRUCTIVE_DDL_WITHOUT_REASON",
    "ERROR",
    "DROP TABLE, DROP COLUMN or TRUNCATE on a product database, and the ticket says no reason.",
    kinds=DDL,
)
def _destructive_without_reason(s: Subject) -> Iterator[str]:
    if s.env_type != PRODUCT or s.reason:
        return
    for verb, name, table in _destroyed(s):
        yield (
            f"{verb} {name} destroys data on a product database{rows_note(table)} and cannot "
            "be undone, and the ticket gives no reason: say why the data may go and where its "
            "backup is (the ticket's reason), or run it on a test database first."
        )


@rule(
    "DESTRUCTIVE_DDL",
    "WARNING",
    "DROP TABLE, DROP COLUMN or TRUNCATE (elsewhere, or on product with a reason given).",
    kinds=DDL,
)
def _destructive(s: Subject) -> Iterator[str]:
    if s.env_type == PRODUCT and not s.reason:
        return  # DESTRUCTIVE_DDL_WITHOUT_REASON's
    given = f" (reason given: {s.reason})" if s.reason else ""
    for verb, name, table in _destroyed(s):
        yield (
            f"{verb} {name} destroys data{rows_note(table)} and cannot be undone{given}: make "
            "sure a backup exists and nothing reads it any more."
        )


def _added_on_existing(s: Subject) -> Iterator[tuple[exp.ColumnDef, Column]]:
    if isinstance(s.node, exp.Alter) and existing(s):
        for cdef in added_columns(s.node):
            yield cdef, read_column(s, cdef)


def _needs_value(cdef: exp.ColumnDef, column: Column) -> bool:
    """NOT NULL, no DEFAULT, nothing that makes a value (auto-increment, generated)."""
    return (
        not column.nullable
        and ddl.default_of(cdef) is None
        and not column.auto_increment
        and not column.generated
    )


@rule(
    "NOT_NULL_WITHOUT_DEFAULT",
    "ERROR",
    "PostgreSQL: ADD COLUMN … NOT NULL without a DEFAULT to a table that may hold rows.",
    kinds=frozenset({"ALTER"}),
)
def _not_null_no_default(s: Subject) -> Iterator[str]:
    if s.engine != "postgresql":
        return
    table = name_of(s)
    for cdef, column in _added_on_existing(s):
        if _needs_value(cdef, column):
            yield (
                f"ADD COLUMN {table}.{column.name} NOT NULL without a DEFAULT fails as soon as "
                f"{table} holds a row{rows_note(before(s))}: give it a DEFAULT, or add it "
                "nullable, fill it, then SET NOT NULL."
            )


@rule(
    "NOT_NULL_IMPLICIT_DEFAULT",
    "WARNING",
    "MySQL/MariaDB: ADD COLUMN … NOT NULL without a DEFAULT: existing rows get the type's "
    "implicit value (0, '', a zero date).",
    kinds=frozenset({"ALTER"}),
)
def _not_null_implicit(s: Subject) -> Iterator[str]:
    if s.engine not in MYSQL:
        return
    table = name_of(s)
    for cdef, column in _added_on_existing(s):
        if _needs_value(cdef, column):
            yield (
                f"ADD COLUMN {table}.{column.name} NOT NULL without a DEFAULT: MySQL fills the "
                f"existing rows{rows_note(before(s))} with {column.type}'s implicit value (0, '' "
                "or a zero date). Give it the DEFAULT you mean."
            )


@rule(
    "COLUMN_MADE_NOT_NULL",
    "WARNING",
    "An existing column made NOT NULL: the server reads every row, and fails on a NULL.",
    kinds=frozenset({"ALTER"}),
)
def _made_not_null(s: Subject) -> Iterator[str]:
    was = before(s)
    if was is None or not existing(s):
        return
    table = name_of(s)
    for a in actions(s.node):
        if isinstance(a, exp.AlterColumn) and a.args.get("allow_null") is False:
            found = was.column(ddl.ident(a.this, s.engine))
            if found is not None and found.nullable:
                yield (
                    f"SET NOT NULL on {table}.{found.name} reads every row{rows_note(was)} under "
                    "an exclusive lock and fails if one is NULL. Fill the NULLs first; on "
                    f"PostgreSQL 12+ add CHECK ({found.name} IS NOT NULL) NOT VALID, VALIDATE "
                    "it, and SET NOT NULL then uses it without a scan."
                )
    for old, cdef in redefined_columns(s.node, s.engine):
        found, new = was.column(old), read_column(s, cdef)
        if found is not None and found.nullable and not new.nullable:
            yield (
                f"{table}.{found.name} becomes NOT NULL: MySQL rebuilds {table}{rows_note(was)} "
                "and, in strict mode, fails if a row holds NULL. Fill the NULLs first."
            )


def _volatile(default: exp.Expression | None) -> str:
    if default is None:
        return ""
    for f in default.find_all(exp.Func):
        name = (f.sql_name() if not isinstance(f, exp.Anonymous) else str(f.this)).lower()
        if name in VOLATILE or isinstance(f, exp.Rand):
            return name
    return ""


@rule(
    "VOLATILE_DEFAULT_REWRITE",
    "WARNING",
    "ADD COLUMN to a big table with a default computed per row (random(), uuid, a sequence): "
    "every row is rewritten.",
    kinds=frozenset({"ALTER"}),
)
def _volatile_default(s: Subject) -> Iterator[str]:
    was = before(s)
    if was is None or was.rows < s.limits.big_table_rows:
        return
    table = name_of(s)
    for cdef, column in _added_on_existing(s):
        default = ddl.default_of(cdef)
        serial = column.auto_increment and s.engine == "postgresql"
        if _volatile(default) or serial:
            what = (
                f"DEFAULT {default.sql(dialect=ddl.dialect_of(s.engine))}"
                if default is not None and _volatile(default)
                else "an identity or serial"
            )
            yield (
                f"ADD COLUMN {table}.{column.name} with {what} gives each row its own value: "
                f"the server writes all {was.rows:,} rows of {table} under a lock. OpenDMS "
                "copies the table lock-free when the instance's lock-free DDL is on; otherwise "
                "add the column without the default and fill it with a chunked data change."
            )


def _type_changes(
    s: Subject,
) -> Iterator[tuple[Column, exp.DataType, exp.DataType, Column | None, bool]]:
    """(column before, its old type, the new type, the new definition if whole, USING given)
    for each column whose type the statement changes."""
    was = before(s)
    if was is None:
        return
    for old, cdef in redefined_columns(s.node, s.engine):
        found = was.column(old)
        new = cdef.args.get("kind")
        old_type = types.datatype(found.type, s.engine) if found is not None else None
        if found is not None and old_type is not None and isinstance(new, exp.DataType):
            yield found, old_type, new, read_column(s, cdef), False
    for a in actions(s.node):
        if isinstance(a, exp.AlterColumn) and isinstance(a.args.get("dtype"), exp.DataType):
            found = was.column(ddl.ident(a.this, s.engine))
            old_type = types.datatype(found.type, s.engine) if found is not None else None
            if found is not None and old_type is not None:
                yield found, old_type, a.args["dtype"], None, bool(a.args.get("using"))


def _spelled(dtype: exp.DataType, s: Subject) -> str:
    return dtype.sql(dialect=ddl.dialect_of(s.engine)).lower()


def _copy_note(was: Table | None) -> str:
    return (
        f"{rows_note(was)}: the table is copied whole, which OpenDMS does lock-free (a shadow "
        "copy kept in step, then swapped) when the instance's lock-free DDL is on; otherwise "
        "writes wait until the copy ends."
    )


@rule(
    "TYPE_CHANGE_REWRITES",
    "WARNING",
    "A column type or character set change that makes the server copy the whole table "
    "(MySQL: most type changes; PostgreSQL: a type not binary-coercible from the old).",
    kinds=frozenset({"ALTER"}),
)
def _rewrites(s: Subject) -> Iterator[str]:
    words = [w.upper() for w in opaque_words(s)]
    if s.engine in MYSQL and "CONVERT" in words and "CHARACTER" in words:
        table = opaque_table(s.node) if isinstance(s.node, exp.Command) else None
        if table and s.tables.exists(table) and not s.tables.created(table):
            was = s.tables.definition(table)
            yield (
                f"CONVERT TO CHARACTER SET re-encodes every text column of {table} and "
                f"rewrites it{_copy_note(was)}"
            )
        return
    if not existing(s):
        return
    table, was = name_of(s), before(s)
    how = _copy_note(was)
    for found, old, new, whole, using in _type_changes(s):
        charset = effective_charset(found, was)
        new_charset = (whole.charset if whole is not None else "") or charset
        label = f"{table}.{found.name}"
        if using:
            yield f"Changing {label} to {_spelled(new, s)} with USING rewrites {table}{how}"
        elif types.rewrites(old, new, s.engine, charset):
            yield f"Changing {label} from {found.type} to {_spelled(new, s)} rewrites {table}{how}"
        elif s.engine in MYSQL and new_charset != charset:
            yield f"Changing {label}'s character set to {new_charset} rewrites {table}{how}"


@rule(
    "TYPE_NARROWED",
    "WARNING",
    "A column changed to a type that holds less (shorter, smaller, fewer digits).",
    kinds=frozenset({"ALTER"}),
)
def _narrowed(s: Subject) -> Iterator[str]:
    if not existing(s):
        return
    table = name_of(s)
    for found, old, new, _, _ in _type_changes(s):
        if types.narrows(old, new):
            yield (
                f"Changing {table}.{found.name} from {found.type} to {_spelled(new, s)} fails if "
                "a value no longer fits (MySQL in strict mode, PostgreSQL) or cuts it (MySQL "
                f"otherwise): check the longest or largest value in {table} first."
            )


@rule(
    "MODIFY_DROPS_ATTRIBUTES",
    "WARNING",
    "MySQL/MariaDB MODIFY or CHANGE that leaves out the column's comment, default, NOT NULL "
    "or AUTO_INCREMENT: they are lost.",
    kinds=frozenset({"ALTER"}),
)
def _modify_drops(s: Subject) -> Iterator[str]:
    was = before(s)
    if s.engine not in MYSQL or was is None:
        return
    table = name_of(s)
    for old, cdef in redefined_columns(s.node, s.engine):
        found, new = was.column(old), read_column(s, cdef)
        if found is None:
            continue
        lost = [
            label
            for label, had, kept in (
                (f"COMMENT '{found.comment}'", bool(found.comment), bool(new.comment)),
                (f"DEFAULT {found.default}", found.default is not None, new.default is not None),
                ("NOT NULL", not found.nullable, not new.nullable),
                ("AUTO_INCREMENT", found.auto_increment, new.auto_increment),
            )
            if had and not kept
        ]
        if lost:
            yield (
                f"MODIFY/CHANGE defines {table}.{found.name} whole: its {', '.join(lost)} would "
                "be lost. Restate them in the new definition (or drop them on purpose)."
            )


@rule(
    "RENAME_TABLE",
    "WARNING",
    "A table renamed: programs that still use the old name break.",
    kinds=frozenset({"ALTER", "RENAME"}),
)
def _rename_table(s: Subject) -> Iterator[str]:
    pairs = list(renamed_tables(s.node)) if isinstance(s.node, exp.Command) else []
    if isinstance(s.node, exp.Alter) and str(s.node.args.get("kind")).upper() == "TABLE":
        renamed = ddl.renamed_to(s.node)
        if renamed is not None:
            pairs.append((name_of(s), table_name(renamed)))
    for old, new in pairs:
        if not s.tables.created(old):
            yield (
                f"Renaming table {old} to {new} breaks every query, view and program still "
                f"using {old} the moment it runs: deploy code that no longer needs {old} first."
            )


@rule(
    "RENAME_COLUMN",
    "WARNING",
    "A column renamed: programs that still use the old name break.",
    kinds=frozenset({"ALTER"}),
)
def _rename_column(s: Subject) -> Iterator[str]:
    table = name_of(s)
    if s.tables.created(table):
        return
    pairs = []
    for a in actions(s.node):
        if isinstance(a, exp.RenameColumn):
            pairs.append((ddl.ident(a.this, s.engine), ddl.ident(a.args.get("to"), s.engine)))
    for old, cdef in redefined_columns(s.node, s.engine):
        new = ddl.ident(cdef.this, s.engine)
        if new.lower() != old.lower():
            pairs.append((old, new))
    for old, new in pairs:
        yield (
            f"Renaming column {table}.{old} to {new} breaks every query and program still using "
            f"{old} the moment it runs: deploy code that reads both, or add {new}, copy, and "
            f"drop {old} later."
        )


@rule(
    "ALTER_TABLE_SPLIT",
    "WARNING",
    "MySQL/MariaDB: several ALTER TABLE statements on one existing table in a script: each "
    "may copy or rebuild it again.",
    kinds=frozenset({"ALTER"}),
)
def _split(s: Subject) -> Iterator[str]:
    # PostgreSQL changes most definitions without a copy, and some changes must be split
    # (ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT)
    if s.engine not in MYSQL:
        return
    name = name_of(s)
    if not name and isinstance(s.node, exp.Command):
        words = opaque_words(s)
        name = words[2].strip('`"').lower() if len(words) > 2 and words[1] == "TABLE" else ""
    earlier = s.tables.alters.get(name, []) if name else []
    if earlier and not s.tables.created(name):  # an empty new table is cheap to alter
        yield (
            f"Table {name} was already altered by statement {earlier[0]}: each ALTER TABLE may "
            "copy or rebuild it again. Merge them into one ALTER TABLE with several clauses."
        )
