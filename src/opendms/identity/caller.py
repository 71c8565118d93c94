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
    # When the call acts for this user through RealLoginUserUid: the user whose access key
    # signed it (audit rows record both); None when the key's owner acts for themself.
    by_user_id: int | None = None
    by_uid: str = ""

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles
