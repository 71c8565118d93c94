"""Chunked statements on MariaDB and PostgreSQL change what the whole statement changes, with
a composite key whose second column is text (collation decides the order on both sides)."""

from __future__ import annotations

from typing import Any

import pytest

from opendms.sql.chunks import chunk_keys, chunking
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration

STATEMENTS = (
    "UPDATE pairs SET n = n + 1 WHERE 1 = 1",
    "DELETE FROM pairs WHERE n % 3 = 0",
    "INSERT INTO kept (a, b, n) SELECT a, b, n FROM pairs WHERE b >= 'K05'",
)


def fill(cur: Any) -> None:
    rows = [
        (a, f"{'k' if b % 2 else 'K'}{b:02d}", a * b) for a in range(1, 12) for b in range(1, 14)
    ]
    cur.executemany("INSERT INTO pairs VALUES (%s, %s, %s)", rows)


def run(cur: Any, engine: str, statement: str, size: int | None) -> list[Any]:
    cur.execute("DELETE FROM pairs")
    cur.execute("DELETE FROM kept")
    fill(cur)
    if size is None:
        cur.execute(statement)
    else:
        plan = chunking(statement, engine, {"pairs": ("a", "b")}.get)
        after = None
        while True:
            cur.execute(plan.boundary(after, size))
            upto = chunk_keys(cur.fetchall())
            cur.execute(plan.chunk(after, upto))
            if upto is None:
                break
            after = upto
    found = []
    for table in ("pairs", "kept"):
        cur.execute(f"SELECT a, b, n FROM {table} ORDER BY a, b")
        found.append([tuple(r) for r in cur.fetchall()])
    return found


@pytest.mark.parametrize("statement", STATEMENTS)
def test_chunks_on_mariadb(statement: str) -> None:
    with mysql_database() as (_name, conn), conn.cursor() as cur:
        for table in ("pairs", "kept"):
            cur.execute(
                f"CREATE TABLE {table} (a INT NOT NULL, b VARCHAR(8) NOT NULL, n INT,"
                " PRIMARY KEY (a, b)) ENGINE=InnoDB"
            )
        whole = run(cur, "mariadb", statement, None)
        for size in (1, 10, 500):
            assert run(cur, "mariadb", statement, size) == whole, size


@pytest.mark.parametrize("statement", STATEMENTS)
def test_chunks_on_postgresql(statement: str) -> None:
    with pg_database() as (_name, conn), conn.cursor() as cur:
        for table in ("pairs", "kept"):
            cur.execute(f"CREATE TABLE {table} (a INT, b TEXT, n INT, PRIMARY KEY (a, b))")
        whole = run(cur, "postgresql", statement, None)
        for size in (1, 10, 500):
            assert run(cur, "postgresql", statement, size) == whole, size
