"""Bulk writes (Change.write_rows) on real MariaDB and PostgreSQL and on SQLite: each insert
mode, NULLs and awkward text, a duplicate failing INSERT, and MariaDB without LOCAL INFILE."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opendms.targets.base import Change, Endpoint, RowBlock, StatementError
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration

ROWS: list[list[str | None]] = [
    ["1", "plain", None],
    ["0", "NULL", None],  # the word, quoted in the CSV, is a string
    ["2", "tab\there, new\nline, back\\slash, quote ' \"", "7"],
    ["3", "", "9"],
]


@contextmanager
def target(engine: str, tmp_path: Path) -> Iterator[tuple[Change, Any]]:
    """A change session on a fresh database holding t (id key, s text, n int), and a
    function reading t back in id order."""
    ddl = "CREATE TABLE t (id INT PRIMARY KEY, s TEXT NOT NULL, n INT NULL)"
    if engine == "mariadb":
        with mysql_database() as (name, conn):
            conn.cursor().execute(ddl)

            def read() -> list[tuple[Any, ...]]:
                with conn.cursor() as cur:
                    cur.execute("SELECT id, s, n FROM t ORDER BY id")
                    return [tuple(r) for r in cur.fetchall()]

            ep = Endpoint("mariadb", "127.0.0.1", 3306, "root")
            with connector_for(ep).change(("def", name), 5) as change:
                yield change, read
    elif engine == "postgresql":
        with pg_database() as (name, conn):
            conn.execute(ddl)

            def read() -> list[tuple[Any, ...]]:
                return [tuple(r) for r in conn.execute("SELECT id, s, n FROM t ORDER BY id")]

            ep = Endpoint("postgresql", "127.0.0.1", 5432, "postgres", database=name)
            with connector_for(ep).change((name, "public"), 5) as change:
                yield change, read
    else:
        path = tmp_path / "t.db"
        with sqlite3.connect(path) as db:
            db.execute(ddl)

        def read() -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as db:
                return [tuple(r) for r in db.execute("SELECT id, s, n FROM t ORDER BY id")]

        with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
            yield change, read


def written(change: Change, rows: list[list[str | None]], mode: str) -> int:
    change.begin()
    try:
        done = change.write_rows("t", ["id", "s", "n"], RowBlock(rows), mode, ["id"])
    except BaseException:
        change.rollback()
        raise
    change.commit()
    return done


ENGINES = ["mariadb", "postgresql", "sqlite"]
EXPECTED = [(0, "NULL", None), (1, "plain", None), (2, ROWS[2][1], 7), (3, "", 9)]


@pytest.mark.parametrize("engine", ENGINES)
def test_each_mode_writes_what_it_says(engine: str, tmp_path: Path) -> None:
    with target(engine, tmp_path) as (change, read):
        assert written(change, ROWS, "INSERT") == 4
        assert read() == EXPECTED

        with pytest.raises(StatementError) as duplicate:
            written(change, [["4", "new", None], ["1", "again", None]], "INSERT")
        assert "uplicate" in duplicate.value.message or "UNIQUE" in duplicate.value.message
        assert read() == EXPECTED  # nothing of the failed rows

        assert written(change, [["1", "skipped", None], ["4", "four", "4"]], "IGNORE") == 1
        assert read() == [*EXPECTED, (4, "four", 4)]

        assert written(change, [["1", "replaced", "1"], ["5", "five", None]], "REPLACE") == 2
        assert read()[1] == (1, "replaced", 1) and read()[-1] == (5, "five", None)


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_a_value_the_column_cannot_hold_fails(engine: str, tmp_path: Path) -> None:
    with target(engine, tmp_path) as (change, read):
        for mode in ("INSERT", "IGNORE", "REPLACE"):
            with pytest.raises(StatementError):
                written(change, [["1", "a", "not a number"]], mode)
        assert read() == []


def test_mariadb_without_local_infile_inserts_rows(tmp_path: Path) -> None:
    with target("mariadb", tmp_path) as (change, read):
        change.local_infile = False  # type: ignore[attr-defined]
        assert written(change, ROWS, "INSERT") == 4
        assert written(change, [["1", "x", None], ["9", "nine", None]], "IGNORE") == 1
        assert read() == [*EXPECTED, (9, "nine", None)]


def test_mariadb_loads_through_local_infile_and_serves_no_other_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("1\tstolen\t1\n")
    with target("mariadb", tmp_path) as (change, read):
        assert written(change, ROWS, "INSERT") == 4
        assert change.local_infile is True  # type: ignore[attr-defined]
        change.begin()
        loaded = change.execute(f"LOAD DATA LOCAL INFILE '{secret}' IGNORE INTO TABLE t")
        change.commit()
        assert loaded == 0  # asked for a file it did not ask for, the server got nothing
        assert read() == EXPECTED
