from __future__ import annotations

from dataclasses import replace

import pytest

from opendms.schema.model import Column, ForeignKey, Index, Table
from opendms.schema.render import sync_statements
from opendms.schema.translate import SchemaRefused, prepare, translate_type
from tests.unit.schema.tables import mysql_table, pg_table, reads_back

MYSQL_TO_PG = {
    "tinyint(1)": "smallint",
    "tinyint unsigned": "smallint",
    "smallint unsigned": "integer",
    "mediumint": "integer",
    "int": "integer",
    "int unsigned": "bigint",
    "int(5) unsigned zerofill": "bigint",
    "bigint unsigned": "bigint",
    "decimal(12,3)": "numeric(12,3)",
    "float": "real",
    "double": "double precision",
    "varchar(20)": "varchar(20)",
    "char(2)": "char(2)",
    "mediumtext": "text",
    "longblob": "bytea",
    "varbinary(16)": "bytea",
    "date": "date",
    "datetime": "timestamp",
    "datetime(3)": "timestamp(3)",
    "timestamp(6)": "timestamp(6) with time zone",
    "time(3)": "time(3)",
    "year": "smallint",
    "json": "jsonb",
    "bit(3)": "bit(3)",
}
PG_TO_MYSQL = {
    "smallint": "smallint",
    "integer": "int",
    "bigint": "bigint",
    "numeric(10,2)": "decimal(10,2)",
    "numeric": "decimal(65,30)",
    "real": "float",
    "double precision": "double",
    "boolean": "tinyint(1)",
    "varchar(20)": "varchar(20)",
    "varchar": "longtext",
    "char(3)": "char(3)",
    "text": "longtext",
    "bytea": "longblob",
    "timestamp": "datetime(6)",
    "timestamp(3) with time zone": "datetime(3)",
    "time": "time(6)",
    "date": "date",
    "json": "json",
    "jsonb": "json",
    "uuid": "char(36)",
}


@pytest.mark.parametrize(("mine", "theirs"), MYSQL_TO_PG.items())
def test_mysql_types_in_postgresql(mine: str, theirs: str) -> None:
    table = Table("t", (Column("c", mine),))
    assert translate_type(table, table.columns[0], "mariadb", "postgresql") == theirs


@pytest.mark.parametrize(("mine", "theirs"), PG_TO_MYSQL.items())
def test_postgresql_types_in_mysql(mine: str, theirs: str) -> None:
    table = Table("t", (Column("c", mine),))
    assert translate_type(table, table.columns[0], "postgresql", "mysql") == theirs


@pytest.mark.parametrize(
    ("type_", "source", "engine", "why"),
    [
        ("set('a','b')", "mariadb", "postgresql", "no SET type"),
        ("enum('a','b')", "mysql", "postgresql", "enum type"),
        ("point", "mariadb", "postgresql", "cannot read"),
        ("text[]", "postgresql", "mariadb", "no array types"),
        ("interval", "postgresql", "mysql", "no interval type"),
        ("bit varying(5)", "postgresql", "mysql", "cannot read this postgresql type exactly"),
        ("money", "postgresql", "mysql", "no counterpart"),
    ],
)
def test_what_cannot_be_carried_is_refused_naming_table_and_column(
    type_: str, source: str, engine: str, why: str
) -> None:
    table = Table("orders", (Column("id", "int"), Column("odd", type_)))
    with pytest.raises(SchemaRefused, match=rf"^table orders, column odd \(.*{why}"):
        sync_statements(table, None, engine, source_engine=source)


