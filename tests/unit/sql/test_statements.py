"""What analyse() says about a batch of SQL: kinds, tables, VALUES rows, LIMIT, completeness."""

from __future__ import annotations

import pytest

from opendms.sql.statements import (
    ANALYSIS_LIMIT_BYTES,
    KINDS,
    Analysis,
    Statement,
    analyse,
    describe,
    parse_script,
    render,
)

ENGINES = ("mysql", "postgresql", "sqlite")


def one(text: str, engine: str) -> Statement:
    analysis = analyse(text, engine)
    assert analysis.complete, f"{text!r} in {engine} was not analysed"
    (statement,) = analysis.statements
    return statement


# ------------------------------------------------------------------ kinds


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("sql", "kind", "tables"),
    [
        ("SELECT * FROM t WHERE a = 1", "SELECT", ("t",)),
        ("SELECT a FROM t UNION SELECT a FROM u", "SELECT", ("t", "u")),
        ("SELECT a FROM t INTERSECT SELECT a FROM u", "SELECT", ("t", "u")),
        ("SELECT a FROM t EXCEPT SELECT a FROM u", "SELECT", ("t", "u")),
        ("INSERT INTO t (a) VALUES (1)", "INSERT", ("t",)),
        ("UPDATE t SET a = 1 WHERE b = 2", "UPDATE", ("t",)),
        ("DELETE FROM t WHERE b = 2", "DELETE", ("t",)),
        ("CREATE TABLE t (a INT)", "CREATE", ("t",)),
        ("CREATE INDEX ix_a ON t (a)", "CREATE", ("t",)),
        ("ALTER TABLE t ADD COLUMN b INT", "ALTER", ("t",)),
        ("DROP TABLE t", "DROP", ("t",)),
        ("DROP VIEW v", "DROP", ("v",)),
        ("TRUNCATE TABLE t", "TRUNCATE", ("t",)),
        ("RENAME TABLE t TO u", "RENAME", ("t", "u")),
        ("GRANT SELECT ON t TO bob", "GRANT", ("t",)),
        ("CALL archive_orders(1)", "CALL", ()),
        ("SET x = 1", "SET", ()),
        (
            "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = 1",
            "MERGE",
            ("t", "s"),
        ),
    ],
)
def test_kind_and_tables_of_each_statement(
    engine: str, sql: str, kind: str, tables: tuple[str, ...]
) -> None:
    st = one(sql, engine)
    assert (st.kind, st.tables) == (kind, tables)
    assert st.kind in KINDS


@pytest.mark.parametrize("engine", ["mysql", "mariadb", "sqlite"])
@pytest.mark.parametrize("sql", ["REPLACE INTO t (a) VALUES (1)", "replace into t values (1)"])
def test_replace_where_the_dialect_has_it(engine: str, sql: str) -> None:
    st = one(sql, engine)
    assert (st.kind, st.tables) == ("REPLACE", ("t",))


@pytest.mark.parametrize("engine", ["mysql", "mariadb"])
def test_mysql_replace_is_read_whole_like_an_insert_and_runs_as_replace(engine: str) -> None:
    # sqlglot keeps MySQL's REPLACE as a bare command: read that way, the table it selects
    # from went unseen (and unchecked), and its text ran as submitted
    (parsed,) = parse_script("REPLACE INTO t (a) SELECT secret FROM other_db.keys_tbl", engine)
    (node,) = parsed.nodes
    st = describe(node)
    assert (st.kind, st.tables) == ("REPLACE", ("t", "other_db.keys_tbl"))
    assert render(node, engine) == "REPLACE INTO t (a) SELECT secret FROM other_db.keys_tbl"
    assert one("REPLACE INTO t (a) VALUES (1), (2)", engine).literal_rows == 2


def test_replace_is_not_postgresql_and_is_reported_unanalysed() -> None:
    analysis = analyse("REPLACE INTO t (a) VALUES (1)", "postgresql")
    assert not analysis.complete
    assert analysis.kinds == {"OTHER"}


@pytest.mark.parametrize(
    ("engine", "sql"),
    [
        ("mysql", "SET @batch = 1000"),
        ("mysql", "SET NAMES utf8mb4"),
        ("postgresql", "SET search_path TO sales"),
        ("sqlite", "SET x = 1"),
    ],
)
def test_set_in_each_dialect(engine: str, sql: str) -> None:
    assert one(sql, engine) == Statement("SET", (), None, None)


