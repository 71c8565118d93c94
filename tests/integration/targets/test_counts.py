"""Counting and estimating rows on the live servers: read-only, bounded in time."""

from __future__ import annotations

import pytest

from opendms.targets.base import Endpoint, TargetError
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration


def test_mariadb_count_estimate_and_timeout() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT) ENGINE=InnoDB")
        cur.executemany("INSERT INTO t VALUES (%s, %s)", [(i, i % 3) for i in range(1, 301)])
        cur.execute("ANALYZE TABLE t")
        target = connector_for(Endpoint("mariadb", "127.0.0.1", 3306, "root", ""))
        where = ("def", name)
        assert target.count(where, "SELECT COUNT(*) FROM t WHERE a = 1", 5.0) == 100
        estimate = target.estimate(where, "UPDATE t SET a = 0 WHERE a = 1")
        assert estimate is not None and estimate > 0
        assert target.count(where, "SELECT COUNT(*) FROM t WHERE SLEEP(0.05) = 0", 0.2) is None
        with pytest.raises(TargetError, match=r"counting rows failed: .*READ ONLY"):
            target.count(where, "DELETE FROM t", 5.0)
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone()[0] == 300


def test_postgresql_count_estimate_and_timeout() -> None:
    with pg_database() as (name, conn):
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.t (id INT PRIMARY KEY, a INT)")
        conn.execute("INSERT INTO app.t SELECT i, i % 3 FROM generate_series(1, 300) i")
        conn.execute("ANALYZE app.t")
        target = connector_for(Endpoint("postgresql", "127.0.0.1", 5432, "postgres", "", name))
        where = (name, "app")
        assert target.count(where, "SELECT COUNT(*) FROM t WHERE a = 1", 5.0) == 100
        estimate = target.estimate(where, "UPDATE t SET a = 0 WHERE a = 1")
        assert estimate is not None and 50 <= estimate <= 200
        assert target.count(where, "SELECT COUNT(*) FROM t, pg_sleep(1)", 0.2) is None
        with pytest.raises(TargetError, match=r"counting rows failed: .*read-only transaction"):
            target.count(where, "DELETE FROM t", 5.0)
        assert conn.execute("SELECT COUNT(*) FROM app.t").fetchone()[0] == 300
