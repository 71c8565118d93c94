"""The identity work done on every API request, kept to one metadata round trip per batch.

An access key's secret never changes, so each process caches it once decrypted and checks a
signature before touching the store. What can change (the key's status, its owner's state,
roles and tenant membership) is read for every request by the same statement that remembers
its nonce, in the transaction that commits the nonce before the request goes on.

Admissions are committed in groups (``_Batches``): a request that asks while earlier ones are
being admitted waits for them and goes with every other that arrived meanwhile, so under load
a process spends one round trip and one commit on dozens of requests, and when idle a request
goes at once. On PostgreSQL a batch is one data-modifying statement on an async connection;
on SQLite one transaction on a worker thread, whose processes take turns through a file lock
(``_TakeTurns``). Every nonce is committed in the shared store before its request is
answered, so a nonce one process admitted is refused by every other.

This and the rate limit's count in the store (gateway/ratelimit_store.py, on this pool) are
the places that write SQL by hand: the ORM and even Core's execution layer cost more per
request than the insert itself (bench/gateway.py measures the difference).
"""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
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


@dataclass(frozen=True)
class Ask:
    """One request's admission: its access key and nonce, until when the nonce is kept, and
    the tenant the request names (None: the key owner's active tenant). Only keys that exist
    and nonces the authenticator checked get here, so no ask can fail its batch's statement."""

    access_key_id: str
    nonce: str
    expires_at: datetime
    tid: int | None


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

# A batch in one statement: every nonce inserted (in key order, so that two batches that share
# a nonce wait for each other in the same order and cannot deadlock), then each ask's row: its
# key's state, and whether its nonce is new. An ask whose key is gone has no row.
_PG_ADMIT = (
    """
WITH asked AS (
    SELECT * FROM unnest(
        CAST(%(aks)s AS TEXT[]), CAST(%(nonces)s AS TEXT[]),
        CAST(%(expires)s AS TIMESTAMP[]), CAST(%(tids)s AS BIGINT[])
    ) WITH ORDINALITY AS asked (ak, nonce, expires, tid, i)
), fresh AS (
    INSERT INTO request_nonces (access_key_id, nonce, expires_at)
    SELECT ak, nonce, expires FROM asked ORDER BY ak, nonce
    ON CONFLICT DO NOTHING
    RETURNING access_key_id, nonce
)
SELECT asked.i,"""
    + _STATE_COLUMNS
    + """, fresh.nonce IS NOT NULL
FROM asked
JOIN access_keys ak ON ak.access_key_id = asked.ak
JOIN accounts a ON a.uid = ak.uid
LEFT JOIN users u ON u.uid = ak.uid AND u.tid = COALESCE(asked.tid, a.active_tid)
LEFT JOIN tenants t ON t.tid = u.tid
LEFT JOIN fresh ON fresh.access_key_id = asked.ak AND fresh.nonce = asked.nonce
"""
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
# At most this many admissions in one batch: a bound on one statement's (or transaction's) size.
MAX_BATCH = 256


@lru_cache(maxsize=1024)
def _stored_roles(text: str) -> tuple[Role, ...]:
    """A ``users.roles`` value, parsed once per process: a store holds a handful of them."""
    return parse_roles(text)


def _credential(row: Any) -> Credential:
    return Credential(
        access_key_id=row[0],
        uid=row[1],
        key_active=row[2] == KeyStatus.ACTIVE,
        user_id=row[3],
        user_state=None if row[4] is None else UserState(row[4]),
        roles=_stored_roles(row[5]) if row[5] else (),
        auth_version=row[6] or 0,
        nick_name=row[7] or "",
        tid=row[8],
        tenant_name=row[9],
    )


class _Batches:
    """Group commit. A request asks for its admission; while ``in_flight`` batches are being
    admitted it waits, and when one ends every waiting request goes in the next batch (at most
    ``MAX_BATCH``): one round trip for all of them, none delayed when the store is idle."""

    def __init__(
        self, admit: Callable[[list[Ask]], Awaitable[list[Admission | None]]], in_flight: int
    ) -> None:
        self._admit = admit
        self._in_flight = in_flight
        self._waiting: list[tuple[Ask, asyncio.Future[Admission | None]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def ask(self, ask: Ask) -> Admission | None:
        answer: asyncio.Future[Admission | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((ask, answer))
        if len(self._running) < self._in_flight:
            self._start()
        return await answer

    def _start(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        # A context of its own: the batch is no one request's (its log lines name none).
        task = asyncio.create_task(self._send(batch), context=contextvars.Context())
        self._running.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._waiting and len(self._running) < self._in_flight:
            self._start()

    async def _send(self, batch: list[tuple[Ask, asyncio.Future[Admission | None]]]) -> None:
        try:
            found = await self._admit([ask for ask, _ in batch])
        except asyncio.CancelledError:
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every request of the batch
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (_, answer), admission in zip(batch, found, strict=True):
            if not answer.done():  # its request may have been cancelled meanwhile
                answer.set_result(admission)


class CredentialStore(ABC):
    """Per-request identity queries. Async, so that the gateway's common path never waits on a
    thread: PostgreSQL speaks through an async connection pool, SQLite through a thread."""

    def __init__(self, box: SecretBox, *, in_flight: int) -> None:
        self.box = box
        self._secrets: dict[str, str] = {}
        self._batches = _Batches(self._admit_batch, in_flight)

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

    async def admit(
        self, access_key_id: str, nonce: str, expires_at: datetime, tid: int | None
    ) -> Admission | None:
        """Remember ``nonce`` and read the key's current state; None if the key is gone. The
        nonce is committed in the store when this returns."""
        return await self._batches.ask(Ask(access_key_id, nonce, expires_at, tid))

    async def _admit_batch(self, asks: list[Ask]) -> list[Admission | None]:
        """``_admit_many`` for a batch in which a key's nonce may come more than once (a replay
        sent while the first was waiting): the store sees it once, and only its first ask is
        fresh, as if they had come one after the other."""
        first: dict[tuple[str, str], int] = {}  # (key, nonce) -> its place in ``unique``
        unique: list[Ask] = []
        for ask in asks:
            if (ask.access_key_id, ask.nonce) not in first:
                first[(ask.access_key_id, ask.nonce)] = len(unique)
                unique.append(ask)
        found = await self._admit_many(unique)
        if len(unique) == len(asks):
            return found
        answered: set[int] = set()
        out: list[Admission | None] = []
        for ask in asks:
            at = first[(ask.access_key_id, ask.nonce)]
            admission = found[at]
            if at in answered and admission is not None:
                admission = replace(admission, fresh_nonce=False)
            answered.add(at)
            out.append(admission)
        return out

    @abstractmethod
    async def _fetch_secret(self, access_key_id: str) -> str | None: ...

    @abstractmethod
    async def _admit_many(self, asks: Sequence[Ask]) -> list[Admission | None]:
        """Commit the nonces of ``asks`` (no two alike) and read their keys' state, in order;
        None for an ask whose key is gone."""


class PostgresCredentials(CredentialStore):
    # Batches under way at once per process: a few, so that one waiting for its commit's WAL
    # flush does not hold the next back, far fewer than the pool's connections.
    IN_FLIGHT = 2

    def __init__(self, url: str, box: SecretBox, pool_size: int) -> None:
        super().__init__(box, in_flight=min(self.IN_FLIGHT, pool_size))
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

    async def _admit_many(self, asks: Sequence[Ask]) -> list[Admission | None]:
        params = {
            "aks": [a.access_key_id for a in asks],
            "nonces": [a.nonce for a in asks],
            "expires": [a.expires_at for a in asks],
            "tids": [a.tid for a in asks],
        }
        async with self._pool.connection() as conn:
            cur = await conn.execute(_PG_ADMIT, params)
            rows = await cur.fetchall()
        found: list[Admission | None] = [None] * len(asks)
        for row in rows:
            found[row[0] - 1] = Admission(_credential(row[1:]), bool(row[11]))
        return found


class _TakeTurns:
    """An exclusive lock on a file beside the SQLite database, held while a process's batch
    is admitted. SQLite makes a writer that finds the write lock taken sleep and try again
    (1, 2, 5, 10 … up to 100 ms between tries), so two processes writing back to back kept
    requests waiting tens of milliseconds for a lock held for one; a process waiting here
    sleeps in the kernel and is woken the moment the other lets go. Every other writer (the
    ORM's transactions) still meets SQLite's own wait. No file (an in-memory database): no
    other process."""

    def __init__(self, database: str | None) -> None:
        self._path = f"{database}-admissions.lock" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._guard = threading.Lock()  # one process's batches, one at a time

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._guard:
            if self._path is None:
                yield
                return
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._guard:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class SqliteCredentials(CredentialStore):
    """The embedded store: statements on the local file, run on a worker thread because a
    writer may wait on SQLite's lock. One batch at a time: SQLite has one writer anyway."""

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        super().__init__(box, in_flight=1)
        self.engine = engine
        self._turns = _TakeTurns(engine.url.database)

    async def close(self) -> None:
        self._turns.close()

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

    def _admit_many_sync(self, asks: Sequence[Ask]) -> list[Admission | None]:
        with self._turns.turn(), self._cursor() as cur:
            cur.execute("BEGIN IMMEDIATE")
            try:
                fresh = []
                for a in asks:
                    expires = f"{a.expires_at:%Y-%m-%d %H:%M:%S.%f}"
                    cur.execute(
                        _SQLITE_NONCE, {"ak": a.access_key_id, "nonce": a.nonce, "expires": expires}
                    )
                    fresh.append(cur.fetchone() is not None)
                # a key's state once per tenant asked for: the same in the whole transaction
                states: dict[tuple[str, int | None], Credential | None] = {}
                for a in asks:
                    if (a.access_key_id, a.tid) not in states:
                        cur.execute(_SQLITE_STATE, {"ak": a.access_key_id, "tid": a.tid})
                        row = cur.fetchone()
                        states[(a.access_key_id, a.tid)] = None if row is None else _credential(row)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        found: list[Admission | None] = []
        for a, new in zip(asks, fresh, strict=True):
            credential = states[(a.access_key_id, a.tid)]
            found.append(None if credential is None else Admission(credential, new))
        return found

    async def _admit_many(self, asks: Sequence[Ask]) -> list[Admission | None]:
        return await anyio.to_thread.run_sync(self._admit_many_sync, asks)


def credential_store(store: Store, box: SecretBox, pool_size: int) -> CredentialStore:
    if store.dialect == "postgresql":
        return PostgresCredentials(store.url, box, pool_size)
    if store.dialect == "sqlite":
        return SqliteCredentials(store.engine, box)
    raise ValueError(f"unsupported metadata store {store.dialect}")


def purge_nonces(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(RequestNonce).where(RequestNonce.expires_at < now)).rowcount
