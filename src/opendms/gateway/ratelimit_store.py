"""Rate limits counted in the PostgreSQL store (``rate_windows``), shared by every API process
on it, when no Redis is configured."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import delete
from sqlalchemy.engine import Connection

from opendms.gateway.ratelimit import Windows
from opendms.store.models import RateWindow

# Written by hand for the reason identity/credentials.py gives: this runs on every request.
_COUNT = """
INSERT INTO rate_windows (access_key_id, action, at_second, count)
VALUES (%(ak)s, %(action)s, %(second)s, %(n)s)
ON CONFLICT (access_key_id, action, at_second)
DO UPDATE SET count = LEAST(rate_windows.count + %(n)s, %(cap)s)
RETURNING count
"""
# A second's row is read only in that second; a minute leaves room for processes' clocks.
KEEP_SECONDS = 60


class StoreWindows(Windows):
    """One row per key, action and clock second, counted by an upsert on the per-request
    connection pool the credential store holds (``PostgresCredentials.pool``): one more round
    trip, no more connections. The table is unlogged (migration 0019). A store that does not
    answer fails the request, as the nonce's statement right after it would."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], rate: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(rate, clock)
        self._pool = pool

    async def count(self, access_key_id: str, action: str, second: int, n: int) -> int:
        # Counting past the limit by more than a part says nothing more: the count stays
        # below limit + part, so what a part gets is still exact and the column never overflows.
        cap = self.limit + n
        params = {"ak": access_key_id, "action": action, "second": second, "n": n, "cap": cap}
        async with self._pool.connection() as conn:
            cur = await conn.execute(_COUNT, params)
            row = await cur.fetchone()
        assert row is not None  # an upsert returns its row
        return int(row[0])


def purge_rate_windows(conn: Connection, now: float) -> int:
    """Forget the windows of seconds more than ``KEEP_SECONDS`` before ``now`` (epoch)."""
    before = int(now) - KEEP_SECONDS
    return conn.execute(delete(RateWindow).where(RateWindow.at_second < before)).rowcount
