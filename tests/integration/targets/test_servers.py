"""The MySQL/MariaDB and PostgreSQL connectors against the real local servers."""

from __future__ import annotations

import pytest

from opendms.targets.base import Endpoint, TargetError
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration


def test_mariadb_metadata() -> None:
    with mysql_database() as (name, conn):
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE `{name}`.t (id BIGINT PRIMARY KEY AUTO_INCREMENT, "
                "name VARCHAR(40) NOT NULL COMMENT 'the name', amount DECIMAL(10,2) DEFAULT 0, "
                "code INT, UNIQUE KEY uq_code (code), KEY ix_name (name, amount)) COMMENT 'tbl'"
            )
        target = connector_for(Endpoint("mariadb", "127.0.0.1", 3306, "root", ""))
        assert target.ping()
        (schema,) = target.schemas(only=("def", name))
        (table,) = schema.tables
        assert (schema.schema, table.name, table.comment, table.engine) == (
            name,
            "t",
            "tbl",
            "InnoDB",
        )
        cols = {c.name: c for c in table.columns}
        assert cols["id"].auto_increment and not cols["id"].nullable
        assert (cols["name"].data_length, cols["name"].comment) == (40, "the name")
        assert (cols["amount"].data_precision, cols["amount"].data_scale) == (10, 2)
        assert cols["amount"].default_value in ("0", "0.00")
        kinds = {i.name: (i.kind, i.columns) for i in table.indexes}
        assert kinds == {
            "PRIMARY": ("PRIMARY", ["id"]),
            "uq_code": ("UNIQUE", ["code"]),
            "ix_name": ("NORMAL", ["name", "amount"]),
        }
        assert name in [s.schema for s in target.schemas()]
        assert "mysql" not in [s.schema for s in target.schemas()]


def test_mariadb_bad_credentials_and_unreachable() -> None:
    with pytest.raises(TargetError) as bad:
        connector_for(Endpoint("mariadb", "127.0.0.1", 3306, "root", "wrong")).ping()
    assert bad.value.auth
    with pytest.raises(TargetError) as down:
        connector_for(Endpoint("mysql", "127.0.0.1", 1, "root", "", connect_timeout=2)).ping()
    assert not down.value.auth


def test_postgresql_metadata() -> None:
    with pg_database() as (name, conn):
        conn.execute(
            "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, name VARCHAR(40) NOT NULL, "
            "amount NUMERIC(10,2) DEFAULT 0, code INT UNIQUE); "
            "COMMENT ON COLUMN t.name IS 'the name'; COMMENT ON TABLE t IS 'tbl'; "
            "CREATE INDEX ix_name ON t (name, amount); CREATE SCHEMA extra; "
            "CREATE TABLE extra.u (a INT GENERATED ALWAYS AS IDENTITY)"
        )
        target = connector_for(
            Endpoint("postgresql", "127.0.0.1", 5432, "postgres", "", "postgres")
        )
        assert target.ping().startswith("PostgreSQL")
        schemas = {(s.catalog, s.schema): s for s in target.schemas(only=(name, "public"))}
        (table,) = schemas[(name, "public")].tables
        assert table.comment == "tbl"
        cols = {c.name: c for c in table.columns}
        assert cols["id"].auto_increment and not cols["id"].nullable
        assert (cols["name"].column_type, cols["name"].data_length) == ("character varying(40)", 40)
        assert cols["name"].comment == "the name"
        assert (cols["amount"].data_precision, cols["amount"].data_scale) == (10, 2)
        kinds = {(i.kind, tuple(i.columns)) for i in table.indexes}
        assert kinds == {
            ("PRIMARY", ("id",)),
            ("UNIQUE", ("code",)),
            ("NORMAL", ("name", "amount")),
        }
        every = {(s.catalog, s.schema) for s in target.schemas()}
        assert {(name, "public"), (name, "extra")} <= every
        (extra,) = [s for s in target.schemas(only=(name, "extra"))]
        assert extra.tables[0].columns[0].auto_increment


def test_postgresql_bad_credentials() -> None:
    with pytest.raises(TargetError) as bad:
        connector_for(Endpoint("postgresql", "127.0.0.1", 5432, "no_such_role", "x")).ping()
    assert bad.value.auth


def test_postgresql_skips_databases_it_may_not_connect_to() -> None:
    role = "opendms_t_reader"
    with pg_database() as (open_db, conn), pg_database() as (closed_db, _other):
        conn.execute("CREATE TABLE visible (id INT)")
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        try:
            conn.execute(f'REVOKE CONNECT ON DATABASE "{closed_db}" FROM PUBLIC')
            target = connector_for(Endpoint("postgresql", "127.0.0.1", 5432, role, "", open_db))
            catalogs = {s.catalog for s in target.schemas()}
            assert open_db in catalogs
            assert closed_db not in catalogs
        finally:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_mariadb_sessions_lex_strings_as_opendms_parses_them() -> None:
    """A server in ANSI or NO_BACKSLASH_ESCAPES mode would read a generated statement's
    strings otherwise than the parser that checked it: every session drops those modes."""
    from opendms.targets.mysql import LEXING_MODES

    with mysql_database() as (_, conn), conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ANSI,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES'")
        cur.execute(LEXING_MODES)
        cur.execute("SELECT @@SESSION.sql_mode")
        modes = set(cur.fetchone()[0].split(","))
        assert not modes & {"ANSI", "ANSI_QUOTES", "NO_BACKSLASH_ESCAPES"}
        assert "STRICT_TRANS_TABLES" in modes  # the rest of the server's modes stay
        cur.execute("SELECT 'a\\\\b', \"dq\"")
        assert cur.fetchone() == ("a\\b", "dq")
    target = connector_for(Endpoint("mariadb", "127.0.0.1", 3306, "root", ""))
    with target.connect() as conn2, conn2.cursor() as cur:
        cur.execute("SELECT @@SESSION.sql_mode")
        assert "NO_BACKSLASH_ESCAPES" not in cur.fetchone()[0]
