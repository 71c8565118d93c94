"""Flow control: at most ``Settings.rate_limit`` requests a second per (access key, action).

A limiter answers ``take``: 0 when the request is admitted, else the seconds until one would
be, which the Throttling error carries. Which limiter a process uses is decided in
``gateway/limiters.py``: API processes that share a store share their counts (Redis, else the
store's ``rate_windows``); the embedded SQLite server, one process by design, counts in memory.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable


class Limiter(ABC):
    @abstractmethod
    async def take(self, access_key_id: str, action: str) -> float:
        """Count one request; 0 when admitted, else the seconds until one is."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Called before the event loop stops."""


def per_window(rate: float) -> int:
    """Requests admitted in one clock second by the shared limiters, which count whole
    requests: the rate rounded down, and at least one."""
    return max(1, math.floor(rate))


# A process takes a second's allowance from the shared count this many parts at a time.
LEASE_PARTS = 20


class Windows(Limiter):
    """The shared limiters' rule: a count per key, action and clock second, kept where every
    API process counts (``count``); the requests of a second are admitted while its share
    lasts, and the rest wait for what is left of the second. At most the rate is admitted in
    each clock second; a burst across the turn of a second can see twice the rate within one
    second's span, as a bucket that starts full does.

    A process does not ask for one request at a time: it takes a part of the second's
    allowance (a twentieth of the rate, at least one request) and admits from it locally,
    so a busy key costs the shared count a round trip per part, not per request (one part
    at a time per process: requests that arrive meanwhile wait for it). What a
    process took and did not use by the end of the second is lost to the others: with P
    processes at most P parts of a second go unused, never more than the rate admitted.

    A process that saw a second's share spent refuses the rest of that second itself: the
    count can only grow, and a flood of refused requests then costs the shared store one
    count per process and second."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.limit = per_window(rate)
        self.part = max(1, self.limit // LEASE_PARTS)
        self._clock = clock
        self._spent: dict[tuple[str, str], int] = {}  # (key, action) -> the second spent
        self._held: dict[tuple[str, str], tuple[int, int]] = {}  # -> (second, requests left)
        self._asking: dict[tuple[str, str], asyncio.Future[None]] = {}  # a part being taken

    @abstractmethod
    async def count(self, access_key_id: str, action: str, second: int, n: int) -> int:
        """Count ``n`` more requests of ``second``; the second's count, these included."""

    async def take(self, access_key_id: str, action: str) -> float:
        key = (access_key_id, action)
        while True:
            now = self._clock()
            second = math.floor(now)
            if self._spent.get(key) == second:
                return second + 1.0 - now
            held = self._held.get(key)
            if held is not None and held[0] == second and held[1] > 0:
                self._held[key] = (second, held[1] - 1)
                return 0.0
            asking = self._asking.get(key)
            if asking is None:
                return await self._take_part(key, second, now)
            # another request of this process is taking a part: share it, do not take more
            await asyncio.shield(asking)

    async def _take_part(self, key: tuple[str, str], second: int, now: float) -> float:
        asking = asyncio.get_running_loop().create_future()
        self._asking[key] = asking
        try:
            total = await self.count(key[0], key[1], second, self.part)
        finally:
            del self._asking[key]
            asking.set_result(None)
        granted = self.part - max(0, total - self.limit)  # what of the part fits the limit
        if len(self._held) > 100_000 or len(self._spent) > 100_000:
            self._forget(second)  # past seconds are of no use
        if granted >= 1:
            self._held[key] = (second, granted - 1)
            return 0.0
        self._spent[key] = second
        return second + 1.0 - now

    def _forget(self, second: int) -> None:
        self._spent = {k: at for k, at in self._spent.items() if at >= second}
        self._held = {k: h for k, h in self._held.items() if h[0] >= second}


class TokenBuckets(Limiter):
    """``rate`` tokens per second, at most ``rate`` (one second's worth) in store, per key and
    action, in this process's memory: what one process (SQLite's) needs, and what a shared
    limiter falls back on while its Redis does not answer. Only the event loop calls it."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    async def take(self, access_key_id: str, action: str) -> float:
        """Spend one token; returns 0 when admitted, else the seconds until one is free."""
        now = self._clock()
        key = (access_key_id, action)
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > 100_000:  # forget idle buckets; they refill to full anyway
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return (1.0 - tokens) / self.rate
