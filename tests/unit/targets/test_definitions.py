"""What the readers make of what servers report: MySQL 8's and MariaDB's ways of saying the
same column read alike (no MySQL 8 server runs here: its information_schema rows are given as
it reports them), and the SQLite demo's definitions, synced into a new file and read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from opendms.schema.model import Check, Column
from opendms.schema.render import differences, sync_statements
from opendms.targets.base import Endpoint
from opendms.targets.demo import ensure_demo_target
from opendms.targets.mysql_definitions import _column, _json_columns
from opendms.targets.registry import connector_for

# COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME,
# COLLATION_NAME, GENERATION_EXPRESSION, COLUMN_COMMENT
MARIADB = [
    ("id", "int(11)", "NO", None, "auto_increment", None, None, None, ""),
    ("name", "varchar(20)", "NO", "'it''s'", "", "utf8mb4", "utf8mb4_bin", None, "n"),
    ("qty", "int(10) unsigned", "YES", "0", "", None, None, None, ""),
    ("note", "text", "YES", "NULL", "", "utf8mb4", "utf8mb4_bin", None, ""),
    ("u", "varchar(36)", "YES", "uuid()", "", "utf8mb4", "utf8mb4_bin", None, ""),
    (
        "ts",
        "timestamp(3)",
        "NO",
        "current_timestamp(3)",
        "on update current_timestamp(3)",
        None,
        None,
        None,
        "",
    ),
    ("g", "int(11)", "YES", None, "STORED GENERATED", None, None, "`qty` * 2", ""),
    ("flag", "tinyint(1)", "YES", "1", "", None, None, None, ""),
    ("bits", "bit(3)", "YES", "b'101'", "", None, None, None, ""),
]
MYSQL8 = [
    ("id", "int", "NO", None, "auto_increment", None, None, "", ""),
    ("name", "varchar(20)", "NO", "it's", "", "utf8mb4", "utf8mb4_bin", "", "n"),
    ("qty", "int unsigned", "YES", "0", "", None, None, "", ""),
    ("note", "text", "YES", None, "", "utf8mb4", "utf8mb4_bin", "", ""),
    ("u", "varchar(36)", "YES", "uuid()", "DEFAULT_GENERATED", "utf8mb4", "utf8mb4_bin", "", ""),
    (
        "ts",
        "timestamp(3)",
        "NO",
        "CURRENT_TIMESTAMP(3)",
        "DEFAULT_GENERATED on update CURRENT_TIMESTAMP(3)",
        None,
        None,
        "",
        "",
    ),
    ("g", "int", "YES", None, "STORED GENERATED", None, None, "(`qty` * 2)", ""),
    ("flag", "tinyint(1)", "YES", "1", "", None, None, "", ""),
    ("bits", "bit(3)", "YES", "b'101'", "", None, None, "", ""),
]


def test_mysql8_and_mariadb_report_one_column_alike() -> None:
    mariadb = [_column(row, mariadb=True) for row in MARIADB]
    mysql8 = [_column(row, mariadb=False) for row in MYSQL8]
    assert mariadb[:2] == [
        Column("id", "int", nullable=False, auto_increment=True),
        Column(
            "name",
            "varchar(20)",
            nullable=False,
            default="'it''s'",
            comment="n",
            charset="utf8mb4",
            collation="utf8mb4_bin",
        ),
    ]
    assert mariadb[5].on_update == mariadb[5].default == "CURRENT_TIMESTAMP(3)"
    assert (mariadb[6].generated, mariadb[6].generated_stored, mariadb[6].default) == (
        "`qty` * 2",
        True,
        None,
    )
    assert mysql8 == mariadb


def test_mysql8_bare_literal_defaults_are_quoted_by_type() -> None:
    row = ("p", "varchar(9)", "YES", "a\\b'c", "", None, None, "", "")
    assert _column(row, mariadb=False).default == "'a\\\\b''c'"
    number = ("n", "decimal(5,2)", "YES", "1.50", "", None, None, "", "")
    assert _column(number, mariadb=False).default == "1.50"


def test_mariadb_json_is_read_back_as_json() -> None:
    columns = [
        Column("doc", "longtext", charset="utf8mb4", collation="utf8mb4_bin"),
        Column("raw", "longtext"),
    ]
    checks, found = _json_columns([("doc", "json_valid(`doc`)"), ("raw", "`raw` <> ''")], columns)
    assert found == [Column("doc", "json"), Column("raw", "longtext")]
    assert checks == [Check("raw", "`raw` <> ''")]


def test_sqlite_demo_synced_into_a_new_file_reads_back_equal(tmp_path: Path) -> None:
    demo = connector_for(Endpoint("sqlite", str(ensure_demo_target(tmp_path / "demo"))))
    source = demo.definitions(("main", "main"))
    assert set(source) == {"customers", "orders"}
    assert source["orders"].foreign_keys[0].ref_table == "customers"
    copy = tmp_path / "copy.db"
    with sqlite3.connect(copy) as db:
        for name in ("customers", "orders"):
            for statement in sync_statements(source[name], None, "sqlite"):
                db.execute(statement)
    target = connector_for(Endpoint("sqlite", str(copy))).definitions(("main", "main"))
    for name, table in source.items():
        assert differences(table, target[name], "sqlite") == []
    assert list(demo.definitions(("main", "main"), ["orders"])) == ["orders"]