@pytest.mark.parametrize("engine", ENGINES)
def test_alter_rename_is_alter_and_names_both_tables(engine: str) -> None:
    st = one("ALTER TABLE t RENAME TO u", engine)
    assert (st.kind, st.tables) == ("ALTER", ("t", "u"))


@pytest.mark.parametrize("engine", ENGINES)
def test_kinds_are_case_insensitive(engine: str) -> None:
    assert one("delete from T where id = 1", engine).kind == "DELETE"
    assert one("call p()", engine).kind == "CALL"
    assert one("rename table a to b", engine).kind == "RENAME"


def test_unknown_engine_reads_as_mysql() -> None:
    # backticks are MySQL quoting; the mysql dialect is the fallback
    assert one("SELECT * FROM `Db`.`T`", "oracle").tables == ("db.t",)


# ------------------------------------------------------------------ tables


@pytest.mark.parametrize("engine", ENGINES)
def test_tables_with_and_without_schema(engine: str) -> None:
    st = one("SELECT * FROM sales.orders o JOIN customers c ON c.id = o.customer_id", engine)
    assert st.tables == ("sales.orders", "customers")


@pytest.mark.parametrize("engine", ENGINES)
def test_three_part_names_keep_schema_and_table(engine: str) -> None:
    assert one("SELECT * FROM cat.sales.orders", engine).tables == ("sales.orders",)


@pytest.mark.parametrize(
    ("engine", "sql"),
    [
        ("mysql", "SELECT * FROM `Sales`.`Orders`"),
        ("sqlite", "SELECT * FROM `Sales`.`Orders`"),
        ("postgresql", 'SELECT * FROM "Sales"."Orders"'),
        ("sqlite", 'SELECT * FROM "Sales"."Orders"'),
        ("mysql", "SELECT * FROM SALES.ORDERS"),
    ],
)
def test_quoted_and_upper_case_names_are_lower_cased(engine: str, sql: str) -> None:
    assert one(sql, engine).tables == ("sales.orders",)


def test_backticks_are_not_postgresql() -> None:
    assert not analyse("SELECT * FROM `t`", "postgresql").complete


@pytest.mark.parametrize("engine", ENGINES)
def test_cte_names_are_not_tables(engine: str) -> None:
    sql = (
        "WITH recent AS (SELECT * FROM orders WHERE id > 10), "
        "big AS (SELECT * FROM recent WHERE amount > 5) "
        "SELECT * FROM big JOIN customers ON customers.id = big.customer_id"
    )
    st = one(sql, engine)
    assert sorted(st.tables) == ["customers", "orders"]


@pytest.mark.parametrize("engine", ENGINES)
def test_tables_are_listed_once_and_include_subqueries(engine: str) -> None:
    st = one("SELECT * FROM t WHERE a IN (SELECT a FROM u) AND b IN (SELECT b FROM t)", engine)
    assert st.tables == ("t", "u")


@pytest.mark.parametrize("engine", ENGINES)
def test_insert_select_names_target_and_source(engine: str) -> None:
    st = one("INSERT INTO archive SELECT * FROM orders", engine)
    assert (st.kind, st.tables, st.literal_rows) == ("INSERT", ("archive", "orders"), None)


@pytest.mark.parametrize("engine", ENGINES)
def test_select_without_table(engine: str) -> None:
    assert one("SELECT 1", engine) == Statement("SELECT", (), None, None)


def test_bare_command_takes_the_table_after_into_or_table() -> None:
    assert one("REPLACE INTO sales.t(a) VALUES (1)", "mysql").tables == ("sales.t",)
    assert one("RENAME TABLE sales.a TO sales.b", "mysql").tables == ("sales.a", "sales.b")


# ------------------------------------------------------------------ rows and limits


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("INSERT INTO t (a) VALUES (1)", 1),
        ("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", 3),
        ("INSERT INTO s.t (a) VALUES (1), (2)", 2),
        ("INSERT INTO t (a) VALUES ('x;y'), ('-- z'), ('/* ; */')", 3),
        ("INSERT INTO t SELECT * FROM u", None),
        ("INSERT INTO t DEFAULT VALUES", None),
        ("UPDATE t SET a = 1", None),
        ("DELETE FROM t", None),
        ("SELECT * FROM t", None),
    ],
)
def test_literal_rows_of_insert_values(engine: str, sql: str, rows: int | None) -> None:
    assert one(sql, engine).literal_rows == rows


