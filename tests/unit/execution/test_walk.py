"""Walking a chunked change on SQLite: chunk by chunk to the end, resumable from the position
committed with the last chunk, and a finished walk is not walked again."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from opendms.execution.walk import Position, advance, begin_walk
from opendms.sql.chunks import chunking
from opendms.targets.base import Endpoint, StatementError
from opendms.targets.registry import connector_for

ROWS = 95


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INT NOT NULL)")
        db.executemany("INSERT INTO t VALUES (?, 0)", [(i,) for i in range(1, ROWS + 1)])
    return path


def counts(path: Path) -> dict[int, int]:
    with closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT n, COUNT(*) FROM t GROUP BY n").fetchall())


PLAN = chunking("UPDATE t SET n = n + 1 WHERE 1 = 1", "sqlite", {"t": ("id",)}.get)


def test_a_walk_runs_chunk_by_chunk_to_the_end(target: Path) -> None:
    with connector_for(Endpoint("sqlite", str(target))).change(("main", "main"), 5) as change:
        assert begin_walk(change, "w") == Position()
        seen = []
        while not (moved := advance(change, PLAN, "w", 10))[0].done:
            seen.append(moved)
        final, rows = moved
    assert [r for _, r in seen] == [10] * 9 and rows == 5
    assert (final.rows, final.chunks, final.after) == (ROWS, 10, (90,))
    assert counts(target) == {1: ROWS}


def test_a_walk_resumes_from_its_committed_position(target: Path) -> None:
    connector = connector_for(Endpoint("sqlite", str(target)))
    with connector.change(("main", "main"), 5) as change:
        begin_walk(change, "w")
        advance(change, PLAN, "w", 30)
        advance(change, PLAN, "w", 30)
    # a new process picks the walk up: the position says where, not the process
    with connector.change(("main", "main"), 5) as change:
        assert begin_walk(change, "w").after == (60,)
        while not advance(change, PLAN, "w", 7)[0].done:
            pass
        done, rows = advance(change, PLAN, "w", 7)  # finished: nothing more runs
    assert (done.done, rows, done.rows) == (True, 0, ROWS)
    assert counts(target) == {1: ROWS}


def test_a_chunk_that_fails_leaves_the_position_where_it_was(target: Path) -> None:
    bad = chunking("UPDATE t SET n = n / 0 + missing WHERE 1 = 1", "sqlite", {"t": ("id",)}.get)
    with connector_for(Endpoint("sqlite", str(target))).change(("main", "main"), 5) as change:
        begin_walk(change, "w")
        advance(change, PLAN, "w", 40)
        with pytest.raises(StatementError):
            advance(change, bad, "w", 40)
        assert begin_walk(change, "w").after == (40,)


def test_key_values_survive_the_position() -> None:
    key = (7, "k'é", b"\x00\xff", dt.datetime(2026, 1, 2, 3, 4, 5), decimal.Decimal("1.50"))
    back = Position.loads(Position(key, 3, 1).dumps())
    assert back.after == (7, "k'é", b"\x00\xff", "2026-01-02 03:04:05", "1.50")
