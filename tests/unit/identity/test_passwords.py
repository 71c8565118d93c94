"""``identity.passwords``: argon2id hashes on the account, the strength rule, and a verify that
costs the same whether or not the name matched anybody."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from opendms.errors import DmsError, ErrorCode
from opendms.identity import passwords, service
from opendms.store.db import Store
from opendms.store.models import Account

GOOD = "correct horse battery"


@pytest.fixture
def uid(store: Store, tid: int) -> str:
    with store.session() as s:
        return service.register_user(s, None, tid, "700", nick_name="pat").uid


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hash ``verify`` checks a password against, in order."""
    seen: list[str] = []
    real = passwords._verify

    def counting(hashed: str, password: str) -> bool:
        seen.append(hashed)
        return real(hashed, password)

    monkeypatch.setattr(passwords, "_verify", counting)
    return seen


def test_the_hash_is_argon2id_and_only_the_password_opens_it(store: Store, uid: str) -> None:
    with store.session() as s:
        account = passwords.set_password(s, uid, GOOD)
        assert account.password_changed_at is not None
    with store.session() as s:
        account = s.get(Account, uid)
        assert account is not None and account.password_hash is not None
        assert account.password_hash.startswith("$argon2id$")
        assert GOOD not in account.password_hash
        assert passwords.verify(account, GOOD)
        assert not passwords.verify(account, GOOD.upper())
        assert not passwords.verify(account, GOOD + " ")
        assert not passwords.verify(account, "")


def test_the_same_password_hashes_differently_each_time(store: Store, uid: str) -> None:
    with store.session() as s:
        first = passwords.set_password(s, uid, GOOD).password_hash
        second = passwords.set_password(s, uid, GOOD).password_hash
    assert first != second  # salted


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("x" * 11, "at least 12"),
        ("x" * 257, "at most 256"),
        (" leading space", "spaces"),
        ("trailing space ", "spaces"),
        ("tab\tinside here", "control"),
        ("new\nline inside", "control"),
        ("", "at least 12"),
    ],
)
def test_weak_or_odd_passwords_are_refused(store: Store, uid: str, password: str, why: str) -> None:
    with store.session() as s, pytest.raises(DmsError) as err:
        passwords.set_password(s, uid, password)
    assert err.value.code == ErrorCode.INVALID_PARAMETER
    assert why in err.value.message
    with store.session() as s:
        assert s.get(Account, uid).password_hash is None  # nothing was set


def test_the_bounds_themselves_are_allowed(store: Store, uid: str) -> None:
    with store.session() as s:
        for password in ("x" * 12, "y" * 256, "inner spaces are fine", "ünïcødé pässwörd"):
            account = passwords.set_password(s, uid, password)
            assert passwords.verify(account, password)


def test_no_such_account(store: Store) -> None:
    with store.session() as s, pytest.raises(DmsError) as err:
        passwords.set_password(s, "9999", GOOD)
    assert err.value.code == ErrorCode.USER_NOT_FOUND


def test_a_longer_password_than_any_allowed_never_matches(store: Store, uid: str) -> None:
    """A password is at most 256 characters: what is typed beyond that is not cut off and
    compared, it is simply not the password."""
    longest = "z" * passwords.MAX_LENGTH
    with store.session() as s:
        account = passwords.set_password(s, uid, longest)
        assert passwords.verify(account, longest)
        assert not passwords.verify(account, longest + "extra")


def test_nobody_and_no_password_cost_a_hash_too(store: Store, uid: str, hashed: list[str]) -> None:
    """A wrong name, or an account without a password, is checked against a hash all the
    same: the answer takes as long as a wrong password's."""
    with store.session() as s:
        assert not passwords.verify(None, GOOD)
        account = s.get(Account, uid)
        assert not passwords.verify(account, GOOD)  # no password set yet
        passwords.set_password(s, uid, GOOD)
        assert not passwords.verify(account, "a wrong password")
    assert len(hashed) == 3
    assert all(h.startswith("$argon2id$") for h in hashed)


def test_an_old_hash_is_renewed_when_it_verifies(store: Store, uid: str) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with store.session() as s:
        account = s.get(Account, uid)
        account.password_hash = weak.hash(GOOD)
    with store.session() as s:
        account = s.get(Account, uid)
        assert not passwords.verify(account, "not it at all")
        assert account.password_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # kept
        assert passwords.verify(account, GOOD)
    with store.session() as s:
        renewed = s.get(Account, uid).password_hash
        assert not renewed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert not passwords._hasher.check_needs_rehash(renewed)
        assert passwords.verify(s.get(Account, uid), GOOD)


def test_a_damaged_hash_opens_nothing(store: Store, uid: str) -> None:
    with store.session() as s:
        account = s.get(Account, uid)
        account.password_hash = "not an argon2 hash"
        assert not passwords.verify(account, GOOD)
