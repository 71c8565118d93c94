"""SimplyAddInstance against the real MariaDB and PostgreSQL: the engine found by connecting,
safe defaults, the catalog read, the address registered once; and each way it fails."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from opendms.identity import service
from tests.conftest import Api, mysql_database, pg_database
from tests.local_servers import garbage, raw

pytestmark = pytest.mark.integration


def simply_add(api: Api, **params: Any) -> dict[str, Any]:
    return api.call("SimplyAddInstance", **params).json()  # type: ignore[no-any-return]


def shown(api: Api, port: int) -> dict[str, Any]:
    body = api.call("GetInstance", Host="127.0.0.1", Port=port).json()
    assert body["Success"], body
    return body["Instance"]  # type: ignore[no-any-return]


def database_names(api: Api, instance_id: str) -> set[str]:
    body = api.call("ListDatabases", InstanceId=instance_id, PageSize=1000).json()
    return {d["SchemaName"] for d in body["DatabaseList"]["Database"]} | {
        d["CatalogName"] for d in body["DatabaseList"]["Database"]
    }


@pytest.mark.parametrize(
    ("database", "port", "login", "engine"),
    [
        (mysql_database, 3306, ("root", ""), "mariadb"),
        (pg_database, 5432, ("postgres", "any"), "postgresql"),
    ],
    ids=["mariadb", "postgresql"],
)
def test_a_server_is_added_once_with_safe_defaults_and_its_catalog(
    api: Api, database: Callable[[], Any], port: int, login: tuple[str, str], engine: str
) -> None:
    user, password = login
    with database() as (name, _conn):
        first = simply_add(
            api, Host="127.0.0.1", Port=port, DatabaseUser=user, DatabasePassword=password
        )
        assert first["Success"], first
        instance = first["Instance"]
        assert (instance["Host"], instance["Port"]) == ("127.0.0.1", str(port))
        got = shown(api, port)
        assert got["InstanceId"] == instance["InstanceId"]
        with api.store.session() as s:
            admin_id = service.find_user(s, api.tid, uid=api.admin_uid).user_id
        assert (got["InstanceType"], got["EnvType"], got["InstanceAlias"], got["DbaId"]) == (
            engine,
            "dev",
            f"127.0.0.1:{port}",
            str(admin_id),
        )
        assert name in database_names(api, instance["InstanceId"])  # the catalog was read
        # the same address again: the instance already there (the MCP tool says so)
        again = simply_add(
            api, Host="127.0.0.1", Port=port, DatabaseUser=user, DatabasePassword=password
        )
        assert again["Instance"] == instance
        listed = api.call("ListInstances", SearchKey=f"%:{port}").json()
        assert listed["TotalCount"] == 1


@pytest.mark.parametrize(
    ("database", "port", "user"),
    [(mysql_database, 3306, "root"), (pg_database, 5432, "no_such_role")],
    ids=["mariadb", "postgresql"],
)
def test_a_wrong_login_registers_nothing(
    api: Api, database: Callable[[], Any], port: int, user: str
) -> None:
    with database():
        body = simply_add(
            api, Host="127.0.0.1", Port=port, DatabaseUser=user, DatabasePassword="wrong-pw"
        )
    assert (body["Success"], body["ErrorCode"]) == (False, "TargetAuthFailed"), body
    assert "wrong-pw" not in body["ErrorMessage"]
    assert api.call("ListInstances").json()["TotalCount"] == 0


def test_a_port_that_speaks_another_protocol_is_refused(api: Api) -> None:
    with raw(garbage) as port:
        body = simply_add(api, Host="127.0.0.1", Port=port, DatabaseUser="u", DatabasePassword="p")
    assert (body["Success"], body["ErrorCode"]) == (False, "UnsupportedDbType"), body
    assert "neither as MySQL/MariaDB nor as PostgreSQL" in body["ErrorMessage"]
    assert api.call("ListInstances").json()["TotalCount"] == 0


def test_redis_is_refused(api: Api) -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis listens on 127.0.0.1:6379")
    body = simply_add(api, Host="127.0.0.1", Port=6379, DatabaseUser="u", DatabasePassword="p")
    assert (body["Success"], body["ErrorCode"]) == (False, "UnsupportedDbType"), body


def test_the_target_policy_is_asked_before_any_connection(make_api: Callable[..., Api]) -> None:
    api = make_api(target_hosts="10.0.0.0/8")
    accepted: list[socket.socket] = []
    mine = threading.Event()

    def counts(conn: socket.socket) -> None:
        accepted.append(conn)
        if conn.recv(16) == b"me":
            mine.set()

    with raw(counts) as port:
        body = simply_add(api, Host="127.0.0.1", Port=port, DatabaseUser="u", DatabasePassword="p")
        assert (body["Success"], body["ErrorCode"]) == (False, "TargetHostNotAllowed"), body
        # connections are accepted in turn: once ours is in, any earlier one would be too
        with socket.create_connection(("127.0.0.1", port)) as probe:
            probe.sendall(b"me")
            assert mine.wait(10)
    assert len(accepted) == 1  # only ours
