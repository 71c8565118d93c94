"""Table definitions (``schema.model``) read from a MySQL 8 or MariaDB 10 information_schema:
five queries for a whole schema, whatever its number of tables.

What each server says in its own way is brought to one spelling here (``schema.spelling``):
MariaDB quotes literal defaults and writes ``current_timestamp()``, MySQL 8 leaves literals
bare and marks expression defaults DEFAULT_GENERATED; MariaDB's JSON is a LONGTEXT with a
CHECK (json_valid(…)) it made itself; MariaDB reports integer display widths that MySQL 8
drops; both add an index named after a foreign key that has none to use.

The queries are put together from fixed SQL and placeholders only (hence their S608 waivers).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import replace
from typing import Any

import pymysql

from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from opendms.schema.spelling import mysql_default, mysql_type, numeric_type, unwrapped

_UNKNOWN_COLUMN = 1054
_UNKNOWN_TABLE = 1109  # an information_schema table the server does not have


def _filter(
    schema: str,
    names: Collection[str] | None,
    prefix: str = "",
    schema_column: str = "TABLE_SCHEMA",
) -> tuple[str, list[Any]]:
    """The WHERE of a query of one schema's tables (``names`` only, when given)."""
    where = f"{prefix}{schema_column} = %s"
    args: list[Any] = [schema]
    if names is not None:
        where += f" AND {prefix}TABLE_NAME IN ({', '.join(['%s'] * len(names))})"
        args += list(names)
    return where, args


def read_definitions(conn: Any, schema: str, names: Collection[str] | None) -> dict[str, Table]:
    if names is not None and not names:
        return {}
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
        mariadb = "mariadb" in str(row[0] if row else "").lower()
        where, args = _filter(schema, names)
        cur.execute(
            "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, TABLE_COMMENT, TABLE_ROWS, "  # noqa: S608
            "COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) FROM information_schema.TABLES "
            f"WHERE {where} AND TABLE_TYPE = 'BASE TABLE'",
            args,
        )
        tables = {str(r[0]): r for r in cur.fetchall()}
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, "  # noqa: S608
            "CHARACTER_SET_NAME, COLLATION_NAME, GENERATION_EXPRESSION, COLUMN_COMMENT "
            f"FROM information_schema.COLUMNS WHERE {where} "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION",
            args,
        )
        columns: dict[str, list[Column]] = defaultdict(list)
        for row in cur.fetchall():
            if row[0] in tables:
                columns[row[0]].append(_column(row[1:], mariadb))
        keys, indexes = _indexes(cur, where, args, mariadb)
        checks = _checks(cur, schema, names, mariadb)
        fks = _foreign_keys(cur, schema, names)
    out: dict[str, Table] = {}
    for name, (_, engine, collation, comment, rows, size) in tables.items():
        own_checks, cols = _json_columns(checks.get(name, []), columns[name])
        out[name] = Table(
            name=name,
            columns=tuple(cols),
            primary_key=tuple(keys.get(name, ())),
            indexes=tuple(sorted(indexes.get(name, []), key=lambda i: i.name)),
            foreign_keys=tuple(sorted(fks.get(name, []), key=lambda f: f.name)),
            checks=tuple(sorted(own_checks, key=lambda c: c.name)),
            comment=comment or "",
            engine=(engine or "").lower(),
            charset=(collation or "").split("_")[0],
            collation=collation or "",
            rows=int(rows or 0),
            size_bytes=int(size or 0),
        )
    return out


_ON_UPDATE = re.compile(r"on update (\S+)", re.IGNORECASE)


def _column(row: tuple[Any, ...], mariadb: bool) -> Column:
    name, ctype, nullable, default, extra, charset, collation, generation, comment = row
    extra = str(extra or "").lower()
    type_ = mysql_type(str(ctype))
    generated = ""
    if "virtual generated" in extra or "stored generated" in extra:
        generated = unwrapped(str(generation or ""))
    on_update = _ON_UPDATE.search(extra)
    return Column(
        name=str(name),
        type=type_,
        nullable=nullable == "YES",
        default=None if generated else _default(default, type_, extra, mariadb),
        auto_increment="auto_increment" in extra,
        comment=str(comment or ""),
        charset=str(charset or ""),
        collation=str(collation or ""),
        generated=generated,
        generated_stored="stored generated" in extra,
        on_update=mysql_default(on_update.group(1)) if on_update else "",
    )


def _default(raw: Any, type_: str, extra: str, mariadb: bool) -> str | None:
    """COLUMN_DEFAULT as an SQL expression. MariaDB (10.2.7 on) writes it as one already, and
    DEFAULT NULL as the word NULL; MySQL gives a literal's bare value, and an expression's
    text with DEFAULT_GENERATED in EXTRA."""
    if raw is None:
        return None
    text = str(raw)
    if mariadb:
        return None if text == "NULL" else mysql_default(text)
    if "default_generated" in extra:
        return mysql_default(unwrapped(text))
    if numeric_type(type_) or re.match(r"^[bx]'[0-9a-f]*'$", text, re.IGNORECASE):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


_METHODS = {"FULLTEXT": "fulltext", "SPATIAL": "spatial", "HASH": "hash"}


