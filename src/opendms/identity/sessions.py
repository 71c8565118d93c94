"""Web console sessions: signing in with a password, the session a cookie names, and ending
sessions. Sessions live in the store, so every API process sees a sign-out, and disabling
a user ends theirs at once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity import passwords
from opendms.identity.caller import Caller
from opendms.identity.roles import parse_roles
from opendms.store.models import (
    Account,
    ConsoleSession,
    RequestNonce,
    SignInAttempt,
    Tenant,
    User,
)
from opendms.store.models.base import utcnow
from opendms.store.paging import Page, paged
from opendms.store.states import SignInOutcome, UserState

LIFETIME = timedelta(hours=12)
IDLE = timedelta(hours=2)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at moves at most this often: reads stay reads
# Failed sign-ins counted over this window: per name typed, and per client address.
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_CLIENT = 30
CONSOLE_KEY = "console"  # Caller.access_key_id of a console session: no key signed the call


class SignInRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the cookie; the store keeps only its hash
    csrf_token: str
    user_id: int


@dataclass(frozen=True)
class Live:
    """A live session: who it acts as, its CSRF token, and the user's policy version."""

    caller: Caller
    csrf_token: str
    auth_version: int
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _failures(s: Session, where: ColumnElement[bool], since: datetime) -> int:
    return (
        s.scalar(
            select(func.count())
            .select_from(SignInAttempt)
            .where(where, SignInAttempt.at >= since, SignInAttempt.outcome == SignInOutcome.WRONG)
        )
        or 0
    )


def _account_named(s: Session, name: str) -> Account | None:
    """A Uid, or the nick name of exactly one account's users."""
    if name.isascii() and name.isdigit():
        return s.get(Account, name)
    uids = s.scalars(
        select(User.uid).where(User.nick_name == name, User.state != UserState.DELETE).distinct()
    ).all()
    return s.get(Account, uids[0]) if len(uids) == 1 else None


def _membership(s: Session, account: Account) -> User | None:
    """The user the session acts as: in the account's active tenant if it is a member there,
    else in its first tenant; a member who is disabled everywhere is returned disabled."""
    users = s.scalars(
        select(User)
        .where(User.uid == account.uid, User.state != UserState.DELETE)
        .order_by(User.tid)
    ).all()
    normal = [u for u in users if u.state == UserState.NORMAL]
    for user in normal:
        if user.tid == account.active_tid:
            return user
    first = normal or users
    return first[0] if first else None


def sign_in(
    s: Session, name: str, password: str, *, client_host: str, user_agent: str, now: datetime
) -> SignedIn:
    """Check a name and password, record the attempt, and open a session; SignInRefused
    says why not, in words that never tell a wrong name from a wrong password."""
    name = name.strip()[:64]
    client_host = client_host[:64]
    attempt = SignInAttempt(at=now, user_name=name, client_host=client_host)
    try:
        user = _check(s, name, password, client_host, now, attempt)
    finally:
        s.add(attempt)  # refused or not, the attempt is kept (the caller commits either way)
    user.last_login_at = now
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    s.add(
        ConsoleSession(
            token_sha256=_digest(token),
            user_id=user.user_id,
            csrf_token=csrf,
            client=client_host,
            user_agent=user_agent[:256],
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
        )
    )
    s.flush()
    return SignedIn(token, csrf, user.user_id)


def _check(
    s: Session, name: str, password: str, client_host: str, now: datetime, attempt: SignInAttempt
) -> User:
    since = now - WINDOW
    account = _account_named(s, name) if name else None
    # Failures count against the account whatever it was called (its Uid, each of its nick
    # names): naming it another way buys no more guesses. What was typed counts too, for
    # names that match nobody.
    named = SignInAttempt.user_name == name
    if account is not None:
        attempt.uid = account.uid
        named = or_(named, SignInAttempt.uid == account.uid)
    if (
        _failures(s, named, since) >= MAX_FAILURES_PER_NAME
        or _failures(s, SignInAttempt.client_host == client_host, since) >= MAX_FAILURES_PER_CLIENT
    ):
        attempt.outcome = SignInOutcome.THROTTLED
        raise SignInRefused(
            f"Too many failed sign-ins. Try again in {WINDOW.seconds // 60} minutes."
        )
    user = _membership(s, account) if account is not None else None
    # One hash is checked whatever the name matched (passwords.verify checks a stand-in for
    # nobody): a wrong name takes as long to refuse as a wrong password.
    right = passwords.verify(account if user is not None else None, password)
    if user is None or not right:
        attempt.outcome = SignInOutcome.WRONG
        raise SignInRefused("Wrong username or password.")
    attempt.user_id = user.user_id
    if user.state != UserState.NORMAL:
        attempt.outcome = SignInOutcome.DISABLED
        raise SignInRefused("This user is disabled; an administrator can enable it.")
    attempt.outcome = SignInOutcome.SIGNED_IN
    return user


def live(s: Session, token: str, now: datetime) -> Live | None:
    """The session a cookie's token names, if it is still open and its user may act."""
    if not token or len(token) > 128:
        return None
    row = s.execute(
        select(ConsoleSession, User, Tenant)
        .join(User, User.user_id == ConsoleSession.user_id)
        .join(Tenant, Tenant.tid == User.tid)
        .where(ConsoleSession.token_sha256 == _digest(token))
    ).first()
    if row is None:
        return None
    session, user, tenant = row
    if (
        session.ended_at is not None
        or session.expires_at <= now
        or session.last_seen_at <= now - IDLE
        or user.state != UserState.NORMAL
    ):
        return None
    if session.last_seen_at <= now - TOUCH_EVERY:
        session.last_seen_at = now
    caller = Caller(
        CONSOLE_KEY,
        user.uid,
        user.user_id,
        user.tid,
        tenant.name,
        parse_roles(user.roles),
        user.nick_name,
    )
    return Live(caller, session.csrf_token, user.auth_version, session.expires_at)


def end(s: Session, token: str, now: datetime, why: str = "signed_out") -> None:
    s.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_sha256 == _digest(token), ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, ended_why=why)
    )


def end_all(s: Session, *, why: str, user_id: int | None = None, uid: str | None = None) -> int:
    """End every open session of one user, or of every user of one account."""
    users = select(User.user_id).where(User.uid == uid) if uid is not None else None
    where = (
        ConsoleSession.user_id == user_id
        if user_id is not None
        else ConsoleSession.user_id.in_(users)  # type: ignore[arg-type]
    )
    result = s.execute(
        update(ConsoleSession)
        .where(where, ConsoleSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_why=why)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_password(s: Session, uid: str, password: str) -> Account:
    """A new password ends the account's open sessions: whoever knew the old one is out."""
    account = passwords.set_password(s, uid, password)
    end_all(s, uid=uid, why="password_changed")
    return account


def attempts(
    s: Session,
    caller: Caller,
    *,
    outcome: SignInOutcome | None = None,
    name: str | None = None,
    page: int = 1,
    size: int = 20,
) -> Page:
    """Console sign-in attempts that named a user of the caller's tenant, newest first: for
    the tenant's ADMINs, who see where each came from. An attempt names a user by the Uid or
    nick name typed (a wrong password records no user, and is what an administrator most
    wants to see), or by the account it signed in. Attempts at names nobody in the tenant has
    are not the tenant's business: they may be aimed at another tenant's people."""
    if not caller.is_admin:
        raise DmsError(
            ErrorCode.PERMISSION_DENIED, "Only an ADMIN sees the tenant's console sign-ins."
        )
    uids = select(User.uid).where(User.tid == caller.tid)
    nicks = select(User.nick_name).where(User.tid == caller.tid, User.nick_name != "")
    query = select(SignInAttempt).where(
        or_(
            SignInAttempt.uid.in_(uids),
            SignInAttempt.user_name.in_(uids),
            SignInAttempt.user_name.in_(nicks),
        )
    )
    if outcome is not None:
        query = query.where(SignInAttempt.outcome == outcome)
    if name:
        query = query.where(SignInAttempt.user_name == name.strip()[:64])
    return paged(s, query.order_by(SignInAttempt.at.desc(), SignInAttempt.id.desc()), page, size)


def claim_once(s: Session, user_id: int, once: str, now: datetime) -> bool:
    """Whether this is the first use of a form's one-time token: a double click, a resent
    form or a reload after a POST finds it used, and the act it carries runs once."""
    if not once or len(once) > 128:
        return False
    try:
        with s.begin_nested():
            s.add(
                RequestNonce(
                    access_key_id=f"{CONSOLE_KEY}:{user_id}", nonce=once, expires_at=now + LIFETIME
                )
            )
    except IntegrityError:
        return False
    return True
