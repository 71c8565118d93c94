"""Walking a chunked change through its key ranges, one short target transaction per chunk.

The position (the last key done, rows and chunks so far) is one progress row on the target,
made before the first chunk. Each chunk's transaction locks that row, finds where the chunk
ends, runs it and writes the new position, so a chunk and the position it reached commit
together or not at all: a restart resumes after the last committed chunk, and two walkers
of the same change queue on the row instead of both running a chunk.

A chunked statement's walk (``advance``) is bounded when it begins (``bounded``): the first
and last keys its condition matches then are read once and kept in the position, so the
keys before the first and after the last, where it would only have scanned rows, are not
walked. Each chunk's statement still carries the whole condition, so a row changed since the
walk began is judged as it is when its chunk runs. Where the key is one integer column and
dense, a chunk is a range of its values, (after, after + size], which holds at most ``size``
rows (keys are unique): nothing is read to find where it ends. Otherwise each chunk's end is
read, ``size`` keys on (``Chunking.boundary``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from opendms.sql.backup import clock_text
from opendms.sql.chunks import Chunking, Key, chunk_keys
from opendms.targets.base import Change, StatementError


def _encode(value: Any) -> Any:
    """A key value as JSON that comes back as a literal the database compares the same way:
    bytes as bytes, anything JSON has no type for (dates, times, MySQL TIME as a timedelta,
    decimals, UUIDs) as the text the database reads back into that type."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dt.timedelta):
        return {"$text": clock_text(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return {"$text": str(value)}


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$bytes" in value:
            return base64.b64decode(value["$bytes"])
        return value["$text"]
    return value


@dataclass(frozen=True)
class Position:
    after: Key | None = None  # the last key done; None: from the table's first
    rows: int = 0
    chunks: int = 0
    done: bool = False
    end: Key | None = None  # the walk's last key, read when it began; None: the table's last
    by_value: bool = False  # its chunks are ranges of its (integer) key's values

    def dumps(self) -> str:
        return json.dumps(
            {
                "after": _stored(self.after),
                "rows": self.rows,
                "chunks": self.chunks,
                "done": self.done,
                "end": _stored(self.end),
                "by_value": self.by_value,
            }
        )

    @classmethod
    def loads(cls, text: str) -> Position:
        """A position from its stored form; one stored before walks were bounded has no end
        and walks on to the table's."""
        found = json.loads(text)
        return cls(
            _loaded(found.get("after")),
            int(found.get("rows", 0)),
            int(found.get("chunks", 0)),
            bool(found.get("done", False)),
            _loaded(found.get("end")),
            bool(found.get("by_value", False)),
        )


def _stored(key: Key | None) -> list[Any] | None:
    return None if key is None else [_encode(v) for v in key]


def _loaded(stored: list[Any] | None) -> Key | None:
    return None if stored is None else tuple(_decode(v) for v in stored)


def begin_walk(change: Change, key: str, start: Callable[[], Position] | None = None) -> Position:
    """The walk's position, its progress row made if this is the first time: from
    ``start()``, called only then, or from the table's first key."""
    if start is None:
        return Position.loads(change.claim(key, Position().dumps()))
    change.begin()
    try:
        found = change.marker(key)
    finally:
        change.rollback()
    return Position.loads(found if found is not None else change.claim(key, start().dumps()))


def bounded(change: Change, plan: Chunking) -> Position:
    """Where a walk of ``plan`` begins, read once, in a short transaction of its own: after
    the last key before the first row its condition matches now, up to the last such row;
    done at once when no row matches. Finding the last matching key may scan the rows after
    it, once, without locking them: a walk to the table's end scanned them too, chunk by
    chunk, each with its boundary read and its statement."""
    change.begin()
    try:
        first = chunk_keys(change.query(plan.matching()))
        if first is None:
            return Position(done=True)
        end = chunk_keys(change.query(plan.matching(last=True))) or first
        if _integer(first):  # after the value before it: the same keys, and nothing to read
            return Position((first[0] - 1,), end=end)
        return Position(chunk_keys(change.query(plan.before(first))), end=end)
    finally:
        change.rollback()


def _advance(
    change: Change,
    key: str,
    step: Callable[[Position], Position],
    begin: Callable[[], None] | None = None,
) -> tuple[Position, int]:
    """The walk's next chunk, done by ``step`` (which says where the walk is after it) in
    the transaction that reads and moves the position under ``key`` (``begin``: how it
    opens, by default ``change.begin``): the position after it and the rows it did. A
    finished walk is left alone."""
    (begin or change.begin)()
    try:
        found = change.marker(key)  # locked: walkers of one change take turns
        if found is None:
            raise StatementError(f"progress marker {key} is missing; the walk was not begun")
        position = Position.loads(found)
        if position.done:
            change.rollback()
            return position, 0
        moved = step(position)
        change.move(key, moved.dumps())
        change.commit()
    except BaseException:
        change.rollback()
        raise
    return moved, moved.rows - position.rows


def _past(position: Position, upto: Key | None, rows: int, last: bool) -> Position:
    """``position`` after a chunk up to ``upto`` (None: the table's end) that did ``rows``."""
    return replace(
        position,
        after=upto if upto is not None else position.after,
        rows=position.rows + rows,
        chunks=position.chunks + 1,
        done=last,
    )


# One chunk of a walk, run in the walk's open transaction: the keys (after, upto] (after None:
# from the start; upto None: to the end), and what it counts as the rows it did.
ChunkWork = Callable[["Key | None", "Key | None"], int]


def advance_by(
    change: Change,
    boundary: Callable[[Key | None, int], str],
    key: str,
    size: int,
    work: ChunkWork,
    begin: Callable[[], None] | None = None,
) -> tuple[Position, int]:
    """The walk's next chunk of at most ``size`` keys, to the table's end (``boundary``
    finds where it ends), done by ``work`` in the transaction that reads and moves the
    position under ``key`` (``begin``: how it opens, by default ``change.begin``): the
    position after it and the rows it did. A finished walk is left alone."""

    def step(position: Position) -> Position:
        upto = chunk_keys(change.query(boundary(position.after, size)))
        return _past(position, upto, work(position.after, upto), upto is None)

    return _advance(change, key, step, begin)


def advance(
    change: Change,
    plan: Chunking,
    key: str,
    size: int,
    run: Callable[[str], int] | None = None,
) -> tuple[Position, int]:
    """Run the next chunk of at most ``size`` keys of a walk begun with ``bounded`` (or
    from the table's first key), up to its end; the position after it and the rows it
    changed. ``run`` runs the chunk's statement in the transaction (with its backup first,
    say; by default it is executed as is). A finished walk is left alone.

    An integer key the last chunk found dense is cut by value: the chunk is (after, after +
    size], no boundary read. It stays dense while a chunk changes rows on at least half of
    its values, or an end read finds ``size`` keys within twice as many values; a sparse
    stretch (a run of deleted keys, rows the condition leaves) goes back to reading ends,
    so a chunk never holds a few rows of a wide range, chunk after chunk."""
    execute = run or change.execute

    def step(position: Position) -> Position:
        moved = cut(position)
        if not moved.done:
            # A chunk and its position are lost together if at all, and the walk's last
            # commit, waited for, is on disk only with every chunk before it: a chunk need not
            # wait for its own (one disk flush a chunk was a tenth of a PostgreSQL cleanup).
            change.commit_soon()
        return moved

    def cut(position: Position) -> Position:
        """The next chunk, run: the position after it."""
        after, end = position.after, position.end
        if position.by_value and after is not None and end is not None:
            upto = (after[0] + size,) if after[0] + size < end[0] else end
            rows = execute(plan.chunk(after, upto))
            moved = _past(position, upto, rows, upto == end)
            return replace(moved, by_value=2 * rows >= upto[0] - after[0])
        found = chunk_keys(change.query(plan.boundary(after, size, end)))
        reached = found if found is not None else end
        rows = execute(plan.chunk(after, reached))
        # Keys equal in Python are equal in the database; keys it holds equal that Python
        # does not (in another case, a date read back as text) cost an empty last chunk.
        moved = _past(position, reached, rows, found is None or found == end)
        dense = (
            found is not None
            and after is not None
            and end is not None
            and all(_integer(k) for k in (found, after, end))
            and found[0] - after[0] <= 2 * size
        )
        return replace(moved, by_value=dense)

    return _advance(change, key, step)


def _integer(key: Key) -> bool:
    return len(key) == 1 and isinstance(key[0], int) and not isinstance(key[0], bool)
