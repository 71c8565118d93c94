from __future__ import annotations

import json
from dataclasses import replace

from opendms.schema.diff import (
    ALTER_TABLE,
    CREATE_TABLE,
    DROP_TABLE,
    EQUAL_TABLE,
    Category,
    compare,
    compare_type,
    moved_columns,
)
from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from tests.unit.schema.tables import mysql_table, pg_table


def test_json_round_trip_keeps_every_field() -> None:
    table = replace(
        mysql_table(),
        indexes=(Index("ix", ("a", "b"), lengths=(10, None), descending=(True, False)),),
        rows=12,
    )
    again = Table.from_json(json.loads(json.dumps(table.to_json())))
    assert again == table
    assert again.to_json() == table.to_json()


def test_a_snapshot_stored_before_on_update_was_known_still_reads() -> None:
    stored = mysql_table().to_json()
    for column in stored["columns"]:
        del column["on_update"]
    assert Table.from_json(stored) == mysql_table()


def test_rows_and_sizes_do_not_count() -> None:
    assert compare(mysql_table(rows=1, size_bytes=5), mysql_table(rows=9)) == []


def test_missing_and_extra_tables() -> None:
    (created,) = compare(mysql_table(), None)
    assert (created.category, created.text) == (Category.CREATE_TABLE, "table t: not in the target")
    (dropped,) = compare(None, mysql_table())
    assert dropped.category is Category.DROP_TABLE
    assert compare(None, None) == []
    assert compare_type([created]) == CREATE_TABLE
    assert compare_type([dropped]) == DROP_TABLE
    assert compare_type([]) == EQUAL_TABLE


def test_a_changed_column_says_what_changes_from_what_to_what() -> None:
    source = mysql_table()
    target = replace(
        source,
        columns=(
            source.columns[0],
            replace(source.columns[1], type="varchar(10)", nullable=True, default=None),
            *source.columns[2:],
        ),
    )
    (diff,) = compare(source, target)
    assert diff.category is Category.MODIFY_COLUMN
    assert diff.attributes == ("type", "nullable", "default")
    assert diff.text == "column name: varchar(10) → varchar(50); NULL → NOT NULL; default none → ''"
    assert compare_type([diff]) == ALTER_TABLE


def test_only_the_type_reads_as_the_type() -> None:
    source = mysql_table()
    target = replace(
        source,
        columns=(
            source.columns[0],
            replace(source.columns[1], type="varchar(100)"),
            *source.columns[2:],
        ),
    )
    (diff,) = compare(source, target)
    assert diff.text == "column name: varchar(100) → varchar(50)"


def test_added_and_dropped_columns() -> None:
    source = mysql_table()
    target = replace(source, columns=(*source.columns[:3], Column("old", "int")))
    kinds = {(d.category, d.name) for d in compare(source, target)}
    assert kinds == {(Category.ADD_COLUMN, "parent_id"), (Category.DROP_COLUMN, "old")}


def test_names_fold_on_mysql_not_on_postgresql() -> None:
    source = mysql_table()
    upper = replace(source, columns=tuple(replace(c, name=c.name.upper()) for c in source.columns))
    assert compare(source, upper, "mariadb") == []
    pg = pg_table()
    quoted = replace(pg, columns=(*pg.columns[:3], replace(pg.columns[3], name="Parent_Id")))
    kinds = {d.category for d in compare(pg, quoted, "postgresql")}
    assert kinds == {Category.ADD_COLUMN, Category.DROP_COLUMN}


def test_defaults_compare_by_meaning() -> None:
    source = mysql_table()
    padded = replace(source.columns[2], default="0")  # MariaDB pads DECIMAL defaults: 0.00
    assert (
        compare(source, replace(source, columns=(*source.columns[:2], padded, source.columns[3])))
        == []
    )
    now = Column("ts", "timestamp", default="CURRENT_TIMESTAMP")
    then = Column("ts", "timestamp", default="current_timestamp()")
    assert compare(replace(source, columns=(now,)), replace(source, columns=(then,))) == []
    quoted = Column("s", "varchar(5)", default="'it''s'")
    escaped = Column("s", "varchar(5)", default="'it\\'s'")
    assert compare(replace(source, columns=(quoted,)), replace(source, columns=(escaped,))) == []


