"""The tables as a script leaves them (sql.overlay), and review walking a script against
them: what one statement creates, renames or drops, the next one sees."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from opendms.schema.model import Table
from opendms.sql.overlay import Overlay
from opendms.sql.review import review
from opendms.sql.tables import TableShape
from tests.unit.sql.test_review import DDL_KINDS, FixtureCatalog


def _walk(sql: str, engine: str = "mysql", catalog: FixtureCatalog | None = None) -> Overlay:
    nodes = [
        n
        for n in sqlglot.parse(sql, read="postgres" if engine == "postgresql" else "mysql")
        if isinstance(n, exp.Expression)
    ]
    overlay = Overlay(catalog or FixtureCatalog(), engine, nodes)
    for number, node in enumerate(nodes, start=1):
        overlay.apply(node, number)
    return overlay


def _defined(overlay: Overlay, name: str) -> Table:
    found = overlay.definition(name)
    assert found is not None, name
    return found


def test_created_altered_renamed_and_dropped_tables() -> None:
    o = _walk(
        "CREATE TABLE n1 (id INT PRIMARY KEY, a INT);"
        "ALTER TABLE n1 ADD COLUMN b INT, ADD INDEX idx_b (b);"
        "CREATE INDEX idx_a ON n1 (a);"
        "ALTER TABLE t RENAME TO t3;"
        "DROP TABLE u;"
        "TRUNCATE TABLE big"
    )
    n1 = _defined(o, "n1")
    assert [c.name for c in n1.columns] == ["id", "a", "b"]
    assert [i.name for i in n1.indexes] == ["idx_b", "idx_a"]
    assert o.created("n1") and o.exists("n1") is True
    assert o.exists("t") is False and o.gone("t") and o.definition("t") is None
    t3 = _defined(o, "t3")
    assert t3.name == "t3" and t3.column("name") is not None and not o.created("t3")
    assert o.exists("u") is False
    assert _defined(o, "big").rows == 0
    assert o.exists("log") is True and not o.created("log")  # untouched: the catalog's
    assert o.exists("ghost") is False
    assert o.alters == {"n1": [2]}  # t is another table once renamed
    assert o.new_columns == set()  # n1's b: added to a table the script created


def test_without_a_catalog_only_what_the_script_did_is_known() -> None:
    o = Overlay(None, "mysql")
    assert o.exists("t") is None and o.definition("t") is None
    o.apply(sqlglot.parse_one("CREATE TABLE t (id INT PRIMARY KEY)", read="mysql"))
    assert o.exists("t") is True and _defined(o, "t").primary_key == ("id",)


def test_rename_table_commands_and_unreadable_alters() -> None:
    o = _walk("RENAME TABLE t TO t3, u TO u3; ALTER TABLE big ADD COLUMN (c1 INT, c2 INT)")
    assert o.exists("t") is False and o.exists("t3") is True and o.exists("u3") is True
    # the columns that ALTER adds are unknown: its definition is no longer known at all
    assert o.exists("big") is True and o.definition("big") is None
    assert o.alters == {"big": [2]}


def test_comments_anywhere_in_the_script_and_postgresql_indexes() -> None:
    o = _walk(
        "CREATE TABLE n1 (id int PRIMARY KEY, v int);"
        "CREATE INDEX idx_v ON n1 (v);"
        "ALTER INDEX idx_v RENAME TO idx_v2;"
        "COMMENT ON TABLE n1 IS 'n';"
        "COMMENT ON COLUMN n1.v IS 'v';"
        "DROP INDEX idx_v2",
        "postgresql",
    )
    assert o.commented == {("n1", ""), ("n1", "v")}
    n1 = _defined(o, "n1")
    assert n1.comment == "n" and n1.indexes == ()
    v = n1.column("v")
    assert v is not None and v.comment == "v"


def test_create_if_not_exists_and_like() -> None:
    o = _walk("CREATE TABLE IF NOT EXISTS t (z INT); CREATE TABLE t4 LIKE t")
    assert _defined(o, "t").column("z") is None  # t was there: nothing changed
    t4 = _defined(o, "t4")
    assert t4.name == "t4" and [c.name for c in t4.columns] == ["id", "a", "b", "name", "x"]
    assert o.created("t4") and not o.created("t")


def _codes(sql: str, engine: str = "mysql") -> list[str]:
    return [f.code for f in review(sql, engine, DDL_KINDS, catalog=FixtureCatalog())]


def test_review_reads_each_statement_against_the_script_so_far() -> None:
    script = (
        "CREATE TABLE n1 (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY COMMENT 'id') "
        "COMMENT='n';"
        "ALTER TABLE n1 ADD COLUMN v INT NOT NULL COMMENT 'v', ADD INDEX idx_v (v);"
        "ALTER TABLE n1 MODIFY v BIGINT NOT NULL COMMENT 'v';"
        "DROP TABLE n1;"
        "ALTER TABLE n1 ADD COLUMN w INT COMMENT 'w'"
    )
    codes = _codes(script)
    # n1 is new and empty: adding NOT NULL without a default, changing a type, altering it
    # twice, dropping it: no findings; then it is gone
    assert codes == ["TABLE_NOT_FOUND"], codes
    codes = _codes(
        "ALTER TABLE t ADD COLUMN c INT COMMENT 'c'; DROP TABLE t; CREATE TABLE t "
        "(id INT PRIMARY KEY COMMENT 'id') COMMENT 't'; ALTER TABLE t ADD COLUMN d INT "
        "COMMENT 'd'; ALTER TABLE u ADD COLUMN e INT COMMENT 'e'; ALTER TABLE u DROP e"
    )
    assert codes == ["DESTRUCTIVE_DDL", "ALTER_TABLE_SPLIT"], codes


def test_a_catalog_without_definitions_keeps_the_definition_rules_silent() -> None:
    class ShapesOnly(FixtureCatalog):
        def definition(self, name: str) -> Table | None:
            return None

    found = review(
        "ALTER TABLE t MODIFY ghost INT; ALTER TABLE nothere ADD c INT",
        "mysql",
        DDL_KINDS,
        catalog=ShapesOnly(),
    )
    codes = {f.code for f in found}
    assert "COLUMN_NOT_FOUND" not in codes and "TABLE_NOT_FOUND" in codes
    assert ShapesOnly().table("t") == TableShape(
        frozenset({"id", "a", "b", "name", "x"}), ("id",), engine="innodb"
    )
