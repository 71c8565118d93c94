"""Column type facts the schema-change rules weigh (sql.column_types)."""

from __future__ import annotations

import pytest

from opendms.sql import column_types as types


def _t(text: str, engine: str = "mysql") -> types.exp.DataType:
    found = types.datatype(text, engine)
    assert found is not None, text
    return found


@pytest.mark.parametrize(
    ("old", "new", "engine", "rewrites"),
    [
        # MySQL/MariaDB: VARCHAR grows in place within one length-prefix size (255 bytes)
        ("varchar(60)", "varchar(63)", "mysql", False),
        ("varchar(60)", "varchar(64)", "mysql", True),
        ("varchar(100)", "varchar(200)", "mariadb", False),
        ("varchar(100)", "varchar(50)", "mysql", True),
        ("int", "bigint", "mysql", True),
        ("int(11)", "int", "mysql", False),  # a display width is no type change
        ("enum('a','b')", "enum('a','b','c')", "mysql", False),
        ("enum('a','b')", "enum('c','a','b')", "mysql", True),
        ("varchar(100)", "text", "mysql", True),
        # PostgreSQL: binary-coercible changes keep the table
        ("character varying(60)", "varchar(100)", "postgresql", False),
        ("varchar(60)", "text", "postgresql", False),
        ("varchar(60)", "varchar", "postgresql", False),
        ("text", "varchar", "postgresql", False),
        ("text", "varchar(10)", "postgresql", True),
        ("varchar(60)", "varchar(30)", "postgresql", True),
        ("numeric(10,2)", "numeric(12,2)", "postgresql", False),
        ("numeric(10,2)", "numeric(12,3)", "postgresql", True),
        ("integer", "bigint", "postgresql", True),
        ("timestamp", "timestamptz", "postgresql", True),
    ],
)
def test_which_type_changes_rewrite_the_table(
    old: str, new: str, engine: str, rewrites: bool
) -> None:
    assert types.rewrites(_t(old, engine), _t(new, engine), engine, "utf8mb4") is rewrites


def test_a_varchar_in_a_one_byte_charset_crosses_the_prefix_boundary_later() -> None:
    assert not types.rewrites(_t("varchar(200)"), _t("varchar(255)"), "mysql", "latin1")
    assert types.rewrites(_t("varchar(200)"), _t("varchar(256)"), "mysql", "latin1")


def test_key_and_row_bytes() -> None:
    assert types.key_bytes(_t("varchar(100)"), "utf8mb4") == 400
    assert types.key_bytes(_t("varchar(100)"), "latin1") == 100
    assert types.key_bytes(_t("varchar(100)"), "utf8mb4", prefix=10) == 40
    assert types.key_bytes(_t("text"), "utf8mb4") is None
    assert types.key_bytes(_t("text"), "utf8mb4", prefix=64) == 256
    assert types.key_bytes(_t("bigint unsigned"), "") == 8
    assert types.key_bytes(_t("decimal(10,2)"), "") == 5
    assert types.key_bytes(_t("datetime(3)"), "") == 7
    assert types.row_bytes(_t("varchar(60)"), "utf8mb4") == 241
    assert types.row_bytes(_t("varchar(64)"), "utf8mb4") == 258
    assert types.row_bytes(_t("longtext"), "utf8mb4") == 12


@pytest.mark.parametrize(
    ("old", "new", "narrows"),
    [
        ("varchar(100)", "varchar(50)", True),
        ("varchar(50)", "varchar(100)", False),
        ("bigint", "int", True),
        ("int unsigned", "int", True),
        ("int", "bigint", False),
        ("decimal(10,2)", "decimal(8,2)", True),
        ("decimal(10,2)", "decimal(12,2)", False),
        ("text", "varchar(100)", True),
    ],
)
def test_which_type_changes_narrow(old: str, new: str, narrows: bool) -> None:
    assert types.narrows(_t(old), _t(new)) is narrows


def test_a_type_sqlglot_cannot_read_is_not_guessed() -> None:
    assert types.datatype("", "postgresql") is None
    found = types.datatype("mood", "postgresql")  # a user-defined enum
    assert found is None or found.this == types.T.USERDEFINED
