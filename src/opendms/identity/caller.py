"""Who is calling: resolved by the gateway from a signed request, passed to every service."""

from __future__ import annotations

from dataclasses import dataclass

from opendms.identity.roles import Role


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    uid: str
    user_id: int
    tid: int
    tenant_name: str
    roles: tuple[Role, ...]
    nick_name: str = ""

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles
