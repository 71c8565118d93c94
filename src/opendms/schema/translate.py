"""A table definition carried to another engine, or to another name, before it is compared.

``prepare(source, engine, source_engine=…, name=…)`` gives the definition as ``engine``'s
catalog would report the table once it matches: types read by sqlglot in the source's dialect
and mapped to the target's own (``spelling`` spells them as its catalog will), defaults and
expressions written in its dialect, options the target has no notion of left out. What the
target cannot hold is refused (:class:`SchemaRefused`), naming the table and the column,
index or key: a MySQL SET or ENUM in PostgreSQL, a PostgreSQL array in MySQL, a partial index
in MySQL. Nothing is dropped silently but what only describes storage (MySQL's charsets,
collations and storage engine, PostgreSQL's collations, MySQL's ZEROFILL display padding).
"""

from __future__ import annotations

from dataclasses import replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.expressions import DType

from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from opendms.schema.spelling import (
    base_type,
    canonical_type,
    dialect,
    family,
    mysql_default,
)


class SchemaRefused(ValueError):
    """A definition the target engine cannot hold, or that OpenDMS cannot write for it; the
    message names the table and what in it."""


def prepare(
    source: Table, engine: str, *, source_engine: str | None = None, name: str | None = None
) -> Table:
    """``source`` (read on ``source_engine``; None: the target's own engine) as ``engine``
    will report the table once it matches, named ``name`` (when given)."""
    table = source
    if source_engine is not None and family(source_engine) != family(engine):
        table = translate(table, source_engine, engine)
    if name and name != table.name:
        table = rename(table, name)
    return table


def rename(table: Table, name: str) -> Table:
    """``table`` named ``name``; the names of its keys, indexes and checks that begin with its
    old name and an underscore (what PostgreSQL and MySQL name them after the table:
    ``t_pkey``, ``t_ibfk_1``; PostgreSQL's index names must be unique in a schema) follow."""
    old = table.name

    def follow(what: str) -> str:
        return name + what[len(old) :] if what.startswith(old + "_") else what

    return replace(
        table,
        name=name,
        primary_key_name=follow(table.primary_key_name),
        indexes=tuple(replace(i, name=follow(i.name)) for i in table.indexes),
        foreign_keys=tuple(
            replace(
                f,
                name=follow(f.name),
                ref_table=name if f.ref_table == old else f.ref_table,  # a self-reference
            )
            for f in table.foreign_keys
        ),
        checks=tuple(replace(c, name=follow(c.name)) for c in table.checks),
    )


T = DType

# MySQL/MariaDB -> PostgreSQL: the type's name there, and whether its length or precision
# carries over. Unsigned integers take the next wider type; BIGINT UNSIGNED stays BIGINT (a
# foreign key must match the key it references, and NUMERIC would not), so values above
# 2^63 - 1 cannot be copied.
_TO_POSTGRES: dict[DType, tuple[str, bool]] = {
    T.TINYINT: ("smallint", False),
    T.UTINYINT: ("smallint", False),
    T.SMALLINT: ("smallint", False),
    T.USMALLINT: ("integer", False),
    T.MEDIUMINT: ("integer", False),
    T.UMEDIUMINT: ("integer", False),
    T.INT: ("integer", False),
    T.UINT: ("bigint", False),
    T.BIGINT: ("bigint", False),
    T.UBIGINT: ("bigint", False),
    T.DECIMAL: ("numeric", True),
    T.UDECIMAL: ("numeric", True),
    T.FLOAT: ("real", False),
    T.DOUBLE: ("double precision", False),
    T.VARCHAR: ("varchar", True),
    T.CHAR: ("char", True),
    T.TINYTEXT: ("text", False),
    T.TEXT: ("text", False),
    T.MEDIUMTEXT: ("text", False),
    T.LONGTEXT: ("text", False),
    T.BINARY: ("bytea", False),
    T.VARBINARY: ("bytea", False),
    T.TINYBLOB: ("bytea", False),
    T.BLOB: ("bytea", False),
    T.MEDIUMBLOB: ("bytea", False),
    T.LONGBLOB: ("bytea", False),
    T.DATE: ("date", False),
    T.DATETIME: ("timestamp", True),
    T.TIMESTAMP: ("timestamp", True),
    # MySQL's TIMESTAMP is an instant (stored in UTC, shown in the session's time zone)
    T.TIMESTAMPTZ: ("timestamp with time zone", True),
    T.TIME: ("time", True),
    T.YEAR: ("smallint", False),
    T.JSON: ("jsonb", False),
    T.BIT: ("bit", True),
}
# PostgreSQL -> MySQL/MariaDB. TEXT and BYTEA hold up to 1 GB: LONGTEXT and LONGBLOB, not
# the 64 KB TEXT and BLOB. Timestamps keep PostgreSQL's microseconds.
_TO_MYSQL: dict[DType, tuple[str, bool]] = {
    T.SMALLINT: ("smallint", False),
    T.INT: ("int", False),
    T.BIGINT: ("bigint", False),
    T.DECIMAL: ("decimal", True),
    T.FLOAT: ("float", False),
    T.DOUBLE: ("double", False),
    T.BOOLEAN: ("tinyint(1)", False),
    T.VARCHAR: ("varchar", True),
    T.CHAR: ("char", True),
    T.BPCHAR: ("char", True),
    T.TEXT: ("longtext", False),
    T.VARBINARY: ("longblob", False),
    T.DATE: ("date", False),
    T.TIMESTAMP: ("datetime", True),
    T.TIMESTAMPTZ: ("datetime", True),
    T.TIME: ("time", True),
    T.JSON: ("json", False),
    T.JSONB: ("json", False),
    T.UUID: ("char(36)", False),
    T.BIT: ("bit", True),
}
_WHY_NOT = {
    T.ENUM: "it would need a PostgreSQL enum type (CREATE TYPE), which a table sync does not make",
    T.SET: "PostgreSQL has no SET type",
    T.ARRAY: "MySQL has no array types",
    T.INTERVAL: "MySQL has no interval type",
    T.GEOMETRY: "spatial types are not carried between engines",
    T.POINT: "spatial types are not carried between engines",
}