def _indexes(
    cur: Any, where: str, args: list[Any], mariadb: bool
) -> tuple[dict[str, list[str]], dict[str, list[Index]]]:
    base = (
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, COLLATION, "  # noqa: S608
        "INDEX_TYPE, INDEX_COMMENT{} FROM information_schema.STATISTICS "
        f"WHERE {where} ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
    )
    try:
        # MySQL 8.0.13+ functional key parts: no COLUMN_NAME, their EXPRESSION instead
        cur.execute(base.format(", NULL" if mariadb else ", EXPRESSION"), args)
    except pymysql.err.OperationalError as exc:
        if exc.args[0] != _UNKNOWN_COLUMN:
            raise
        cur.execute(base.format(", NULL"), args)
    keys: dict[str, list[str]] = defaultdict(list)
    parts: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in cur.fetchall():
        table, index = str(row[0]), str(row[1])
        if index == "PRIMARY":
            keys[table].append(str(row[3]))
        else:
            parts[(table, index)].append(row)
    out: dict[str, list[Index]] = defaultdict(list)
    for (table, name), rows in parts.items():
        method = _METHODS.get(str(rows[0][6]).upper(), "")
        columns = tuple(
            str(r[3]) if r[3] is not None else f"({unwrapped(str(r[8]))})" for r in rows
        )
        # SPATIAL indexes report a key length the server chose (32), not one asked for
        lengths = tuple(None if method == "spatial" else r[4] for r in rows)
        descending = tuple(r[5] == "D" for r in rows)
        out[table].append(
            Index(
                name=name,
                columns=columns,
                unique=not int(rows[0][2]),
                lengths=tuple(int(n) if n is not None else None for n in lengths)
                if any(n is not None for n in lengths)
                else (),
                descending=descending if any(descending) else (),
                method=method,
                comment=str(rows[0][7] or ""),
            )
        )
    return keys, out


def _checks(
    cur: Any, schema: str, names: Collection[str] | None, mariadb: bool
) -> dict[str, list[tuple[str, str]]]:
    """(name, clause) of each table's CHECK constraints; none on servers that keep none
    (MySQL before 8.0.16, MariaDB before 10.2.22)."""
    if mariadb:
        where, args = _filter(schema, names, schema_column="CONSTRAINT_SCHEMA")
        query = (
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM "  # noqa: S608
            f"information_schema.CHECK_CONSTRAINTS WHERE {where}"
        )
    else:  # MySQL's CHECK_CONSTRAINTS has no table: its names are unique in a schema
        where, args = _filter(schema, names, "tc.")
        query = (
            "SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE FROM "  # noqa: S608
            "information_schema.TABLE_CONSTRAINTS tc "
            "JOIN information_schema.CHECK_CONSTRAINTS cc "
            "ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA "
            "AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME "
            f"WHERE tc.CONSTRAINT_TYPE = 'CHECK' AND {where}"
        )
    try:
        cur.execute(query, args)
    except pymysql.err.MySQLError as exc:
        if exc.args and exc.args[0] in (_UNKNOWN_TABLE, 1146):
            return {}
        raise
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for table, name, clause in cur.fetchall():
        out[str(table)].append((str(name), unwrapped(str(clause))))
    return out


def _json_columns(
    checks: list[tuple[str, str]], columns: list[Column]
) -> tuple[list[Check], list[Column]]:
    """MariaDB's JSON: a LONGTEXT (utf8mb4_bin) with a CHECK (json_valid(`c`)) named after
    the column, both made by the server for the type asked: read back as that type."""
    by_name = {c.name: i for i, c in enumerate(columns)}
    own: list[Check] = []
    out = list(columns)
    for name, clause in checks:
        at = by_name.get(name)
        if (
            at is not None
            and out[at].type == "longtext"
            and clause.replace(" ", "").lower() == f"json_valid(`{name.lower()}`)"
        ):
            out[at] = replace(out[at], type="json", charset="", collation="")
        else:
            own.append(Check(name, clause))
    return own, out


_ACTIONS = {"RESTRICT": "", "NO ACTION": ""}  # alike in InnoDB


def _foreign_keys(
    cur: Any, schema: str, names: Collection[str] | None
) -> dict[str, list[ForeignKey]]:
    where, args = _filter(schema, names, "k.")
    cur.execute(
        "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, "  # noqa: S608
        "k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
        "FROM information_schema.KEY_COLUMN_USAGE k "
        "JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
        "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
        "AND r.TABLE_NAME = k.TABLE_NAME "
        f"WHERE {where} AND k.REFERENCED_TABLE_NAME IS NOT NULL "
        "ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        args,
    )
    found: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in cur.fetchall():
        found[(str(row[0]), str(row[1]))].append(row)
    out: dict[str, list[ForeignKey]] = defaultdict(list)
    for (table, name), rows in found.items():
        ref_schema, ref_table = str(rows[0][3]), str(rows[0][4])
        update, delete = str(rows[0][6] or ""), str(rows[0][7] or "")
        out[table].append(
            ForeignKey(
                name=name,
                columns=tuple(str(r[2]) for r in rows),
                ref_table=ref_table if ref_schema == schema else f"{ref_schema}.{ref_table}",
                ref_columns=tuple(str(r[5]) for r in rows),
                on_delete=_ACTIONS.get(delete, delete),
                on_update=_ACTIONS.get(update, update),
            )
        )
    return out
