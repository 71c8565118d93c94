"""Walking a chunked change on SQLite: chunk by chunk to the end, resumable from the position
committed with the last chunk, and a finished walk is not walked again."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from opendms.execution.walk import Position, advance, begin_walk, bounded
from opendms.sql.chunks import Chunking, chunking
from opendms.targets.base import Change, Endpoint, StatementError
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


# ------------------------------------------------------------ bounded walks


def table(path: Path, ids: list[int], old: set[int] | None = None) -> Path:
    """Table ``t`` with rows of ``ids``; those in ``old`` (by default all) have n = 0, the
    others n = 1."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INT NOT NULL)")
        db.executemany(
            "INSERT INTO t VALUES (?, ?)", [(i, 0 if old is None or i in old else 1) for i in ids]
        )
    return path


def ids(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as db:
        return [i for (i,) in db.execute("SELECT id FROM t ORDER BY id")]


DELETE = chunking("DELETE FROM t WHERE n = 0", "sqlite", {"t": ("id",)}.get)


class Seen:
    """What a walk sent: each chunk's statement, the reads that found chunk ends, the
    commits that did not wait to be on disk, and whether each commit waited."""

    def __init__(self, change: Change) -> None:
        self.chunks: list[str] = []
        self.reads: list[str] = []
        self.soon = 0
        self.waited: list[bool] = []
        query, execute, soon = change.query, change.execute, change.commit_soon
        commit = change.commit

        def read(statement: str) -> list[tuple[Any, ...]]:
            self.reads.append(statement)
            return query(statement)

        def run(statement: str) -> int:
            self.chunks.append(statement)
            return execute(statement)

        def commit_soon() -> None:
            self.soon += 1
            soon()

        def committed() -> None:
            self.waited.append(self.soon == sum(not w for w in self.waited))
            commit()

        change.query, change.execute, change.commit_soon = read, run, commit_soon  # type: ignore[method-assign]
        change.commit = committed  # type: ignore[method-assign]


def walk(change: Change, plan: Chunking, size: int, key: str = "w") -> Position:
    begin_walk(change, key, lambda: bounded(change, plan))
    while not (moved := advance(change, plan, key, size))[0].done:
        pass
    return moved[0]


def test_a_walk_goes_only_from_the_first_to_the_last_key_its_condition_matches(
    tmp_path: Path,
) -> None:
    path = table(tmp_path / "t.db", list(range(1, 1001)), old=set(range(301, 601)))
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        start = bounded(change, DELETE)
        assert (start.after, start.end) == ((300,), (600,))
        final = walk(change, DELETE, 100)
    assert ids(path) == [*range(1, 301), *range(601, 1001)]
    # three chunks of at most 100 keys: 301 to 600, not the 700 keys around them
    assert (final.rows, final.chunks, final.after) == (300, 3, (600,))


def test_a_walk_with_no_row_to_change_is_done_at_once(tmp_path: Path) -> None:
    path = table(tmp_path / "t.db", list(range(1, 101)), old=set())
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        seen = Seen(change)
        final = walk(change, DELETE, 10)
    assert (final.done, final.rows, final.chunks, seen.chunks) == (True, 0, 0, [])
    assert ids(path) == list(range(1, 101))


def test_a_dense_integer_key_is_cut_by_value_without_reading_chunk_ends(tmp_path: Path) -> None:
    path = table(tmp_path / "t.db", list(range(1, 1001)))
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        begin_walk(change, "w", lambda: bounded(change, DELETE))
        seen = Seen(change)
        first, _ = advance(change, DELETE, "w", 100)
        assert first.by_value and len(seen.reads) == 1  # the first chunk read its end
        final = walk(change, DELETE, 100)
    assert len(seen.reads) == 1  # none since
    assert (final.rows, final.chunks) == (1000, 10) and ids(path) == []


def test_a_sparse_key_goes_on_reading_chunk_ends(tmp_path: Path) -> None:
    path = table(tmp_path / "t.db", list(range(10, 10001, 10)))
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        seen = Seen(change)
        final = walk(change, DELETE, 100)
    assert not final.by_value and len(seen.reads) == 2 + 10  # its bounds, then each end
    assert (final.rows, final.chunks) == (1000, 10) and ids(path) == []


def test_a_sparse_stretch_after_a_dense_one_goes_back_to_reading_ends(tmp_path: Path) -> None:
    """By value, a stretch of a few keys over a wide range would take a chunk per ``size``
    values; reading ends again, it takes a chunk per ``size`` keys."""
    keys = [*range(1, 501), *range(1_000_000, 100_000_001, 1_000_000)]
    path = table(tmp_path / "t.db", keys)
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        final = walk(change, DELETE, 50)
    assert final.rows == 600 and final.chunks <= 10 + 1 + 2 + 1, final
    assert ids(path) == []


def test_a_chunk_never_holds_more_keys_than_its_size(tmp_path: Path) -> None:
    keys = [*range(1, 301), *range(400, 2000, 7), *range(5000, 5300)]
    path = table(tmp_path / "t.db", keys)
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        begin_walk(change, "w", lambda: bounded(change, DELETE))
        done = []
        while not (moved := advance(change, DELETE, "w", 40))[0].done:
            done.append(moved[1])
        done.append(moved[1])
    assert sum(done) == len(keys) and max(done) <= 40


def test_each_chunk_judges_rows_as_they_are_when_it_runs(tmp_path: Path) -> None:
    path = table(tmp_path / "t.db", list(range(1, 201)), old=set(range(1, 151)))
    connector = connector_for(Endpoint("sqlite", str(path)))
    with connector.change(("main", "main"), 5) as change:
        begin_walk(change, "w", lambda: bounded(change, DELETE))  # rows 1 to 150 match now
        advance(change, DELETE, "w", 50)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE t SET n = 1 WHERE id = 120")  # matched when the walk began
        db.execute("UPDATE t SET n = 0 WHERE id IN (140, 190)")  # 190: past its last key
    with connector.change(("main", "main"), 5) as change:
        final = walk(change, DELETE, 50)
    assert ids(path) == [120, *range(151, 201)]
    assert final.rows == 149


def test_every_chunk_but_the_last_commits_without_waiting_for_the_disk(tmp_path: Path) -> None:
    path = table(tmp_path / "t.db", list(range(1, 101)))
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        seen = Seen(change)
        final = walk(change, DELETE, 10)
    assert final.chunks == 10
    # the claim of the position and every chunk but the last: the last commit is waited for
    assert seen.waited[:-1] == [False] * (len(seen.waited) - 1) and seen.waited[-1]


def test_a_position_stored_before_walks_were_bounded_walks_to_the_tables_end(
    target: Path,
) -> None:
    with connector_for(Endpoint("sqlite", str(target))).change(("main", "main"), 5) as change:
        change.claim("w", json.dumps({"after": [40], "rows": 40, "chunks": 4, "done": False}))
        position = begin_walk(change, "w", lambda: pytest.fail("bounds are read only once"))
        assert (position.after, position.end, position.by_value) == ((40,), None, False)
        while not (moved := advance(change, PLAN, "w", 25))[0].done:
            pass
    assert (moved[0].rows, moved[0].after) == (ROWS, (90,))  # rows 41 to 95, from the position
    assert counts(target) == {0: 40, 1: ROWS - 40}


def test_a_bounded_position_survives_its_json() -> None:
    position = Position((7,), 3, 1, end=(900,), by_value=True)
    assert Position.loads(position.dumps()) == position


def test_a_text_key_walk_starts_after_the_key_before_the_first_match(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    names = [f"k{i:03}" for i in range(1, 201)]
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE t (name TEXT PRIMARY KEY, n INT NOT NULL)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(k, int(k < "k050")) for k in names])
    plan = chunking("DELETE FROM t WHERE n = 0 AND name <= 'k150'", "sqlite", {"t": ("name",)}.get)
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 5) as change:
        start = bounded(change, plan)
        assert (start.after, start.end, start.by_value) == (("k049",), ("k150",), False)
        seen = Seen(change)
        final = walk(change, plan, 30)
    with closing(sqlite3.connect(path)) as db:
        left = [k for (k,) in db.execute("SELECT name FROM t ORDER BY name")]
    assert left == [*names[:49], *names[150:]]
    assert (final.rows, final.chunks) == (101, 4) and len(seen.chunks) == 4
