"""The gateway's per-process memory of RAM decisions (``pipeline.PolicyCache``): it must
never answer from before a change to the user's policies or roles."""

from __future__ import annotations

import asyncio

from opendms.gateway.pipeline import PolicyCache
from opendms.identity import service
from opendms.identity.roles import Role
from opendms.store.db import Store
from opendms.store.models import User

DENY_USERS = '{"Version":"1","Statement":[{"Effect":"Deny","Action":["dms:RegisterUser"]}]}'


def _version(store: Store, user_id: int) -> int:
    with store.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user.auth_version


def test_a_decision_follows_the_users_policies_and_roles(store: Store) -> None:
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        user = service.register_user(s, None, tid, "11", roles="ADMIN")
        user_id, uid = user.user_id, user.uid
    cache = PolicyCache(store)

    def allows(version: int, roles: tuple[Role, ...], action: str = "dms:RegisterUser") -> bool:
        return asyncio.run(cache.allows(user_id, version, roles, action))

    before = _version(store, user_id)
    assert allows(before, (Role.ADMIN,))
    assert allows(before, (Role.ADMIN,))  # remembered
    assert not allows(before, (Role.USER,))  # another set of roles is another question

    with store.session() as s:
        service.attach_policy(s, tid, uid, "no-users", DENY_USERS, actor=None)
    after = _version(store, user_id)
    assert after != before
    assert not allows(after, (Role.ADMIN,))  # the request reads the new version: a new answer
    assert allows(after, (Role.ADMIN,), "dms:ListInstances")
