"""The identity work done on every API request, kept to one metadata round trip.

An access key's secret never changes, so each process caches it once decrypted and checks a
signature before touching the store. What can change (the key's status, its owner's state,
roles and tenant membership) is read on every request by the same statement that remembers
the nonce. On PostgreSQL that is one data-modifying CTE; SQLite runs two statements on its
local file.

This is the one place that writes SQL by hand: the ORM and even Core's execution layer cost
more per request than the insert itself (bench/gateway.py measures the difference).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.engine import Connection

from opendms.identity.roles import Role, parse_roles
from opendms.identity.secrets import SecretBox
from opendms.store.models import RequestNonce


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    uid: str
    key_active: bool
    # The key owner's membership of the requested tenant (None: not a member).
    user_id: int | None
    user_state: str | None
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
_SECRET = {
    "postgresql": "SELECT secret_enc FROM access_keys WHERE access_key_id = %(ak)s",
    "sqlite": "SELECT secret_enc FROM access_keys WHERE access_key_id = :ak",
}
_MAX_CACHED = 10_000


def _credential(row: Any) -> Credential:
    return Credential(
        access_key_id=row[0],
        uid=row[1],
        key_active=row[2] == "Active",
        user_id=row[3],
        user_state=row[4],
        roles=parse_roles(row[5]) if row[5] else (),
        auth_version=row[6] or 0,
        nick_name=row[7] or "",
        tid=row[8],
        tenant_name=row[9],
    )


class CredentialStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box
        self.dialect = engine.dialect.name
        if self.dialect not in _SECRET:
            raise ValueError(f"unsupported metadata store {self.dialect}")
        self._secrets: dict[str, str] = {}

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        fairy = self.engine.raw_connection()
        try:
            driver = fairy.driver_connection
            if self.dialect == "postgresql":
                driver.autocommit = True  # type: ignore[union-attr]
            else:
                driver.isolation_level = None  # type: ignore[union-attr]
            cursor = fairy.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.OperationalError:
            fairy.invalidate()  # a broken connection must not go back to the pool
            raise
        finally:
            fairy.close()

    def secret(self, access_key_id: str) -> str | None:
        """The clear secret of a key (active or not), or None if there is no such key."""
        secret = self._secrets.get(access_key_id)
        if secret is None:
            with self._cursor() as cur:
                cur.execute(_SECRET[self.dialect], {"ak": access_key_id})
                row = cur.fetchone()
            if row is None:
                return None
            secret = self.box.decrypt(row[0])
            if len(self._secrets) >= _MAX_CACHED:
                self._secrets.clear()
            self._secrets[access_key_id] = secret
        return secret

    def admit(
        self, access_key_id: str, nonce: str, expires_at: datetime, tid: int | None
    ) -> Admission | None:
        """Remember ``nonce`` and read the key's current state; None if the key is gone."""
        params: dict[str, Any] = {"ak": access_key_id, "nonce": nonce, "tid": tid}
        with self._cursor() as cur:
            if self.dialect == "postgresql":
                cur.execute(_PG_ADMIT, {**params, "expires": expires_at})
                row = cur.fetchone()
                return None if row is None else Admission(_credential(row), bool(row[10]))
            cur.execute(_SQLITE_NONCE, {**params, "expires": f"{expires_at:%Y-%m-%d %H:%M:%S.%f}"})
            fresh = cur.fetchone() is not None
            cur.execute(_SQLITE_STATE, params)
            row = cur.fetchone()
            return None if row is None else Admission(_credential(row), fresh)


def purge_nonces(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(RequestNonce).where(RequestNonce.expires_at < now)).rowcount
