"""The gateway fuzz properties of ``tests/unit/gateway/test_fuzz.py``, on PostgreSQL: those
whose values reach the store. Unsigned garbage stops at the signature check, whose one store
read (the AccessKeyId) is covered here by the NUL test; SQLite runs the raw properties."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.signer import Signer
from tests.unit.gateway.test_fuzz import (  # collected again here, against PostgreSQL
    STORE_NASTY,
    check_http,
    seeded_api,
    test_every_nasty_value_in_every_field,
    test_get_user_by_user_id_beyond_int64_is_refused,
    test_signed_calls_never_fail_the_server,
    tracebacks,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_every_nasty_value_in_every_field",
    "test_get_user_by_user_id_beyond_int64_is_refused",
    "test_signed_calls_never_fail_the_server",
    "tracebacks",
]


@pytest.fixture
def nasty() -> list[str]:
    """SQLite met every value already; PostgreSQL gets those its types judge differently."""
    return STORE_NASTY


@pytest.fixture
def fuzz_api(make_api: Any, pg_store_url: str) -> Api:
    return seeded_api(make_api, pg_store_url)


def test_nul_characters_are_refused_on_postgresql(make_api: Any, pg_store_url: str) -> None:
    """PostgreSQL refuses NUL in text; the gateway must refuse it first, everywhere: unsigned
    (the AccessKeyId lookup) and signed (the nonce, UserNick, SearchKey)."""
    api = make_api(database_url=pg_store_url, rate_limit=1e9)
    cases: list[tuple[str, Any]] = [
        ("AccessKeyId", api.send(Signer("ODMS\x00", "x").v1("GetUser"))),  # as %00
        ("SignatureNonce", api.send(api.admin.v1("GetUser", nonce="n\x00"))),
        ("UserNick", api.call("RegisterUser", Uid="1000000000000009", UserNick="a\x00b")),
        ("SearchKey", api.call("ListUsers", SearchKey="a\x00")),
    ]
    failures = [name for name, resp in cases if resp.status_code >= 500]
    assert not failures, f"HTTP 500 for a NUL in {failures}"


def test_nickname_up_to_the_wire_limit_fits_on_postgresql(make_api: Any, pg_store_url: str) -> None:
    """Whatever the wire model admits fits its column (PostgreSQL enforces VARCHAR lengths)."""
    api = make_api(database_url=pg_store_url, rate_limit=1e9)
    resp = api.call("RegisterUser", Uid="1000000000000009", UserNick="x" * 200)
    check_http(resp, "UserNick of 200 characters", "RegisterUser")
    resp = api.call("UpdateUser", UidString=api.admin_uid, UserNick="é" * 129)
    check_http(resp, "UserNick of 129 characters", "UpdateUser")
