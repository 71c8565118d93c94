"""Structure sync on a real MariaDB: varied source and target schemas, the DDL generated and
run on the target, both read again: nothing differs."""

from __future__ import annotations

from typing import Any

import pytest

from opendms.schema.diff import Category
from opendms.schema.render import differences, sync_statements
from opendms.targets.base import Connector, Endpoint, TargetError
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database
from tests.integration.schema.syncing import assert_same, sync

pytestmark = pytest.mark.integration

SOURCE = [
    "CREATE TABLE parent (id INT NOT NULL AUTO_INCREMENT, code VARCHAR(10) NOT NULL, "
    "PRIMARY KEY (id), UNIQUE KEY uq_code (code)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
    "COLLATE=utf8mb4_unicode_ci COMMENT='parents'",
    """CREATE TABLE things (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT ''
            COMMENT 'the name',
        amount DECIMAL(12,2) DEFAULT 0.00,
        status ENUM('new','done') NOT NULL DEFAULT 'new',
        flags SET('a','b') DEFAULT NULL,
        note TEXT,
        doc JSON,
        created TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
            ON UPDATE CURRENT_TIMESTAMP(3),
        uid VARCHAR(36) DEFAULT (uuid()),
        quote VARCHAR(20) DEFAULT 'it''s \\\\ here',
        parent_id INT,
        other_id INT,
        total DECIMAL(14,2) AS (amount * 2) STORED,
        half DECIMAL(14,2) AS (amount / 2) VIRTUAL,
        PRIMARY KEY (id),
        UNIQUE KEY uq_name (name(20), status),
        KEY ix_amount (amount DESC, id),
        KEY ix_total (total),
        FULLTEXT KEY ft_note (note),
        CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE SET NULL,
        CONSTRAINT ck_amount CHECK (amount >= 0)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='things'""",
    "CREATE TABLE keys2 (a INT NOT NULL, b INT NOT NULL, c INT, PRIMARY KEY (a, b))",
    "CREATE TABLE shuffled (a INT, b INT, c INT, d INT, e INT)",
    "CREATE TABLE only_source (a INT NOT NULL PRIMARY KEY, b VARCHAR(5) CHECK (b <> ''), "
    "child INT, KEY ix_b (b), CONSTRAINT fk_self FOREIGN KEY (child) REFERENCES only_source (a))",
]
TARGET = [
    "CREATE TABLE parent (id INT NOT NULL AUTO_INCREMENT, code VARCHAR(20), PRIMARY KEY (id)) "
    "ENGINE=InnoDB DEFAULT CHARSET=latin1",
    """CREATE TABLE things (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        amount DECIMAL(10,2) DEFAULT 1,
        name VARCHAR(50) NOT NULL,
        old_col INT,
        note VARCHAR(200),
        parent_id INT,
        other_id INT,
        total DECIMAL(14,2) AS (amount * 3) STORED,
        half DECIMAL(14,2) AS (amount / 2) STORED,
        PRIMARY KEY (id),
        KEY ix_amount (amount),
        KEY ix_old (old_col),
        KEY ix_total (total),
        CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id),
        CONSTRAINT fk_other FOREIGN KEY (other_id) REFERENCES parent (id),
        CONSTRAINT ck_amount CHECK (amount > -1),
        CONSTRAINT ck_old CHECK (old_col > 0)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci""",
    "CREATE TABLE keys2 (a INT NOT NULL, b INT NOT NULL, c INT, PRIMARY KEY (a))",
    "CREATE TABLE shuffled (e INT, d INT, a INT, c INT, b INT)",
    "CREATE TABLE only_target (x INT, y INT REFERENCES parent (id))",
]


def _connector() -> Connector:
    return connector_for(Endpoint("mariadb", "127.0.0.1", 3306, "root", ""))


def _run(conn: Any, statements: list[str]) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def test_a_target_synced_from_its_source_reads_back_equal() -> None:
    connector = _connector()
    with mysql_database() as (source_db, source_conn), mysql_database() as (target_db, conn):
        _run(source_conn, SOURCE)
        _run(conn, TARGET)
        source = connector.definitions(("def", source_db))
        target = connector.definitions(("def", target_db))
        found = {d.category for d in differences(source["things"], target["things"], "mariadb")}
        assert {
            Category.ADD_COLUMN,
            Category.DROP_COLUMN,
            Category.MODIFY_COLUMN,
            Category.MOVE_COLUMN,
            Category.ADD_INDEX,
            Category.DROP_INDEX,
            Category.MODIFY_INDEX,
            Category.MODIFY_FOREIGN_KEY,
            Category.DROP_FOREIGN_KEY,
            Category.MODIFY_CHECK,
            Category.DROP_CHECK,
            Category.TABLE_OPTIONS,
            Category.TABLE_COMMENT,
        } <= found

        def execute(statement: str) -> None:
            _run(conn, [statement])

        ran = sync(source, target, "mariadb", execute)
        assert any(s.startswith("DROP TABLE `only_target`") for s in ran)
        after = connector.definitions(("def", target_db))
        assert_same(source, after, "mariadb")
        # the source's own text, compared as the server shows it after the round trip
        assert after["things"].column("quote").default == source["things"].column("quote").default


def test_one_alter_per_table_with_foreign_keys_around_it() -> None:
    connector = _connector()
    with mysql_database() as (source_db, source_conn), mysql_database() as (target_db, conn):
        _run(source_conn, SOURCE[:2])
        _run(conn, TARGET[:2])
        source = connector.definitions(("def", source_db))
        target = connector.definitions(("def", target_db))
        statements = sync_statements(source["things"], target["things"], "mariadb")
        assert [s.split(" ", 3)[:3] for s in statements] == [["ALTER", "TABLE", "`things`"]] * 3
        assert "DROP FOREIGN KEY `fk_parent`" in statements[0]
        assert "ADD CONSTRAINT `fk_parent` FOREIGN KEY" in statements[2]


def test_definitions_of_named_tables_and_of_none() -> None:
    connector = _connector()
    with mysql_database() as (db, conn):
        _run(conn, SOURCE[:2])
        assert list(connector.definitions(("def", db), ["parent", "missing"])) == ["parent"]
        assert connector.definitions(("def", db), []) == {}
        things = connector.definitions(("def", db))["things"]
        doc = things.column("doc")
        assert doc is not None and (doc.type, doc.charset) == ("json", "")
        assert [c.name for c in things.checks] == ["ck_amount"]  # not MariaDB's json_valid
        # MariaDB's index for the foreign key, which had none to use: the server's own
        assert sync_statements(things, things, "mariadb") == []


def test_a_server_that_cannot_be_read_is_a_target_error() -> None:
    broken = connector_for(Endpoint("mariadb", "127.0.0.1", 3306, "root", "wrong"))
    with pytest.raises(TargetError):
        broken.definitions(("def", "mysql"))
