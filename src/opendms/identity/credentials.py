"""What the gateway needs to know about an access key, in one round trip, and replay memory.

These run on every request, so they use Core statements (compiled once, cached) on a plain
connection rather than ORM sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from opendms.identity.roles import Role, parse_roles
from opendms.store.models import AccessKey, Account, RequestNonce, Tenant, User


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    uid: str
    secret_enc: str
    key_active: bool
    # The key owner's membership of the requested tenant (None: not a member).
    user_id: int | None
    user_state: str | None
    roles: tuple[Role, ...]
    auth_version: int
    nick_name: str
    tid: int | None
    tenant_name: str | None


def lookup_credential(conn: Connection, access_key_id: str, tid: int | None) -> Credential | None:
    """The key, its owner's membership of ``tid`` (or of their active tenant when None)."""
    wanted = Account.active_tid if tid is None else tid
    row = conn.execute(
        select(
            AccessKey.access_key_id,
            AccessKey.uid,
            AccessKey.secret_enc,
            AccessKey.status,
            User.user_id,
            User.state,
            User.roles,
            User.auth_version,
            User.nick_name,
            Tenant.tid,
            Tenant.name,
        )
        .join(Account, Account.uid == AccessKey.uid)
        .outerjoin(User, and_(User.uid == AccessKey.uid, User.tid == wanted))
        .outerjoin(Tenant, Tenant.tid == User.tid)
        .where(AccessKey.access_key_id == access_key_id)
    ).first()
    if row is None:
        return None
    return Credential(
        access_key_id=row[0],
        uid=row[1],
        secret_enc=row[2],
        key_active=row[3] == "Active",
        user_id=row[4],
        user_state=row[5],
        roles=parse_roles(row[6]) if row[6] else (),
        auth_version=row[7] or 0,
        nick_name=row[8] or "",
        tid=row[9],
        tenant_name=row[10],
    )


_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def remember_nonce(conn: Connection, access_key_id: str, nonce: str, expires_at: datetime) -> bool:
    """Record a nonce; False when it was already used (a replay). Commits by itself."""
    values = {"access_key_id": access_key_id, "nonce": nonce, "expires_at": expires_at}
    insert = _INSERTS.get(conn.dialect.name)
    if insert is None:  # pragma: no cover - the metadata store is SQLite or PostgreSQL
        raise RuntimeError(f"unsupported metadata store dialect {conn.dialect.name}")
    stmt = insert(RequestNonce).values(values).on_conflict_do_nothing()
    return conn.execute(stmt).rowcount == 1


def purge_nonces(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(RequestNonce).where(RequestNonce.expires_at < now)).rowcount
