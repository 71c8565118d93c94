"""Walking a chunked change through its key ranges, one short target transaction per chunk.

The position (the last key done, rows and chunks so far) is one progress row on the target,
made before the first chunk. Each chunk's transaction locks that row, finds where the chunk
ends, runs it and writes the new position, so a chunk and the position it reached commit
together or not at all: a restart resumes after the last committed chunk, and two walkers
of the same change queue on the row instead of both running a chunk.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
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
    after: Key | None = None  # the last key done; None: from the start
    rows: int = 0
    chunks: int = 0
    done: bool = False

    def dumps(self) -> str:
        after = None if self.after is None else [_encode(v) for v in self.after]
        return json.dumps(
            {"after": after, "rows": self.rows, "chunks": self.chunks, "done": self.done}
        )

    @classmethod
    def loads(cls, text: str) -> Position:
        found = json.loads(text)
        after = found.get("after")
        return cls(
            None if after is None else tuple(_decode(v) for v in after),
            int(found.get("rows", 0)),
            int(found.get("chunks", 0)),
            bool(found.get("done", False)),
        )


def begin_walk(change: Change, key: str) -> Position:
    """The walk's position, its progress row made if this is the first time."""
    return Position.loads(change.claim(key, Position().dumps()))


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
    """The walk's next chunk of at most ``size`` keys (``boundary`` finds where it ends),
    done by ``work`` in the transaction that reads and moves the position under ``key``
    (``begin``: how it opens, by default ``change.begin``): the position after it and the
    rows it did. A finished walk is left alone."""
    (begin or change.begin)()
    try:
        found = change.marker(key)  # locked: walkers of one change take turns
        if found is None:
            raise StatementError(f"progress marker {key} is missing; the walk was not begun")
        position = Position.loads(found)
        if position.done:
            change.rollback()
            return position, 0
        upto = chunk_keys(change.query(boundary(position.after, size)))
        rows = work(position.after, upto)
        moved = Position(
            upto if upto is not None else position.after,
            position.rows + rows,
            position.chunks + 1,
            upto is None,
        )
        change.move(key, moved.dumps())
        change.commit()
    except BaseException:
        change.rollback()
        raise
    return moved, rows


def advance(
    change: Change,
    plan: Chunking,
    key: str,
    size: int,
    run: Callable[[str], int] | None = None,
) -> tuple[Position, int]:
    """Run the next chunk of at most ``size`` keys; the position after it and the rows it
    changed. ``run`` runs the chunk's statement in the transaction (with its backup first, say;
    by default it is executed as is). A finished walk is left alone."""
    execute = run or change.execute
    return advance_by(
        change, plan.boundary, key, size, lambda after, upto: execute(plan.chunk(after, upto))
    )