def test_mysql_table_in_postgresql() -> None:
    source = mysql_table(
        columns=(
            *mysql_table().columns,
            Column("seen", "datetime(3)", False, "CURRENT_TIMESTAMP(3)"),
            Column("flag", "tinyint(1)", False, "1"),
            Column("half", "decimal(10,2)", generated="`amount` * 2"),
        )
    )
    carried = prepare(source, "postgresql", source_engine="mariadb")
    assert (carried.engine, carried.charset, carried.collation) == ("", "", "")
    columns = {c.name: c for c in carried.columns}
    assert (columns["id"].type, columns["id"].auto_increment) == ("bigint", True)
    assert (columns["name"].charset, columns["name"].collation) == ("", "")
    assert columns["seen"].default == "CURRENT_TIMESTAMP"
    assert (columns["half"].generated, columns["half"].generated_stored) == ('"amount" * 2', True)
    assert carried.checks[0].expression == '"amount" >= 0'
    assert carried.indexes == (Index("ix_name", ("name",)),)  # the prefix: the whole column
    reads_back(sync_statements(source, None, "postgresql", source_engine="mariadb"), "postgresql")


def test_postgresql_table_in_mysql() -> None:
    source = pg_table(
        columns=(
            *pg_table().columns,
            Column("flag", "boolean", False, "true"),
            Column("seen", "timestamp", True, "now()"),
        ),
        indexes=(Index("ix_amount", ("amount",), descending=(True,)),),
        foreign_keys=(ForeignKey("fk", ("parent_id",), "parent", ("id",), "RESTRICT", "CASCADE"),),
    )
    carried = prepare(source, "mariadb", source_engine="postgresql")
    columns = {c.name: c for c in carried.columns}
    assert (columns["flag"].type, columns["flag"].default) == ("tinyint(1)", "1")
    assert (columns["seen"].type, columns["seen"].default) == (
        "datetime(6)",
        "CURRENT_TIMESTAMP(6)",
    )
    assert carried.primary_key_name == ""
    assert (carried.foreign_keys[0].on_delete, carried.foreign_keys[0].on_update) == ("", "CASCADE")
    reads_back(sync_statements(source, None, "mariadb", source_engine="postgresql"), "mariadb")


@pytest.mark.parametrize(
    ("index", "why"),
    [
        (Index("ix", ("name",), where="amount > 0"), "no partial indexes"),
        (Index("ix", ("lower((name)::text)",)), "cannot index the expression"),
        (Index("ix", ("name",), method="gin"), "no gin indexes"),
    ],
)
def test_postgresql_indexes_mysql_cannot_hold(index: Index, why: str) -> None:
    with pytest.raises(SchemaRefused, match=f"table t, index ix: .*{why}"):
        prepare(pg_table(indexes=(index,)), "mysql", source_engine="postgresql")


def test_a_long_column_keyed_whole_is_refused_in_mysql() -> None:
    source = pg_table(
        columns=(Column("id", "text", False),),
        primary_key=("id",),
        indexes=(),
        foreign_keys=(),
        checks=(),
    )
    with pytest.raises(SchemaRefused, match=r"primary key: .*longtext column id"):
        prepare(source, "mysql", source_engine="postgresql")
    indexed = replace(source, primary_key=(), indexes=(Index("ix", ("id",)),))
    with pytest.raises(SchemaRefused, match=r"index ix: .*only by a prefix length"):
        prepare(indexed, "mysql", source_engine="postgresql")


@pytest.mark.parametrize(
    ("table", "what"),
    [
        (mysql_table(indexes=(Index("u", ("name",), unique=True, lengths=(5,)),)), "index u"),
        (mysql_table(indexes=(Index("f", ("name",), method="fulltext"),)), "index f"),
        (
            mysql_table(columns=(Column("ts", "timestamp", on_update="CURRENT_TIMESTAMP"),)),
            "column ts",
        ),
    ],
)
def test_mysql_definitions_postgresql_cannot_hold(table: Table, what: str) -> None:
    with pytest.raises(SchemaRefused, match=f"table t, {what}"):
        prepare(table, "postgresql", source_engine="mysql")


def test_same_family_is_not_translated() -> None:
    assert prepare(mysql_table(), "mariadb", source_engine="mysql") == mysql_table()
    assert prepare(mysql_table(), "mysql") == mysql_table()
