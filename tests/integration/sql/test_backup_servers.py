"""Backups and rollback scripts restore a table exactly, row for row, on MariaDB and
PostgreSQL: for UPDATE, DELETE and INSERT, with awkward values in every column type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from opendms.sql.backup import preimage_query, remove_inserted, restore_deleted, restore_updated
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration

NASTY = ["it's", "back\\slash", "new\nline", "naïve 中文 🙂", "", "%_;--", None]


def rows_of(cursor: Any, sql: str) -> list[dict[str, Any]]:
    cursor.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def round_trip(cursor: Any, engine: str, quoted: str, begin: str, key: str = "id") -> None:
    """Each change, backed up, committed, rolled back from the script: the table is as before.
    ``quoted`` is how the statements write the table (its name is a reserved word)."""
    table = quoted.strip('`"')
    snapshot = f"SELECT * FROM {quoted} ORDER BY {key}"
    original = rows_of(cursor, snapshot)
    changes: list[tuple[str, Callable[[list[dict[str, Any]]], list[str]]]] = [
        (
            f"UPDATE {quoted} SET note = 'changed', amount = amount * 2 WHERE id % 2 = 0",
            lambda pre: restore_updated(table, pre, [key], engine),
        ),
        (f"DELETE FROM {quoted} WHERE id > 4", lambda pre: restore_deleted(table, pre, engine)),
        (
            f"INSERT INTO {quoted} (id, note) VALUES (100, 'new'), (101, NULL)",
            lambda _pre: remove_inserted(table, [{key: 100}, {key: 101}], [key], engine),
        ),
    ]
    for statement, rollback in changes:
        cursor.execute(begin)
        query = preimage_query(statement, engine)
        pre = rows_of(cursor, query) if query else []
        cursor.execute(statement)
        cursor.execute("COMMIT")
        assert rows_of(cursor, snapshot) != original, statement
        script = rollback(pre)
        cursor.execute(begin)
        for restore in script:
            cursor.execute(restore)
        cursor.execute("COMMIT")
        assert rows_of(cursor, snapshot) == original, statement


def test_rollback_restores_exactly_on_mariadb() -> None:
    with mysql_database() as (_name, conn), conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE `order` (id INT PRIMARY KEY, note VARCHAR(100), amount DECIMAL(12,3),"
            " ratio DOUBLE, at DATETIME(6), day DATE, span TIME(3), raw BLOB, doc JSON,"
            " `key` VARCHAR(10)) ENGINE=InnoDB"
        )
        for i, note in enumerate(NASTY, start=1):
            cur.execute(
                "INSERT INTO `order` VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    i,
                    note,
                    "12.345" if note else None,
                    0.1 * i,
                    f"2026-01-0{i} 10:11:12.{i:06d}",
                    f"2026-02-0{i}",
                    f"-{i}:05:06.5",
                    bytes([0, 255, 39, 92, i]),
                    '{"a": "x\'y", "n": 1}' if i % 2 else None,
                    "select",
                ),
            )
        round_trip(cur, "mariadb", "`order`", "BEGIN")


def test_rollback_restores_exactly_on_postgresql() -> None:
    with pg_database() as (_name, conn), conn.cursor() as cur:
        cur.execute(
            'CREATE TABLE "order" (id INT PRIMARY KEY, note TEXT, amount NUMERIC(12,3),'
            " ratio DOUBLE PRECISION, at TIMESTAMP, at_tz TIMESTAMPTZ, day DATE, span TIME,"
            ' raw BYTEA, doc JSONB, uid UUID, flag BOOLEAN, "key" TEXT)'
        )
        for i, note in enumerate(NASTY, start=1):
            cur.execute(
                'INSERT INTO "order" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)',
                (
                    i,
                    note,
                    "12.345" if note else None,
                    0.1 * i,
                    f"2026-01-0{i} 10:11:12.{i:06d}",
                    f"2026-01-0{i} 10:11:12+05:30",
                    f"2026-02-0{i}",
                    f"0{i}:05:06.5",
                    bytes([0, 255, 39, 92, i]),
                    '{"a": "x\'y", "n": 1}' if i % 2 else None,
                    f"00000000-0000-0000-0000-00000000000{i}",
                    i % 2 == 0,
                    "select",
                ),
            )
        round_trip(cur, "postgresql", '"order"', "BEGIN")
