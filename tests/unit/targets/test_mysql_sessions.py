"""Every MySQL/MariaDB session OpenDMS opens lexes SQL as its parser does
(``LEXING_MODES``, whose effect tests/integration/targets/test_servers.py shows on a real
server): the change and metadata sessions (PyMySQL) and the export's (asyncmy)."""

from __future__ import annotations

from typing import Any

import pytest

from opendms.targets import mysql, mysql_export
from opendms.targets.base import Endpoint, TargetError

ENDPOINT = Endpoint("mariadb", "127.0.0.1", 1, "root", "", connect_timeout=1)


class Refused(Exception):
    pass


def test_pymysql_sessions_run_the_lexing_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def connection(**settings: Any) -> None:
        seen.update(settings)
        raise Refused

    monkeypatch.setattr(mysql, "_Connection", connection)
    with pytest.raises(Refused):
        mysql.MysqlConnector(ENDPOINT).connect("db")
    assert seen["init_command"] == mysql.LEXING_MODES


def test_export_sessions_run_the_lexing_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def connect(**settings: Any) -> None:
        seen.update(settings)
        raise mysql_export.MySQLError("refused")

    monkeypatch.setattr(mysql_export.asyncmy, "connect", connect)
    with pytest.raises((TargetError, mysql_export.MySQLError)):
        mysql_export.MysqlSnapshot(ENDPOINT, "db", "SELECT 1", 5.0, None)
    assert seen["init_command"] == mysql_export.LEXING_MODES
