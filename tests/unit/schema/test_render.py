from __future__ import annotations

from dataclasses import replace

import pytest

from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from opendms.schema.render import differences, sync_plan, sync_statements
from opendms.schema.render_postgres import needs_using
from opendms.schema.translate import SchemaRefused, rename
from tests.unit.schema.tables import mysql_table, pg_table, reads_back


def test_mysql_create_and_drop() -> None:
    statements = reads_back(sync_statements(mysql_table(), None, "mariadb"), "mariadb")
    assert statements == [
        "CREATE TABLE `t` (`id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, `name` VARCHAR(50) "
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL DEFAULT '' COMMENT 'the name', "
        "`amount` DECIMAL(10, 2) NULL DEFAULT 0.00, `parent_id` INT NULL, PRIMARY KEY (`id`), "
        "INDEX `ix_name` (`name`(10)), CONSTRAINT `ck_amount` CHECK (`amount` >= 0)) "
        "ENGINE=innodb DEFAULT CHARACTER SET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='things'",
        "ALTER TABLE `t` ADD CONSTRAINT `fk_parent` FOREIGN KEY (`parent_id`) "
        "REFERENCES `parent` (`id`) ON DELETE CASCADE",
    ]
    assert sync_statements(None, mysql_table(), "mysql") == ["DROP TABLE `t`"]
    assert sync_statements(None, None, "mysql") == []
    assert sync_statements(mysql_table(), mysql_table(), "mysql") == []


def test_mysql_one_alter_between_foreign_keys_dropped_and_added() -> None:
    source = mysql_table()
    target = replace(
        source,
        columns=(
            source.columns[0],
            source.columns[2],  # amount stands before name
            replace(source.columns[1], type="varchar(20)", comment=""),
            Column("old", "int"),
        ),
        indexes=(Index("ix_old", ("old",)),),
        foreign_keys=(ForeignKey("fk_parent", ("old",), "parent", ("id",)),),
        checks=(Check("ck_amount", "`amount` > 0"),),
        engine="myisam",
        comment="",
    )
    plan = sync_plan(source, target, "mysql")
    assert plan.before == ("ALTER TABLE `t` DROP FOREIGN KEY `fk_parent`",)
    (main,) = plan.main
    assert main == (
        "ALTER TABLE `t` DROP CHECK `ck_amount`, DROP INDEX `ix_old`, DROP COLUMN `old`, "
        "MODIFY COLUMN `name` VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci "
        "NOT NULL DEFAULT '' COMMENT 'the name', "
        "MODIFY COLUMN `amount` DECIMAL(10, 2) NULL DEFAULT 0.00 AFTER `name`, "
        "ADD COLUMN `parent_id` INT NULL AFTER `amount`, ADD INDEX `ix_name` (`name`(10)), "
        "ADD CONSTRAINT `ck_amount` CHECK (`amount` >= 0), ENGINE=innodb, COMMENT='things'"
    )
    assert plan.after == (
        "ALTER TABLE `t` ADD CONSTRAINT `fk_parent` FOREIGN KEY (`parent_id`) "
        "REFERENCES `parent` (`id`) ON DELETE CASCADE",
    )
    reads_back(plan.statements, "mysql")
    # MariaDB drops a CHECK as a constraint
    assert "DROP CONSTRAINT `ck_amount`" in sync_plan(source, target, "mariadb").main[0]


def test_mysql_primary_key_generated_columns_and_expression_defaults() -> None:
    source = Table(
        "t",
        (
            Column("a", "int", nullable=False),
            Column("b", "int", nullable=False),
            Column("g", "int", generated="`a` + `b`", generated_stored=True),
            Column("u", "varchar(36)", default="uuid()"),
            Column(
                "ts",
                "timestamp(3)",
                False,
                "CURRENT_TIMESTAMP(3)",
                on_update="CURRENT_TIMESTAMP(3)",
            ),
        ),
        primary_key=("a", "b"),
        indexes=(Index("ix_g", ("g",)),),
    )
    target = replace(
        source,
        columns=(
            *source.columns[:2],
            replace(source.columns[2], generated="`a` - `b`"),
            *source.columns[3:],
        ),
        primary_key=("a",),
    )
    (main,) = reads_back(sync_statements(source, target, "mariadb"), "mariadb")
    assert main == (
        "ALTER TABLE `t` DROP INDEX `ix_g`, DROP PRIMARY KEY, DROP COLUMN `g`, "
        "ADD COLUMN `g` INT GENERATED ALWAYS AS (`a` + `b`) STORED AFTER `b`, "
        "ADD PRIMARY KEY (`a`, `b`), ADD INDEX `ix_g` (`g`)"
    )
    (created, *_) = sync_statements(source, None, "mysql")
    assert "`u` VARCHAR(36) NULL DEFAULT (UUID())" in created
    assert "DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)" in created