def _refuse(table: Table, what: str, why: str) -> SchemaRefused:
    return SchemaRefused(f"table {table.name}, {what}: {why}")


def _numbers(dt: exp.DataType) -> list[int]:
    out = []
    for param in dt.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(value, exp.Literal) and not value.is_string and value.name.isdigit():
            out.append(int(value.name))
    return out


def translate_type(table: Table, column: Column, source_engine: str, engine: str) -> str:
    """``column``'s type in ``engine``'s spelling (its catalog's)."""
    what = f"column {column.name} ({column.type})"
    text = column.type
    if family(source_engine) == "mysql":
        text = " ".join(w for w in text.split() if w != "zerofill")  # display padding only
    try:
        dt = exp.DataType.build(text, dialect=dialect(source_engine))
    except (SqlglotError, ValueError):
        raise _refuse(table, what, f"OpenDMS cannot read this {source_engine} type") from None
    # sqlglot reads some types loosely (PostgreSQL's BIT VARYING as BIT): only a type it
    # reads back as it was is carried
    if canonical_type(dt.sql(dialect(source_engine)), source_engine) != canonical_type(
        text, source_engine
    ):
        raise _refuse(table, what, f"OpenDMS cannot read this {source_engine} type exactly")
    kind = dt.this
    mapping = _TO_POSTGRES if engine == "postgresql" else _TO_MYSQL
    if family(engine) not in ("mysql", "postgresql"):
        return canonical_type(dt.sql(dialect(engine)), engine)
    if kind not in mapping:
        why = _WHY_NOT.get(kind, f"{engine} has no counterpart of it")
        raise _refuse(table, what, why)
    name, sized = mapping[kind]
    numbers = _numbers(dt) if sized else []
    if kind is T.DECIMAL and engine != "postgresql" and not numbers:
        numbers = [65, 30]  # PostgreSQL's unbounded NUMERIC: MySQL's widest DECIMAL
    if family(engine) == "mysql" and kind in (T.TIMESTAMP, T.TIMESTAMPTZ, T.TIME) and not numbers:
        numbers = [6]  # PostgreSQL keeps microseconds unless told otherwise
    if kind is T.VARCHAR and family(engine) == "mysql" and not numbers:
        name = "longtext"  # PostgreSQL's VARCHAR without a length is unbounded
    if kind in (T.DATETIME, T.TIMESTAMP, T.TIMESTAMPTZ) and engine == "postgresql":
        numbers = numbers[:1]
        zone = " with time zone" if name.endswith("time zone") else ""
        head = "timestamp"
        return canonical_type(head + (f"({numbers[0]})" if numbers else "") + zone, engine)
    params = f"({','.join(str(n) for n in numbers)})" if numbers else ""
    return canonical_type(name + params, engine)


def _expression(table: Table, what: str, text: str, source_engine: str, engine: str) -> str:
    """An expression (a default, a generated column's, a CHECK's) written in ``engine``'s
    dialect."""
    try:
        node = sqlglot.parse_one(text, read=dialect(source_engine))
    except SqlglotError:
        raise _refuse(table, what, f"OpenDMS cannot read {text!r}") from None
    if family(engine) == "mysql":
        # MySQL keeps booleans as numbers and reports TRUE as 1
        node = node.transform(
            lambda n: exp.Literal.number(1 if n.this else 0) if isinstance(n, exp.Boolean) else n
        )
    return node.sql(dialect=dialect(engine))


_TIME_TYPES = ("datetime", "timestamp", "timestamp with time zone", "time")


