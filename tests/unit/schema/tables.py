"""Tables to compare and render, and the check every generated statement must pass: the
product parses it in the target's dialect and runs what it renders of it, which must be the
statement itself."""

from __future__ import annotations

from dataclasses import replace

from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from opendms.sql.statements import opaque, parse_script, render


def reads_back(statements: list[str], engine: str) -> list[str]:
    for statement in statements:
        (parsed,) = parse_script(statement, engine)
        assert parsed.error is None, parsed.error
        (node,) = parsed.nodes
        assert not opaque(node), statement
        assert render(node, engine) == statement
    return statements


def mysql_table(**changes: object) -> Table:
    base = Table(
        name="t",
        columns=(
            Column("id", "bigint unsigned", nullable=False, auto_increment=True),
            Column(
                "name",
                "varchar(50)",
                nullable=False,
                default="''",
                comment="the name",
                charset="utf8mb4",
                collation="utf8mb4_general_ci",
            ),
            Column("amount", "decimal(10,2)", default="0.00"),
            Column("parent_id", "int"),
        ),
        primary_key=("id",),
        indexes=(Index("ix_name", ("name",), lengths=(10,)),),
        foreign_keys=(ForeignKey("fk_parent", ("parent_id",), "parent", ("id",), "CASCADE"),),
        checks=(Check("ck_amount", "`amount` >= 0"),),
        comment="things",
        engine="innodb",
        charset="utf8mb4",
        collation="utf8mb4_general_ci",
    )
    return _changed(base, changes)


def pg_table(**changes: object) -> Table:
    base = Table(
        name="t",
        columns=(
            Column("id", "bigint", nullable=False, auto_increment=True),
            Column("name", "varchar(50)", nullable=False, default="''", comment="the name"),
            Column("amount", "numeric(10,2)", default="0"),
            Column("parent_id", "integer"),
        ),
        primary_key=("id",),
        primary_key_name="t_pkey",
        indexes=(
            Index("ix_lower", ("lower((name)::text)", "amount"), descending=(False, True)),
            Index("t_name_key", ("name",), unique=True, constraint=True),
        ),
        foreign_keys=(ForeignKey("t_parent_id_fkey", ("parent_id",), "parent", ("id",)),),
        checks=(Check("ck_amount", "amount >= 0"),),
        comment="things",
    )
    return _changed(base, changes)


def _changed(table: Table, changes: dict[str, object]) -> Table:
    return replace(table, **changes)  # type: ignore[arg-type]
