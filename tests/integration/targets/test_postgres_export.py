"""PostgreSQL's export snapshot against the real server: how its CSV is read."""

from __future__ import annotations

import threading
import time

import pytest

from opendms.targets.base import Endpoint
from opendms.targets.registry import connector_for
from tests.conftest import pg_database

pytestmark = pytest.mark.integration

# A thousand rows, then a second's pause in the middle of the result, then a thousand more:
# the rows before the pause fill the server's send buffer, so they arrive before it.
PAUSED = (
    "SELECT g, repeat('x', 100) AS pad, CASE WHEN g = 1000 THEN pg_sleep(1) END AS pause "
    "FROM generate_series(1, 2000) g"
)


def test_a_copy_waiting_for_the_server_lets_other_threads_run() -> None:
    """The thread that compresses an export's zip runs while COPY waits for rows: a read
    that blocked inside libpq held the GIL, and every other thread stood still for as long
    as the server took to send the next row."""
    target = connector_for(Endpoint("postgresql", "127.0.0.1", 5432, "postgres", ""))
    longest = 0.0
    done = threading.Event()

    def tick() -> None:
        nonlocal longest
        last = time.monotonic()
        while not done.is_set():
            time.sleep(0.005)
            now = time.monotonic()
            longest = max(longest, now - last)
            last = now

    with pg_database() as (name, _conn), target.snapshot((name, "public"), PAUSED, 30) as snap:
        ticker = threading.Thread(target=tick)
        ticker.start()
        try:
            blocks = snap.csv("UTF8", 10_000)
            assert blocks is not None
            text = b"".join(blocks).decode()
        finally:
            done.set()
            ticker.join()
    assert snap.copied == 2000
    assert text.count("\n") == 2001  # the header and every row
    assert longest < 0.5, f"another thread stood still for {longest:.2f} s"
