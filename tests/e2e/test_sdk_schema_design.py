"""A schema design ticket (NDDL) carried from a dev database to a product one through the
official SDK and a real ``opendms serve``, on PostgreSQL and on MariaDB: filed with
CreateOrder, its design refused by review (naming the statement) and then accepted,
compared with both stages, run on its dev base, refused on product before approval, approved
by the DBA, run on product; the ticket succeeds and both databases end with the same tables,
read from each server's own catalog.

The extension actions (UpdateSchemaDesign, GetSchemaDesignDetail, ExecuteSchemaDesign) have
no SDK model and are called with raw V3-signed requests. On PostgreSQL the stages are two
catalogs of the shared server, each registered as its own instance (Sid = the catalog); a
MariaDB server has one namespace, so the product stage is a second MariaDB server started
for the session (``other_mariadb``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import (
    Creds,
    Dms,
    Server,
    grant_correct,
    mysql_database,
    pg_database,
    refused,
    wait_for,
)
from tests.e2e.mariadb_server import MariadbServer
from tests.e2e.schema_support import (
    add_instance,
    approve,
    db_id,
    extension,
    extension_refused,
    mariadb_tables,
    pg_tables,
    status_of,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

# 70 characters: over PostgreSQL's 63 and MariaDB's 64
TOO_LONG = "a_column_name_far_longer_than_any_engine_allows_for_its_identifiers_xy"
REFUSED_DESIGN = (
    f"ALTER TABLE acct ADD COLUMN email VARCHAR(100);\nALTER TABLE acct ADD {TOO_LONG} INT"
)
DESIGNS = {
    "postgresql": (
        "ALTER TABLE acct ADD COLUMN email VARCHAR(100);\n"
        "CREATE INDEX idx_acct_email ON acct (email);\n"
        "COMMENT ON COLUMN acct.email IS 'where to write';\n"
        "CREATE TABLE acct_tag (id BIGINT PRIMARY KEY, acct_id BIGINT NOT NULL, "
        "tag VARCHAR(40) NOT NULL);\n"
        "COMMENT ON TABLE acct_tag IS 'tags of an account'"
    ),
    "mariadb": (
        "ALTER TABLE acct ADD COLUMN email VARCHAR(100) COMMENT 'where to write';\n"
        "CREATE INDEX idx_acct_email ON acct (email);\n"
        "CREATE TABLE acct_tag (id BIGINT PRIMARY KEY, acct_id BIGINT NOT NULL, "
        "tag VARCHAR(40) NOT NULL) ENGINE=InnoDB COMMENT='tags of an account'"
    ),
}
TABLES = {
    "postgresql": [
        "CREATE TABLE acct (id BIGSERIAL PRIMARY KEY, note VARCHAR(50) NOT NULL DEFAULT '')",
        "INSERT INTO acct (note) SELECT 'n' || g FROM generate_series(1, 500) g",
    ],
    "mariadb": [
        "CREATE TABLE acct (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "note VARCHAR(50) NOT NULL DEFAULT '') ENGINE=InnoDB",
        "INSERT INTO acct (note) SELECT CONCAT('n', seq) FROM seq_1_to_500",
    ],
}


@dataclass(frozen=True)
class People:
    admin: Dms  # registers the instances, grants
    dba: Creds  # the DBA of every instance: approves
    committer: Creds  # files the design


@pytest.fixture(scope="module")
def people(server: Server) -> People:
    dba = server.create_user("DBA", nick="Dora DBA")
    committer = server.create_user("USER", nick="Cora Committer")
    return People(Dms(server, server.admin, "v3"), dba, committer)


def _stages(server: Server, who: Creds, order_id: int) -> dict[int, str]:
    """Each stage's DbId and State once none is being compared; {} while one is."""
    body = extension(server, who, "GetSchemaDesignDetail", OrderId=order_id)
    assert body["Success"] is True, body
    states = {int(st["DbId"]): str(st["State"]) for st in body["SchemaDesignDetail"]["Stages"]}
    return {} if {"COMPARING", "NOT_COMPARED", "RUNNING"} & set(states.values()) else states


def _settled(server: Server, who: Creds, order_id: int) -> dict[int, str]:
    return dict(wait_for("the stages compared", lambda: _stages(server, who, order_id), 60))


