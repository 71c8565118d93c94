"""Reading schema-change statements into table definitions (sql.ddl), both dialects."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from opendms.schema.model import Column, Index, Table
from opendms.sql import ddl


def _node(sql: str, engine: str = "mysql") -> exp.Expression:
    found = sqlglot.parse_one(sql, read=ddl.dialect_of(engine))
    assert isinstance(found, exp.Expression)
    return found


def _create(sql: str, engine: str = "mysql") -> Table:
    node = _node(sql, engine)
    assert isinstance(node, exp.Create)
    table = ddl.table_of(node, engine)
    assert table is not None
    return table


def test_a_mysql_create_table_reads_columns_keys_and_options() -> None:
    t = _create(
        "CREATE TABLE `Orders` (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'id', "
        "code VARCHAR(64) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL DEFAULT '', "
        "note TEXT, amount DECIMAL(10, 2) DEFAULT 0, total INT AS (id + 1) STORED, "
        "PRIMARY KEY (id), KEY idx_code (code(10)), UNIQUE KEY uk_code_amount (code, amount), "
        "KEY (note(20)), KEY (note(30)), CONSTRAINT fk_x FOREIGN KEY (code) REFERENCES s.u (c)) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='the orders'"
    )
    assert t.name == "Orders" and t.primary_key == ("id",)
    assert (t.engine, t.charset, t.collation, t.comment) == (
        "innodb",
        "utf8mb4",
        "utf8mb4_bin",
        "the orders",
    )
    assert t.columns[0] == Column(
        "id", "bigint unsigned", nullable=False, auto_increment=True, comment="id"
    )
    code = t.column("CODE")
    assert code is not None
    assert (code.type, code.nullable, code.default, code.charset, code.collation) == (
        "varchar(64)",
        False,
        "''",
        "latin1",
        "latin1_bin",
    )
    total = t.column("total")
    assert total is not None and total.generated and total.generated_stored
    note = t.column("note")
    assert note is not None and note.nullable and note.default is None
    assert [(i.name, i.columns, i.unique, i.lengths) for i in t.indexes] == [
        ("idx_code", ("code",), False, (10,)),
        ("uk_code_amount", ("code", "amount"), True, ()),
        ("note", ("note",), False, (20,)),  # MySQL names an unnamed key after its column
        ("note_2", ("note",), False, (30,)),
    ]
    (fk,) = t.foreign_keys
    assert (fk.name, fk.columns, fk.ref_table, fk.ref_columns) == ("fk_x", ("code",), "s.u", ("c",))


def test_a_postgresql_create_table_folds_names_and_reads_serials() -> None:
    t = _create(
        'CREATE TABLE Orders (Id bigserial PRIMARY KEY, "Code" varchar(64) UNIQUE, '
        "t_id int REFERENCES t (id), CONSTRAINT pk_check CHECK (Id > 0))",
        "postgresql",
    )
    assert t.name == "orders" and t.primary_key == ("id",)
    assert t.columns[0] == Column("id", "bigint", nullable=False, auto_increment=True)
    assert t.column("Code") is not None and t.columns[1].name == "Code"
    assert t.indexes == (Index("orders_Code_key", ("Code",), unique=True, constraint=True),)
    assert [(f.columns, f.ref_table) for f in t.foreign_keys] == [(("t_id",), "t")]
    assert [c.name for c in t.checks] == ["pk_check"]


def test_create_table_as_select_and_like_define_no_columns() -> None:
    for sql in ("CREATE TABLE n AS SELECT * FROM t", "CREATE TABLE n LIKE t"):
        node = _node(sql)
        assert isinstance(node, exp.Create)
        assert ddl.table_of(node, "mysql") is None
        created = ddl.created_table(node)
        assert created is not None and created.name == "n"


def test_create_index_reads_its_table_and_parts() -> None:
    node = _node("CREATE UNIQUE INDEX uk_a ON s.t (a, b(10))")
    assert isinstance(node, exp.Create)
    made = ddl.index_of_create(node, "mysql")
    assert made is not None
    table, index = made
    assert table.sql() == "s.t"
    assert (index.name, index.columns, index.unique, index.lengths) == (
        "uk_a",
        ("a", "b"),
        True,
        (None, 10),
    )
    node = _node(
        "CREATE INDEX CONCURRENTLY ON t USING gin (lower(name), b DESC) WHERE a > 0", "postgresql"
    )
    assert isinstance(node, exp.Create)
    made = ddl.index_of_create(node, "postgresql")
    assert made is not None
    _, index = made
    assert (index.name, index.columns, index.method, index.descending, index.where) == (
        "t_LOWER(name)_b_idx",
        ("LOWER(name)", "b"),
        "gin",
        (False, True),
        "a > 0",
    )


BASE = Table(
    "t",
    (
        Column("id", "int", nullable=False),
        Column("a", "int"),
        Column("b", "varchar(10)", comment="b"),
    ),
    primary_key=("id",),
    indexes=(Index("idx_a", ("a",)), Index("idx_a_b", ("a", "b"))),
)


def _alter(sql: str, engine: str = "mysql", base: Table = BASE) -> Table:
    node = _node(sql, engine)
    assert isinstance(node, exp.Alter)
    return ddl.altered(base, node, engine)


def test_alter_table_adds_modifies_renames_and_drops_columns() -> None:
    t = _alter(
        "ALTER TABLE t ADD COLUMN c INT NOT NULL DEFAULT 0 AFTER id, MODIFY b VARCHAR(20), "
        "CHANGE a a2 BIGINT, ADD COLUMN d INT FIRST"
    )
    assert [c.name for c in t.columns] == ["d", "id", "c", "a2", "b"]
    b = t.column("b")
    assert b is not None and b.type == "varchar(20)" and b.comment == ""  # MODIFY restates
    assert [i.columns for i in t.indexes] == [("a2",), ("a2", "b")]
    t = _alter("ALTER TABLE t DROP COLUMN a, RENAME COLUMN b TO bb")
    assert [c.name for c in t.columns] == ["id", "bb"]
    # an index loses a dropped column; one left with none goes
    assert [(i.name, i.columns) for i in t.indexes] == [("idx_a_b", ("bb",))]


def test_alter_table_keys_and_options() -> None:
    t = _alter(
        "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, a), DROP INDEX idx_a, "
        "ADD UNIQUE KEY uk_b (b), ADD INDEX (b), RENAME INDEX idx_a_b TO idx_ab, "
        "ENGINE=InnoDB, COMMENT='tee'"
    )
    assert t.primary_key == ("id", "a")
    assert [(i.name, i.unique) for i in t.indexes] == [
        ("idx_ab", False),
        ("uk_b", True),
        ("b", False),
    ]
    assert (t.engine, t.comment) == ("innodb", "tee")
    t = _alter(
        "ALTER TABLE t ALTER COLUMN a TYPE bigint, ALTER COLUMN a SET NOT NULL, "
        "ALTER COLUMN b SET DEFAULT 'x', RENAME TO t3",
        "postgresql",
    )
    a, b = t.column("a"), t.column("b")
    assert a is not None and (a.type, a.nullable) == ("bigint", False)
    assert b is not None and b.default == "'x'"
    assert t.name == "t3"