def test_column_order_counts_on_mysql_only_and_moves_few() -> None:
    columns = tuple(Column(n, "int") for n in "abcde")
    source = Table("t", columns)
    target = Table("t", (columns[4], *columns[:4]))  # e moved first
    moves = [d for d in compare(source, target, "mysql") if d.category is Category.MOVE_COLUMN]
    assert [(d.name, d.text) for d in moves] == [("e", "column e: moves after d")]
    assert compare(source, target, "postgresql") == []
    assert len(moved_columns(list("abcde"), list("edcba"))) == 4  # one stays; four move
    assert moved_columns(list("abc"), list("abc")) == set()
    assert moved_columns(list("abc"), list("bca")) == {"a"}


def test_charset_a_source_does_not_name_is_the_target_s() -> None:
    target = mysql_table()
    carried = replace(
        target,
        charset="",
        collation="",
        engine="",
        columns=tuple(replace(c, charset="", collation="") for c in target.columns),
    )
    assert compare(carried, target, "mariadb") == []
    latin = replace(target, charset="latin1", collation="latin1_swedish_ci")
    (options,) = compare(latin, target)
    assert options.category is Category.TABLE_OPTIONS
    assert options.attributes == ("charset", "collation")


def test_indexes_keys_checks_and_comment() -> None:
    source = mysql_table()
    target = replace(
        source,
        primary_key=("id", "name"),
        indexes=(Index("ix_name", ("name",)), Index("ix_old", ("amount",))),
        foreign_keys=(ForeignKey("fk_parent", ("parent_id",), "parent", ("id",)),),
        checks=(Check("ck_amount", "`amount` > 0"), Check("ck_old", "1")),
        comment="",
    )
    found = {(d.category, d.name): d.text for d in compare(source, target)}
    assert found == {
        (Category.PRIMARY_KEY, "PRIMARY"): "primary key: (id, name) → (id)",
        (Category.MODIFY_INDEX, "ix_name"): "index ix_name: (name) → (name(10))",
        (Category.DROP_INDEX, "ix_old"): "index ix_old: only in the target",
        (Category.MODIFY_FOREIGN_KEY, "fk_parent"): (
            "foreign key fk_parent: (parent_id) REFERENCES parent (id) → "
            "(parent_id) REFERENCES parent (id) ON DELETE CASCADE"
        ),
        (Category.MODIFY_CHECK, "ck_amount"): "check ck_amount: (`amount` > 0) → (`amount` >= 0)",
        (Category.DROP_CHECK, "ck_old"): "check ck_old: only in the target",
        (Category.TABLE_COMMENT, "t"): "table t: comment '' → 'things'",
    }


def test_the_index_mysql_made_for_a_foreign_key_is_not_dropped() -> None:
    source = mysql_table(indexes=())
    target = mysql_table(indexes=(Index("fk_parent", ("parent_id",)),))
    assert compare(source, target, "mariadb") == []
    # on PostgreSQL the server makes none: an index only the target has is dropped
    assert [d.category for d in compare(source, target, "postgresql")] == [Category.DROP_INDEX]


def test_postgresql_expressions_and_unique_constraints() -> None:
    source = pg_table()
    as_index = replace(source.indexes[1], constraint=False)
    target = replace(source, indexes=(replace(source.indexes[0], where="amount > 0"), as_index))
    found = {d.name: d.text for d in compare(source, target, "postgresql")}
    assert found == {
        "ix_lower": "index ix_lower: (lower((name)::text), amount DESC) WHERE amount > 0 → "
        "(lower((name)::text), amount DESC)",
        "t_name_key": "index t_name_key: an index → a UNIQUE constraint",
    }
    reparenthesised = replace(source, checks=(Check("ck_amount", "(amount >= (0)::numeric)"),))
    assert compare(source, reparenthesised, "postgresql") == []