def carry_design(
    server: Server,
    people: People,
    engine: str,
    dev_db: int,
    product_db: int,
    product_columns: Callable[[], list[str]],
) -> None:
    """The whole life of a design from ``dev_db`` to ``product_db``: everything the issue
    asks of it, through the SDK, in order."""
    committer, dba = Dms(server, people.committer, "v3"), Dms(server, people.dba, "v3")
    who = people.committer
    grant_correct(people.admin, who.user_id or 0, dev_db)
    made = committer.call(
        "CreateOrder",
        plugin_type="NDDL",
        plugin_param={
            "title": "accounts get an email",
            "dbId": dev_db,
            "description": "email column, its index, a tag table",
        },
        comment="schema design",
    )
    assert made.success is True, committer.last_raw
    (order_id,) = made.create_order_result.order_ids

    # review refuses the design, naming the statement at fault; nothing is kept
    message = extension_refused(
        server,
        who,
        "UpdateSchemaDesign",
        "SqlReviewFailed",
        "statement 2 (line 2)",
        "NAME_TOO_LONG",
        OrderId=order_id,
        Script=REFUSED_DESIGN,
    )
    assert "statement 1" not in message, message
    body = extension(server, who, "GetSchemaDesignDetail", OrderId=order_id)
    assert (body["SchemaDesignDetail"]["Version"], body["SchemaDesignDetail"]["Script"]) == (0, "")

    # the fixed design is accepted and compared with both stages
    saved = extension(server, who, "UpdateSchemaDesign", OrderId=order_id, Script=DESIGNS[engine])
    assert saved["Success"] is True, saved
    assert saved["Version"] == 1, saved
    assert all(r["Level"] != "ERROR" for r in saved["ReviewResults"]), saved
    assert _settled(server, who, order_id) == {dev_db: "PENDING", product_db: "PENDING"}

    # not before its base ran, not on product before approval
    refused(
        committer.call("SubmitOrderApproval", order_id=order_id),
        "InvalidOrderStatus",
        "base database",
    )
    extension_refused(
        server,
        who,
        "ExecuteSchemaDesign",
        "InvalidOrderStatus",
        "only once the ticket is approved",
        OrderId=order_id,
        DbId=product_db,
    )

    # the base runs on its committer's word; product is compared again, still lacking it
    ran = extension(server, who, "ExecuteSchemaDesign", OrderId=order_id, DbId=dev_db)
    assert ran["Success"] is True, ran
    wait_for(
        "the base to run",
        lambda: _stages(server, who, order_id) == {dev_db: "EQUAL", product_db: "PENDING"},
        timeout=60,
    )
    assert "email" not in product_columns()
    assert status_of(committer, order_id) == "new"

    # approved by the DBA, it reaches product
    submitted = committer.call("SubmitOrderApproval", order_id=order_id)
    assert submitted.success is True, committer.last_raw
    approve(committer, dba, order_id)
    ran = extension(server, who, "ExecuteSchemaDesign", OrderId=order_id, DbId=product_db)
    assert ran["Success"] is True, ran
    wait_for(
        "the ticket's success", lambda: status_of(committer, order_id) == "success", timeout=60
    )
    assert _settled(server, who, order_id) == {dev_db: "EQUAL", product_db: "EQUAL"}
    assert "email" in product_columns()


def test_a_design_goes_from_dev_to_product_on_postgresql(server: Server, people: People) -> None:
    with pg_database() as (dev, dev_conn), pg_database() as (product, product_conn):
        for conn in (dev_conn, product_conn):
            for statement in TABLES["postgresql"]:
                conn.execute(statement)
        common = {"engine": "postgresql", "port": 5432, "user": "postgres", "dba": people.dba}
        dev_instance = add_instance(
            people.admin, alias="design-pg-dev", env="dev", sid=dev, **common
        )
        product_instance = add_instance(
            people.admin, alias="design-pg-product", env="product", sid=product, **common
        )
        dev_db = db_id(people.admin, dev_instance, "public", dev)
        product_db = db_id(people.admin, product_instance, "public", product)

        def product_columns() -> list[str]:
            return [c[0] for c in pg_tables(product_conn, "public")["acct"]["columns"]]

        carry_design(server, people, "postgresql", dev_db, product_db, product_columns)

        base, made = pg_tables(dev_conn, "public"), pg_tables(product_conn, "public")
        assert sorted(made) == ["acct", "acct_tag"]
        assert made == base
        assert made["acct_tag"]["comment"] == "tags of an account"


@pytest.fixture
def mariadb_stages(other_mariadb: MariadbServer) -> Iterator[tuple[str, Any, Any]]:
    """A database on the shared MariaDB server and one of the same name on the second; (its
    name, a query function on each)."""
    with mysql_database() as (name, dev_conn):
        product_conn = other_mariadb.connect()
        try:
            with product_conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}`")

            def on(conn: Any) -> Callable[[str], Any]:
                def query(sql: str) -> Any:
                    with conn.cursor() as cur:
                        cur.execute(sql)
                        return cur.fetchall()

                return query

            product_conn.select_db(name)
            yield name, on(dev_conn), on(product_conn)
        finally:
            with product_conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            product_conn.close()


def test_a_design_goes_from_dev_to_product_on_mariadb(
    server: Server,
    people: People,
    other_mariadb: MariadbServer,
    mariadb_stages: tuple[str, Any, Any],
) -> None:
    name, dev, product = mariadb_stages
    for query in (dev, product):
        for statement in TABLES["mariadb"]:
            query(statement)
    common = {"engine": "mariadb", "user": "root", "dba": people.dba}
    dev_instance = add_instance(
        people.admin, alias="design-maria-dev", port=3306, env="dev", **common
    )
    product_instance = add_instance(
        people.admin, alias="design-maria-product", port=other_mariadb.port, env="product", **common
    )
    dev_db = db_id(people.admin, dev_instance, name)
    product_db = db_id(people.admin, product_instance, name)

    def product_columns() -> list[str]:
        return [
            str(c)
            for (c,) in product(
                f"SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                f"WHERE TABLE_SCHEMA = '{name}' AND TABLE_NAME = 'acct'"
            )
        ]

    carry_design(server, people, "mariadb", dev_db, product_db, product_columns)

    base, made = mariadb_tables(dev, name), mariadb_tables(product, name)
    assert sorted(made) == ["acct", "acct_tag"]
    assert made == base
    assert "idx_acct_email" in made["acct"] and "COMMENT 'where to write'" in made["acct"]
