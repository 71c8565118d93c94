"""Console passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's second choice) on
the account, so one password opens every tenant the account is a user of, as its keys do."""

from __future__ import annotations

from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.store.models import Account

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; a bound keeps one request's hashing cheap

_hasher = PasswordHasher()
# Verified when the name matches nobody, so that a wrong name costs what a wrong password does.
_NOBODY = _hasher.hash("no account has this password")


def check_strength(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"A password has at least {MIN_LENGTH} characters.",
        )
    if len(password) > MAX_LENGTH:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"A password has at most {MAX_LENGTH} characters."
        )
    if password.strip() != password or not password.isprintable():
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            "A password may not start or end with spaces, nor hold control characters.",
        )
    return password


def set_password(s: Session, uid: str, password: str) -> Account:
    account = s.get(Account, uid)
    if account is None:
        raise DmsError(ErrorCode.USER_NOT_FOUND, f"No account with Uid {uid}.")
    account.password_hash = _hasher.hash(check_strength(password))
    account.password_changed_at = datetime.now(UTC).replace(tzinfo=None)
    s.flush()
    return account


def verify(account: Account | None, password: str) -> bool:
    """Whether ``password`` is the account's; the hash is renewed when argon2's parameters
    have moved on since it was made. A password longer than any that can be set is nobody's:
    it is not cut to size and compared (its first 256 characters would open the account)."""
    if account is None or account.password_hash is None or len(password) > MAX_LENGTH:
        _verify(_NOBODY, password[:MAX_LENGTH])  # costs what a wrong password does
        return False
    if not _verify(account.password_hash, password):
        return False
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    return True


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
