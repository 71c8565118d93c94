"""Two walkers of one chunked change on MariaDB and PostgreSQL take turns on its position row:
every row is changed exactly once, and the chunks they ran add up to one walk."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from opendms.execution.walk import Position, advance, begin_walk
from opendms.sql.chunks import chunking
from opendms.targets.base import Endpoint
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration

ROWS, SIZE = 300, 7


def race(endpoint: Endpoint, where: tuple[str, str], engine: str) -> list[Position]:
    plan = chunking("UPDATE t SET n = n + 1 WHERE 1 = 1", engine, {"t": ("id",)}.get)
    connector = connector_for(endpoint)
    barrier = threading.Barrier(2)
    key = f"race-{uuid.uuid4().hex}"  # the server's progress table outlives this test
    ends: list[Position] = []
    errors: list[BaseException] = []

    def walker() -> None:
        try:
            with connector.change(where, 10) as change:
                begin_walk(change, key)
                barrier.wait()
                while not (moved := advance(change, plan, key, SIZE))[0].done:
                    pass
                ends.append(moved[0])
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=walker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return ends


def check(ends: list[Position], counts: dict[Any, Any]) -> None:
    assert counts == {1: ROWS}, counts  # none missed, none twice
    assert all(e.done and e.rows == ROWS and e.chunks == ROWS // SIZE + 1 for e in ends), ends


def test_two_walkers_on_mariadb() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO t SELECT seq, 0 FROM seq_1_to_{ROWS}")
        endpoint = Endpoint("mariadb", "127.0.0.1", 3306, "root")
        ends = race(endpoint, ("def", name), "mariadb")
        cur.execute("SELECT n, COUNT(*) FROM t GROUP BY n")
        check(ends, dict(cur.fetchall()))


def test_two_walkers_on_postgresql() -> None:
    with pg_database() as (name, conn):
        conn.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL)")
        conn.execute(f"INSERT INTO t SELECT g, 0 FROM generate_series(1, {ROWS}) g")
        endpoint = Endpoint("postgresql", "127.0.0.1", 5432, "postgres", database=name)
        ends = race(endpoint, (name, "public"), "postgresql")
        check(ends, dict(conn.execute("SELECT n, COUNT(*) FROM t GROUP BY n").fetchall()))