def test_a_generated_column_becomes_plain_in_place_or_is_refused() -> None:
    plain = Table("t", (Column("a", "int"), Column("g", "int")))
    stored = Table(
        "t", (Column("a", "int"), Column("g", "int", generated="`a` * 2", generated_stored=True))
    )
    assert sync_statements(plain, stored, "mariadb") == [
        "ALTER TABLE `t` MODIFY COLUMN `g` INT NULL"
    ]
    virtual = replace(
        stored, columns=(stored.columns[0], replace(stored.columns[1], generated_stored=False))
    )
    with pytest.raises(SchemaRefused, match="column g: a VIRTUAL generated column"):
        sync_statements(plain, virtual, "mariadb")
    with pytest.raises(SchemaRefused, match=r"column g: .*generated PostgreSQL column a plain one"):
        sync_statements(plain, stored, "postgresql")


def test_mysql8_functional_key_parts() -> None:
    table = Table("t", (Column("a", "varchar(9)"),), indexes=(Index("ix", ("(lower(`a`))", "a")),))
    (created,) = reads_back(sync_statements(table, None, "mysql"), "mysql")
    assert created.endswith("INDEX `ix` ((LOWER(`a`)), `a`))")


def test_identifiers_are_quoted_by_the_dialect() -> None:
    odd = Table(
        "we`ird",
        (Column('sel"ect', "int"), Column("order", "int")),
        indexes=(Index("i x", ("order",)),),
    )
    (mysql,) = reads_back(sync_statements(odd, None, "mysql"), "mysql")
    assert mysql.startswith('CREATE TABLE `we``ird` (`sel"ect` INT NULL, `order` INT NULL')
    statements = reads_back(sync_statements(odd, None, "postgresql"), "postgresql")
    assert statements[0] == 'CREATE TABLE "we`ird" ("sel""ect" INT, "order" INT)'
    assert statements[1] == 'CREATE INDEX "i x" ON "we`ird"("order")'


def test_postgresql_create_with_indexes_comments_and_keys_after() -> None:
    statements = reads_back(sync_statements(pg_table(), None, "postgresql"), "postgresql")
    assert statements == [
        'CREATE TABLE "t" ("id" BIGINT NOT NULL GENERATED BY DEFAULT AS IDENTITY, '
        '"name" VARCHAR(50) NOT NULL DEFAULT \'\', "amount" DECIMAL(10, 2) DEFAULT 0, '
        '"parent_id" INT, CONSTRAINT "t_pkey" PRIMARY KEY ("id"), '
        'CONSTRAINT "t_name_key" UNIQUE ("name"), CONSTRAINT "ck_amount" CHECK (amount >= 0))',
        'CREATE INDEX "ix_lower" ON "t"((LOWER(CAST((name) AS TEXT))), "amount" DESC)',
        "COMMENT ON TABLE \"t\" IS 'things'",
        'COMMENT ON COLUMN "t"."name" IS \'the name\'',
        'ALTER TABLE "t" ADD CONSTRAINT "t_parent_id_fkey" FOREIGN KEY ("parent_id") '
        'REFERENCES "parent" ("id")',
    ]


def test_postgresql_alter_one_action_a_statement() -> None:
    source = pg_table()
    target = replace(
        source,
        columns=(
            source.columns[0],
            replace(source.columns[1], type="text", nullable=True, default="'x'", comment=""),
            replace(source.columns[2], type="varchar(20)", default="'1'"),
            Column("old", "integer"),
        ),
        indexes=(replace(source.indexes[0], where="amount > 0"), Index("ix_old", ("old",))),
        foreign_keys=(),
        checks=(),
        comment="",
    )
    plan = sync_plan(source, target, "postgresql")
    assert plan.before == ()
    assert list(plan.main) == [
        'DROP INDEX "ix_lower"',
        'DROP INDEX "ix_old"',
        'ALTER TABLE "t" DROP COLUMN "old"',
        'ALTER TABLE "t" ALTER COLUMN "name" DROP DEFAULT',
        'ALTER TABLE "t" ALTER COLUMN "name" SET DATA TYPE VARCHAR(50)',
        'ALTER TABLE "t" ALTER COLUMN "name" SET DEFAULT \'\'',
        'ALTER TABLE "t" ALTER COLUMN "name" SET NOT NULL',
        'COMMENT ON COLUMN "t"."name" IS \'the name\'',
        'ALTER TABLE "t" ALTER COLUMN "amount" DROP DEFAULT',
        'ALTER TABLE "t" ALTER COLUMN "amount" SET DATA TYPE DECIMAL(10, 2) '
        'USING CAST("amount" AS DECIMAL(10, 2))',
        'ALTER TABLE "t" ALTER COLUMN "amount" SET DEFAULT 0',
        'ALTER TABLE "t" ADD COLUMN "parent_id" INT',
        'CREATE INDEX "ix_lower" ON "t"((LOWER(CAST((name) AS TEXT))), "amount" DESC)',
        'ALTER TABLE "t" ADD CONSTRAINT "t_name_key" UNIQUE ("name")',
        'ALTER TABLE "t" ADD CONSTRAINT "ck_amount" CHECK (amount >= 0)',
        "COMMENT ON TABLE \"t\" IS 'things'",
    ]
    assert plan.after == (
        'ALTER TABLE "t" ADD CONSTRAINT "t_parent_id_fkey" FOREIGN KEY ("parent_id") '
        'REFERENCES "parent" ("id")',
    )
    reads_back(plan.statements, "postgresql")


