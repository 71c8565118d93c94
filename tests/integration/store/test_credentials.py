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


def test_a_batch_answers_each_request_as_if_alone(seeded) -> None:
    """Requests that arrive together are admitted in batches: each still hears about its own
    nonce, key and tenant, and a nonce sent twice in one batch is fresh only once."""
    store, box, ak, _secret, a, b = seeded
    sizes: list[int] = []

    async def scenario(creds: CredentialStore) -> None:
        admit_many = creds._admit_many

        async def counted(asks):
            sizes.append(len(asks))
            return await admit_many(asks)

        creds._admit_many = counted  # type: ignore[method-assign]
        asks = [
            *((ak, f"n{i}", None) for i in range(40)),
            (ak, "n7", None),  # the same nonce again, in the same batch
            ("missing", "m1", None),
            (ak, "in-b", b),
            (ak, "in-a", a),
        ]
        found = await asyncio.gather(*(creds.admit(k, n, LATER, tid) for k, n, tid in asks))
        assert [f is not None and f.fresh_nonce for f in found[:40]] == [True] * 40
        assert found[40] is not None and not found[40].fresh_nonce
        assert found[41] is None
        assert found[42] is not None and found[42].credential.user_id is None
        in_a = found[43]
        assert in_a is not None and in_a.fresh_nonce and in_a.credential.tid == a
        assert in_a.credential.user_id == found[0].credential.user_id  # active tenant: a

    run(store, box, scenario)
    assert sizes[0] == 1 and sum(sizes) == 43  # the first alone, the rest together (n7 once)
    assert max(sizes) > 1


def test_processes_sharing_a_store_admit_each_nonce_once(seeded) -> None:
    """Two credential stores on one database stand for two API processes: the same nonces
    asked of both at once, in opposite orders, are each admitted once. (Two PostgreSQL
    batches that inserted in the order asked would wait for each other's rows: a deadlock.)"""
    store, box, ak, *_ = seeded
    nonces = [f"shared-{i}" for i in range(500)]

    async def main() -> None:
        one, two = credential_store(store, box, 4), credential_store(store, box, 4)
        await one.open()
        await two.open()
        try:
            found = await asyncio.gather(
                *(one.admit(ak, n, LATER, None) for n in nonces),
                *(two.admit(ak, n, LATER, None) for n in reversed(nonces)),
            )
        finally:
            await one.close()
            await two.close()
        fresh = [f is not None and f.fresh_nonce for f in found]
        by_nonce = [fresh[i] + fresh[len(nonces) + len(nonces) - 1 - i] for i in range(len(nonces))]
        assert by_nonce == [1] * len(nonces)

    for round_ in range(3):  # fresh nonces each round: a deadlock would show in one of them
        nonces = [f"{n}-{round_}" for n in nonces]
        asyncio.run(main())
