"""The engine probe (targets.detect) against the real local servers, and a real server of
another protocol (Redis, when one listens)."""

from __future__ import annotations

import socket

import pytest

from opendms.targets.detect import UnknownProtocol, detect
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration


def probe(port: int) -> str:
    return detect("127.0.0.1", port, connect_seconds=3, read_seconds=5)


def test_mariadb_is_told_apart_from_mysql() -> None:
    with mysql_database():  # skips (or fails in CI) when MariaDB is not there
        assert probe(3306) == "mariadb"


def test_postgresql_answers_the_ssl_request() -> None:
    with pg_database():
        assert probe(5432) == "postgresql"


def test_redis_is_neither() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis listens on 127.0.0.1:6379")
    with pytest.raises(UnknownProtocol):
        probe(6379)
