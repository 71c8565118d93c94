"""Schema-change review on real MariaDB and PostgreSQL databases: the catalog's table
definitions, read back from a synced database, drive the rules; and what an ERROR rule says
the server refuses, the server does refuse, while the corrected statement passes review and
runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opendms.catalog.shapes import CatalogShapes
from opendms.identity.secrets import SecretBox
from opendms.schema.model import Table
from opendms.sql import column_types
from opendms.sql.review import Finding, review
from opendms.store.db import Store
from opendms.store.models import Database, Instance
from tests.approval_world import World
from tests.integration.server_db import ServerDb

pytestmark = pytest.mark.integration

DDL = ("CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT")
ORDERS = {
    "mariadb": [
        "CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY COMMENT 'id', "
        "code VARCHAR(60) NOT NULL COMMENT 'code', amount DECIMAL(10,2) NOT NULL DEFAULT 0 "
        "COMMENT 'amount', note TEXT COMMENT 'note', status INT COMMENT 'status', "
        "UNIQUE KEY uk_code (code)) DEFAULT CHARSET=utf8mb4 COMMENT='orders'",
        "INSERT INTO orders (code, amount, status) VALUES ('a', 1, NULL), ('b', 2, 3)",
    ],
    "postgresql": [
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "code varchar(60) NOT NULL, amount numeric(10,2) NOT NULL DEFAULT 0, note text, "
        "status integer)",
        "CREATE UNIQUE INDEX uk_code ON orders (code)",
        "COMMENT ON TABLE orders IS 'orders'",
        "COMMENT ON COLUMN orders.code IS 'code'",
        "INSERT INTO orders (code, amount, status) VALUES ('a', 1, NULL), ('b', 2, 3)",
    ],
}


@pytest.fixture(params=["mariadb", "postgresql"])
def server(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[ServerDb]:
    engine = request.param

    def prepare(conn: Any) -> None:
        with conn.cursor() as cur:
            for statement in ORDERS[engine]:
                cur.execute(statement)

    with World.on_server(engine, store, box, tmp_path, prepare) as (world, name, conn):
        yield ServerDb(engine, name, conn, world, box)


def _definition(server: ServerDb, name: str) -> Table | None:
    w = server.world
    with w.store.session() as s:
        return CatalogShapes(s, [s.get_one(Database, w.db_id)]).definition(name)


def _review(server: ServerDb, sql: str) -> list[Finding]:
    w = server.world
    with w.store.session() as s:
        engine = s.get_one(Instance, w.instance_id).instance_type
        shapes = CatalogShapes(s, [s.get_one(Database, w.db_id)])
        return review(sql, engine, DDL, catalog=shapes)


def test_the_catalog_reads_back_a_definition_the_rules_can_use(server: ServerDb) -> None:
    orders = _definition(server, "orders")
    assert orders is not None and _definition(server, "ghost") is None
    assert [c.name for c in orders.columns] == ["id", "code", "amount", "note", "status"]
    assert orders.primary_key == ("id",)
    assert [(i.name, i.columns, i.unique) for i in orders.indexes] == [("uk_code", ("code",), True)]
    code = orders.column("code")
    assert code is not None and code.type == "varchar(60)" and not code.nullable
    assert code.comment == "code" and orders.comment == "orders"
    id_ = orders.column("id")
    assert id_ is not None and id_.auto_increment
    amount = orders.column("amount")
    assert amount is not None and amount.default is not None and amount.default.startswith("0")
    # every type the catalog reports reads as a type in the instance's dialect
    engine = "postgresql" if server.engine == "postgresql" else "mariadb"
    assert all(column_types.datatype(c.type, engine) is not None for c in orders.columns)
    if server.engine == "mariadb":
        assert (orders.engine, orders.charset) == ("innodb", "utf8mb4")


def _codes(found: list[Finding]) -> set[str]:
    return {f.code for f in found}


def test_rules_judge_changes_against_the_live_definition(server: ServerDb) -> None:
    if server.engine == "mariadb":
        # 60 utf8mb4 characters are 240 bytes, 64 are 256: the length prefix grows
        assert "TYPE_CHANGE_REWRITES" in _codes(
            _review(server, "ALTER TABLE orders MODIFY code VARCHAR(64) NOT NULL COMMENT 'code'")
        )
        assert "TYPE_CHANGE_REWRITES" not in _codes(
            _review(server, "ALTER TABLE orders MODIFY code VARCHAR(63) NOT NULL COMMENT 'code'")
        )
        assert "MODIFY_DROPS_ATTRIBUTES" in _codes(
            _review(server, "ALTER TABLE orders MODIFY code VARCHAR(60)")
        )
        assert "NOT_NULL_IMPLICIT_DEFAULT" in _codes(
            _review(server, "ALTER TABLE orders ADD COLUMN flag INT NOT NULL COMMENT 'f'")
        )
    else:
        # the catalog says character varying(60): widening it is no rewrite
        assert "TYPE_CHANGE_REWRITES" not in _codes(
            _review(server, "ALTER TABLE orders ALTER COLUMN code TYPE varchar(100)")
        )
        assert "TYPE_CHANGE_REWRITES" in _codes(
            _review(server, "ALTER TABLE orders ALTER COLUMN status TYPE bigint")
        )
    assert "DUPLICATE_INDEX" in _codes(_review(server, "CREATE INDEX idx_code ON orders (code)"))
    assert "REDUNDANT_INDEX" not in _codes(
        _review(server, "CREATE INDEX idx_code_status ON orders (code, status)")
    )
    found = _review(
        server,
        "CREATE TABLE items (id bigint PRIMARY KEY, order_id bigint);"
        "ALTER TABLE items ADD COLUMN qty int;"
        "CREATE INDEX idx_order ON items (order_id, qty)",
    )
    assert not {"TABLE_NOT_FOUND", "COLUMN_NOT_FOUND"} & _codes(found), found


# (engine, statement the server refuses, the rule that says so, the statement corrected).
# Each refused statement changes nothing on the server, so the corrected one runs after it.
REFUSED = [
    (
        "mariadb",
        "CREATE TABLE n1 (id INT PRIMARY KEY, a VARCHAR(10000), b VARCHAR(10000)) "
        "DEFAULT CHARSET=utf8mb4",
        "ROW_TOO_WIDE",
        "CREATE TABLE n1 (id INT PRIMARY KEY, a TEXT, b TEXT) DEFAULT CHARSET=utf8mb4",
    ),
    (
        "mariadb",
        "CREATE TABLE n1 (id INT PRIMARY KEY, a VARCHAR(500), b VARCHAR(500), "
        "KEY idx_a_b (a, b)) DEFAULT CHARSET=utf8mb4",
        "INDEX_KEY_TOO_LONG",
        "CREATE TABLE n1 (id INT PRIMARY KEY, a VARCHAR(500), b VARCHAR(500), "
        "KEY idx_a_b (a(300), b(300))) DEFAULT CHARSET=utf8mb4",
    ),
    (
        "mariadb",
        "ALTER TABLE orders ADD COLUMN c INT DEFAULT 'abc' COMMENT 'c'",
        "DEFAULT_TYPE_MISMATCH",
        "ALTER TABLE orders ADD COLUMN c INT DEFAULT '5' COMMENT 'c'",
    ),
    (
        "mariadb",
        "ALTER TABLE orders ADD COLUMN c INT NOT NULL DEFAULT NULL COMMENT 'c'",
        "DEFAULT_TYPE_MISMATCH",
        "ALTER TABLE orders ADD COLUMN c INT NULL DEFAULT NULL COMMENT 'c'",
    ),
    (
        "mariadb",
        "CREATE TABLE a_table_name_that_goes_on_and_on_well_past_what_mysql_allows_xyzw "
        "(id INT PRIMARY KEY)",
        "NAME_TOO_LONG",
        "CREATE TABLE a_table_name_that_goes_on_and_on_well_past_what_mysql_allows_xyz "
        "(id INT PRIMARY KEY)",
    ),
    (
        "mariadb",
        "ALTER TABLE orders DROP INDEX idx_ghost",
        "INDEX_NOT_FOUND",
        "ALTER TABLE orders DROP INDEX uk_code",
    ),
    (
        "postgresql",
        "ALTER TABLE orders ADD COLUMN flag int NOT NULL",
        "NOT_NULL_WITHOUT_DEFAULT",
        "ALTER TABLE orders ADD COLUMN flag int NOT NULL DEFAULT 0",
    ),
    (
        "postgresql",
        "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'x'",
        "DEFAULT_TYPE_MISMATCH",
        "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 0",
    ),
    (
        "postgresql",
        "CREATE TABLE orders (id int PRIMARY KEY)",
        "ALREADY_EXISTS",
        "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)",
    ),
    *[
        (engine, bad, code, good)
        for engine in ("mariadb", "postgresql")
        for bad, code, good in (
            (
                "ALTER TABLE orders DROP COLUMN ghost",
                "COLUMN_NOT_FOUND",
                "ALTER TABLE orders DROP COLUMN note",
            ),
            ("ALTER TABLE ghost ADD COLUMN c INT", "TABLE_NOT_FOUND", "DROP TABLE IF EXISTS ghost"),
            (
                "ALTER TABLE orders ADD COLUMN code INT",
                "ALREADY_EXISTS",
                "ALTER TABLE orders ADD COLUMN code2 INT",
            ),
        )
    ],
]


def _run(server: ServerDb, sql: str) -> None:
    with server.conn.cursor() as cur:
        cur.execute(sql)


@pytest.mark.parametrize(
    ("engine", "bad", "code", "good"),
    REFUSED,
    ids=[f"{engine}-{code}-{i}" for i, (engine, _, code, _) in enumerate(REFUSED)],
)
def test_what_an_error_rule_refuses_the_server_refuses(
    engine: str, bad: str, code: str, good: str, store: Store, box: SecretBox, tmp_path: Path
) -> None:
    def prepare(conn: Any) -> None:
        with conn.cursor() as cur:
            for statement in ORDERS[engine]:
                cur.execute(statement)

    with World.on_server(engine, store, box, tmp_path, prepare) as (world, name, conn):
        server = ServerDb(engine, name, conn, world, box)
        found = [f for f in _review(server, bad) if f.code == code]
        assert found and all(f.level == "ERROR" for f in found), _review(server, bad)
        with pytest.raises(Exception):  # noqa: B017 (each driver raises its own)
            _run(server, bad)
        errors = [f for f in _review(server, good) if f.level == "ERROR"]
        assert errors == [], errors
        _run(server, good)
