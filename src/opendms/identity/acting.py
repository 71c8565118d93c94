"""Acting for another user of the tenant: DMS's ``RealLoginUserUid``.

A shared or service access key (a portal, a bot, an MCP server) calls for the person who
really works. The call then runs under that person's data rules (tickets they see,
permissions, roles), while the key still decides which actions may be called at all (RAM),
and the audit names both (``Caller.by_user_id``).
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.identity.roles import Role, parse_roles
from opendms.store.models import User
from opendms.store.states import UserState

# Who may act for others: an ADMIN already manages every user's roles and permissions, so
# acting as one of them gives nothing the role could not take anyway. A DBA or a
# SECURITY_ADMIN could reach tickets and grants they otherwise may not, so they may not.
MAY_ACT_FOR_OTHERS = Role.ADMIN


def act_for(s: Session, caller: Caller, uid: str) -> Caller:
    """The Caller for user ``uid`` of ``caller``'s tenant, calling through ``caller``'s
    access key; ``caller`` itself when ``uid`` is empty or its own Uid. Refused unless
    ``caller`` may act for others, then unless ``uid`` is an active user of the tenant (a
    user of another tenant is no user here). The order of the checks tells a caller who may
    not act for others nothing about who exists."""
    uid = uid.strip()
    if not uid or uid == caller.uid:
        return caller
    shown = uid[:64]
    if MAY_ACT_FOR_OTHERS not in caller.roles:
        raise DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"RealLoginUserUid {shown}: only an {MAY_ACT_FOR_OTHERS} of tenant {caller.tid} "
            f"may call for another user; the owner of this access key (Uid {caller.uid}) is not "
            "one. Leave RealLoginUserUid out, or set it to your own Uid.",
        )
    user = s.scalars(select(User).where(User.tid == caller.tid, User.uid == uid)).first()
    if user is None or user.state == UserState.DELETE:
        raise DmsError(
            ErrorCode.USER_NOT_FOUND,
            f"RealLoginUserUid {shown}: no user with that Uid in tenant {caller.tid}.",
        )
    if user.state != UserState.NORMAL:
        raise DmsError(
            ErrorCode.USER_NOT_FOUND,
            f"RealLoginUserUid {shown}: the user is {user.state} in tenant {caller.tid}; "
            "a call cannot act for them.",
        )
    return replace(
        caller,
        uid=user.uid,
        user_id=user.user_id,
        roles=parse_roles(user.roles),
        nick_name=user.nick_name,
        by_user_id=caller.user_id,
        by_uid=caller.uid,
    )
