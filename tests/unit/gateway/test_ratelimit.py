"""The rate limiters' rules without a shared service: the window rule the shared limiters
apply, the in-process buckets, which limiter the settings choose, a Redis limiter whose Redis
does not answer, and the purge of old windows. Counting in a real Redis and PostgreSQL is
tests/integration/gateway/test_ratelimit_shared.py."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter

import pytest

from opendms.config import Settings
from opendms.gateway import ratelimit_redis
from opendms.gateway.limiters import limiter_for
from opendms.gateway.ratelimit import Limiter, TokenBuckets, Windows, per_window
from opendms.gateway.ratelimit_redis import RedisWindows
from opendms.gateway.ratelimit_store import KEEP_SECONDS, StoreWindows, purge_rate_windows
from opendms.identity.credentials import PostgresCredentials, SqliteCredentials
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import RateWindow


class Hand:
    """A clock moved only by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def takes(limiter: Limiter, n: int, key: str = "AK", action: str = "A"):
    async def all_of() -> list[float]:
        return [await limiter.take(key, action) for _ in range(n)]

    return asyncio.run(all_of())


# ------------------------------------------------------------------ the shared limiters' rule


class CountingHere(Windows):
    """The shared rule over counts kept in a dict: what Redis or the store would keep."""

    def __init__(self, rate: float, clock: Hand) -> None:
        super().__init__(rate, clock)
        self.counts: Counter[tuple[str, str, int]] = Counter()

        self.asked = 0  # round trips to the shared count

    async def count(self, access_key_id: str, action: str, second: int, n: int) -> int:
        self.asked += 1
        self.counts[access_key_id, action, second] += n
        return self.counts[access_key_id, action, second]


def test_a_second_admits_the_rate_rounded_down_and_at_least_one() -> None:
    assert per_window(5) == 5
    assert per_window(5.9) == 5
    assert per_window(0.25) == 1


def test_past_its_share_a_request_waits_for_the_next_second() -> None:
    clock = Hand(1000.25)
    windows = CountingHere(3, clock)
    assert takes(windows, 4) == [0.0, 0.0, 0.0, pytest.approx(0.75)]
    clock.now = 1000.999
    assert takes(windows, 1) == [pytest.approx(0.001)]
    assert takes(windows, 1, action="B") == [0.0]  # each action has its own count
    clock.now = 1001.0
    assert takes(windows, 4) == [0.0, 0.0, 0.0, pytest.approx(1.0)]


def test_a_spent_second_is_refused_without_asking_the_shared_count() -> None:
    clock = Hand(1000.5)
    windows = CountingHere(2, clock)
    assert takes(windows, 3) == [0.0, 0.0, 0.5]
    assert takes(windows, 5) == [0.5] * 5
    assert windows.counts["AK", "A", 1000] == 3  # the first refusal was counted, not the rest
    clock.now = 1001.5  # a new second is asked again
    assert takes(windows, 1) == [0.0]
    assert windows.counts["AK", "A", 1001] == 1


def test_a_busy_key_takes_its_second_in_parts_and_never_more_than_the_rate() -> None:
    """Two processes (two limiters on one count) under a rate of 100: each asks the shared
    count for a twentieth at a time, and together they admit at most 100 in the second."""
    clock = Hand(2000.1)
    one, other = CountingHere(100, clock), CountingHere(100, clock)
    other.counts = one.counts  # the shared count
    admitted = 0
    for _ in range(80):
        admitted += sum(w == 0.0 for w in takes(one, 1) + takes(other, 1))
    assert admitted <= 100
    assert admitted >= 100 - 2 * one.part  # at most a part of each process goes unused
    assert one.asked + other.asked <= 100 // one.part + 2  # a round trip a part, not a request
    clock.now = 2001.1
    assert takes(one, 1) == [0.0]  # the next second has its own count


# ------------------------------------------------------------------ in-process buckets