def test_literal_rows_of_a_large_values_list() -> None:
    sql = "INSERT INTO t (a) VALUES " + ",".join(f"({i})" for i in range(1500))
    assert one(sql, "sqlite").literal_rows == 1500


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("sql", "limit"),
    [
        ("SELECT * FROM t LIMIT 10", 10),
        ("SELECT * FROM t LIMIT 0", 0),
        ("SELECT * FROM t LIMIT 5 OFFSET 100", 5),
        ("SELECT a FROM t UNION SELECT a FROM u LIMIT 7", 7),
        ("SELECT * FROM t", None),
        ("SELECT * FROM (SELECT * FROM t LIMIT 3) x", None),  # the outer query is unbounded
        ("SELECT * FROM t LIMIT ALL", None),
    ],
)
def test_select_limit(engine: str, sql: str, limit: int | None) -> None:
    assert one(sql, engine).limit == limit


def test_mysql_offset_comma_count_limit() -> None:
    assert one("SELECT * FROM t LIMIT 100, 5", "mysql").limit == 5


@pytest.mark.parametrize("engine", ["mysql", "sqlite"])
def test_limit_is_only_read_on_select(engine: str) -> None:
    st = one("DELETE FROM t LIMIT 10", engine)
    assert (st.kind, st.limit) == ("DELETE", None)


# ------------------------------------------------------------------ completeness


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "sql",
    [
        "SELEC * FROM t",
        "SELECT * FROM",
        "SELECT * FROM t WHERE",
        "DELETE FROM WHERE id = 1",
        "INSERT INTO t VALUES (1",
        "SELECT 'unterminated",
        "((((",
    ],
)
def test_unparseable_sql_is_incomplete(engine: str, sql: str) -> None:
    analysis = analyse(sql, engine)
    assert not analysis.complete
    assert analysis.statements == (Statement("OTHER", (), None, None),)


@pytest.mark.parametrize("engine", ENGINES)
def test_one_bad_statement_makes_the_batch_incomplete_and_is_named(engine: str) -> None:
    analysis = analyse("DELETE FROM t WHERE id = 1;\n  SELEC 1; UPDATE u SET a = 1", engine)
    assert not analysis.complete
    assert analysis.kinds == {"DELETE", "OTHER", "UPDATE"}  # the others are still known
    (error,) = analysis.errors
    assert error.startswith("statement 2 (line 2, column 9): "), error
    assert "'1'" in error


def test_text_over_the_limit_is_not_analysed() -> None:
    sql = "SELECT 1 -- " + "x" * ANALYSIS_LIMIT_BYTES
    assert analyse(sql, "mysql") == Analysis((), complete=False)