def test_postgresql_comment_removed_with_an_empty_one() -> None:
    source = pg_table(comment="")
    (statement,) = sync_statements(source, pg_table(), "postgresql")
    assert statement == "COMMENT ON TABLE \"t\" IS ''"


def test_postgresql_primary_key_and_unique_constraint_change() -> None:
    source = pg_table()
    target = replace(
        source,
        primary_key=("id", "name"),
        indexes=(source.indexes[0], replace(source.indexes[1], constraint=False)),
    )
    assert reads_back(sync_statements(source, target, "postgresql"), "postgresql") == [
        'DROP INDEX "t_name_key"',
        'ALTER TABLE "t" DROP CONSTRAINT "t_pkey"',
        'ALTER TABLE "t" ADD CONSTRAINT "t_pkey" PRIMARY KEY ("id")',
        'ALTER TABLE "t" ADD CONSTRAINT "t_name_key" UNIQUE ("name")',
    ]


def test_using_only_where_postgresql_cannot_convert_alone() -> None:
    assert not needs_using("integer", "bigint")
    assert not needs_using("varchar(10)", "text")
    assert not needs_using("integer", "text")
    assert not needs_using("timestamp", "timestamp with time zone")
    assert needs_using("text", "integer")
    assert needs_using("integer", "boolean")
    assert needs_using("json", "jsonb")


def test_postgresql_refuses_what_sqlglot_reads_only_as_a_command() -> None:
    source = pg_table()
    target = replace(
        source, columns=(replace(source.columns[0], auto_increment=False), *source.columns[1:])
    )
    with pytest.raises(SchemaRefused, match=r"table t, column id: .*identity"):
        sync_statements(source, target, "postgresql")
    varbit = Table("t", (Column("b", "bit varying(5)"),))
    with pytest.raises(SchemaRefused, match=r"table t, column b: .*bit varying"):
        sync_statements(varbit, None, "postgresql")


def test_renamed_target_takes_the_names_made_from_the_table_s() -> None:
    statements = sync_statements(pg_table(), None, "postgresql", name="t2")
    assert statements[0].startswith('CREATE TABLE "t2" (')
    assert 'CONSTRAINT "t2_pkey" PRIMARY KEY' in statements[0]
    assert 'CONSTRAINT "t2_name_key" UNIQUE' in statements[0]
    assert '"t2_parent_id_fkey"' in statements[-1]
    assert differences(pg_table(), rename(pg_table(), "t2"), "postgresql") == []
    # a target named t2 whose names are still t's: they differ, and the old ones go
    stale = {
        (d.category.value, d.name)
        for d in differences(pg_table(), replace(pg_table(), name="t2"), "postgresql")
    }
    assert stale == {
        ("add index", "t2_name_key"),
        ("drop index", "t_name_key"),
        ("add foreign key", "t2_parent_id_fkey"),
        ("drop foreign key", "t_parent_id_fkey"),
    }


def test_sqlite_creates_adds_and_refuses_the_rest() -> None:
    table = Table(
        "t",
        (Column("id", "integer", False, auto_increment=True), Column("name", "text", False, "'x'")),
        primary_key=("id",),
        indexes=(
            Index("ix_name", ("name",), descending=(True,)),
            Index("u", ("name",), unique=True, constraint=True),
        ),
        foreign_keys=(ForeignKey("fk", ("id",), "p", ("id",), "CASCADE"),),
    )
    assert reads_back(sync_statements(table, None, "sqlite"), "sqlite") == [
        'CREATE TABLE "t" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL DEFAULT \'x\', '
        'UNIQUE ("name"), CONSTRAINT "fk" FOREIGN KEY ("id") REFERENCES "p" ("id") '
        "ON DELETE CASCADE)",
        'CREATE INDEX "ix_name" ON "t"("name" DESC)',
    ]
    wider = replace(
        table, columns=(*table.columns, Column("note", "text")), indexes=table.indexes[1:]
    )
    assert sync_statements(wider, table, "sqlite") == [
        'DROP INDEX "ix_name"',
        'ALTER TABLE "t" ADD COLUMN "note" TEXT',
    ]
    retyped = replace(table, columns=(table.columns[0], replace(table.columns[1], type="integer")))
    with pytest.raises(SchemaRefused, match="SQLite cannot alter changing columns name"):
        sync_statements(retyped, table, "sqlite")


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(SchemaRefused, match="oracle"):
        sync_statements(mysql_table(), None, "oracle")
