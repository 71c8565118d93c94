"""A statement cut into key ranges changes exactly what it changes in one go: run both on two
copies of the same SQLite table, with single and composite keys and several chunk sizes."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from opendms.sql.chunks import ChunkRefused, chunk_keys, chunking

KEYS = {"t": ("id",), "pairs": ("a", "b"), "archive": ("id",), "nokey": None}
SCHEMA = """
CREATE TABLE t (id INTEGER PRIMARY KEY, n INT, tag TEXT);
CREATE TABLE pairs (a INT NOT NULL, b TEXT NOT NULL, n INT, PRIMARY KEY (a, b));
CREATE TABLE archive (id INTEGER PRIMARY KEY, n INT, tag TEXT);
CREATE TABLE nokey (x INT);
"""


def database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(i * 3, i % 7, "odd" if i % 2 else "even") for i in range(1, 101)],
    )
    db.executemany(
        "INSERT INTO pairs VALUES (?, ?, ?)",
        [(a, f"k{b:02d}", a * b) for a in range(1, 8) for b in range(1, 9)],
    )
    return db


def state(db: sqlite3.Connection) -> list[list[tuple[Any, ...]]]:
    return [
        db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("t", "pairs", "archive")
    ]


def run_in_chunks(db: sqlite3.Connection, statement: str, size: int) -> int:
    plan = chunking(statement, "sqlite", KEYS.get)
    after, chunks = None, 0
    while True:
        upto = chunk_keys(db.execute(plan.boundary(after, size)).fetchall())
        db.execute(plan.chunk(after, upto))
        chunks += 1
        if upto is None:
            return chunks
        after = upto


@pytest.mark.parametrize("size", [1, 7, 64, 1000])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE t SET n = n + 1 WHERE 1 = 1",
        "UPDATE t SET n = n * 2, tag = 'x' WHERE tag = 'odd' OR n > 4",
        "DELETE FROM t WHERE n < 3",
        "DELETE FROM pairs WHERE n % 3 = 0",
        "UPDATE pairs SET n = -n WHERE b > 'k03'",
        "INSERT INTO archive (id, n, tag) SELECT id, n, tag FROM t WHERE tag = 'even'",
    ],
)
def test_chunks_change_what_the_whole_statement_changes(statement: str, size: int) -> None:
    whole, cut = database(), database()
    whole.execute(statement)
    chunks = run_in_chunks(cut, statement, size)
    assert state(cut) == state(whole)
    rows = 100 if "FROM t" in statement or "UPDATE t" in statement else 56
    assert chunks == rows // size + 1 if size <= rows else chunks == 1


def test_a_composite_key_is_walked_column_by_column() -> None:
    plan = chunking("UPDATE pairs SET n = 0 WHERE n > 1", "postgresql", KEYS.get)
    sql = plan.chunk((3, "k05"), (5, "k02"))
    assert '("pairs"."a" > 3) OR ("pairs"."a" = 3 AND "pairs"."b" > \'k05\')' in sql
    assert '("pairs"."a" < 5) OR ("pairs"."a" = 5 AND "pairs"."b" <= \'k02\')' in sql
    assert sql.startswith("UPDATE pairs SET n = 0 WHERE (n > 1) AND")


def test_an_alias_qualifies_the_key() -> None:
    plan = chunking("UPDATE t AS x SET n = 1 WHERE x.n > 2", "mysql", KEYS.get)
    assert "`x`.`id` > 10" in plan.chunk((10,), None)


@pytest.mark.parametrize(
    ("statement", "first", "last", "before"),
    [
        ("DELETE FROM t WHERE n = 5 AND id > 30", (36,), (288,), (33,)),
        ("UPDATE pairs SET n = 0 WHERE n % 5 = 0 AND a > 1", (2, "k05"), (7, "k05"), (2, "k04")),
        ("INSERT INTO archive SELECT * FROM t WHERE tag = 'x'", None, None, None),
    ],
)
def test_the_keys_a_walk_is_bounded_by(statement: str, first: Any, last: Any, before: Any) -> None:
    db, plan = database(), chunking(statement, "sqlite", KEYS.get)
    assert chunk_keys(db.execute(plan.matching()).fetchall()) == first
    assert chunk_keys(db.execute(plan.matching(last=True)).fetchall()) == last
    if first is not None:
        assert chunk_keys(db.execute(plan.before(first)).fetchall()) == before


def test_a_boundary_stops_at_the_walks_end() -> None:
    db, plan = database(), chunking("DELETE FROM t WHERE n = 1", "sqlite", KEYS.get)
    assert chunk_keys(db.execute(plan.boundary((30,), 5, (60,))).fetchall()) == (45,)
    assert chunk_keys(db.execute(plan.boundary((30,), 11, (60,))).fetchall()) is None
    assert chunk_keys(db.execute(plan.boundary((30,), 11)).fetchall()) == (63,)


@pytest.mark.parametrize("engine", ["mysql", "mariadb", "postgresql"])
def test_key_reads_order_by_the_bare_key_which_its_index_serves(engine: str) -> None:
    """sqlglot writes null ordering out for some dialects (a CASE on MySQL, NULLS LAST on
    PostgreSQL); ordered so, a read of the first or last key sorts the table."""
    plan = chunking("DELETE FROM pairs WHERE n > 1", engine, KEYS.get)
    q = "`" if engine != "postgresql" else '"'
    order = f"{q}pairs{q}.{q}a{q}, {q}pairs{q}.{q}b{q}"
    descending = f"{q}pairs{q}.{q}a{q} DESC, {q}pairs{q}.{q}b{q} DESC"
    assert plan.matching().endswith(f"ORDER BY {order} LIMIT 1")
    assert plan.matching(last=True).endswith(f"ORDER BY {descending} LIMIT 1")
    assert plan.before((1, "k01")).endswith(f"ORDER BY {descending} LIMIT 1")
    assert f"ORDER BY {order} LIMIT 1 OFFSET 9" in plan.boundary(None, 10)


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("UPDATE t SET n = 1", "no WHERE"),
        ("DELETE FROM t WHERE n = 1 LIMIT 10", "LIMIT and ORDER BY"),
        ("UPDATE t SET n = 1 WHERE id IN (SELECT id FROM archive)", "sub-query"),
        ("UPDATE t JOIN archive a ON a.id = t.id SET t.n = 1 WHERE a.n = 1", "joins"),
        ("DELETE t FROM t JOIN archive a ON a.id = t.id WHERE a.n = 1", "joins"),
        ("DELETE FROM t USING t, archive WHERE t.id = archive.id", "several tables|joins"),
        ("INSERT INTO archive SELECT * FROM t, pairs WHERE t.n = 1", "joins"),
        ("DELETE FROM nokey WHERE x = 1", "neither a primary key nor a unique key"),
        ("UPDATE t SET n = 1 WHERE id = 1; DELETE FROM t WHERE id = 2", "exactly one"),
        ("INSERT INTO archive VALUES (1, 2, 'x')", "one UPDATE, DELETE or INSERT"),
        ("SELECT * FROM t", "one UPDATE, DELETE or INSERT"),
    ],
)
def test_statements_that_cannot_be_cut_say_why(statement: str, why: str) -> None:
    with pytest.raises(ChunkRefused, match=why):
        chunking(statement, "mysql", KEYS.get)
