"""DMS system roles (dms-api.md B.10) and their wire ids."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from opendms.errors import DmsError, ErrorCode


class Role(StrEnum):
    USER = "USER"
    DBA = "DBA"
    ADMIN = "ADMIN"
    SECURITY_ADMIN = "SECURITY_ADMIN"
    STRUCT_READ_ONLY = "STRUCT_READ_ONLY"


# RoleIdList on the wire carries numbers; these are ours, stable once published.
ROLE_IDS: dict[Role, int] = {
    Role.USER: 1,
    Role.DBA: 2,
    Role.ADMIN: 3,
    Role.SECURITY_ADMIN: 4,
    Role.STRUCT_READ_ONLY: 5,
}

# Roles only an ADMIN may hand out: whoever holds them can widen their own rights.
PRIVILEGED_ROLES = frozenset({Role.ADMIN, Role.SECURITY_ADMIN})


def parse_roles(text: str | Iterable[str]) -> tuple[Role, ...]:
    """``"DBA,USER"`` or an iterable of names -> canonical, de-duplicated role tuple."""
    names = text.split(",") if isinstance(text, str) else list(text)
    picked: set[Role] = set()
    for raw in names:
        name = raw.strip().upper()
        if not name:
            continue
        try:
            picked.add(Role(name))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise DmsError(
                ErrorCode.INVALID_PARAMETER, f"Unknown role {raw.strip()!r}; valid roles: {valid}."
            ) from None
    if not picked:
        picked.add(Role.USER)
    return tuple(r for r in Role if r in picked)


def format_roles(roles: Iterable[Role]) -> str:
    return ",".join(r.value for r in roles)
