"""How fast a chunked change goes: chunk size against a time budget, rest between chunks,
and holding back while the target is busy or its replicas lag (dms-api.md E.7).

The chunk size is a number of keys; the time per key seen so far (boundary query, the chunk,
its marker and commit; a slower chunk counts at once, a faster one a fifth) moves it towards
half the budget, at most doubling or halving at once. The budget is a ceiling, not the mean:
chunks stall now and then for twice their usual time (bench/chunked.py), and aiming at half
keeps those inside.

Load is read between chunks at most once a second: ``Threads_running`` on MySQL/MariaDB,
active client backends on PostgreSQL, and replay lag from PostgreSQL's
``pg_stat_replication`` or from a replica registered as an instance of its own (MySQL knows
its replicas' lag only on the replicas).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from opendms.targets.base import Change, Connector, TargetError

LOAD_EVERY_SECONDS = 1.0
AIM = 0.5  # of the time budget, what chunk sizes aim at


@dataclass(frozen=True)
class Limits:
    """When a chunked change on an instance holds back (``instances.throttle`` over the
    server's defaults)."""

    max_running: int = 25  # pt-online-schema-change's default for Threads_running
    max_lag_seconds: float = 1.0
    replica_instance_id: int | None = None

    def over(self, found: Mapping[str, Any] | None) -> Limits:
        """These limits with the instance's own settings laid over them."""
        found = found or {}
        known = ("max_running", "max_lag_seconds", "replica_instance_id")
        return replace(self, **{k: found[k] for k in known if k in found})

    def why(self, running: int | None, lag: float | None) -> str | None:
        """Why to hold back at this load; None: go on."""
        if running is not None and running > self.max_running:
            return f"{running} statements running on the target, more than {self.max_running}"
        if lag is not None and lag > self.max_lag_seconds:
            behind = "replication is stopped" if math.isinf(lag) else f"{lag:.1f} s behind"
            return f"a replica lags: {behind}, more than {self.max_lag_seconds:g} s allowed"
        return None


@dataclass(frozen=True)
class Pace:
    chunk_seconds: float = 0.1  # the time budget of one chunk
    copy_seconds: float = 0.2  # … of one chunk of a shadow copy (lock-free DDL): ``for_copy``
    first_chunk_rows: int = 1000
    max_chunk_rows: int = 50_000
    sleep_ratio: float = 0.0  # rest this fraction of each chunk's time after it
    lock_wait_seconds: int = 2  # a chunk waits at most this long for a row lock
    hold_seconds: float = 2.0  # how long to hold back before looking at the load again
    limits: Limits = Limits()

    def for_copy(self) -> Pace:
        """This pace for the chunks of a shadow copy. They get a budget of their own: a copy
        chunk holds a share lock on its rows of the table for its time, so a writer waits
        for it only when it writes one of them, and the per-chunk work that is not copying
        (its boundary, position marker and commit) is paid once per chunk. At 100 ms a
        copy of 1,000,000 rows spent about half its time on that work and ran at a half to
        two thirds of pt-online-schema-change's speed; at 200 ms a writer of single rows
        still waited less than 100 ms at its 99th percentile (bench/ddl.py)."""
        return replace(self, chunk_seconds=self.copy_seconds)

    def next_size(self, size: int, seconds: float) -> int:
        """The next chunk's size after one of ``size`` keys took ``seconds``."""
        factor = AIM * self.chunk_seconds / seconds if seconds > 0 else 2.0
        factor = min(2.0, max(0.5, factor))
        return max(1, min(self.max_chunk_rows, int(size * factor)))

    def rest(self, seconds: float) -> float:
        return seconds * self.sleep_ratio


class Sizer:
    """Chunk sizes from the time per key seen so far: a slower chunk counts at once (the next
    is cut to fit), a faster one only a fifth (one quick chunk, a range of gaps in the key,
    does not make the next one overshoot)."""

    def __init__(self, pace: Pace, size: int) -> None:
        self.pace, self.size = pace, size
        self.cost: float | None = None  # seconds per key

    def took(self, seconds: float) -> int:
        """The next size, after a chunk of ``self.size`` keys took ``seconds``."""
        sample = seconds / max(self.size, 1)
        if self.cost is None or sample > self.cost:
            self.cost = sample
        else:
            self.cost = 0.8 * self.cost + 0.2 * sample
        self.size = self.pace.next_size(self.size, self.cost * self.size)
        return self.size


class Gauge:
    """Whether to hold back now, read from the target (and a replica) at most once a
    second."""

    def __init__(
        self,
        change: Change,
        limits: Limits,
        replica: Connector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.change, self.limits, self.replica, self.clock = change, limits, replica, clock
        self.read_at: float | None = None
        self.last: str | None = None

    def hold(self) -> str | None:
        now = self.clock()
        if self.read_at is not None and now - self.read_at < LOAD_EVERY_SECONDS:
            return self.last
        self.read_at = now
        load = self.change.load()
        lag = load.lag_seconds
        if self.replica is not None:
            try:
                found = self.replica.replica_lag()
            except TargetError as exc:  # lag that cannot be read is not known to be small
                self.last = f"the replica cannot be read: {exc.message}"
                return self.last
            if found is None:
                self.last = "the configured replica is not replicating from anything"
                return self.last
            lag = found if lag is None else max(lag, found)
        self.last = self.limits.why(load.running, lag)
        return self.last
