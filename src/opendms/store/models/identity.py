"""People, tenants and the keys they sign requests with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import KeyStatus, SignInOutcome, UserState


class Tenant(Base):
    __tablename__ = "tenants"

    tid: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Account(Base):
    """A person or robot known by a cloud-style ``Uid``; member of one or more tenants."""

    __tablename__ = "accounts"

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    active_tid: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("tenants.tid", ondelete="SET NULL")
    )
    # argon2id (identity.passwords): signs the account in to the web console; None, no
    # password yet (access keys work without one).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    """An account's membership of one tenant: the DMS user with its own ``UserId``."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tid", "uid", name="uq_users_tid_uid"),)

    user_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.uid", ondelete="CASCADE"))
    parent_uid: Mapped[str | None] = mapped_column(String(64))
    nick_name: Mapped[str] = mapped_column(String(256), default="")
    mobile: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(256))
    state: Mapped[UserState] = mapped_column(State(UserState), default=UserState.NORMAL)
    # Comma-separated role names, in canonical order (see identity.roles).
    roles: Mapped[str] = mapped_column(String(128), default="USER")
    max_execute_count: Mapped[int | None] = mapped_column(BigInteger)
    max_result_count: Mapped[int | None] = mapped_column(BigInteger)
    notification_mode: Mapped[str | None] = mapped_column(String(16))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Bumped on every change that can alter what the user may do; lets each server process
    # cache the user's policies and still see a change on the very next request.
    auth_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AccessKey(Base):
    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.uid", ondelete="CASCADE"))
    # Fernet token under the master key; the clear secret is shown once, at creation.
    secret_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[KeyStatus] = mapped_column(State(KeyStatus), default=KeyStatus.ACTIVE)
    description: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class UserPolicy(Base):
    """A RAM-style policy document attached to one user (one tenant membership)."""

    __tablename__ = "user_policies"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_user_policies_user_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RequestNonce(Base):
    """Signature nonces seen inside the replay window; shared by every server process."""

    __tablename__ = "request_nonces"
    __table_args__ = (Index("ix_request_nonces_expires_at", "expires_at"),)

    access_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class ConsoleSession(Base):
    """A signed-in web console session of one user (one tenant membership). The cookie
    holds a random token; only its SHA-256 is kept, so a copy of the store opens no session."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user_id", "user_id"),)

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    # The synchronizer token every form and htmx request of this session carries.
    csrf_token: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(128), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_why: Mapped[str | None] = mapped_column(String(32))


class SignInAttempt(Base):
    """Every console sign-in attempt, kept: the audit trail, and what the rate limit counts."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_name_at", "user_name", "at"),
        Index("ix_sign_in_attempts_client_at", "client_host", "at"),
        Index("ix_sign_in_attempts_uid_at", "uid", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # What was typed (cut to 64 characters), and whom it named, when it named somebody.
    user_name: Mapped[str] = mapped_column(String(64))
    uid: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(BigId)
    client_host: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[SignInOutcome] = mapped_column(State(SignInOutcome))
