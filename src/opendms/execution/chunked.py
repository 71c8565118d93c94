"""A DC_CHUNK statement run chunk by chunk on its target, and the progress shown for it.

``stride`` walks chunks (``execution.walk``) for one runner step: it holds back while the
target is busy (``pace.Gauge``), sizes each chunk to the time budget, rests between chunks
when asked, and hands back when its time is up, a lock fight is lost (the chunk rolled
back; the executor waits and tries it again, smaller) or the walk is done. What a stride
did goes into ``Progress``, the JSON behind the SQL-job reads: exact rows and position come
from the target's progress row, so a stride cut short by a crash is recounted, not guessed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from opendms.execution.walk import Position, advance, begin_walk, bounded
from opendms.sql.chunks import Chunking
from opendms.targets.base import Change, StatementError
from opendms.targets.pace import Gauge, Pace, Sizer

BUCKET_MS = 10  # chunk times are kept as a histogram of 10 ms buckets, for the p99


class ChunkState(StrEnum):
    """Where a chunked statement's walk stands (the wire's ``ChunkState``)."""

    WAITING = "WAITING"  # not started, or restarted
    RUNNING = "RUNNING"
    THROTTLED = "THROTTLED"  # holding back: the target is busy or a replica lags
    LOCK_WAIT = "LOCK_WAIT"  # the last chunk lost a lock fight
    PAUSED = "PAUSED"
    DONE = "DONE"


# The states in which a walk holds back by itself, and says why.
HELD = frozenset({ChunkState.THROTTLED, ChunkState.LOCK_WAIT})


@dataclass
class Stride:
    """What one runner step of a chunked statement did."""

    position: Position
    size: int  # the next chunk's size
    seconds: list[float] = field(default_factory=list)  # each chunk's time
    held: str | None = None  # stopped to hold back, for this reason
    lost: str | None = None  # stopped because the last chunk lost a lock fight
    failed: str | None = None  # stopped because the last chunk failed, with this error
    wall: float = 0.0  # the stride's whole time, rests included


def stride(
    change: Change,
    plan: Chunking,
    key: str,
    pace: Pace,
    gauge: Gauge,
    size: int,
    until: float,
    run: Callable[[str], int] | None = None,
) -> Stride:
    """Run chunks of ``plan`` until ``until`` (``time.monotonic``), the walk's end, a reason
    to hold back, a lost lock fight or a failed chunk (whose error it keeps; the chunks
    before it stay committed)."""
    began_stride = time.monotonic()
    position = begin_walk(change, key, lambda: bounded(change, plan))
    done = Stride(position, size)
    sizer = Sizer(pace, size)
    while not done.position.done:  # at least one chunk, then until time is up
        why = gauge.hold()
        if why is not None:
            done.held = why
            break
        began = time.perf_counter()
        try:
            done.position, _ = advance(change, plan, key, done.size, run)
        except StatementError as exc:
            if exc.lost_lock:
                done.lost, done.size = exc.message, max(1, sizer.size // 2)
            else:
                done.failed = exc.message
            break
        took = time.perf_counter() - began
        done.seconds.append(took)
        done.size = sizer.took(took)
        if time.monotonic() >= until:
            break
        if pace.rest(took) > 0 and not done.position.done:
            time.sleep(pace.rest(took))
    done.wall = time.monotonic() - began_stride
    return done


@dataclass
class Progress:
    """A chunked statement's progress (``SqlJobDetail.progress``)."""

    rows: int = 0
    estimate: int | None = None  # the precheck's count
    chunks: int = 0
    after: list[Any] | None = None  # the last key done
    size: int = 0  # the next chunk's keys
    busy_ms: int = 0  # time spent running chunks
    wall_ms: int = 0  # time spent walking: chunks and the rests between them
    histogram: dict[str, int] = field(default_factory=dict)  # chunk ms // BUCKET_MS -> chunks
    max_chunk_ms: int = 0
    state: ChunkState = ChunkState.WAITING
    why: str = ""
    lost_locks: int = 0  # lost lock fights in a row

    @classmethod
    def of(cls, found: Mapping[str, Any] | None) -> Progress | None:
        """A statement's stored progress; None for one not run in chunks (it keeps none, or
        keeps an online DDL statement's: ``execution.online.OnlineProgress``)."""
        return cls.load(found) if found and "online" not in found else None

    @classmethod
    def load(cls, found: Mapping[str, Any] | None) -> Progress:
        """From its stored form; keys it does not know are left out. A copy: changing it
        leaves the stored document as the session loaded it (``store.columns.Json``)."""
        known = {
            k: copy.deepcopy(v) for k, v in (found or {}).items() if k in cls.__dataclass_fields__
        }
        if "state" in known:
            known["state"] = ChunkState(known["state"])
        return cls(**known)

    def dump(self) -> dict[str, Any]:
        """Its stored form (``SqlJobDetail.progress``)."""
        return asdict(self)

    def add(self, done: Stride) -> None:
        """Take in a stride: the target's position, and the chunk times this runner saw."""
        position = done.position
        self.rows, self.chunks, self.size = position.rows, position.chunks, done.size
        self.after = None if position.after is None else [_shown(v) for v in position.after]
        for seconds in done.seconds:
            ms = int(seconds * 1000)
            bucket = str(ms // BUCKET_MS)
            self.histogram[bucket] = self.histogram.get(bucket, 0) + 1
            self.busy_ms += ms
            self.max_chunk_ms = max(self.max_chunk_ms, ms)
        self.wall_ms += int(done.wall * 1000)
        self.lost_locks = self.lost_locks + 1 if done.lost else 0
        if position.done:
            self.state, self.why = ChunkState.DONE, ""
        elif done.held:
            self.state, self.why = ChunkState.THROTTLED, done.held
        elif done.lost:
            self.state, self.why = ChunkState.LOCK_WAIT, f"a chunk lost a lock wait: {done.lost}"
        else:
            self.state, self.why = ChunkState.RUNNING, ""

    def fresh(self) -> Progress:
        """This progress for a restart: lock fights lost before do not count against it."""
        return replace(self, lost_locks=0, state=ChunkState.WAITING, why="")

    def milestone(self, rows_before: int) -> str | None:
        """A line for the log when another tenth of the estimated rows is done since
        ``rows_before``."""
        if (
            not self.estimate
            or self.rows * 10 // self.estimate <= rows_before * 10 // self.estimate
        ):
            return None
        eta = self.eta_seconds
        return (
            f"{min(100, self.rows * 100 // self.estimate)}%: {self.rows:,} of {self.estimate:,} "
            f"rows in {self.chunks:,} chunks, up to key ({', '.join(map(str, self.after or []))}), "
            f"{self.rows_per_second:,.0f} rows/s" + (f", about {eta:,} s left" if eta else "")
        )

    @property
    def p99_ms(self) -> int:
        """The chunk time 99% of chunks stayed within (to the bucket's upper edge)."""
        total = sum(self.histogram.values())
        if not total:
            return 0
        seen = 0
        for bucket in sorted(self.histogram, key=int):
            seen += self.histogram[bucket]
            if seen >= 0.99 * total:
                return min((int(bucket) + 1) * BUCKET_MS, self.max_chunk_ms)
        return self.max_chunk_ms

    @property
    def rows_per_second(self) -> float:
        """The walk's pace so far, rests between chunks included."""
        spent = self.wall_ms or self.busy_ms
        return self.rows / (spent / 1000) if spent else 0.0

    @property
    def eta_seconds(self) -> int | None:
        """Running time left at the rate so far, against the precheck's count."""
        if self.estimate is None or not self.rows_per_second:
            return None
        return max(0, int((self.estimate - self.rows) / self.rows_per_second))


def _shown(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    return value if isinstance(value, int | float | str) or value is None else str(value)