def test_buckets_hold_one_seconds_worth_and_refill_at_the_rate() -> None:
    clock = Hand(50.0)
    buckets = TokenBuckets(4, clock=clock)
    assert takes(buckets, 5) == [0.0, 0.0, 0.0, 0.0, pytest.approx(0.25)]
    clock.now += 0.5  # two tokens back
    assert takes(buckets, 3) == [0.0, 0.0, pytest.approx(0.25)]
    assert takes(buckets, 1, action="B") == [0.0]  # each action has its own bucket
    assert takes(buckets, 1, key="AK2") == [0.0]  # and each key


def test_a_rate_below_one_still_admits_one_request() -> None:
    clock = Hand(0.0)
    buckets = TokenBuckets(0.5, clock=clock)
    assert takes(buckets, 2) == [0.0, pytest.approx(2.0)]
    clock.now += 2.0
    assert takes(buckets, 1) == [0.0]


# ------------------------------------------------------------------ which limiter


def _settings(**given: str | float) -> Settings:
    return Settings(secret_key="k", **given)


def test_the_settings_choose_redis_then_the_postgresql_store_then_this_process(
    store: Store,
) -> None:
    box = SecretBox(b"k")
    pg = PostgresCredentials("postgresql+psycopg://nobody@127.0.0.1:1/none", box, 1)  # unopened
    sqlite = SqliteCredentials(store.engine, box)

    redis = limiter_for(_settings(redis_url="redis://127.0.0.1:1/0", rate_limit=7), pg)
    assert isinstance(redis, RedisWindows) and redis.rate == 7
    broker = limiter_for(_settings(broker_url="redis://127.0.0.1:1/1"), sqlite)
    assert isinstance(broker, RedisWindows)  # a Redis broker is the shared Redis too
    rabbit = limiter_for(_settings(broker_url="amqp://guest@127.0.0.1:1//"), pg)
    assert isinstance(rabbit, StoreWindows)
    assert isinstance(limiter_for(_settings(), pg), StoreWindows)
    assert isinstance(limiter_for(_settings(), sqlite), TokenBuckets)


# ------------------------------------------------------------------ Redis that does not answer


def _closed_port() -> int:
    """A loopback port nothing listens on: a connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_its_redis_a_process_counts_its_own_and_says_so_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = Hand(0.0)
    limiter = RedisWindows(
        f"redis://:hunter2@127.0.0.1:{_closed_port()}/0",
        2,
        TokenBuckets(2, clock=ticks),
        monotonic=ticks,
    )
    with caplog.at_level(logging.WARNING, logger="opendms.gateway"):
        assert takes(limiter, 3) == [0.0, 0.0, pytest.approx(0.5)]  # the buckets' answers
        ticks.now += ratelimit_redis.RETRY_SECONDS + 0.5  # asks Redis again: still refused
        assert takes(limiter, 1) == [0.0]
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 1, warned
        assert "unreachable" in warned[0] and "hunter2" not in warned[0]
        ticks.now += ratelimit_redis.WARN_EVERY_SECONDS
        takes(limiter, 1)
        assert len(caplog.records) == 2
    asyncio.run(limiter.close())


# ------------------------------------------------------------------ purge


def test_windows_older_than_a_minute_are_purged(store: Store) -> None:
    now = 1_000_000.5
    with store.session() as s:
        for second, key in [(999_900, "old"), (1_000_000 - KEEP_SECONDS, "edge"), (999_990, "new")]:
            s.add(RateWindow(access_key_id=key, action="A", at_second=second, count=3))
    with store.engine.begin() as conn:
        assert purge_rate_windows(conn, now) == 1
    with store.session() as s:
        left = {w.access_key_id for w in s.query(RateWindow)}
    assert left == {"edge", "new"}


def test_the_housekeeping_purge_forgets_old_windows(make_api) -> None:
    api = make_api()
    with api.store.session() as s:
        s.add(RateWindow(access_key_id="AK", action="A", at_second=int(time.time()) - 3600))
        s.add(RateWindow(access_key_id="AK", action="A", at_second=int(time.time())))
    api.app._purge()
    with api.store.session() as s:
        assert s.query(RateWindow).count() == 1
