"""Who owns an instance, a database or a table (approval nodes of kind OWNER ask them)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from opendms.catalog.queries import get_database, get_instance, get_table
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.store.models import Owner, User

OWNER_TYPES = ("INSTANCE", "DATABASE", "TABLE")


def set_owners(
    s: Session, tid: int, owner_type: str, resource_id: int, user_ids: Sequence[int]
) -> None:
    """Replace the owners of one instance, database or table."""
    if owner_type not in OWNER_TYPES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"OwnerType {owner_type!r} is not one of {', '.join(OWNER_TYPES)}.",
        )
    if owner_type == "INSTANCE":
        get_instance(s, tid, resource_id)
    elif owner_type == "DATABASE":
        get_database(s, tid, resource_id)
    else:
        get_table(s, tid, resource_id)
    for uid in user_ids:
        identity.member(s, tid, uid)
    s.execute(
        delete(Owner).where(Owner.resource_type == owner_type, Owner.resource_id == resource_id)
    )
    s.add_all(
        Owner(tid=tid, resource_type=owner_type, resource_id=resource_id, user_id=uid)
        for uid in dict.fromkeys(user_ids)
    )
    s.flush()


def no_logical_resources(kind: str) -> None:
    raise DmsError(
        ErrorCode.INVALID_PARAMETER, f"{kind}: logical databases and tables are not supported."
    )


def owners_of(s: Session, owner_type: str, resource_ids: Sequence[int]) -> dict[int, list[User]]:
    """Owners per resource id, for a page of resources in one query."""
    out: dict[int, list[User]] = {rid: [] for rid in resource_ids}
    if not resource_ids:
        return out
    rows = s.execute(
        select(Owner.resource_id, User)
        .join(User, User.user_id == Owner.user_id)
        .where(Owner.resource_type == owner_type, Owner.resource_id.in_(resource_ids))
        .order_by(User.user_id)
    ).all()
    for rid, user in rows:
        out[rid].append(user)
    return out
