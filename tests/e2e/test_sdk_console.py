"""The SQL console through the official SDKs against a real ``opendms serve``: ExecuteScript on
the demo SQLite database and on a MariaDB database registered through the API, the wire's
``Results[]``, a change refused on a product instance, no rows without the QUERY permission,
and the statements in ListSQLExecAuditLog."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import (
    Creds,
    Dms,
    Server,
    database_id,
    grant_correct,
    register_instance,
    target_database,
)
from tests.e2e.test_sdk_approvals import add_demo_instance

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@dataclass(frozen=True)
class People:
    server: Server
    admin: Creds
    dba: Creds
    alice: Creds  # QUERY and CORRECT on both demo databases
    carol: Creds  # no permission at all
    dev_db: int
    prod_db: int


@pytest.fixture(scope="module")
def people(server: Server) -> People:
    admin = server.admin
    dba, alice, carol = (
        server.create_user(roles, nick=nick)
        for roles, nick in (("DBA", "dba"), ("USER", "alice"), ("USER", "carol"))
    )
    dms = Dms(server, admin, "v3")
    _, dev_db = add_demo_instance(dms, server, "console-dev", env="dev", dba=dba)
    _, prod_db = add_demo_instance(dms, server, "console-prod", env="product", dba=dba)
    grant_correct(dms, alice.user_id, dev_db, prod_db, perms="QUERY,CORRECT")
    return People(server, admin, dba, alice, carol, dev_db, prod_db)


def script(dms: Dms, db_id: int, sql: str) -> list[Any]:
    resp = dms.call("ExecuteScript", db_id=db_id, logic=False, script=sql)
    assert resp.success is True, dms.last_raw
    return list(resp.results)


def audit(dms: Dms, **where: Any) -> list[Any]:
    now = time.time()
    resp = dms.call(
        "ListSQLExecAuditLog",
        start_time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 3600)),
        end_time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 3600)),
        page_size=100,
        **where,
    )
    assert resp.success is True, dms.last_raw
    return list(resp.sqlexec_audit_log_list.sqlexec_audit_log)


@pytest.mark.parametrize("flavor", ["v3", "v1"])
def test_a_read_on_the_demo_database_answers_rows_as_objects(people: People, flavor: Any) -> None:
    dms = Dms(people.server, people.alice, flavor)
    first, second = script(
        dms,
        people.dev_db,
        "SELECT id, name FROM customers WHERE id <= 2 ORDER BY id;\n"
        "SELECT count(*) AS n FROM orders",
    )
    assert first.column_names == ["id", "name"]
    assert first.rows == [{"id": 1, "name": "customer 1"}, {"id": 2, "name": "customer 2"}]
    assert (first.row_count, first.success, first.message) == (2, True, "")
    assert second.rows == [{"n": 5000}] and second.row_count == 1
    raw = dms.last_raw
    assert raw is not None and set(raw["Results"][0]) == {
        "ColumnNames",
        "Rows",
        "RowCount",
        "Success",
        "Message",
    }


def test_the_old_sdk_runs_a_script_too(people: People) -> None:
    (r,) = script(Dms(people.server, people.alice, "old"), people.dev_db, "SELECT 6 * 7 AS x")
    assert r.success is True and r.rows == [{"x": 42}] and r.column_names == ["x"]


def test_a_change_runs_on_dev_and_is_refused_on_product(people: People) -> None:
    dms = Dms(people.server, people.alice, "v3")
    (r,) = script(dms, people.dev_db, "UPDATE orders SET status = 'console' WHERE id <= 3")
    assert r.success is True and r.row_count == 3 and r.column_names == []
    read, change = script(
        dms, people.prod_db, "SELECT 1 AS one; UPDATE orders SET status = 'x' WHERE id = 1"
    )
    assert change.success is False and "DC_COMMON" in change.message
    assert "product" in change.message
    assert read.success is False and "ran no statement" in read.message and read.rows == []
    (r,) = script(dms, people.prod_db, "SELECT count(*) AS n FROM orders WHERE status = 'x'")
    assert r.rows == [{"n": 0}]


def test_without_the_query_permission_no_rows_come_back(people: People) -> None:
    dms = Dms(people.server, people.carol, "v3")
    (r,) = script(dms, people.dev_db, "SELECT id, email FROM customers")
    assert r.success is False and r.rows == [] and r.row_count == 0
    assert "QUERY permission on customers" in r.message


def test_a_script_that_cannot_be_read_is_an_error(people: People) -> None:
    dms = Dms(people.server, people.alice, "v3")
    for logic, sql in ((False, "SELECT 'open"), (True, "SELECT 1")):
        resp = dms.call("ExecuteScript", db_id=people.dev_db, logic=logic, script=sql)
        assert resp.success is False and resp.error_code == "InvalidParameter", dms.last_raw
        assert not resp.results


def test_every_statement_is_in_the_audit_log(people: People) -> None:
    dms = Dms(people.server, people.alice, "v3")
    marker = f"audit-{time.monotonic_ns()}"
    script(dms, people.dev_db, f"SELECT '{marker}' AS m")
    script(dms, people.prod_db, f"DELETE FROM orders WHERE status = '{marker}'")
    lines = [a for a in audit(Dms(people.server, people.admin, "v3")) if marker in a.sql]
    by_type = {a.sqltype: a for a in lines}
    assert set(by_type) == {"SELECT", "DELETE"}, [(a.sqltype, a.sql) for a in lines]
    assert by_type["SELECT"].exec_state == "SUCCESS" and by_type["SELECT"].affect_rows == 1
    assert by_type["DELETE"].exec_state == "FAIL"


@pytest.fixture(scope="module")
def mariadb(people: People) -> Iterator[tuple[int, Any]]:
    setup = (
        "CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(32) NOT NULL, price "
        "DECIMAL(8,2) NOT NULL)",
        "INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 12.00), (3, 'pad', 3.25)",
    )
    with target_database("mariadb", *setup) as (name, query, _where):
        admin = Dms(people.server, people.admin, "v3")
        register_instance(admin, people.dba, engine="mariadb", port=3306, user="root")
        yield database_id(admin, name, 3306), query


def test_a_script_on_a_mariadb_database_registered_through_the_api(
    people: People, mariadb: tuple[int, Any]
) -> None:
    db_id, query = mariadb
    dms = Dms(people.server, people.dba, "v3")  # the instance's DBA reads without a grant
    rows, explained, described = script(
        dms,
        db_id,
        "SELECT id, label, price FROM items ORDER BY id LIMIT 2;"
        "EXPLAIN SELECT * FROM items WHERE id = 2;"
        "DESCRIBE items",
    )
    assert rows.column_names == ["id", "label", "price"]
    assert rows.rows == [
        {"id": 1, "label": "pen", "price": "1.50"},
        {"id": 2, "label": "ink", "price": "12.00"},
    ]
    assert explained.success is True and explained.rows[0]["table"] == "items"
    assert [r["Field"] for r in described.rows] == ["id", "label", "price"]
    # registered in the dev environment: the DBA's change commits
    (r,) = script(dms, db_id, "UPDATE items SET label = 'quill' WHERE id = 1")
    assert r.success is True and r.row_count == 1
    assert query("SELECT label FROM items WHERE id = 1") == (("quill",),)
    (r,) = script(Dms(people.server, people.carol, "v3"), db_id, "SELECT label FROM items")
    assert r.success is False and "QUERY permission" in r.message
