"""The text of a MySQL/MariaDB online schema change: ALGORITHM clauses, the statement moved
onto the shadow, what an ALTER does to columns, the walked key and the refusals, the names,
the triggers, the copy's chunk statements and the swap."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlglot
from sqlglot import exp

from opendms.schema.model import Column, Index, Table
from opendms.sql.shadow_mysql import (
    NAME_LIMIT,
    ShadowCopy,
    auto_increment,
    column_changes,
    copied_columns,
    copy_refusal,
    key_refusal,
    names_algorithm,
    native,
    on_shadow,
    refuses_nothing,
    shadow_names,
    shape_of,
    statement_refusal,
    target,
    unfilled,
    walk_key,
)


def parsed(text: str) -> exp.Expression:
    return sqlglot.parse_one(text, read="mysql")


def table(
    *columns: Column, pk: tuple[str, ...] = ("id",), indexes: tuple[Index, ...] = ()
) -> Table:
    return Table("t", columns, primary_key=pk, indexes=indexes)


ID = Column("id", "int", nullable=False, auto_increment=True)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ALTER TABLE shop.Orders ADD COLUMN c INT", "Orders"),
        ("CREATE UNIQUE INDEX i ON t (a)", "t"),
        ("DROP INDEX i ON t", "t"),
        ("CREATE TABLE t (id INT)", None),
        ("DROP TABLE t", None),
    ],
)
def test_the_live_table_of_a_statement(text: str, name: str | None) -> None:
    found = target(parsed(text))
    assert (found.name if found is not None else None) == name


def test_a_native_attempt_asks_for_its_algorithm() -> None:
    alter = parsed("ALTER TABLE t ADD COLUMN c INT, ADD INDEX ia (a)")
    assert native(alter, "mysql", "INSTANT") == (
        "ALTER TABLE t ADD COLUMN c INT, ADD INDEX ia (a), ALGORITHM=INSTANT"
    )
    assert native(alter, "mariadb", "INPLACE") == (
        "ALTER TABLE t ADD COLUMN c INT, ADD INDEX ia (a), ALGORITHM=INPLACE, LOCK=NONE"
    )
    assert native(parsed("CREATE INDEX i ON t (a)"), "mysql", "INPLACE") == (
        "CREATE INDEX i ON t(a) ALGORITHM=INPLACE LOCK=NONE"
    )
    assert native(parsed("DROP INDEX i ON t"), "mysql", "INSTANT") == (
        "DROP INDEX i ON t ALGORITHM=INSTANT"
    )
    assert native(parsed("ALTER TABLE t ENGINE=InnoDB"), "mysql", "INPLACE").endswith(
        "ENGINE=InnoDB, ALGORITHM=INPLACE, LOCK=NONE"
    )


def test_a_statement_that_names_its_algorithm_is_its_authors_choice() -> None:
    assert names_algorithm(parsed("ALTER TABLE t ADD COLUMN c INT, ALGORITHM=COPY"))
    assert names_algorithm(parsed("ALTER TABLE t ADD COLUMN c INT, LOCK=SHARED"))
    assert not names_algorithm(parsed("ALTER TABLE t ADD COLUMN c INT"))
    assert not names_algorithm(parsed("CREATE INDEX i ON t (a)"))


def test_the_statement_moves_onto_the_shadow() -> None:
    assert on_shadow(parsed("ALTER TABLE t MODIFY a BIGINT"), "db", "_t_new", "mysql") == (
        "ALTER TABLE `db`.`_t_new` MODIFY COLUMN a BIGINT"
    )
    assert on_shadow(parsed("CREATE INDEX i ON t (a)"), "db", "_t_new", "mysql") == (
        "CREATE INDEX i ON `db`.`_t_new`(a)"
    )
    assert on_shadow(parsed("DROP INDEX i ON db.t"), "db", "_t_new", "mysql") == (
        "DROP INDEX i ON `db`.`_t_new`"
    )
    with pytest.raises(ValueError, match="changes no table"):
        on_shadow(parsed("DROP TABLE t"), "db", "_t_new", "mysql")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ALTER TABLE t RENAME TO u", "renames the table"),
        ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id)", "foreign key"),
        ("ALTER TABLE t ADD COLUMN p_id INT REFERENCES p (id)", "foreign key"),
    ],
)
def test_statements_a_shadow_copy_refuses(text: str, why: str) -> None:
    refusal = statement_refusal(parsed(text))
    assert refusal is not None and why in refusal


def test_statements_a_shadow_copy_takes() -> None:
    for text in ("ALTER TABLE t MODIFY a BIGINT, ADD INDEX (b)", "CREATE INDEX i ON t (a)"):
        assert statement_refusal(parsed(text)) is None


def test_what_an_alter_does_to_columns() -> None:
    renamed, dropped = column_changes(
        parsed("ALTER TABLE t CHANGE A amount BIGINT, RENAME COLUMN b TO bee, DROP COLUMN Pad")
    )
    assert renamed == {"a": "amount", "b": "bee"} and dropped == {"pad"}
    assert column_changes(parsed("CREATE INDEX i ON t (a)")) == ({}, frozenset())


def test_the_walked_key() -> None:
    a = Column("a", "int", nullable=False)
    b = Column("b", "varchar(10)", nullable=True)
    assert walk_key(table(ID, a)) == ("id",)
    unique_a = Index("ua", ("a",), unique=True)
    assert walk_key(table(ID, a, pk=(), indexes=(unique_a,))) == ("a",)
    # a nullable column, a prefix: neither finds one row
    assert walk_key(table(ID, b, pk=(), indexes=(Index("ub", ("b",), unique=True),))) is None
    prefix = Index("ua", ("a",), unique=True, lengths=(4,))
    assert walk_key(table(ID, a, pk=(), indexes=(prefix,))) is None
    assert walk_key(table(ID, a, pk=(), indexes=(Index("ia", ("a",)),))) is None


def test_the_columns_a_copy_carries() -> None:
    old = table(
        ID, Column("a", "int"), Column("b", "int"), Column("pad", "char(4)"), Column("x", "int")
    )
    new = table(
        ID,
        Column("amount", "bigint"),
        Column("b", "int", generated="`id` + 1"),  # computed now: not written
        Column("pad", "char(4)"),  # dropped and added again: a new column, not the old one
        Column("X", "int"),  # names compare as MySQL compares them
        Column("added", "int"),
    )
    renamed, dropped = column_changes(
        parsed("ALTER TABLE t CHANGE a amount BIGINT, DROP COLUMN pad, ADD COLUMN pad CHAR(4)")
    )
    assert copied_columns(old, new, renamed, dropped) == (
        ("id", "id"),
        ("a", "amount"),
        ("x", "X"),
    )


def test_the_key_must_stay_a_key_in_the_new_shape() -> None:
    columns = (("id", "id"), ("a", "a"))
    a = Column("a", "int", nullable=False)
    old = table(ID, a)
    assert key_refusal(old, table(ID, a), ("id",), columns) is None
    by_unique = table(ID, a, pk=("a",), indexes=(Index("uid", ("id",), unique=True),))
    assert key_refusal(old, by_unique, ("id",), columns) is None
    wider = key_refusal(old, table(ID, a, pk=("id", "a")), ("id",), columns)
    assert wider is not None and "no longer a unique key" in wider
    gone = key_refusal(old, table(a, pk=("a",)), ("id",), (("a", "a"),))
    assert gone is not None and "drops or recomputes key column id" in gone
    ident = Column("ident", "int", nullable=False)
    assert key_refusal(old, table(ident, pk=("ident",)), ("id",), (("id", "ident"),)) is None


def test_a_key_that_would_compare_differently_is_refused() -> None:
    code = Column("code", "varchar(10)", nullable=False, collation="utf8mb4_general_ci")
    old = table(code, pk=("code",))
    binary = table(replace(code, collation="utf8mb4_bin"), pk=("code",))
    why = key_refusal(old, binary, ("code",), (("code", "code"),))
    assert why is not None and "changes its collation" in why
    wider = table(replace(code, type="varchar(20)"), pk=("code",))
    assert key_refusal(old, wider, ("code",), (("code", "code"),)) is None


def test_a_new_shape_whose_unique_keys_the_table_has_refuses_no_row() -> None:
    a = Column("a", "int")
    code = Column("code", "varchar(20)", collation="utf8mb4_general_ci")
    kept = (("id", "id"), ("a", "a"), ("code", "code"))
    unique_code = Index("u_code", ("code",), unique=True)
    old = table(ID, a, code, indexes=(unique_code, Index("ix_a", ("a",))))
    # a type change, a column added, a plain index added or dropped: the keys are the table's
    wider = table(
        ID, replace(a, type="bigint"), code, Column("note", "text"), indexes=(unique_code,)
    )
    assert refuses_nothing(old, wider, kept)
    # a unique key the table does not have
    new_unique = table(ID, a, code, indexes=(unique_code, Index("u_a", ("a",), unique=True)))
    assert not refuses_nothing(old, new_unique, kept)
    # a unique key over a column whose values change (shorter, or compared otherwise)
    shorter = table(ID, a, replace(code, type="varchar(5)"), indexes=(unique_code,))
    assert not refuses_nothing(old, shorter, kept)
    binary = table(ID, a, replace(code, collation="utf8mb4_bin"), indexes=(unique_code,))
    assert not refuses_nothing(old, binary, kept)
    # a key over a prefix of the values is not the key over the whole values
    prefix = table(ID, a, code, indexes=(Index("u_code", ("code",), True, (4,)),))
    assert not refuses_nothing(old, prefix, kept)
    # the primary key over other columns; a column renamed keeps its unique key
    assert not refuses_nothing(old, table(ID, a, code, pk=("id", "a")), kept)
    renamed = (("id", "id"), ("a", "a"), ("code", "sku"))
    sku = Index("u_sku", ("sku",), unique=True)
    assert refuses_nothing(old, table(ID, a, replace(code, name="sku"), indexes=(sku,)), renamed)


def test_new_columns_without_a_value_of_their_own() -> None:
    new = table(
        ID,
        Column("a", "int", nullable=False, default="0"),
        Column("b", "int", nullable=True),
        Column("c", "int", nullable=False),
        Column("d", "int", nullable=False, generated="`a` + 1"),
    )
    assert unfilled(new, (("id", "id"),)) == ["c"]


def test_a_definition_digest_leaves_the_counter_out() -> None:
    create = (
        "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) "
        "ENGINE=InnoDB AUTO_INCREMENT={} DEFAULT CHARSET=utf8mb4"
    )
    assert shape_of(create.format(5)) == shape_of(create.format(90))
    assert shape_of(create.format(5)) != shape_of(create.format(5).replace("int", "bigint"))
    assert shape_of(None) == ""
    assert auto_increment(create.format(90)) == 90
    commented = "CREATE TABLE `t` (\n  `id` int COMMENT 'AUTO_INCREMENT=7'\n) ENGINE=InnoDB"
    assert auto_increment(commented) is None


def test_shadow_names() -> None:
    names = shadow_names("orders", "k1", [])
    assert names is not None
    assert (names.shadow, names.old) == ("_orders_new", "_orders_old")
    assert all(n.startswith("_orders_") for n in names.triggers)
    assert [n[-4:] for n in names.triggers] == ["_del", "_upd", "_ins"]
    taken = shadow_names("orders", "k1", ["_ORDERS_OLD"])
    assert taken is not None and taken.shadow != "_orders_new" and taken.shadow.endswith("_new")
    assert shadow_names("orders", "k2", []) != names  # the triggers carry the key's tag
    long = shadow_names("x" * 64, "k1", [])
    assert long is not None
    assert all(len(n) <= NAME_LIMIT for n in (long.shadow, long.old, *long.triggers))
    assert shadow_names("orders", "k1", [taken.shadow, taken.old, "_orders_new"]) is None


COPY = ShadowCopy(
    "db", "t", "_t_new", (("id", "id"), ("a", "amount"), ("b", "b")), ("id",), "mysql"
)


def test_the_triggers_carry_every_write_in_the_new_shape() -> None:
    delete, update, insert = COPY.triggers(("d", "u", "i"))
    assert delete == (
        "CREATE TRIGGER `db`.`d` AFTER DELETE ON `db`.`t` FOR EACH ROW "
        "DELETE FROM `db`.`_t_new` WHERE `id` = OLD.`id`"
    )
    assert update == (
        "CREATE TRIGGER `db`.`u` AFTER UPDATE ON `db`.`t` FOR EACH ROW BEGIN "
        "IF NOT (OLD.`id` <=> NEW.`id`) THEN DELETE FROM `db`.`_t_new` WHERE `id` = OLD.`id`; "
        "END IF; REPLACE INTO `db`.`_t_new` (`id`, `amount`, `b`) "
        "VALUES (NEW.`id`, NEW.`a`, NEW.`b`); END"
    )
    assert insert == (
        "CREATE TRIGGER `db`.`i` AFTER INSERT ON `db`.`t` FOR EACH ROW "
        "REPLACE INTO `db`.`_t_new` (`id`, `amount`, `b`) VALUES (NEW.`id`, NEW.`a`, NEW.`b`)"
    )
    assert COPY.drop_triggers(("d", "u", "i"))[0] == "DROP TRIGGER IF EXISTS `db`.`d`"


def test_a_chunk_locks_its_source_rows_then_copies_those_not_there() -> None:
    walk = COPY.chunking()
    where = walk.where((10,), (20,))
    assert where == "((`_src`.`id` > 10)) AND ((`_src`.`id` <= 20))"
    assert COPY.lock(where) == (
        f"SELECT COUNT(*) FROM `db`.`t` AS _src WHERE {where} LOCK IN SHARE MODE"
    )
    assert COPY.copy(where) == (
        "INSERT INTO `db`.`_t_new` (`id`, `amount`, `b`) SELECT _src.`id`, _src.`a`, _src.`b` "
        f"FROM `db`.`t` AS _src WHERE {where} "
        "ON DUPLICATE KEY UPDATE `db`.`_t_new`.`id` = `db`.`_t_new`.`id`"
    )
    shadow_where = COPY.shadow_range().where((10,), (20,))
    assert COPY.check(where, shadow_where) == (
        f"SELECT (SELECT COUNT(*) FROM `db`.`t` AS _src WHERE {where}), "
        f"(SELECT COUNT(*) FROM `db`.`_t_new` AS _src WHERE {shadow_where})"
    )
    assert COPY.missing(where) == (
        f"SELECT _src.`id` FROM `db`.`t` AS _src WHERE {where} AND NOT EXISTS (SELECT 1 FROM "
        "`db`.`_t_new` AS _dst WHERE _dst.`id` = _src.`id`) LIMIT 3"
    )
    assert walk.boundary(None, 100) == (
        "SELECT `_src`.`id` FROM `db`.`t` AS _src WHERE 1 = 1 ORDER BY `_src`.`id` LIMIT 1 "
        "OFFSET 99"
    )
    # the chunk's rows are share-locked by the read that finds its end
    assert COPY.locked(walk.boundary(None, 100)) == (
        "SELECT `_src`.`id` FROM `db`.`t` AS _src WHERE 1 = 1 ORDER BY `_src`.`id` LIMIT 1 "
        "OFFSET 99 LOCK IN SHARE MODE"
    )


def test_the_fast_copy_leaves_the_rows_there_and_reads_what_strict_mode_refuses() -> None:
    where = COPY.chunking().where((10,), (20,))
    assert COPY.copy_fast(where) == (
        "INSERT IGNORE INTO `db`.`_t_new` (`id`, `amount`, `b`) SELECT _src.`id`, _src.`a`, "
        f"_src.`b` FROM `db`.`t` AS _src WHERE {where}"
    )
    written = ("Warning", 1062, "Duplicate entry '12' for key 'PRIMARY'")
    unsafe = ("Warning", 1592, "Unsafe statement written to the binary log")
    rounded = ("Note", 1265, "Data truncated for column 'amount' at row 3")
    assert copy_refusal([]) is None
    assert copy_refusal([written, unsafe, rounded, written]) is None
    cut = ("Warning", 1264, "Out of range value for column 'amount' at row 7")
    assert copy_refusal([written, cut]) == (
        "Out of range value for column 'amount' at row 7 (MySQL warning 1264)"
    )
    assert copy_refusal([("Error", 1048, "Column 'b' cannot be null")]) is not None


def test_a_composite_key_is_walked_and_matched_column_by_column() -> None:
    copy = ShadowCopy("", "t", "_t_new", (("a", "a"), ("b", "bee"), ("c", "c")), ("a", "b"))
    where = copy.chunking().where((1, "x"), None)
    assert where == "((`_src`.`a` > 1) OR (`_src`.`a` = 1 AND `_src`.`b` > 'x'))"
    assert copy.missing(where).endswith(
        "WHERE _dst.`a` = _src.`a` AND _dst.`bee` = _src.`b`) LIMIT 3"
    )
    # the shadow's ranges name the key as the shadow does
    assert copy.shadow_range().where((1, "x"), None) == (
        "((`_src`.`a` > 1) OR (`_src`.`a` = 1 AND `_src`.`bee` > 'x'))"
    )
    delete = copy.triggers(("d", "u", "i"))[0]
    assert delete.endswith("DELETE FROM `_t_new` WHERE `a` = OLD.`a` AND `bee` = OLD.`b`")


def test_the_swap_is_one_rename_and_the_counts_one_pair() -> None:
    assert COPY.swap("_t_old") == (
        "RENAME TABLE `db`.`t` TO `db`.`_t_old`, `db`.`_t_new` TO `db`.`t`"
    )
    assert COPY.counts() == ("SELECT COUNT(*) FROM `db`.`t`", "SELECT COUNT(*) FROM `db`.`_t_new`")


def test_names_are_quoted_whatever_they_hold() -> None:
    odd = ShadowCopy("d`b", "t`x", "_t`x_new", (("i`d", "i`d"),), ("i`d",))
    assert (
        odd.swap("o")
        == "RENAME TABLE `d``b`.`t``x` TO `d``b`.`o`, `d``b`.`_t``x_new` TO `d``b`.`t``x`"
    )
    assert "OLD.`i``d`" in odd.triggers(("d", "u", "i"))[0]