def test_the_limit_is_in_utf8_bytes_not_characters() -> None:
    head = "SELECT 'é' -- "
    sql = head + "é" * ((ANALYSIS_LIMIT_BYTES - len(head.encode())) // 2 + 1)
    assert len(sql) <= ANALYSIS_LIMIT_BYTES < len(sql.encode())
    assert analyse(sql, "postgresql") == Analysis((), complete=False)


def test_text_of_exactly_the_limit_is_analysed() -> None:
    head = "DELETE FROM t -- "
    sql = head + "x" * (ANALYSIS_LIMIT_BYTES - len(head))
    assert len(sql.encode()) == ANALYSIS_LIMIT_BYTES
    analysis = analyse(sql, "mysql")
    assert analysis.complete and analysis.kinds == {"DELETE"}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sql", ["", "   ", " ; ", "\n;\n;"])
def test_empty_text_has_no_statements(engine: str, sql: str) -> None:
    assert analyse(sql, engine) == Analysis((), complete=True)


# ------------------------------------------------------------------ batches


@pytest.mark.parametrize("engine", ENGINES)
def test_multi_statement_batch_in_order(engine: str) -> None:
    sql = """
        UPDATE customers SET name = 'x' WHERE id = 1;
        INSERT INTO orders (id) VALUES (1), (2);
        DELETE FROM sales.orders WHERE id = 3;
        SELECT * FROM customers LIMIT 2;
        CALL refresh();
    """
    analysis = analyse(sql, engine)
    assert analysis.complete
    assert [(s.kind, s.tables, s.literal_rows, s.limit) for s in analysis.statements] == [
        ("UPDATE", ("customers",), None, None),
        ("INSERT", ("orders",), 2, None),
        ("DELETE", ("sales.orders",), None, None),
        ("SELECT", ("customers",), None, 2),
        ("CALL", (), None, None),
    ]
    assert analysis.kinds == {"UPDATE", "INSERT", "DELETE", "SELECT", "CALL"}


@pytest.mark.parametrize("engine", ENGINES)
def test_semicolons_in_strings_and_comments_do_not_split(engine: str) -> None:
    sql = (
        "-- first; still a comment\n"
        "UPDATE t SET note = 'a; DROP TABLE t; b' /* ; DELETE FROM u; */ WHERE id = 1;\n"
        "/* block; comment */ SELECT ';' AS s FROM u"
    )
    analysis = analyse(sql, engine)
    assert analysis.complete
    assert [(s.kind, s.tables) for s in analysis.statements] == [
        ("UPDATE", ("t",)),
        ("SELECT", ("u",)),
    ]


@pytest.mark.parametrize("engine", ["mysql", "sqlite"])
def test_double_quoted_strings_with_semicolons_in_mysql_and_sqlite(engine: str) -> None:
    analysis = analyse('SELECT "a;b" FROM t; SELECT 1', engine)
    assert [s.kind for s in analysis.statements] == ["SELECT", "SELECT"]


def test_trailing_semicolon_and_trailing_comment_inside_statement() -> None:
    analysis = analyse("DELETE FROM t -- no where clause, on purpose\n;", "mysql")
    assert analysis.statements == (Statement("DELETE", ("t",), None, None),)


# ------------------------------------------------------------------ regressions


@pytest.mark.parametrize("engine", ENGINES)
def test_a_comment_after_the_last_semicolon_is_not_a_statement(engine: str) -> None:
    # sqlglot returns an exp.Semicolon node carrying the comment. Counted as an OTHER
    # statement it made affected rows unknown, routing a one-row DELETE as if it were huge.
    analysis = analyse("DELETE FROM t WHERE id = 1; -- done", engine)
    assert analysis.statements == (Statement("DELETE", ("t",), None, None),)


@pytest.mark.parametrize("engine", ENGINES)
def test_revoke_is_its_own_kind(engine: str) -> None:
    # sqlglot parses it to exp.Revoke; unmapped, a rule on [REVOKE] could never match.
    assert one("REVOKE SELECT ON t FROM bob", engine).kind == "REVOKE"


@pytest.mark.parametrize(
    ("engine", "sql"),
    [
        ("mysql", "REPLACE INTO `sales`.`t` (a) VALUES (1)"),
        ("sqlite", 'REPLACE INTO "sales"."t" (a) VALUES (1)'),
    ],
)
def test_bare_command_unquotes_each_part_of_a_qualified_name(engine: str, sql: str) -> None:
    # stripping quotes only at the ends turned `sales`.`t` into "sales`.`t".
    assert one(sql, engine).tables == ("sales.t",)


def test_rename_of_several_tables_names_all_of_them() -> None:
    # MySQL renames a and c here: a rule on c must see it.
    assert set(one("RENAME TABLE a TO b, c TO d", "mysql").tables) >= {"a", "c"}


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_a_cte_named_like_a_table_does_not_hide_the_dml_target(engine: str) -> None:
    # The target of a DELETE/UPDATE is always a real table (on PostgreSQL 16 and SQLite this
    # DELETE empties table orders): dropping CTE names everywhere let it evade table rules.
    assert "orders" in one("WITH orders AS (SELECT 1 AS id) DELETE FROM orders", engine).tables


def test_a_cte_reading_the_table_it_shadows_still_names_it() -> None:
    # Without RECURSIVE, a PostgreSQL CTE body naming itself reads the real table.
    shadow = "WITH orders AS (SELECT * FROM orders WHERE id < 10) SELECT * FROM orders"
    assert one(shadow, "postgresql").tables == ("orders",)


@pytest.mark.parametrize("engine", ["mysql", "postgresql", "sqlite"])
def test_a_recursive_ctes_reference_to_itself_names_no_table(engine: str) -> None:
    # Under WITH RECURSIVE the name is the CTE: counting it as a table asked a reader for a
    # grant on a table "c" that does not exist.
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
    assert one(sql, engine).tables == ()
    both = "WITH RECURSIVE c(x) AS (SELECT id FROM orders UNION ALL SELECT x FROM c) SELECT 1"
    assert one(both, engine).tables == ("orders",)


def test_multi_table_delete_resolves_aliases_to_tables() -> None:
    st = one("DELETE o FROM customers c JOIN orders o ON o.customer_id = c.id", "mysql")
    assert set(st.tables) == {"customers", "orders"}
