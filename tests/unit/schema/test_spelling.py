from __future__ import annotations

import pytest

from opendms.schema.spelling import (
    canonical_type,
    compact,
    expression_key,
    mysql_default,
    postgres_default,
    unwrapped,
)


@pytest.mark.parametrize(
    ("reported", "spelled"),
    [
        ("int(11)", "int"),  # MariaDB's display width; MySQL 8 shows none
        ("INT(10) UNSIGNED", "int unsigned"),
        ("bigint(20) unsigned", "bigint unsigned"),
        ("tinyint(1)", "tinyint(1)"),  # kept by MySQL 8 too
        ("tinyint(4)", "tinyint"),
        ("int(5) unsigned zerofill", "int(5) unsigned zerofill"),
        ("year(4)", "year"),
        ("integer", "int"),
        ("boolean", "tinyint(1)"),
        ("DECIMAL(10, 2)", "decimal(10,2)"),
        ("numeric(5)", "decimal(5,0)"),
        ("decimal", "decimal(10,0)"),
        ("char", "char(1)"),
        ("double precision", "double"),
        ("enum('A', 'b c')", "enum('A','b c')"),
    ],
)
def test_mysql_types(reported: str, spelled: str) -> None:
    assert canonical_type(reported, "mysql") == spelled


@pytest.mark.parametrize(
    ("reported", "spelled"),
    [
        ("character varying(20)", "varchar(20)"),
        ("character varying", "varchar"),
        ("character(3)", "char(3)"),
        ("timestamp(3) with time zone", "timestamp(3) with time zone"),
        ("TIMESTAMPTZ(3)", "timestamp(3) with time zone"),
        ("timestamp without time zone", "timestamp"),
        ("time(3) without time zone", "time(3)"),
        ("TIMETZ", "time with time zone"),
        ("INT", "integer"),
        ("INT[]", "integer[]"),
        ("numeric(10, 2)", "numeric(10,2)"),
        ("DECIMAL", "numeric"),
        ("DOUBLE", "double precision"),
        ("bool", "boolean"),
        ("public.mood", "public.mood"),
    ],
)
def test_postgresql_types(reported: str, spelled: str) -> None:
    assert canonical_type(reported, "postgresql") == spelled


def test_compact_keeps_quoted_text() -> None:
    assert compact("  SET( 'A b' ,  'C''d' ) ") == "set('A b','C''d')"


@pytest.mark.parametrize(
    ("text", "column_type", "default"),
    [
        ("'x''y'::character varying", "character varying(20)", "'x''y'"),
        ("'-1.5'::numeric", "numeric", "-1.5"),
        ("'-1'::integer", "integer", "-1"),
        ("'2020-01-01'::date", "date", "'2020-01-01'"),
        ("'abc'::bpchar", "character(3)", "'abc'"),
        ("'{}'::text[]", "text[]", "'{}'"),
        ("NULL::character varying", "varchar(5)", None),
        ("now()", "timestamp", "now()"),
        ("'a'::text", "varchar(5)", "'a'::text"),  # a cast to another type is meant
    ],
)
def test_postgresql_defaults_lose_the_cast_of_their_own_type(
    text: str, column_type: str, default: str | None
) -> None:
    assert postgres_default(text, column_type) == default


def test_mysql_current_timestamp_in_one_spelling() -> None:
    assert mysql_default("current_timestamp()") == "CURRENT_TIMESTAMP"
    assert mysql_default("current_timestamp(3)") == "CURRENT_TIMESTAMP(3)"
    assert mysql_default("NOW()") == "CURRENT_TIMESTAMP"
    assert mysql_default("uuid()") == "uuid()"


def test_expressions_compare_whatever_quotes_and_parentheses() -> None:
    assert expression_key("(`a` + 1)", "mysql") == expression_key("a+1", "mysql")
    assert expression_key("((a > (0)::numeric))", "postgresql") == expression_key(
        "a > 0", "postgresql"
    )
    assert expression_key("0.00", "mysql") == expression_key("0", "mysql")
    assert expression_key("a > 1", "mysql") != expression_key("a > 2", "mysql")
    assert expression_key("not sql ((", "mysql") == "not sql (("


def test_unwrapped() -> None:
    assert unwrapped("((a > 0))") == "a > 0"
    assert unwrapped("(a) + (b)") == "(a) + (b)"
    assert unwrapped("(')(')") == "')('"
