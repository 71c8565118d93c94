"""Two walkers of one chunked change on MariaDB and PostgreSQL take turns on its position row:
every row is changed exactly once, and the chunks they ran add up to one walk, from the
table's first key or bounded to the keys the change matches (cut by value). A chunk's commit
that need not wait for the disk is undone, if at all, with its position."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from opendms.execution.walk import Position, advance, begin_walk, bounded
from opendms.sql.chunks import chunking
from opendms.targets.base import Endpoint
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration

ROWS, SIZE = 300, 7


def race(endpoint: Endpoint, where: tuple[str, str], engine: str, *, bound: bool) -> list[Position]:
    plan = chunking("UPDATE t SET n = n + 1 WHERE 1 = 1", engine, {"t": ("id",)}.get)
    connector = connector_for(endpoint)
    barrier = threading.Barrier(2)
    key = f"race-{uuid.uuid4().hex}"  # the server's progress table outlives this test
    ends: list[Position] = []
    errors: list[BaseException] = []

    def walker() -> None:
        try:
            with connector.change(where, 10) as change:
                begin_walk(change, key, (lambda: bounded(change, plan)) if bound else None)
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


def check(ends: list[Position], counts: dict[Any, Any], *, bound: bool) -> None:
    assert counts == {1: ROWS}, counts  # none missed, none twice
    # from the table's first key, the last chunk is the one that finds no end; bounded, the
    # one that reaches the last key
    chunks = -(-ROWS // SIZE) if bound else ROWS // SIZE + 1
    assert all(e.done and e.rows == ROWS and e.chunks == chunks for e in ends), ends


@pytest.mark.parametrize("bound", [False, True], ids=["whole", "bounded"])
def test_two_walkers_on_mariadb(bound: bool) -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO t SELECT seq, 0 FROM seq_1_to_{ROWS}")
        endpoint = Endpoint("mariadb", "127.0.0.1", 3306, "root")
        ends = race(endpoint, ("def", name), "mariadb", bound=bound)
        cur.execute("SELECT n, COUNT(*) FROM t GROUP BY n")
        check(ends, dict(cur.fetchall()), bound=bound)


@pytest.mark.parametrize("bound", [False, True], ids=["whole", "bounded"])
def test_two_walkers_on_postgresql(bound: bool) -> None:
    with pg_database() as (name, conn):
        conn.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL)")
        conn.execute(f"INSERT INTO t SELECT g, 0 FROM generate_series(1, {ROWS}) g")
        endpoint = Endpoint("postgresql", "127.0.0.1", 5432, "postgres", database=name)
        ends = race(endpoint, (name, "public"), "postgresql", bound=bound)
        counts = dict(conn.execute("SELECT n, COUNT(*) FROM t GROUP BY n").fetchall())
        check(ends, counts, bound=bound)


def test_a_commit_that_need_not_wait_for_the_disk_is_one_transaction_of_its_own() -> None:
    with pg_database() as (name, conn):
        conn.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        endpoint = Endpoint("postgresql", "127.0.0.1", 5432, "postgres", database=name)
        with connector_for(endpoint).change((name, "public"), 10) as change:
            change.begin()
            usual = change.query("SHOW synchronous_commit")
            change.execute("INSERT INTO t VALUES (1)")
            change.commit_soon()
            assert change.query("SHOW synchronous_commit") == [("off",)]
            change.commit()
            change.begin()
            assert change.query("SHOW synchronous_commit") == usual  # that transaction only
            change.rollback()
        assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]
