"""The per-request identity statements on both metadata stores."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from opendms.identity import service
from opendms.identity.credentials import CredentialStore, purge_nonces
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(any_store_url: str, box: SecretBox):
    store = Store(any_store_url)
    store.migrate()
    with store.session() as s:
        a = service.create_tenant(s, "a").tid
        b = service.create_tenant(s, "b").tid
        user = service.register_user(s, None, a, "11", roles="DBA")
        key, secret = service.create_access_key(s, box, user.uid)
    yield store, CredentialStore(store.engine, box), key.access_key_id, secret, a, b
    store.dispose()


def test_secret_lookup_and_cache(seeded) -> None:
    _store, creds, ak, secret, *_ = seeded
    assert creds.secret(ak) == secret
    assert creds.secret("nope") is None
    assert creds.secret(ak) == secret


def test_nonce_is_accepted_once(seeded) -> None:
    _store, creds, ak, _secret, a, _b = seeded
    later = datetime(2099, 1, 1)
    first = creds.admit(ak, "n1", later, None)
    assert first is not None and first.fresh_nonce
    again = creds.admit(ak, "n1", later, None)
    assert again is not None and not again.fresh_nonce
    other = creds.admit(ak, "n2", later, a)
    assert other is not None and other.fresh_nonce
    cred = other.credential
    assert (cred.tid, cred.user_state, [r.value for r in cred.roles]) == (a, "NORMAL", ["DBA"])


def test_membership_follows_the_requested_tenant(seeded) -> None:
    _store, creds, ak, _secret, _a, b = seeded
    later = datetime(2099, 1, 1)
    in_b = creds.admit(ak, "n3", later, b)
    assert in_b is not None and in_b.credential.user_id is None
    assert creds.admit("missing", "n4", later, None) is None


def test_state_changes_are_seen_on_the_next_admission(seeded) -> None:
    store, creds, ak, _secret, a, _b = seeded
    with store.session() as s:
        service.set_user_state(s, None, a, "11", "DISABLE")
        service.set_access_key_status(s, ak, active=False)
    adm = creds.admit(ak, "n5", datetime(2099, 1, 1), None)
    assert adm is not None
    assert adm.credential.user_state == "DISABLE"
    assert not adm.credential.key_active


def test_purge_removes_only_expired_nonces(seeded) -> None:
    store, creds, ak, *_ = seeded
    now = datetime(2030, 1, 1)
    creds.admit(ak, "old", now - timedelta(seconds=1), None)
    creds.admit(ak, "new", now + timedelta(hours=1), None)
    with store.engine.begin() as conn:
        assert purge_nonces(conn, now) == 1
    assert creds.admit(ak, "old", now, None).fresh_nonce
    assert not creds.admit(ak, "new", now, None).fresh_nonce
