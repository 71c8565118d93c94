"""The count query answers what the change really touches, on MariaDB and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from opendms.sql.rows import count_query
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration

ROWS = (
    "INSERT INTO t (id, a, b, name) VALUES (1, 1, 1, 'x'), (2, 1, 5, 'y'), (3, 2, 7, NULL), "
    "(4, 3, 9, 'xy'), (5, 3, 11, 'z')",
    "INSERT INTO u (id, t_id, c) VALUES (1, 1, 2), (2, 2, 2), (3, 5, 3)",
)
COMMON = [
    "UPDATE t SET a = 0 WHERE b > 4",
    "DELETE FROM t WHERE a = 3",
    "DELETE FROM t WHERE id IN (SELECT t_id FROM u WHERE c = 2)",
    "INSERT INTO u (id, t_id, c) SELECT id + 10, id, a FROM t WHERE b < 8",
]
MYSQL = [
    *COMMON,
    "DELETE FROM t WHERE b > 2 ORDER BY id LIMIT 2",
    "UPDATE t SET a = 9 ORDER BY b DESC LIMIT 3",
    "UPDATE t JOIN u ON u.t_id = t.id SET t.a = 7 WHERE u.c = 2",
]
POSTGRES = [
    *COMMON,
    "UPDATE t SET a = u.c FROM u WHERE u.t_id = t.id",
    "DELETE FROM t USING u WHERE u.t_id = t.id AND u.c = 2",
]


def _check(cursor: Any, engine: str, statement: str, begin: str, rollback: str) -> None:
    counted = count_query(statement, engine)
    assert counted is not None and counted.query is not None
    cursor.execute(counted.query)
    expected = cursor.fetchone()[0]
    cursor.execute(begin)
    cursor.execute(statement)
    changed = cursor.rowcount
    cursor.execute(rollback)
    assert changed == expected if not counted.upper_bound else changed <= expected, statement


def test_counts_on_mariadb() -> None:
    with mysql_database() as (_name, conn), conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT, name TEXT) ENGINE=InnoDB")
        cur.execute("CREATE TABLE u (id INT PRIMARY KEY, t_id INT, c INT) ENGINE=InnoDB")
        for insert in ROWS:
            cur.execute(insert)
        for statement in MYSQL:
            _check(cur, "mariadb", statement, "BEGIN", "ROLLBACK")


def test_counts_on_postgresql() -> None:
    with pg_database() as (_name, conn), conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT, name TEXT)")
        cur.execute("CREATE TABLE u (id INT PRIMARY KEY, t_id INT, c INT)")
        for insert in ROWS:
            cur.execute(insert)
        for statement in POSTGRES:
            _check(cur, "postgresql", statement, "BEGIN", "ROLLBACK")
