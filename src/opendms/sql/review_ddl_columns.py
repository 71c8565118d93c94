"""Review rules for the columns a schema change defines: their types (approximate numbers,
ENUM, MySQL's TIMESTAMP, auto-increment), their defaults, and foreign keys."""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlglot import exp

from opendms.schema.model import Column
from opendms.sql import column_types as types
from opendms.sql import ddl
from opendms.sql.review_base import Subject, rule
from opendms.sql.review_ddl_base import (
    MYSQL,
    actions,
    before,
    column_defs,
    name_of,
    read_column,
    references,
)

# Names of columns that hold money: an approximate type loses cents there.
MONEY_NAMES = re.compile(
    r"(^|_)(price|amount|amt|money|cost|fee|fees|balance|total|salary|pay|paid|refund|"
    r"discount|tax|charge|revenue|income|payment)(_|$)"
)


# ------------------------------------------------------------------ column types


def _new_columns(s: Subject) -> Iterator[tuple[exp.ColumnDef, Column, exp.DataType]]:
    """Each column definition the statement writes, read, with its type."""
    for cdef in column_defs(s.node, s.engine):
        dtype = cdef.args.get("kind")
        if isinstance(dtype, exp.DataType):
            yield cdef, read_column(s, cdef), dtype
    for a in actions(s.node):  # PostgreSQL's ALTER COLUMN … TYPE
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
    for a in actions(s.node):
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
    refs = list(references(s))
    for ref in refs:
        yield (
            f"Table {table} gets a foreign key to {ref}: every write to either table checks and "
            "locks the other, deletes may cascade, and lock-free changes cannot copy a table "
            f"that has one. Prefer keeping the relation in the application (with an index).{late}"
        )
