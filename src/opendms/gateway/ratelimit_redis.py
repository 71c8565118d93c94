"""Rate limits counted in Redis, shared by every API process that points at it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from opendms.gateway.ratelimit import TokenBuckets, Windows

log = logging.getLogger("opendms.gateway")

PREFIX = "opendms:rate:"
# A request waits at most this long on a Redis that does not answer, and a process that found
# it down counts in memory this long before it asks again: a lost Redis must not slow every
# request by a timeout.
TIMEOUT_SECONDS = 0.5
RETRY_SECONDS = 1.0
WARN_EVERY_SECONDS = 60.0
# A second's counter outlives it a little: processes' clocks differ by a few ms.
KEY_TTL_SECONDS = 2
# One command, so one reply to read, and atomic: no counter is ever left without its expiry.
_COUNT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisWindows(Windows):
    """One counter per key, action and clock second: ``opendms:rate:<key>:<action>:<second>``.

    While Redis does not answer, requests are counted by ``fallback``, this process's own
    buckets, rather than refused: a limiter that is down must not take the API down with it.
    Each process then admits the rate by itself; a warning says so, once a minute."""

    def __init__(
        self,
        url: str,
        rate: float,
        fallback: TokenBuckets,
        *,
        prefix: str = PREFIX,
        ttl_seconds: int = KEY_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate, clock)
        self.fallback = fallback
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),  # the client's default retries for seconds
        )
        self._script = self._redis.register_script(_COUNT)
        parts = urlsplit(url)
        self._where = f"{parts.hostname}:{parts.port or 6379}"  # never the URL's password
        self._down_until: float | None = None
        self._warned_at: float | None = None
        self._warned = False  # since it last answered: then its return is worth a line too

    async def count(self, access_key_id: str, action: str, second: int, n: int) -> int:
        name = f"{self.prefix}{access_key_id}:{action}:{second}"
        return int(await self._script(keys=[name], args=[self.ttl_seconds, n]))

    async def take(self, access_key_id: str, action: str) -> float:
        if self._down_until is not None and self._monotonic() < self._down_until:
            return await self.fallback.take(access_key_id, action)
        try:
            wait = await super().take(access_key_id, action)
        except (RedisError, OSError) as exc:
            self._down(exc)
            return await self.fallback.take(access_key_id, action)
        self._down_until = None
        if self._warned:
            self._warned = False
            log.warning("rate limits: Redis at %s answers again; shared counts resume", self._where)
        return wait

    def _down(self, exc: BaseException) -> None:
        at = self._monotonic()
        self._down_until = at + RETRY_SECONDS
        if self._warned_at is None or at - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = at
            self._warned = True
            log.warning(
                "rate limits: Redis at %s unreachable (%s); each API process counts its own "
                "requests until it answers",
                self._where,
                exc,
            )

    async def close(self) -> None:
        await self._redis.aclose()
