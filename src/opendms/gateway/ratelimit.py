"""Flow control: a token bucket per (access key, action) inside one server process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBuckets:
    """``rate`` tokens per second, at most ``rate`` (one second's worth) in store.

    Each server process keeps its own buckets: with N worker processes a key may reach N times
    the rate. That bounds abuse without a shared round trip on every request.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def take(self, key: str, action: str) -> float:
        """Spend one token; returns 0 when admitted, else the seconds until one is free."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get((key, action), (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[(key, action)] = (tokens - 1.0, now)
                return 0.0
            self._buckets[(key, action)] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle buckets; they refill to full anyway
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return (1.0 - tokens) / self.rate