def _default(
    table: Table, column: Column, type_: str, source_engine: str, engine: str
) -> str | None:
    if column.default is None or column.auto_increment:
        return None
    what = f"column {column.name} default {column.default}"
    if mysql_default(column.default).startswith("CURRENT_TIMESTAMP"):
        # MySQL wants the current time at the column's own precision; PostgreSQL rounds it
        # to the column's (and sqlglot writes its CURRENT_TIMESTAMP without one)
        digits = type_[type_.find("(") + 1 : type_.find(")")] if "(" in type_ else ""
        if family(engine) == "mysql" and base_type(type_) in _TIME_TYPES and digits:
            return f"CURRENT_TIMESTAMP({digits})"
        return "CURRENT_TIMESTAMP"
    text = _expression(table, what, column.default, source_engine, engine)
    return mysql_default(text) if family(engine) == "mysql" else text


def _column(table: Table, column: Column, source_engine: str, engine: str) -> Column:
    type_ = translate_type(table, column, source_engine, engine)
    if column.on_update and family(engine) != "mysql":
        raise _refuse(
            table,
            f"column {column.name}",
            f"ON UPDATE {column.on_update} has no {engine} column counterpart (it needs a trigger)",
        )
    if (
        column.auto_increment
        and engine == "postgresql"
        and base_type(type_)
        not in (
            "smallint",
            "integer",
            "bigint",
        )
    ):
        raise _refuse(
            table, f"column {column.name}", f"an identity column cannot be of type {type_}"
        )
    generated = column.generated
    stored = column.generated_stored
    if generated:
        generated = _expression(table, f"column {column.name}", generated, source_engine, engine)
        # PostgreSQL (before 18) computes generated columns only when rows are written
        stored = stored or engine == "postgresql"
    return replace(
        column,
        type=type_,
        default=_default(table, column, type_, source_engine, engine),
        charset="",
        collation="",
        generated=generated,
        generated_stored=stored,
    )


_LONG = ("text", "blob", "longtext", "longblob", "mediumtext", "mediumblob", "tinytext", "json")


def _index(table: Table, index: Index, columns: dict[str, Column], engine: str) -> Index:
    what = f"index {index.name}"
    if engine == "postgresql":
        if index.method in ("fulltext", "spatial"):
            raise _refuse(table, what, f"PostgreSQL has no {index.method.upper()} indexes")
        if any(n is not None for n in index.lengths):
            if index.unique:
                raise _refuse(
                    table, what, "a unique index on column prefixes has no PostgreSQL counterpart"
                )
            index = replace(index, lengths=())  # the whole column serves the same lookups
        return replace(index, constraint=False)
    if index.where:
        raise _refuse(table, what, f"{engine} has no partial indexes")
    if index.method not in ("", "hash", "btree"):
        raise _refuse(table, what, f"{engine} has no {index.method} indexes")
    for i, part in enumerate(index.columns):
        column = columns.get(part.lower())
        if column is None:
            raise _refuse(table, what, f"{engine} cannot index the expression {part}")
        long = base_type(column.type) in _LONG
        if long and (i >= len(index.lengths) or index.lengths[i] is None):
            raise _refuse(
                table, what, f"{engine} indexes {column.type} column {part} only by a prefix length"
            )
    # InnoDB makes every index a B-tree whatever it is asked
    return replace(index, method="", constraint=False, comment=index.comment)


def _foreign_key(table: Table, fk: ForeignKey, engine: str) -> ForeignKey:
    if family(engine) != "mysql":
        return fk

    def action(text: str) -> str:
        if text.upper() == "SET DEFAULT":
            raise _refuse(table, f"foreign key {fk.name}", f"{engine} has no ON … SET DEFAULT")
        return "" if text.upper() in ("RESTRICT", "NO ACTION") else text.upper()  # InnoDB: alike

    return replace(fk, on_delete=action(fk.on_delete), on_update=action(fk.on_update))


def translate(table: Table, source_engine: str, engine: str) -> Table:
    """``table``, read on ``source_engine``, as ``engine`` would hold it."""
    columns = tuple(_column(table, c, source_engine, engine) for c in table.columns)
    by_name = {c.name.lower(): c for c in columns}
    for name in table.primary_key:
        column = by_name.get(name.lower())
        if family(engine) == "mysql" and column and base_type(column.type) in _LONG:
            raise _refuse(table, "primary key", f"{engine} cannot key {column.type} column {name}")
    checks = tuple(
        Check(c.name, _expression(table, f"check {c.name}", c.expression, source_engine, engine))
        for c in table.checks
    )
    return replace(
        table,
        columns=columns,
        primary_key_name="" if family(engine) == "mysql" else table.primary_key_name,
        indexes=tuple(_index(table, i, by_name, engine) for i in table.indexes),
        foreign_keys=tuple(_foreign_key(table, f, engine) for f in table.foreign_keys),
        checks=checks,
        engine="",
        charset="",
        collation="",
    )
