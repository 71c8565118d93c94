"""Shared rate limits on the real services: two limiters, as two API processes hold them,
counting in one Redis or one PostgreSQL store admit the rate between them in a second, and
admit again in the next. Their clocks are stopped by hand, so every request of a test falls
in the second the test says."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from opendms.gateway import ratelimit_redis
from opendms.gateway.ratelimit import Limiter, TokenBuckets
from opendms.gateway.ratelimit_redis import RedisWindows
from opendms.gateway.ratelimit_store import StoreWindows, purge_rate_windows
from opendms.identity.credentials import PostgresCredentials
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from tests.conftest import require_service

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"
RATE = 5
SECOND = 1_900_000_000  # a clock second of these tests


class Hand:
    """A clock moved only by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def burst(limiters: list[Limiter], n: int, key: str = "AK", action: str = "GetUser"):
    """``n`` requests at once, spread over ``limiters`` in turn; their waits."""
    return await asyncio.gather(*(limiters[i % len(limiters)].take(key, action) for i in range(n)))


def shares_one_limit(clock: Hand, limiters: list[Limiter]) -> Callable[[], Awaitable[None]]:
    async def scenario() -> None:
        clock.now = SECOND + 0.25
        waits = await burst(limiters, 4 * RATE)
        admitted = [w for w in waits if w == 0]
        assert len(admitted) == RATE, waits
        refused = {round(w, 6) for w in waits if w > 0}
        assert refused == {0.75}  # what is left of the second
        # Each has seen the second spent: it refuses the rest itself (the count stays).
        assert [round(w, 6) for w in await burst(limiters, 2)] == [0.75, 0.75]
        assert await burst(limiters, 3, action="ListUsers") == [0.0] * 3  # per action
        assert await burst(limiters, 3, key="AK2") == [0.0] * 3  # and per key

        clock.now = SECOND + 1.0  # the next second: a fresh share
        waits = await burst(limiters, 2 * RATE)
        assert waits.count(0.0) == RATE, waits

    return scenario


# ------------------------------------------------------------------ Redis


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted after."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        require_service("Redis", str(exc))
    prefix = f"{ratelimit_redis.PREFIX}test-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


def test_two_redis_limiters_share_the_rate(redis_prefix: str) -> None:
    clock = Hand(0.0)

    async def main() -> None:
        limiters: list[Limiter] = [
            RedisWindows(
                REDIS_URL,
                RATE,
                TokenBuckets(RATE),
                prefix=redis_prefix,
                ttl_seconds=60,
                clock=clock,
            )
            for _ in range(2)
        ]
        try:
            await shares_one_limit(clock, limiters)()
        finally:
            for limiter in limiters:
                await limiter.close()

    asyncio.run(main())
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{redis_prefix}*"))
    assert keys and all(0 < client.ttl(k) <= 60 for k in keys)  # no counter lives forever
    # what the processes took: the rate, and past it at most one part each (then spent)
    taken = int(client.get(f"{redis_prefix}AK:GetUser:{SECOND}") or 0)
    assert RATE < taken <= RATE + 2, taken
    client.close()


@contextmanager
def private_redis(port: int, workdir: Path) -> Iterator[None]:
    """A redis-server of this test's own (the shared one must not be stopped)."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_service("redis-server", "not installed")
    proc = subprocess.Popen(
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_redis_that_goes_away_is_replaced_by_each_process_counting_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    clock, ticks = Hand(SECOND + 0.5), Hand(0.0)
    key = f"{ratelimit_redis.PREFIX}AK:GetUser:{SECOND}"

    def counted() -> bytes | None:
        with redis.Redis(port=port) as client:
            return client.get(key)

    async def take(limiter: RedisWindows) -> float:
        return await limiter.take("AK", "GetUser")

    limiter = RedisWindows(
        f"redis://127.0.0.1:{port}/0", 2, TokenBuckets(2, clock=ticks), clock=clock, monotonic=ticks
    )
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.WARNING, logger="opendms.gateway"):
            with private_redis(port, tmp_path):
                assert loop.run_until_complete(take(limiter)) == 0.0
                assert counted() == b"1"
            # Gone: requests are admitted by this process's buckets (2, then a wait), not failed.
            waits = [loop.run_until_complete(take(limiter)) for _ in range(3)]
            assert waits == [0.0, 0.0, pytest.approx(0.5)]
            assert [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
            with private_redis(port, tmp_path):
                # Within the pause after a failure, the limiter does not ask it yet ...
                loop.run_until_complete(take(limiter))
                assert counted() is None
                # ... then counts there again, and says so.
                ticks.now += ratelimit_redis.RETRY_SECONDS
                assert loop.run_until_complete(take(limiter)) == 0.0
                assert counted() == b"1"
                assert "answers again" in caplog.records[-1].getMessage()
    finally:
        loop.run_until_complete(limiter.close())
        loop.close()


# ------------------------------------------------------------------ PostgreSQL


def _pools(url: str, n: int) -> list[PostgresCredentials]:
    return [PostgresCredentials(url, SecretBox(b"k"), pool_size=8) for _ in range(n)]


def run_on_store(
    url: str, scenario: Callable[[Hand, list[Limiter]], Callable[[], Awaitable[None]]]
) -> None:
    clock = Hand(0.0)

    async def main() -> None:
        processes = _pools(url, 2)  # a pool each, as two processes have
        for p in processes:
            await p.open()
        try:
            limiters: list[Limiter] = [StoreWindows(p.pool, RATE, clock=clock) for p in processes]
            await scenario(clock, limiters)()
        finally:
            for p in processes:
                await p.close()

    asyncio.run(main())


def test_two_store_limiters_share_the_rate(pg_store_url: str) -> None:
    run_on_store(pg_store_url, shares_one_limit)
    dsn = pg_store_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT at_second, count FROM rate_windows WHERE access_key_id = 'AK' "
            "AND action = 'GetUser' ORDER BY at_second"
        ).fetchall()
        persistence: Any = conn.execute(
            "SELECT relpersistence FROM pg_class WHERE relname = 'rate_windows'"
        ).fetchone()
    # what the processes took: the rate, and past it at most one part each (then spent)
    assert [second for second, _ in rows] == [SECOND, SECOND + 1]
    assert all(RATE < taken <= RATE + 2 for _, taken in rows), rows
    assert persistence == ("u",)  # unlogged: see migration 0019


def test_old_windows_are_purged_from_the_store(pg_store_url: str) -> None:
    def scenario(clock: Hand, limiters: list[Limiter]) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            for second in (SECOND - 3600, SECOND - 30, SECOND):
                clock.now = second
                await limiters[0].take("AK", "GetUser")

        return go

    run_on_store(pg_store_url, scenario)
    store = Store(pg_store_url)
    try:
        with store.engine.begin() as conn:
            assert purge_rate_windows(conn, SECOND + 0.5) == 1
        with store.engine.connect() as conn:
            left = conn.exec_driver_sql("SELECT at_second FROM rate_windows ORDER BY 1").all()
        assert [r[0] for r in left] == [SECOND - 30, SECOND]
    finally:
        store.dispose()
