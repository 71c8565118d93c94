"""Registering real MariaDB and PostgreSQL instances with the official SDKs, and reading their
catalog back: databases, tables, columns, indexes, owners, sync, and the errors on the way."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import mysql_database, pg_database
from tests.e2e.conftest import Dms, Flavor, Server

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
FLAVORS: list[Flavor] = ["v3", "v1", "old"]


def _register(dms: Dms, server: Server, **over: Any) -> Any:
    params: dict[str, Any] = {
        "instance_alias": "local",
        "instance_source": "VPC_IDC",
        "network_type": "VPC",
        "env_type": "dev",
        "safe_rule": "default",
        "query_timeout": 60,
        "export_timeout": 600,
        "dba_uid": server.admin.user_id or 1,
        "host": "127.0.0.1",
        **over,
    }
    return dms.call("RegisterInstance", **params)


def _instance_id(dms: Dms, port: int, sid: str = "") -> str:
    got = dms.call("GetInstance", host="127.0.0.1", port=port, sid=sid or None)
    assert got.success, dms.last_raw
    return str(got.instance.instance_id)


@pytest.fixture
def admin_user_id(server: Server) -> int:
    dms = Dms(server, server.admin, "v3")
    return int(dms.call("GetUser").user.user_id)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_mariadb_instance_round_trip(server: Server, flavor: Flavor, admin_user_id: int) -> None:
    tenant = server.create_tenant(f"maria-{flavor}")
    admin = server.create_user("ADMIN", tid=tenant)
    dms = Dms(server, admin, flavor)
    with mysql_database() as (name, conn):
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, "
                "status VARCHAR(16) NOT NULL COMMENT 'state', amount DECIMAL(12,2), "
                "KEY ix_status (status)) COMMENT 'orders'"
            )
        resp = _register(
            dms,
            server,
            instance_type="MariaDB",
            port=3306,
            database_user="root",
            database_password="",
            dba_uid=admin.user_id,
        )
        assert resp.success, dms.last_raw
        instance_id = _instance_id(dms, 3306)

        listed = dms.call("ListInstances", search_key="local", page_size=10)
        (inst,) = listed.instance_list.instance
        assert (inst.instance_type, inst.env_type, inst.dba_id) == (
            "mariadb",
            "dev",
            str(admin.user_id),
        )
        assert inst.database_password is None  # never sent back

        # (the old SDK has no SearchKey on ListDatabases)
        dbs = dms.call("ListDatabases", instance_id=instance_id, page_size=100)
        (db,) = [d for d in dbs.database_list.database if d.schema_name == name]
        assert (db.schema_name, db.db_type, db.state) == (name, "mariadb", "NORMAL")

        tables = dms.call("ListTables", database_id=db.database_id, return_guid=True)
        (table,) = tables.table_list.table
        assert (table.table_name, table.description, table.engine) == ("orders", "orders", "InnoDB")
        assert table.table_guid

        columns = dms.call("ListColumns", table_id=table.table_id).column_list.column
        assert [c.column_name for c in columns] == ["id", "status", "amount"]
        assert columns[0].auto_increment and not columns[0].nullable
        assert (columns[1].data_length, columns[1].description) == (16, "state")
        assert (columns[2].data_precision, columns[2].data_scale) == (12, 2)
        indexes = dms.call("ListIndexes", table_id=table.table_id).index_list.index
        assert {(i.index_name, i.index_type) for i in indexes} == {
            ("PRIMARY", "PRIMARY"),
            ("ix_status", "NORMAL"),
        }

        # a table created later appears after a sync, with the database keeping its id
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE refunds (id INT PRIMARY KEY)")
        assert dms.call("SyncDatabaseMeta", db_id=db.database_id).success
        names = [
            t.table_name
            for t in dms.call("ListTables", database_id=db.database_id).table_list.table
        ]
        assert names == ["orders", "refunds"]
        assert dms.call("SyncInstanceMeta", instance_id=instance_id).success

        got = dms.call("GetDatabase", host="127.0.0.1", port=3306, schema_name=name)
        assert got.database.database_id == db.database_id

        assert dms.call(
            "SetOwners",
            resource_id=db.database_id,
            owner_type="DATABASE",
            owner_ids=str(admin.user_id),
        ).success
        mine = dms.call("SearchDatabase", search_key=name, search_range="OWNER")
        assert [d.database_id for d in mine.search_database_list.search_database] == [
            db.database_id
        ]
        again = dms.call("ListDatabases", instance_id=instance_id, page_size=100)
        (mine_again,) = [d for d in again.database_list.database if d.schema_name == name]
        assert mine_again.owner_id_list.owner_ids == [str(admin.user_id)]

        dup = _register(
            dms,
            server,
            instance_type="mariadb",
            port=3306,
            database_user="root",
            database_password="",
            dba_uid=admin.user_id,
        )
        assert (dup.success, dup.error_code) == (False, "InstanceAlreadyExists")
        assert dms.call("DeleteInstance", host="127.0.0.1", port=3306).success
        gone = dms.call("ListDatabases", instance_id=instance_id)
        assert (gone.success, gone.error_code) == (False, "InstanceNotFound")


def test_postgresql_instance_and_sync(server: Server) -> None:
    tenant = server.create_tenant("pg")
    admin = server.create_user("ADMIN", tid=tenant)
    dms = Dms(server, admin, "v3")
    with pg_database() as (name, conn):
        conn.execute(
            "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, note TEXT); "
            "CREATE SCHEMA extra; CREATE TABLE extra.u (a INT)"
        )
        resp = _register(
            dms,
            server,
            instance_type="postgresql",
            port=5432,
            database_user="postgres",
            database_password="",
            sid=name,
            dba_uid=admin.user_id,
        )
        assert resp.success, dms.last_raw
        instance_id = _instance_id(dms, 5432, name)
        dbs = dms.call("ListDatabases", instance_id=instance_id, page_size=100)
        ours = {(d.catalog_name, d.schema_name): d for d in dbs.database_list.database}
        assert {(name, "public"), (name, "extra")} <= set(ours)
        public = ours[(name, "public")]
        (table,) = dms.call("ListTables", database_id=public.database_id).table_list.table
        assert table.table_name == "t"
        cols = dms.call("ListColumns", table_id=table.table_id).column_list.column
        assert [(c.column_name, c.auto_increment) for c in cols] == [("id", True), ("note", False)]

        conn.execute("DROP TABLE t; CREATE TABLE t2 (x INT)")
        assert dms.call("SyncDatabaseMeta", db_id=public.database_id).success
        names = [
            t.table_name
            for t in dms.call("ListTables", database_id=public.database_id).table_list.table
        ]
        assert names == ["t2"]
        gone = dms.call("ListColumns", table_id=table.table_id)
        assert (gone.success, gone.error_code) == (False, "TableNotFound")


@pytest.mark.parametrize(
    ("over", "code"),
    [
        (
            {
                "instance_type": "mariadb",
                "port": 3306,
                "database_user": "root",
                "database_password": "wrong",
            },
            "TargetAuthFailed",
        ),
        (
            {
                "instance_type": "mysql",
                "port": 1,
                "database_user": "root",
                "database_password": "x",
            },
            "TargetConnectFailed",
        ),
        (
            {
                "instance_type": "postgresql",
                "port": 5432,
                "database_user": "no_such_role",
                "database_password": "x",
            },
            "TargetAuthFailed",
        ),
        (
            {
                "instance_type": "oracle",
                "port": 1521,
                "database_user": "u",
                "database_password": "x",
            },
            "UnsupportedDbType",
        ),
        ({"instance_type": "mysql", "port": 3306}, "InvalidParameter"),
    ],
)
def test_registration_errors_are_business_errors(
    server: Server, over: dict[str, Any], code: str
) -> None:
    dms = Dms(server, server.admin, "v3")
    resp = _register(dms, server, **over)
    assert (resp.success, resp.error_code) == (False, code), dms.last_raw
    assert resp.error_message


def test_missing_required_registration_field(server: Server) -> None:
    dms = Dms(server, server.admin, "v3")
    failure = dms.fail("RegisterInstance", host="127.0.0.1", port=3306, instance_type="mysql")
    assert (failure.status, failure.code) == (400, "MissingInstanceAlias")


def test_tenants_cannot_see_each_others_catalog(server: Server) -> None:
    first = server.create_user("ADMIN", tid=server.create_tenant("cat-a"))
    second = server.create_user("ADMIN", tid=server.create_tenant("cat-b"))
    a, b = Dms(server, first, "v3"), Dms(server, second, "v3")
    with pg_database() as (name, _conn):
        assert _register(
            a,
            server,
            instance_type="postgresql",
            port=5432,
            database_user="postgres",
            sid=name,
            dba_uid=first.user_id,
        ).success
        instance_id = _instance_id(a, 5432, name)
        db = a.call("ListDatabases", instance_id=instance_id).database_list.database[0]
        for action, params in (
            ("ListDatabases", {"instance_id": instance_id}),
            ("ListTables", {"database_id": db.database_id}),
            ("SyncInstanceMeta", {"instance_id": instance_id}),
            (
                "SetOwners",
                {
                    "resource_id": db.database_id,
                    "owner_type": "DATABASE",
                    "owner_ids": str(second.user_id),
                },
            ),
        ):
            resp = b.call(action, **params)
            assert resp.success is False, (action, b.last_raw)
            assert resp.error_code in ("InstanceNotFound", "DatabaseNotFound"), b.last_raw
        assert b.call("ListInstances").total_count == 0
        assert b.call("GetInstance", host="127.0.0.1", port=5432, sid=name).success is False


def test_regular_user_reads_but_cannot_register(server: Server) -> None:
    user = server.create_user("USER")
    dms = Dms(server, user, "v3")
    assert dms.call("ListInstances").success
    failure = dms.fail(
        "RegisterInstance",
        host="127.0.0.1",
        port=3306,
        instance_type="mysql",
        instance_alias="x",
        instance_source="RDS",
        network_type="VPC",
        env_type="dev",
        safe_rule="r",
        query_timeout=1,
        export_timeout=1,
        dba_uid=1,
    )
    assert (failure.status, failure.code) == (403, "Forbidden.RAM")


@pytest.mark.parametrize("flavor", ["v3", "v1"])
def test_what_the_dms_mcp_server_asks_about_a_table(server: Server, flavor: Flavor) -> None:
    """Alibaba's DMS MCP server's path through the new SDK: addInstance (SimplyAddInstance,
    no engine given), listTables with SearchName '%' and ReturnGuid, getTableDetailInfo
    (GetMetaTableDetailInfo), then GetMetaTableColumn with the same GUID."""
    tenant = server.create_tenant(f"mcp-{flavor}")
    dms = Dms(server, server.create_user("DBA", tid=tenant), flavor)
    with pg_database() as (name, conn):
        conn.execute(
            "CREATE TABLE line_items (order_id BIGINT NOT NULL, line INT NOT NULL, "
            "sku VARCHAR(32) NOT NULL, note TEXT, PRIMARY KEY (order_id, line)); "
            "CREATE UNIQUE INDEX uq_sku ON line_items (sku, order_id); "
            "CREATE TABLE other (id INT)"
        )
        added = dms.call(
            "SimplyAddInstance",
            host="127.0.0.1",
            port=5432,
            database_user="postgres",
            database_password="unused-under-trust",
            instance_region="cn-hangzhou",
        )
        assert added.success, dms.last_raw
        assert (added.instance.host, added.instance.port) == ("127.0.0.1", "5432")
        again = dms.call(
            "SimplyAddInstance",
            host="127.0.0.1",
            port=5432,
            database_user="postgres",
            database_password="x",
        )
        assert again.instance.instance_id == added.instance.instance_id

        found = dms.call("SearchDatabase", search_key=name, page_size=10)
        (db,) = [d for d in found.search_database_list.search_database if d.schema_name == "public"]
        tables = dms.call(
            "ListTables", database_id=db.database_id, search_name="%", return_guid=True
        )
        guids = {t.table_name: t.table_guid for t in tables.table_list.table}
        assert guids == {
            "line_items": f"IDB_{db.database_id}.public.line_items",
            "other": f"IDB_{db.database_id}.public.other",
        }
        detail = dms.call("GetMetaTableDetailInfo", table_guid=guids["line_items"])
        assert detail.success, dms.last_raw
        columns = detail.detail_info.column_list
        assert [(c.column_name, c.position, c.nullable) for c in columns] == [
            ("order_id", "1", False),
            ("line", "2", False),
            ("sku", "3", False),
            ("note", "4", True),
        ]
        indexes = {
            i.index_name: (i.index_type, i.index_columns, i.unique)
            for i in detail.detail_info.index_list
        }
        assert indexes == {
            "line_items_pkey": ("Primary", ["order_id", "line"], True),
            "uq_sku": ("Unique", ["sku", "order_id"], True),
        }
        column = dms.call("GetMetaTableColumn", table_guid=guids["line_items"])
        assert [(c.column_name, c.position, c.primary_key) for c in column.column_list] == [
            ("order_id", 1, "true"),
            ("line", 2, "true"),
            ("sku", 3, "false"),
            ("note", 4, "false"),
        ]
        missing = dms.call("GetMetaTableDetailInfo", table_guid=guids["other"] + "x")
        assert (missing.success, missing.error_code) == (False, "TableNotFound")
