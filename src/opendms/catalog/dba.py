"""An instance's DBA: who may name one, and whom the naming gives rights.

The DBA of an instance sees every ticket that touches it, skips those tickets' permission
check, approves its DBA approval node and steers tickets for other approvers. Those rights
come only from someone else's word, so:

- only an ADMIN (or the local operator, ``actor`` None) names or changes an instance's DBA;
- a non-ADMIN registering an instance may name only themselves (the DMS API requires a DBA),
  and passing an instance's current DBA again on update changes nothing;
- a self-assignment (whoever made it) is recorded and shown as the instance's DbaId, but
  grants nothing until somebody else (an ADMIN, the operator) assigns that DBA;
- an assignment from before ``dba_assigned_by`` was recorded (migration 0012) grants nothing
  either: nobody knows who made it.

:func:`dba_of` is the rule; :func:`is_instance_dba` and :func:`is_dba_clause` (its SQL twin)
are how every ticket path asks it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.store.models import Instance

# dba_assigned_by of an assignment the local operator made (the CLI, `serve --demo`): no
# user has id 0.
OPERATOR = 0


def dba_of(inst: Instance) -> int | None:
    """The user holding DBA rights over ``inst``'s tickets, if anyone does."""
    dba, by = inst.dba_user_id, inst.dba_assigned_by
    if dba is None or by is None or by == dba:
        return None
    return dba


def is_instance_dba(inst: Instance, user_id: int) -> bool:
    return dba_of(inst) == user_id


def is_dba_clause(user_id: int) -> ColumnElement[bool]:
    """:func:`is_instance_dba` over ``instances`` rows, for queries: keep the two alike."""
    return and_(
        Instance.dba_user_id == user_id,
        Instance.dba_assigned_by.is_not(None),
        Instance.dba_assigned_by != user_id,
    )


def assign(
    s: Session, actor: Caller | None, inst: Instance, dba_user_id: int | None, *, new: bool
) -> None:
    """Make ``dba_user_id`` the DBA of ``inst`` (``new``: being registered) on ``actor``'s
    word, recording who said so; None leaves the DBA as it is."""
    if dba_user_id is None:
        return
    if actor is not None and not actor.is_admin:
        if new and dba_user_id != actor.user_id:
            raise DmsError(
                ErrorCode.PERMISSION_DENIED,
                "Only an ADMIN names another user an instance's DBA: register the instance "
                "naming yourself, and an ADMIN assigns its DBA.",
            )
        if not new:
            if dba_user_id != inst.dba_user_id:
                raise DmsError(
                    ErrorCode.PERMISSION_DENIED,
                    f"Only an ADMIN assigns or changes the DBA of instance {inst.instance_id}.",
                )
            return  # the DBA it has: nothing changes, nor who assigned it
    identity.member(s, inst.tid, dba_user_id)
    inst.dba_user_id = dba_user_id
    inst.dba_assigned_by = OPERATOR if actor is None else actor.user_id
