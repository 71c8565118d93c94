"""Counting what a change will touch: the count query's answer equals the rows the statement
really changes (run and rolled back), on SQLite here and on the real servers in
tests/integration."""

from __future__ import annotations

import sqlite3

import pytest

from opendms.sql.rows import RowCount, count_query

SETUP = """
CREATE TABLE t (id INTEGER PRIMARY KEY, a INT, b INT, name TEXT);
CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INT, c INT);
INSERT INTO t (id, a, b, name) VALUES (1, 1, 1, 'x'), (2, 1, 5, 'y'), (3, 2, 7, NULL),
    (4, 3, 9, 'xy'), (5, 3, 11, 'z');
INSERT INTO u (id, t_id, c) VALUES (1, 1, 2), (2, 2, 2), (3, 5, 3);
"""

STATEMENTS = [
    "UPDATE t SET a = 0",
    "UPDATE t SET a = 0 WHERE b > 4",
    "UPDATE t SET a = 0 WHERE name LIKE 'x%' OR name IS NULL",
    "DELETE FROM t WHERE a = 3",
    "DELETE FROM t WHERE id IN (SELECT t_id FROM u WHERE c = 2)",
    "DELETE FROM t WHERE b > 100",
    "UPDATE t SET a = a + 1 WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id)",
    "INSERT INTO u (t_id, c) SELECT id, a FROM t WHERE b < 8",
    "INSERT INTO u (t_id, c) VALUES (1, 1), (2, 2), (3, 3)",
]


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SETUP)
    return conn


def answer(conn: sqlite3.Connection, counted: RowCount) -> int:
    if counted.query is None:
        assert counted.literal is not None
        return counted.literal
    return int(conn.execute(counted.query).fetchone()[0])


@pytest.mark.parametrize("statement", STATEMENTS)
def test_the_count_is_what_the_statement_changes(db: sqlite3.Connection, statement: str) -> None:
    counted = count_query(statement, "sqlite")
    assert counted is not None and not counted.upper_bound
    expected = answer(db, counted)
    db.execute("BEGIN")
    changed = db.execute(statement).rowcount
    db.execute("ROLLBACK")
    assert changed == expected


@pytest.mark.parametrize(
    ("statement", "engine", "query"),
    [
        (
            "DELETE FROM t WHERE b > 2 ORDER BY id LIMIT 5",
            "mysql",
            "SELECT COUNT(*) FROM (SELECT 1 FROM t WHERE b > 2 ORDER BY id LIMIT 5) AS counted",
        ),
        (
            "UPDATE t JOIN u ON u.t_id = t.id SET t.a = 1 WHERE u.c = 2",
            "mysql",
            "SELECT COUNT(*) FROM t JOIN u ON u.t_id = t.id WHERE u.c = 2",
        ),
        (
            "UPDATE t SET a = u.c FROM u WHERE u.t_id = t.id",
            "postgresql",
            "SELECT COUNT(*) FROM t CROSS JOIN u WHERE u.t_id = t.id",
        ),
        (
            "DELETE FROM t USING u WHERE u.t_id = t.id",
            "postgresql",
            "SELECT COUNT(*) FROM t CROSS JOIN u WHERE u.t_id = t.id",
        ),
    ],
)
def test_limits_and_joins(statement: str, engine: str, query: str) -> None:
    counted = count_query(statement, engine)
    assert counted is not None and counted.query == query
    assert counted.upper_bound is ("JOIN" in query)


def test_statements_a_count_cannot_describe() -> None:
    assert count_query("ALTER TABLE t ADD c INT", "mysql") is None
    assert count_query("CALL p()", "mysql") is None
    assert count_query("INSERT INTO t VALUES (1), (2)", "mysql") == RowCount(None, literal=2)


def test_an_exports_rows_are_counted_over_the_query_as_parsed() -> None:
    # generated from the tree the checks read, never pasted from the submitted text
    found = count_query("SELECT id, name FROM t -- the report\nWHERE x = 1", "mysql")
    assert found is not None
    assert found.query == "SELECT COUNT(*) FROM (\nSELECT id, name FROM t WHERE x = 1\n) AS counted"


def test_repeated_result_names_are_renamed_for_the_count() -> None:
    found = count_query("SELECT a.id, b.id FROM a JOIN b ON b.id = a.id", "mysql")
    assert found is not None and found.query is not None
    assert "AS id_2" in found.query
