"""The per-request identity statements on both metadata stores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest

from opendms.identity import service
from opendms.identity.credentials import CredentialStore, credential_store, purge_nonces
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store

pytestmark = pytest.mark.integration
LATER = datetime(2099, 1, 1)


@pytest.fixture
def seeded(any_store_url: str, box: SecretBox):
    store = Store(any_store_url)
    store.migrate()
    with store.session() as s:
        a = service.create_tenant(s, "a").tid
        b = service.create_tenant(s, "b").tid
        user = service.register_user(s, None, a, "11", roles="DBA")
        key, secret = service.create_access_key(s, box, user.uid, actor=None)
    yield store, box, key.access_key_id, secret, a, b
    store.dispose()


def run(
    store: Store, box: SecretBox, scenario: Callable[[CredentialStore], Awaitable[None]]
) -> None:
    async def main() -> None:
        creds = credential_store(store, box, pool_size=2)
        await creds.open()
        try:
            await scenario(creds)
        finally:
            await creds.close()

    asyncio.run(main())


def test_secret_lookup_and_cache(seeded) -> None:
    store, box, ak, secret, *_ = seeded

    async def scenario(creds: CredentialStore) -> None:
        assert await creds.secret(ak) == secret
        assert await creds.secret("nope") is None
        assert await creds.secret(ak) == secret

    run(store, box, scenario)


def test_nonce_is_accepted_once(seeded) -> None:
    store, box, ak, _secret, a, _b = seeded

    async def scenario(creds: CredentialStore) -> None:
        first = await creds.admit(ak, "n1", LATER, None)
        assert first is not None and first.fresh_nonce
        again = await creds.admit(ak, "n1", LATER, None)
        assert again is not None and not again.fresh_nonce
        other = await creds.admit(ak, "n2", LATER, a)
        assert other is not None and other.fresh_nonce
        cred = other.credential
        assert (cred.tid, cred.user_state, [r.value for r in cred.roles]) == (a, "NORMAL", ["DBA"])

    run(store, box, scenario)


def test_concurrent_replays_admit_exactly_one(seeded) -> None:
    store, box, ak, *_ = seeded

    async def scenario(creds: CredentialStore) -> None:
        results = await asyncio.gather(*(creds.admit(ak, "race", LATER, None) for _ in range(8)))
        assert sum(1 for r in results if r is not None and r.fresh_nonce) == 1

    run(store, box, scenario)


def test_membership_follows_the_requested_tenant(seeded) -> None:
    store, box, ak, _secret, _a, b = seeded

    async def scenario(creds: CredentialStore) -> None:
        in_b = await creds.admit(ak, "n3", LATER, b)
        assert in_b is not None and in_b.credential.user_id is None
        assert await creds.admit("missing", "n4", LATER, None) is None

    run(store, box, scenario)


def test_state_changes_are_seen_on_the_next_admission(seeded) -> None:
    store, box, ak, _secret, a, _b = seeded
    with store.session() as s:
        service.set_user_state(s, None, a, "11", "DISABLE")
        service.set_access_key_status(s, ak, active=False, actor=None)

    async def scenario(creds: CredentialStore) -> None:
        adm = await creds.admit(ak, "n5", LATER, None)
        assert adm is not None
        assert adm.credential.user_state == "DISABLE"
        assert not adm.credential.key_active

    run(store, box, scenario)


def test_purge_removes_only_expired_nonces(seeded) -> None:
    store, box, ak, *_ = seeded
    now = datetime(2030, 1, 1)

    async def remember(creds: CredentialStore) -> None:
        await creds.admit(ak, "old", now - timedelta(seconds=1), None)
        await creds.admit(ak, "new", now + timedelta(hours=1), None)

    run(store, box, remember)
    with store.engine.begin() as conn:
        assert purge_nonces(conn, now) == 1

    async def check(creds: CredentialStore) -> None:
        old = await creds.admit(ak, "old", now, None)
        new = await creds.admit(ak, "new", now, None)
        assert old is not None and old.fresh_nonce
        assert new is not None and not new.fresh_nonce

    run(store, box, check)
