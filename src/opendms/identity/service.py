"""Tenants, users, access keys and attached policies: the rules, with no wire names or HTTP.

``actor`` is the caller on whose behalf a change is made; ``None`` means the local operator
(the CLI), who already holds the store's credentials and is trusted.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity import sessions
from opendms.identity.caller import Caller
from opendms.identity.policy import PolicyDocument, parse_policy
from opendms.identity.roles import PRIVILEGED_ROLES, Role, format_roles, parse_roles
from opendms.identity.secrets import SecretBox
from opendms.store.models import AccessKey, Account, Tenant, User, UserPolicy
from opendms.store.search import matches
from opendms.store.states import KeyStatus, UserState

_UID = re.compile(r"[0-9]{1,19}")
_ALNUM = string.ascii_letters + string.digits
KEY_DESCRIPTION_MAX = 256  # access_keys.description


def check_uid(uid: str) -> str:
    uid = uid.strip()
    if not _UID.fullmatch(uid) or int(uid) >= 2**63:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"Uid must be a number below 2^63, got {uid[:32]!r}."
        )
    return uid


def new_uid() -> str:
    """A fresh 16-digit account id, the shape of an Alibaba Cloud UID."""
    return str(secrets.randbelow(9 * 10**15) + 10**15)


# ---------------------------------------------------------------- tenants


def create_tenant(s: Session, name: str) -> Tenant:
    tenant = Tenant(name=name.strip() or "default")
    s.add(tenant)
    s.flush()
    return tenant


def get_tenant(s: Session, tid: int) -> Tenant:
    tenant = s.get(Tenant, tid)
    if tenant is None:
        raise DmsError(ErrorCode.TENANT_NOT_FOUND, f"Tenant {tid} does not exist.")
    return tenant


def list_tenants(s: Session) -> Sequence[Tenant]:
    return s.scalars(select(Tenant).order_by(Tenant.tid)).all()


@dataclass(frozen=True)
class Membership:
    tenant: Tenant
    active: bool


def tenants_of(s: Session, uid: str) -> list[Membership]:
    """The tenants where ``uid`` is a user (not deleted), the active one flagged."""
    account = s.get(Account, uid)
    rows = s.scalars(
        select(Tenant)
        .join(User, User.tid == Tenant.tid)
        .where(User.uid == uid, User.state != UserState.DELETE)
        .order_by(Tenant.tid)
    ).all()
    active = account.active_tid if account else None
    return [Membership(t, t.tid == active) for t in rows]


# ---------------------------------------------------------------- users


def _ensure_account(s: Session, uid: str, tid: int) -> Account:
    account = s.get(Account, uid)
    if account is None:
        account = Account(uid=uid, active_tid=tid)
        s.add(account)
    elif account.active_tid is None:
        account.active_tid = tid
    return account


def find_user(s: Session, tid: int, *, user_id: int | None = None, uid: str | None = None) -> User:
    query = select(User).where(User.tid == tid)
    if user_id is not None:
        query = query.where(User.user_id == user_id)
    if uid is not None:
        query = query.where(User.uid == uid)
    user = s.scalars(query).first()
    if user is None:
        who = f"UserId {user_id}" if user_id is not None else f"Uid {uid}"
        raise DmsError(ErrorCode.USER_NOT_FOUND, f"No user with {who} in tenant {tid}.")
    return user


def check_may_change(
    actor: Caller | None, user: User | None, *, granting: Sequence[Role] = ()
) -> None:
    """The one rule for managing people: only an ADMIN changes a user who holds ADMIN or
    SECURITY_ADMIN (roles, state, profile, access keys, policies), and only an ADMIN hands
    those roles out. Otherwise a SECURITY_ADMIN could demote, lock out or rewrite the
    administrators above them. ``user`` None: one being registered. Every path that changes
    a user calls this first; ``actor`` None is the local operator, who is trusted."""
    if actor is None or actor.is_admin:
        return
    if user is not None:
        held = sorted(r.value for r in set(parse_roles(user.roles)) & PRIVILEGED_ROLES)
        if held:
            raise DmsError(
                ErrorCode.PERMISSION_DENIED,
                f"User {user.user_id} holds {', '.join(held)}; only an ADMIN changes such a user.",
            )
    raised = sorted(r.value for r in set(granting) & PRIVILEGED_ROLES)
    if raised:
        raise DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"Only an ADMIN may assign the role(s) {', '.join(raised)}.",
        )


def _bump(user: User) -> None:
    user.auth_version = (user.auth_version or 0) + 1


def register_user(
    s: Session,
    actor: Caller | None,
    tid: int,
    uid: str,
    *,
    nick_name: str | None = None,
    mobile: str | None = None,
    roles: str | Sequence[str] = "USER",
) -> User:
    """Make account ``uid`` a user of tenant ``tid``; a deleted user is brought back."""
    get_tenant(s, tid)
    uid = check_uid(uid)
    wanted = parse_roles(roles)
    existing = s.scalars(select(User).where(User.tid == tid, User.uid == uid)).first()
    if existing is not None and existing.state != UserState.DELETE:
        raise DmsError(
            ErrorCode.USER_ALREADY_EXISTS, f"Uid {uid} is already user {existing.user_id}."
        )
    check_may_change(actor, existing, granting=wanted)  # bringing back a deleted ADMIN is ADMIN's
    _ensure_account(s, uid, tid)
    user = existing or User(tid=tid, uid=uid)
    user.nick_name = (nick_name or "").strip() or (user.nick_name or uid)
    user.mobile = mobile if mobile is not None else user.mobile
    user.roles = format_roles(wanted)
    user.state = UserState.NORMAL
    user.parent_uid = actor.uid if actor else user.parent_uid
    _bump(user)
    s.add(user)
    s.flush()
    return user


@dataclass(frozen=True)
class UserPage:
    total: int
    users: Sequence[User]


def list_users(
    s: Session,
    tid: int,
    *,
    role: Role | None = None,
    state: UserState | None = None,
    search: str | None = None,
    page: int = 1,
    size: int = 10,
) -> UserPage:
    cond = [User.tid == tid]
    if state:
        cond.append(User.state == state)
    if role is not None:
        # roles is a short comma list of known names; match one whole item
        cond.append(("," + User.roles + ",").contains(f",{role.value},"))
    if search:
        cond.append(matches(search, User.nick_name, User.uid, User.mobile))
    total = s.scalar(select(func.count()).select_from(User).where(*cond)) or 0
    users = s.scalars(
        select(User).where(*cond).order_by(User.user_id).offset((page - 1) * size).limit(size)
    ).all()
    return UserPage(total, users)


def _active_admins(s: Session, tid: int) -> int:
    return (
        s.scalar(
            select(func.count())
            .select_from(User)
            .where(
                User.tid == tid,
                User.state == UserState.NORMAL,
                ("," + User.roles + ",").contains(",ADMIN,"),
            )
        )
        or 0
    )


def _guard_last_admin(s: Session, user: User, *, keeps_admin: bool) -> None:
    is_admin = Role.ADMIN in parse_roles(user.roles) and user.state == UserState.NORMAL
    if is_admin and not keeps_admin and _active_admins(s, user.tid) <= 1:
        raise DmsError(
            ErrorCode.LAST_ADMINISTRATOR,
            f"User {user.user_id} is the last active ADMIN of tenant {user.tid}.",
        )


def update_user(
    s: Session,
    actor: Caller | None,
    tid: int,
    uid: str,
    *,
    nick_name: str | None = None,
    mobile: str | None = None,
    roles: str | None = None,
    max_execute_count: int | None = None,
    max_result_count: int | None = None,
) -> User:
    user = find_user(s, tid, uid=check_uid(uid))
    if user.state == UserState.DELETE:
        raise DmsError(ErrorCode.USER_NOT_FOUND, f"User with Uid {uid} was deleted.")
    wanted = parse_roles(roles) if roles is not None else ()
    check_may_change(actor, user, granting=wanted)
    if roles is not None:
        _guard_last_admin(s, user, keeps_admin=Role.ADMIN in wanted)
        user.roles = format_roles(wanted)
        _bump(user)
    if nick_name is not None:
        user.nick_name = nick_name.strip() or user.nick_name
    if mobile is not None:
        user.mobile = mobile
    if max_execute_count is not None:
        user.max_execute_count = max_execute_count
    if max_result_count is not None:
        user.max_result_count = max_result_count
    s.flush()
    return user


def set_user_state(
    s: Session, actor: Caller | None, tid: int, uid: str, state: UserState | str
) -> User:
    """Enable (``NORMAL``), disable (``DISABLE``) or delete (``DELETE``) a user.

    Takes effect on the user's very next request: the gateway reads the state every time,
    and a user who is disabled or deleted has their console sessions ended.
    """
    try:
        state = UserState(state)
    except ValueError:
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"Unknown user state {state!r}.") from None
    user = find_user(s, tid, uid=check_uid(uid))
    if actor is not None and actor.user_id == user.user_id and state != UserState.NORMAL:
        raise DmsError(ErrorCode.CANNOT_CHANGE_SELF, "You cannot disable or delete yourself.")
    check_may_change(actor, user)
    if state == user.state:
        return user
    if state != UserState.NORMAL:
        _guard_last_admin(s, user, keeps_admin=False)
    if user.state == UserState.DELETE and state == UserState.NORMAL:
        raise DmsError(
            ErrorCode.USER_NOT_FOUND, f"User with Uid {uid} was deleted; register it again."
        )
    user.state = state
    _bump(user)
    if state != UserState.NORMAL:
        sessions.end_all(s, user_id=user.user_id, why=f"user_{state.lower()}")
    s.flush()
    return user


def caller_for(s: Session, tid: int, uid: str | None = None) -> Caller:
    """Act as ``uid`` in tenant ``tid`` (the local operator's CLI): a Uid, or the nick name
    of one user of the tenant (``demo-dba``); default: its first ADMIN."""
    if uid is not None and not uid.isdigit():
        return caller_for(s, tid, _uid_of_nick(s, tid, uid))
    if uid is None:
        user = s.scalars(
            select(User)
            .where(
                User.tid == tid,
                User.state == UserState.NORMAL,
                ("," + User.roles + ",").contains(",ADMIN,"),
            )
            .order_by(User.user_id)
        ).first()
        if user is None:
            raise DmsError(ErrorCode.USER_NOT_FOUND, f"Tenant {tid} has no active ADMIN.")
    else:
        user = find_user(s, tid, uid=check_uid(uid))
        if user.state != UserState.NORMAL:
            raise DmsError(ErrorCode.USER_NOT_FOUND, f"User with Uid {uid} is {user.state}.")
    tenant = get_tenant(s, tid)
    return Caller(
        "cli", user.uid, user.user_id, tid, tenant.name, parse_roles(user.roles), user.nick_name
    )


def user_by_nick(s: Session, tid: int, nick: str) -> User | None:
    """The one user of tenant ``tid`` with that nick name (not deleted), if there is one;
    a DmsError when several share it."""
    found = s.scalars(
        select(User).where(User.tid == tid, User.nick_name == nick, User.state != UserState.DELETE)
    ).all()
    if len(found) > 1:
        raise DmsError(
            ErrorCode.USER_NOT_FOUND,
            f"{len(found)} users have the nick name {nick!r} in tenant {tid}: name a Uid.",
        )
    return found[0] if found else None


def _uid_of_nick(s: Session, tid: int, nick: str) -> str:
    user = user_by_nick(s, tid, nick)
    if user is None:
        raise DmsError(
            ErrorCode.USER_NOT_FOUND, f"No user with the nick name {nick!r} in tenant {tid}."
        )
    return user.uid


def member_named(s: Session, tid: int, name: str) -> User:
    """The user of tenant ``tid`` with that Uid, or else that nick name (``demo-dba``)."""
    if name.isascii() and name.isdigit():
        return find_user(s, tid, uid=name)
    user = user_by_nick(s, tid, name)
    if user is None:
        raise DmsError(
            ErrorCode.USER_NOT_FOUND, f"No user with the Uid or nick name {name!r} in tenant {tid}."
        )
    return user


def member(s: Session, tid: int, user_id: int) -> User:
    """User ``user_id`` if it belongs to tenant ``tid`` and is not deleted."""
    user = s.get(User, user_id)
    if user is None or user.tid != tid or user.state == UserState.DELETE:
        raise DmsError(ErrorCode.USER_NOT_FOUND, f"No user {user_id} in tenant {tid}.")
    return user


def users_by_id(s: Session, ids: Sequence[int]) -> dict[int, User]:
    """Users by id, for a page of rows that refer to them, in one query."""
    wanted = [i for i in dict.fromkeys(ids) if i]
    if not wanted:
        return {}
    return {u.user_id: u for u in s.scalars(select(User).where(User.user_id.in_(wanted)))}


# ---------------------------------------------------------------- access keys


# Who manages other people's credentials (keys, console passwords): those whose roles manage
# people. Checked here and not only by a RAM policy, because no action guards these acts:
# the console reaches them under the action that reads one's own user.
MANAGE_PEOPLE = frozenset({Role.ADMIN, Role.SECURITY_ADMIN})


def _check_may_manage_account(
    s: Session, actor: Caller | None, uid: str, what: str = "its keys"
) -> None:
    """An account's keys and console password open every tenant it is a user of. The account
    manages its own; anyone else but the operator needs a role that manages people, and then
    manages them only in the one tenant the account belongs to, under
    :func:`check_may_change`."""
    if actor is None or actor.uid == uid:
        return
    if not MANAGE_PEOPLE & set(actor.roles):
        raise DmsError(
            ErrorCode.PERMISSION_DENIED,
            "Only an ADMIN or a SECURITY_ADMIN manages another user's keys and password.",
        )
    users = s.scalars(select(User).where(User.uid == uid, User.state != UserState.DELETE)).all()
    here = [u for u in users if u.tid == actor.tid]
    if not here:
        raise DmsError(ErrorCode.USER_NOT_FOUND, f"No user with Uid {uid} in tenant {actor.tid}.")
    if len(here) < len(users):
        raise DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"Uid {uid} is also a user of other tenants, which {what} open too; only the "
            "operator manages them.",
        )
    check_may_change(actor, here[0])


def create_access_key(
    s: Session, box: SecretBox, uid: str, description: str = "", *, actor: Caller | None
) -> tuple[AccessKey, str]:
    """A new key for ``uid``; returns the row and the clear secret, which is not kept."""
    _check_may_manage_account(s, actor, uid)  # first: it tells nobody who exists elsewhere
    if s.get(Account, uid) is None:
        raise DmsError(ErrorCode.USER_NOT_FOUND, f"No account with Uid {uid}.")
    description = description.strip()
    if len(description) > KEY_DESCRIPTION_MAX or not description.isprintable():
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"A key's description is at most {KEY_DESCRIPTION_MAX} printable characters.",
        )
    key_id = "ODMS" + "".join(secrets.choice(_ALNUM) for _ in range(20))
    secret = "".join(secrets.choice(_ALNUM) for _ in range(30))
    key = AccessKey(
        access_key_id=key_id, uid=uid, secret_enc=box.encrypt(secret), description=description
    )
    s.add(key)
    s.flush()
    return key, secret


def list_access_keys(s: Session, uid: str | None = None) -> Sequence[AccessKey]:
    query = select(AccessKey).order_by(AccessKey.created_at, AccessKey.access_key_id)
    if uid is not None:
        query = query.where(AccessKey.uid == uid)
    return s.scalars(query).all()


def set_access_key_status(
    s: Session, access_key_id: str, active: bool, *, actor: Caller | None
) -> AccessKey:
    key = s.get(AccessKey, access_key_id)
    if key is None:
        raise DmsError(ErrorCode.ACCESS_KEY_NOT_FOUND, f"No access key {access_key_id}.")
    _check_may_manage_account(s, actor, key.uid)
    key.status = KeyStatus.ACTIVE if active else KeyStatus.INACTIVE
    s.flush()
    return key


# ---------------------------------------------------------------- console passwords


def set_console_password(
    s: Session, actor: Caller | None, tid: int, name: str, password: str
) -> User:
    """Set the password the user ``name`` (Uid or nick name) of tenant ``tid`` signs in to
    the web console with; the account's open sessions end. The password is the account's, so
    it opens every tenant the account is a user of, as its keys do.

    Whoever knows it acts as that user in the console, so only an ADMIN of the tenant sets it
    (a SECURITY_ADMIN does not: that would let them sign in as anyone they may not change
    otherwise), and only for an account that belongs to this tenant alone; ``actor`` None is
    the local operator (``opendms user password``), who is trusted."""
    if actor is not None and not actor.is_admin:
        raise DmsError(ErrorCode.PERMISSION_DENIED, "Only an ADMIN sets console passwords.")
    user = member_named(s, tid, name)
    _check_may_manage_account(s, actor, user.uid, what="its password")
    sessions.set_password(s, user.uid, password)
    return user


# ---------------------------------------------------------------- policies


def attach_policy(
    s: Session, tid: int, uid: str, name: str, document: str, *, actor: Caller | None
) -> UserPolicy:
    """Attach (or replace) the policy ``name`` on the user ``uid`` of tenant ``tid``."""
    parse_policy(document)
    name = name.strip()
    if not name or len(name) > 128:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A policy name is 1 to 128 characters.")
    user = find_user(s, tid, uid=check_uid(uid))
    check_may_change(actor, user)  # a Deny policy demotes as surely as a role change
    row = s.scalars(
        select(UserPolicy).where(UserPolicy.user_id == user.user_id, UserPolicy.name == name)
    ).first()
    if row is None:
        row = UserPolicy(user_id=user.user_id, name=name, document=document)
        s.add(row)
    row.document = document
    _bump(user)
    s.flush()
    return row


def detach_policy(s: Session, tid: int, uid: str, name: str, *, actor: Caller | None) -> None:
    user = find_user(s, tid, uid=check_uid(uid))
    check_may_change(actor, user)
    row = s.scalars(
        select(UserPolicy).where(UserPolicy.user_id == user.user_id, UserPolicy.name == name)
    ).first()
    if row is None:
        raise DmsError(ErrorCode.POLICY_NOT_FOUND, f"No policy {name!r} on Uid {uid}.")
    s.delete(row)
    _bump(user)
    s.flush()


def attached_policies(s: Session, user_id: int) -> list[tuple[str, PolicyDocument]]:
    rows = s.scalars(
        select(UserPolicy).where(UserPolicy.user_id == user_id).order_by(UserPolicy.name)
    ).all()
    return [(r.name, parse_policy(r.document)) for r in rows]


# ---------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Bootstrap:
    tenant: Tenant
    admin: User
    access_key_id: str
    access_key_secret: str


def bootstrap_admin(s: Session, box: SecretBox, *, tenant_name: str = "default") -> Bootstrap:
    """The first tenant and its administrator, created once; each call mints a fresh key."""
    admin = s.scalars(
        select(User)
        .where(("," + User.roles + ",").contains(",ADMIN,"), User.state == UserState.NORMAL)
        .order_by(User.tid, User.user_id)
    ).first()
    if admin is None:
        tenant = s.scalars(select(Tenant).order_by(Tenant.tid)).first() or create_tenant(
            s, tenant_name
        )
        admin = register_user(s, None, tenant.tid, new_uid(), nick_name="admin", roles="ADMIN")
    tenant = get_tenant(s, admin.tid)
    key, secret = create_access_key(s, box, admin.uid, description="opendms init", actor=None)
    return Bootstrap(tenant, admin, key.access_key_id, secret)
