"""The SQL console on real MariaDB and PostgreSQL databases, through the service: rows as
objects, the server's own statement timeout, the read-only transaction, commits and
rollbacks (and MariaDB's commit at DDL), masking, EXPLAIN / SHOW / DESCRIBE, and the pool:
connections reused, and one the server killed meanwhile replaced."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opendms.catalog.sensitive import set_mask
from opendms.console.service import StatementResult, execute_script
from opendms.identity.secrets import SecretBox
from opendms.rulebook import rule_sets
from opendms.store.db import Store
from opendms.store.models import Instance
from opendms.targets.base import StatementError, TargetError
from opendms.targets.console import ConsoleSession
from tests.approval_world import World
from tests.integration.server_db import ServerDb

pytestmark = pytest.mark.integration

ROWS = 50


def _fill(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
            "email VARCHAR(128) NOT NULL, amount DECIMAL(10,2) NOT NULL)"
        )
        cur.executemany(
            "INSERT INTO people VALUES (%s, %s, %s, %s)",
            [(i, f"person {i}", f"user{i}@example.com", f"{i}.25") for i in range(1, ROWS + 1)],
        )


@contextmanager
def _server(engine: str, store: Store, box: SecretBox, tmp_path: Path) -> Iterator[ServerDb]:
    with World.on_server(engine, store, box, tmp_path, _fill) as (world, name, conn):
        world.may("QUERY", "alice")
        try:
            yield ServerDb(engine, name, conn, world, box)
        finally:
            world.means.console.close()  # the test database is dropped next


@pytest.fixture(params=["mariadb", "postgresql"])
def server(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[ServerDb]:
    with _server(request.param, store, box, tmp_path) as found:
        yield found


@pytest.fixture
def mariadb(store: Store, box: SecretBox, tmp_path: Path) -> Iterator[ServerDb]:
    with _server("mariadb", store, box, tmp_path) as found:
        yield found


@pytest.fixture
def postgres(store: Store, box: SecretBox, tmp_path: Path) -> Iterator[ServerDb]:
    with _server("postgresql", store, box, tmp_path) as found:
        yield found


def run(server: ServerDb, script: str, who: str = "alice") -> list[StatementResult]:
    w = server.world
    with w.store.session() as s:
        return execute_script(s, w.means, w.as_(who), w.db_id, script)


def ok(server: ServerDb, script: str, who: str = "alice") -> StatementResult:
    (r,) = run(server, script, who)
    assert r.success, r.message
    return r


def set_timeout(server: ServerDb, seconds: int) -> None:
    with server.world.store.session() as s:
        s.get_one(Instance, server.world.instance_id).query_timeout = seconds


class Pooled:
    """The console's pool for the world's database, used directly: what the service would
    lend a script, without the statement allowlist (which refuses the functions these tests
    need to see a connection's identity)."""

    def __init__(self, server: ServerDb) -> None:
        self.server = server
        w = server.world
        with w.store.session() as s:
            inst = s.get_one(Instance, w.instance_id)
            self.connector = w.means.connector(inst)
        pg = server.engine == "postgresql"
        self.where = (server.name, "public") if pg else ("def", server.name)

    def session(self, read_only: bool = True) -> Any:
        return self.server.world.means.console.session(
            self.connector, self.where, read_only=read_only, timeout=10
        )

    def connection_id(self) -> int:
        query = (
            "SELECT pg_backend_pid()"
            if self.server.engine == "postgresql"
            else ("SELECT CONNECTION_ID()")
        )
        with self.session() as session:
            return int(session.run(query, 1).rows[0][0])


def test_a_read_answers_rows_as_objects(server: ServerDb) -> None:
    r = ok(server, "SELECT id, name, amount FROM people WHERE id <= 3 ORDER BY id")
    assert r.columns == ["id", "name", "amount"] and r.row_count == 3
    assert r.rows == [{"id": i, "name": f"person {i}", "amount": f"{i}.25"} for i in (1, 2, 3)]
    r = ok(server, "SELECT a.id, b.id FROM people a JOIN people b ON b.id = a.id + 1 AND a.id = 1")
    assert r.rows == [{"id": 1, "id_2": 2}]  # one object key per column, made unique


def test_the_rule_sets_row_cap_cuts_the_result_and_says_so(server: ServerDb) -> None:
    r = ok(server, "SELECT id FROM people ORDER BY id")
    assert r.row_count == ROWS and not r.truncated
    with server.world.store.session() as s:
        rule_sets.load(
            s,
            server.world.tid,
            "small",
            "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\nconsole: {max_rows: 7}\n",
        )
        rule_sets.assign(s, server.world.tid, server.world.instance_id, "small")
    r = ok(server, "SELECT id FROM people ORDER BY id LIMIT 20 OFFSET 10")
    assert [row["id"] for row in r.rows] == list(range(11, 18))
    assert r.truncated and "the first 7 rows" in r.message


def slow_query(server: ServerDb) -> str:
    """A query the function allowlist lets through that runs far longer than a second."""
    if server.engine == "mariadb":
        return "SELECT count(*) FROM seq_1_to_100000 a, seq_1_to_100000 b"
    return "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b"


def test_the_servers_own_statement_timeout_stops_a_long_query(server: ServerDb) -> None:
    set_timeout(server, 1)
    results = run(server, f"{slow_query(server)}; SELECT 1")
    assert [r.success for r in results] == [False, False]
    assert "QueryTimeout (1 s)" in results[0].message
    assert results[1].message == "not run: statement 1 failed"
    # the connection that was stopped serves the next script
    assert ok(server, "SELECT count(*) AS n FROM people").rows == [{"n": ROWS}]


def test_a_read_runs_in_a_transaction_the_server_keeps_read_only(server: ServerDb) -> None:
    # Were a write ever to slip past the allowlist, the server itself refuses it.
    pooled = Pooled(server)
    with pooled.session(read_only=True) as session, pytest.raises(StatementError) as caught:
        session.run("UPDATE people SET name = 'x' WHERE id = 1", 10)
    assert "read" in caught.value.message.lower()
    assert server.rows("SELECT name FROM people WHERE id = 1") == [("person 1",)]


def test_a_change_script_on_a_dev_instance_commits(server: ServerDb) -> None:
    server.world.set_env("dev")
    server.world.may("CORRECT", "alice")
    results = run(
        server,
        "UPDATE people SET name = 'renamed' WHERE id <= 2;"
        "INSERT INTO people (id, name, email, amount) VALUES (100, 'new', 'n@x', 1);"
        "SELECT count(*) AS n FROM people WHERE name = 'renamed'",
    )
    assert [r.success for r in results] == [True, True, True], [r.message for r in results]
    assert [r.row_count for r in results] == [2, 1, 1]
    assert results[2].rows == [{"n": 2}]  # the script sees its own changes
    assert server.rows("SELECT count(*) FROM people WHERE name = 'renamed' OR id = 100") == [(3,)]


def test_a_failing_statement_rolls_back_the_changes_before_it(server: ServerDb) -> None:
    server.world.set_env("dev")
    server.world.may("CORRECT", "alice")
    results = run(
        server,
        "UPDATE people SET name = 'gone' WHERE id = 1;"
        "CREATE TABLE extra (id INT PRIMARY KEY);"
        "UPDATE people SET name = 'gone' WHERE id = 2;"
        "INSERT INTO people (id, name, email, amount) VALUES (3, 'dup', 'd@x', 1);"
        "UPDATE people SET name = 'gone' WHERE id = 4",
    )
    assert not results[3].success and results[4].message == "not run: statement 4 failed"
    assert results[2].message == "rolled back: statement 4 failed"
    gone = [r[0] for r in server.rows("SELECT id FROM people WHERE name = 'gone' ORDER BY id")]
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'extra'"
    if server.engine == "postgresql":
        # PostgreSQL's DDL is transactional: nothing of the script stays
        assert [r.success for r in results[:3]] == [False, False, False]
        assert results[0].message == results[1].message == "rolled back: statement 4 failed"
        assert gone == [] and server.rows(tables) == [(0,)]
    else:
        # MariaDB commits at DDL: the statements up to CREATE TABLE stay, and say so
        assert [r.success for r in results[:3]] == [True, True, False]
        assert results[0].message.startswith("committed: mariadb commits at DDL")
        assert results[1].message.startswith("committed")
        assert gone == [1] and server.rows(tables) == [(1,)]


def test_sensitive_columns_come_back_masked(server: ServerDb) -> None:
    with server.world.store.session() as s:
        set_mask(s, server.world.tid, server.world.db_id, "people", "email", "FULL", None)
    r = ok(server, "SELECT id, email, concat('<', email, '>') AS wrapped FROM people WHERE id = 1")
    assert r.rows == [{"id": 1, "email": "******", "wrapped": "******"}]
    assert r.masked == ["email", "wrapped"] and "masked: email, wrapped" in r.message


def test_a_table_made_by_the_console_is_masked_once_the_catalog_knows_it(
    server: ServerDb,
) -> None:
    server.sql(
        "CREATE TABLE secrets (id INT PRIMARY KEY, token VARCHAR(32) NOT NULL)",
        "INSERT INTO secrets VALUES (1, 'abc')",
    )
    server.sync()
    with server.world.store.session() as s:
        set_mask(s, server.world.tid, server.world.db_id, "secrets", "token", "FULL", None)
    assert ok(server, "SELECT token FROM secrets").rows == [{"token": "******"}]


def test_explain_show_and_describe_answer_on_mariadb(mariadb: ServerDb) -> None:
    server = mariadb
    r = ok(server, "EXPLAIN SELECT * FROM people WHERE id = 1")
    assert "select_type" in r.columns and r.rows[0]["table"] == "people"
    r = ok(server, "EXPLAIN FORMAT=JSON SELECT * FROM people WHERE id = 1")
    assert '"table_name": "people"' in str(r.rows[0])
    # MariaDB plans a change only in a read-write transaction: it gets one, and the change
    # is planned, not run
    r = ok(server, "EXPLAIN UPDATE people SET name = 'x' WHERE id = 1")
    assert r.rows[0]["table"] == "people"
    assert {row["Field"] for row in ok(server, "DESCRIBE people").rows} >= {"id", "email"}
    assert {row["Field"] for row in ok(server, "SHOW COLUMNS FROM people").rows} >= {"id"}
    assert ok(server, "SHOW CREATE TABLE people").rows[0]["Table"] == "people"
    assert [next(iter(row.values())) for row in ok(server, "SHOW TABLES").rows] == ["people"]
    r = ok(server, "SHOW VARIABLES LIKE 'max_statement_time'")
    assert r.rows[0]["Variable_name"] == "max_statement_time"
    assert {row["Key_name"] for row in ok(server, "SHOW INDEX FROM people").rows} == {"PRIMARY"}
    assert server.rows("SELECT name FROM people WHERE id = 1") == [("person 1",)]


def test_explain_and_show_answer_on_postgresql(postgres: ServerDb) -> None:
    server = postgres
    r = ok(server, "EXPLAIN SELECT * FROM people WHERE id = 1")
    assert r.columns == ["QUERY PLAN"] and "people" in r.rows[0]["QUERY PLAN"]
    r = ok(server, "EXPLAIN (FORMAT JSON, COSTS off) SELECT * FROM people")
    assert "Seq Scan" in str(r.rows[0]["QUERY PLAN"])
    r = ok(server, "EXPLAIN ANALYZE SELECT count(*) FROM people")
    assert any("actual" in row["QUERY PLAN"] for row in r.rows)
    r = ok(server, "EXPLAIN UPDATE people SET name = 'x' WHERE id = 1")  # planned, not run
    assert "Update on people" in r.rows[0]["QUERY PLAN"]
    assert ok(server, "SHOW search_path").rows == [{"search_path": "public"}]
    set_timeout(server, 7)
    # the instance's QueryTimeout is the server's own statement timeout, per transaction
    assert ok(server, "SHOW statement_timeout").rows == [{"statement_timeout": "7s"}]
    assert ok(server, "SHOW TRANSACTION ISOLATION LEVEL").rows[0]
    assert server.rows("SELECT name FROM people WHERE id = 1") == [("person 1",)]


def test_the_pool_lends_the_same_connection_to_the_next_script(server: ServerDb) -> None:
    pooled = Pooled(server)
    first = pooled.connection_id()
    assert ok(server, "SELECT count(*) AS n FROM people").rows == [{"n": ROWS}]
    assert pooled.connection_id() == first


def test_a_connection_the_server_killed_meanwhile_is_replaced(server: ServerDb) -> None:
    pooled = Pooled(server)
    first = pooled.connection_id()
    if server.engine == "postgresql":
        server.rows(f"SELECT pg_terminate_backend({first})")
    else:
        server.sql(f"KILL {first}")
    assert ok(server, "SELECT count(*) AS n FROM people").rows == [{"n": ROWS}]
    assert pooled.connection_id() != first


def test_a_connection_broken_during_a_script_leaves_the_pool(server: ServerDb) -> None:
    pooled = Pooled(server)
    first = pooled.connection_id()
    session: ConsoleSession
    with pytest.raises(TargetError, match="broke"), pooled.session() as session:
        if server.engine == "postgresql":
            server.rows(f"SELECT pg_terminate_backend({first})")
        else:
            server.sql(f"KILL {first}")
        session.run("SELECT 1", 1)
    assert pooled.connection_id() != first
    assert ok(server, "SELECT 1 AS one").rows == [{"one": 1}]


def test_a_whole_row_read_as_one_value_comes_back_masked_on_postgresql(
    postgres: ServerDb,
) -> None:
    with postgres.world.store.session() as s:
        set_mask(s, postgres.world.tid, postgres.world.db_id, "people", "email", "FULL", None)
    for sql in (
        "SELECT p FROM people p WHERE id = 1",
        "SELECT row_to_json(p) AS j FROM people p WHERE id = 1",
        "SELECT ROW(p.*) AS r FROM people p WHERE id = 1",
    ):
        r = ok(postgres, sql)
        assert "example.com" not in str(r.rows) and r.rows[0] == dict.fromkeys(r.columns, "******")


def test_a_transaction_left_open_is_rolled_back_before_the_connection_goes_back(
    server: ServerDb,
) -> None:
    pooled = Pooled(server)
    first = pooled.connection_id()
    with pooled.session(read_only=False) as session:
        session.run("UPDATE people SET name = 'open' WHERE id = 1", 10)
    assert server.rows("SELECT name FROM people WHERE id = 1") == [("person 1",)]
    with pooled.session(read_only=False) as session:  # the same connection, a new transaction
        assert session.run("SELECT name FROM people WHERE id = 1", 10).rows == [("person 1",)]
    assert pooled.connection_id() == first
