"""The identity work done on every API request, kept to one metadata round trip.

An access key's secret never changes, so each process caches it once decrypted and checks a
signature before touching the store. What can change (the key's status, its owner's state,
roles and tenant membership) is read on every request by the same statement that remembers
the nonce. On PostgreSQL that is one data-modifying CTE on an async connection; SQLite runs
two statements on its local file.

This and the rate limit's count in the store (gateway/ratelimit_store.py, on this pool) are
the places that write SQL by hand: the ORM and even Core's execution layer cost more per
request than the insert itself (bench/gateway.py measures the difference).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio.to_thread
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, delete, make_url
from sqlalchemy.engine import Connection

from opendms.identity.roles import Role, parse_roles
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import RequestNonce
from opendms.store.states import KeyStatus, UserState


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    uid: str
    key_active: bool
    # The key owner's membership of the requested tenant (None: not a member).
    user_id: int | None
    user_state: UserState | None
    roles: tuple[Role, ...]
    auth_version: int
    nick_name: str
    tid: int | None
    tenant_name: str | None


@dataclass(frozen=True)
class Admission:
    credential: Credential
    fresh_nonce: bool


_STATE_COLUMNS = """
    ak.access_key_id, ak.uid, ak.status, u.user_id, u.state, u.roles, u.auth_version,
    u.nick_name, t.tid, t.name
"""
_STATE_JOINS = """
FROM access_keys ak
JOIN accounts a ON a.uid = ak.uid
LEFT JOIN users u ON u.uid = ak.uid AND u.tid = COALESCE({tid}, a.active_tid)
LEFT JOIN tenants t ON t.tid = u.tid
WHERE ak.access_key_id = {ak}
"""

_PG_ADMIT = (
    """
WITH fresh AS (
    INSERT INTO request_nonces (access_key_id, nonce, expires_at)
    VALUES (%(ak)s, %(nonce)s, %(expires)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT"""
    + _STATE_COLUMNS
    + ", EXISTS (SELECT 1 FROM fresh)"
    + _STATE_JOINS.format(tid="CAST(%(tid)s AS BIGINT)", ak="%(ak)s")
)
_SQLITE_NONCE = (
    "INSERT INTO request_nonces (access_key_id, nonce, expires_at) VALUES (:ak, :nonce, :expires) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
_SQLITE_STATE = "SELECT" + _STATE_COLUMNS + _STATE_JOINS.format(tid=":tid", ak=":ak")
_SECRET = {  # PostgreSQL and SQLite paramstyles
    "postgresql": "SELECT secret_enc FROM access_keys WHERE access_key_id = %(ak)s",
    "sqlite": "SELECT secret_enc FROM access_keys WHERE access_key_id = :ak",
}
_MAX_CACHED = 10_000


def _credential(row: Any) -> Credential:
    return Credential(
        access_key_id=row[0],
        uid=row[1],
        key_active=row[2] == KeyStatus.ACTIVE,
        user_id=row[3],
        user_state=None if row[4] is None else UserState(row[4]),
        roles=parse_roles(row[5]) if row[5] else (),
        auth_version=row[6] or 0,
        nick_name=row[7] or "",
        tid=row[8],
        tenant_name=row[9],
    )


class CredentialStore(ABC):
    """Per-request identity queries. Async, so that the gateway's common path never waits on a
    thread: PostgreSQL speaks through an async connection pool, SQLite through a thread."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box
        self._secrets: dict[str, str] = {}

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Called once the event loop runs."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Called before the event loop stops."""

    async def secret(self, access_key_id: str) -> str | None:
        """The clear secret of a key (active or not), or None if there is no such key."""
        secret = self._secrets.get(access_key_id)
        if secret is None:
            encrypted = await self._fetch_secret(access_key_id)
            if encrypted is None:
                return None
            secret = self.box.decrypt(encrypted)
            if len(self._secrets) >= _MAX_CACHED:
                self._secrets.clear()
            self._secrets[access_key_id] = secret
        return secret

    @abstractmethod
    async def _fetch_secret(self, access_key_id: str) -> str | None: ...

    @abstractmethod
    async def admit(
        self, access_key_id: str, nonce: str, expires_at: datetime, tid: int | None
    ) -> Admission | None:
        """Remember ``nonce`` and read the key's current state; None if the key is gone."""


class PostgresCredentials(CredentialStore):
    def __init__(self, url: str, box: SecretBox, pool_size: int) -> None:
        super().__init__(box)
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=False,
            # No check on checkout: it would be a round trip per request. psycopg drops a
            # connection that broke when it comes back, and that request answers 503.
        )

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The per-request connections; the store's rate limit counts on them too."""
        return self._pool

    async def open(self) -> None:
        await self._pool.open()

    async def close(self) -> None:
        await self._pool.close()

    async def _fetch_secret(self, access_key_id: str) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_SECRET["postgresql"], {"ak": access_key_id})
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def admit(
        self, access_key_id: str, nonce: str, expires_at: datetime, tid: int | None
    ) -> Admission | None:
        params = {"ak": access_key_id, "nonce": nonce, "tid": tid, "expires": expires_at}
        async with self._pool.connection() as conn:
            cur = await conn.execute(_PG_ADMIT, params)
            row = await cur.fetchone()
        return None if row is None else Admission(_credential(row), bool(row[10]))


class SqliteCredentials(CredentialStore):
    """The embedded store: statements on the local file, run on a worker thread because a
    writer may wait on SQLite's lock."""

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        super().__init__(box)
        self.engine = engine

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        fairy = self.engine.raw_connection()
        try:
            fairy.driver_connection.isolation_level = None  # type: ignore[union-attr]
            cursor = fairy.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            fairy.close()

    def _fetch_secret_sync(self, access_key_id: str) -> str | None:
        with self._cursor() as cur:
            cur.execute(_SECRET["sqlite"], {"ak": access_key_id})
            row = cur.fetchone()
        return None if row is None else str(row[0])

    async def _fetch_secret(self, access_key_id: str) -> str | None:
        return await anyio.to_thread.run_sync(self._fetch_secret_sync, access_key_id)

    def _admit_sync(
        self, access_key_id: str, nonce: str, expires_at: datetime, tid: int | None
    ) -> Admission | None:
        params: dict[str, Any] = {"ak": access_key_id, "nonce": nonce, "tid": tid}
        with self._cursor() as cur:
            cur.execute(_SQLITE_NONCE, {**params, "expires": f"{expires_at:%Y-%m-%d %H:%M:%S.%f}"})
            fresh = cur.fetchone() is not None
            cur.execute(_SQLITE_STATE, params)
            row = cur.fetchone()
        return None if row is None else Admission(_credential(row), fresh)

    async def admit(
        self, access_key_id: str, nonce: str, expires_at: datetime, tid: int | None
    ) -> Admission | None:
        return await anyio.to_thread.run_sync(
            self._admit_sync, access_key_id, nonce, expires_at, tid
        )


def credential_store(store: Store, box: SecretBox, pool_size: int) -> CredentialStore:
    if store.dialect == "postgresql":
        return PostgresCredentials(store.url, box, pool_size)
    if store.dialect == "sqlite":
        return SqliteCredentials(store.engine, box)
    raise ValueError(f"unsupported metadata store {store.dialect}")


def purge_nonces(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(RequestNonce).where(RequestNonce.expires_at < now)).rowcount
