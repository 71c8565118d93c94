"""The SQL console's statement allowlist (``sql.console``): what reads, what changes, what is
refused and why, the row cap put into the query's tree, and the text that runs."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from opendms.sql import console
from opendms.sql.console import ConsoleRefused, ConsoleStatement, read_script

MYSQL, PG, SQLITE = "mysql", "postgresql", "sqlite"


@pytest.fixture(autouse=True)
def _scripts_read_afresh() -> Iterator[None]:
    """Every test reads its scripts itself: what one read (a test that patches the
    generator, say) is not remembered for the next."""
    console._remembered.cache_clear()
    yield
    console._remembered.cache_clear()


def one(sql: str, engine: str = MYSQL, max_rows: int = 1000) -> ConsoleStatement:
    (st,) = read_script(sql, engine, max_rows)
    return st


def ok(sql: str, engine: str = MYSQL, max_rows: int = 1000) -> ConsoleStatement:
    st = one(sql, engine, max_rows)
    assert st.refusal is None, st.refusal
    return st


def refusal(sql: str, engine: str = MYSQL) -> str:
    st = one(sql, engine)
    assert st.refusal is not None, f"{sql!r} would run as {st.run!r}"
    assert st.run == ""
    return st.refusal


# reads


@pytest.mark.parametrize("engine", [MYSQL, PG, SQLITE])
@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("SELECT id, name FROM customers WHERE id = 1", ("customers",)),
        ("WITH c AS (SELECT id FROM orders) SELECT id FROM c", ("orders",)),
        ("SELECT id FROM orders UNION SELECT id FROM customers", ("orders", "customers")),
        ("SELECT 1", ()),
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", ()),
    ],
)
def test_queries_are_reads_capped_in_the_tree(
    engine: str, sql: str, tables: tuple[str, ...]
) -> None:
    st = ok(sql, engine)
    assert st.kind == "SELECT" and not st.changes and st.query is not None
    assert st.tables == tables
    # one row over the cap: the service reads it to say the result was cut off
    assert st.run.endswith("LIMIT 1001")


@pytest.mark.parametrize(
    ("sql", "engine", "runs"),
    [
        ("EXPLAIN SELECT * FROM t", MYSQL, "EXPLAIN SELECT * FROM t"),
        ("EXPLAIN FORMAT=JSON SELECT * FROM t", MYSQL, "EXPLAIN FORMAT=JSON SELECT * FROM t"),
        ("explain format = tree SELECT 1", MYSQL, "EXPLAIN FORMAT = TREE SELECT 1"),
        ("EXPLAIN ANALYZE SELECT * FROM t", MYSQL, "EXPLAIN ANALYZE SELECT * FROM t"),
        ("EXPLAIN UPDATE t SET a = 1", MYSQL, "EXPLAIN UPDATE t SET a = 1"),
        ("EXPLAIN DELETE FROM t WHERE id=1", MYSQL, "EXPLAIN DELETE FROM t WHERE id = 1"),
        ("DESCRIBE SELECT * FROM t", MYSQL, "EXPLAIN SELECT * FROM t"),
        ("EXPLAIN SELECT * FROM t", PG, "EXPLAIN SELECT * FROM t"),
        ("EXPLAIN ANALYZE SELECT * FROM t", PG, "EXPLAIN ANALYZE SELECT * FROM t"),
        ("EXPLAIN ANALYZE VERBOSE SELECT 1", PG, "EXPLAIN ANALYZE VERBOSE SELECT 1"),
        ("EXPLAIN VERBOSE SELECT 1", PG, "EXPLAIN VERBOSE SELECT 1"),
        ("EXPLAIN (ANALYZE, BUFFERS) SELECT 1", PG, "EXPLAIN (ANALYZE, BUFFERS) SELECT 1"),
        ("EXPLAIN (FORMAT JSON, COSTS off) SELECT 1", PG,
         "EXPLAIN (FORMAT JSON, COSTS OFF) SELECT 1"),
        ("EXPLAIN (ANALYZE false) DELETE FROM t", PG, "EXPLAIN (ANALYZE FALSE) DELETE FROM t"),
        ("EXPLAIN (ANALYZE off, FORMAT yaml) UPDATE t SET a=1", PG,
         "EXPLAIN (ANALYZE OFF, FORMAT YAML) UPDATE t SET a = 1"),
        ("EXPLAIN UPDATE t SET a = 1", PG, "EXPLAIN UPDATE t SET a = 1"),
        ("EXPLAIN QUERY PLAN SELECT * FROM t", SQLITE, "EXPLAIN QUERY PLAN SELECT * FROM t"),
        ("EXPLAIN QUERY PLAN UPDATE t SET a=1", SQLITE, "EXPLAIN QUERY PLAN UPDATE t SET a = 1"),
    ],
)  # fmt: skip
def test_explain_with_each_dialects_options_is_a_read(sql: str, engine: str, runs: str) -> None:
    st = ok(sql, engine)
    assert st.kind == "EXPLAIN" and not st.changes and st.run == runs
    assert st.tables == (("t",) if re.search(r"\bt\b", sql) else ())


@pytest.mark.parametrize(
    ("sql", "engine"),
    [
        ("EXPLAIN ANALYZE UPDATE t SET a = 1", MYSQL),
        ("EXPLAIN ANALYZE DELETE FROM t", PG),
        ("EXPLAIN (ANALYZE) UPDATE t SET a = 1", PG),
        ("EXPLAIN (ANALYZE true) DELETE FROM t", PG),
        ("EXPLAIN (ANALYZE ON, FORMAT JSON) INSERT INTO t VALUES (1)", PG),
        # PostgreSQL takes the last of repeated options: either order runs the DELETE
        ("EXPLAIN (ANALYZE off, ANALYZE) DELETE FROM t", PG),
        ("EXPLAIN (ANALYZE, ANALYZE off) DELETE FROM t", PG),
    ],
)
def test_explain_analyze_runs_what_it_explains_so_only_of_a_query(sql: str, engine: str) -> None:
    assert "only of a SELECT" in refusal(sql, engine)


@pytest.mark.parametrize(
    ("sql", "engine", "words"),
    [
        ("EXPLAIN SELECT sleep(1)", MYSQL, "sleep()"),
        ("EXPLAIN ANALYZE SELECT pg_sleep(1)", PG, "pg_sleep()"),
        ("EXPLAIN UPDATE t SET a = load_file('/etc/passwd')", MYSQL, "load_file()"),
        ("EXPLAIN SELECT * FROM t FOR UPDATE", PG, "FOR UPDATE"),
        ("EXPLAIN FOR CONNECTION 5", MYSQL, "does not parse"),  # another session's plan
        ("EXPLAIN /**/ANALYZE UPDATE t SET a=1", MYSQL, "does not parse"),
        ("EXPLAIN SHOW TABLES", MYSQL, "EXPLAIN of"),
        ("EXPLAIN t", MYSQL, "EXPLAIN of"),
        ("EXPLAIN", MYSQL, "EXPLAIN takes one"),
        ("EXPLAIN SELECT 1; ", PG, ""),
    ],
)
def test_what_explain_explains_is_held_to_the_same_rules(sql: str, engine: str, words: str) -> None:
    if not words:  # a trailing delimiter is no second statement
        ok(sql, engine)
        return
    assert words in refusal(sql, engine)


@pytest.mark.parametrize(
    ("sql", "runs"),
    [("DESCRIBE t", "DESCRIBE t"), ("DESC t", "DESCRIBE t"), ("desc `t`", "DESCRIBE `t`")],
)
def test_mysqls_describe_of_a_table_is_a_read(sql: str, runs: str) -> None:
    st = ok(sql)
    assert (st.kind, st.run, st.tables) == ("DESCRIBE", runs, ("t",))


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("SHOW TABLES", ()),
        ("SHOW FULL TABLES", ()),
        ("SHOW TABLES LIKE 'a%'", ()),
        ("SHOW COLUMNS FROM t", ("t",)),
        ("SHOW FULL COLUMNS FROM t", ("t",)),
        ("SHOW INDEX FROM t", ("t",)),
        ("SHOW CREATE TABLE t", ("t",)),
        ("SHOW CREATE VIEW v", ("v",)),
        ("SHOW TABLE STATUS", ()),
        ("SHOW DATABASES", ()),
        ("SHOW VARIABLES LIKE 'max%'", ()),
        ("SHOW VARIABLES WHERE Variable_name = lower('X')", ()),
        ("SHOW GLOBAL STATUS", ()),
        ("SHOW WARNINGS", ()),
        ("SHOW ERRORS", ()),
        ("SHOW ENGINES", ()),
        ("SHOW CHARACTER SET", ()),
        ("SHOW COLLATION", ()),
    ],
)
def test_the_show_forms_that_describe_tables_and_settings_are_reads(
    sql: str, tables: tuple[str, ...]
) -> None:
    st = ok(sql)
    assert st.kind == "SHOW" and not st.changes and st.tables == tables
    assert st.run.upper().startswith("SHOW")


@pytest.mark.parametrize(
    ("sql", "runs"),
    [
        ("SHOW search_path", "SHOW search_path"),
        ("show ALL", "SHOW ALL"),
        ("SHOW server_version", "SHOW server_version"),
        ("SHOW auto_explain.log_min_duration", "SHOW auto_explain.log_min_duration"),
        ("SHOW TIME  ZONE", "SHOW TIME ZONE"),
        ("SHOW TRANSACTION ISOLATION LEVEL", "SHOW TRANSACTION ISOLATION LEVEL"),
    ],
)
def test_postgresqls_show_of_a_setting_is_a_read(sql: str, runs: str) -> None:
    st = ok(sql, PG)
    assert (st.kind, st.run) == ("SHOW", runs)


@pytest.mark.parametrize("sql", ['SHOW "x"', "SHOW x y", "SHOW x = 1", "SHOW x()", "SHOW"])
def test_postgresqls_show_takes_one_setting_name_and_nothing_else(sql: str) -> None:
    refusal(sql, PG)


# changes


@pytest.mark.parametrize("engine", [MYSQL, PG, SQLITE])
@pytest.mark.parametrize(
    ("sql", "kind", "tables"),
    [
        ("INSERT INTO t (a) VALUES (1)", "INSERT", ("t",)),
        ("INSERT INTO t SELECT a FROM u", "INSERT", ("t", "u")),
        ("UPDATE t SET a = 1 WHERE id = 2", "UPDATE", ("t",)),
        ("DELETE FROM t WHERE id = 2", "DELETE", ("t",)),
        ("CREATE TABLE x (id INT PRIMARY KEY)", "CREATE", ("x",)),
        ("ALTER TABLE x ADD COLUMN b INT", "ALTER", ("x",)),
        ("DROP TABLE x", "DROP", ("x",)),
        ("DROP TABLE IF EXISTS x", "DROP", ("x",)),
        ("CREATE INDEX i ON t (a)", "CREATE", ("t",)),
        ("CREATE VIEW v AS SELECT a FROM t", "CREATE", ("v", "t")),
        ("DROP VIEW v", "DROP", ("v",)),
    ],
)
def test_data_and_table_changes_are_changes(
    engine: str, sql: str, kind: str, tables: tuple[str, ...]
) -> None:
    st = ok(sql, engine)
    assert st.kind == kind and st.changes and st.parsed is not None and st.query is None
    assert st.tables == tables
    assert "LIMIT" not in st.run  # the row cap is for what a read shows


@pytest.mark.parametrize(
    ("sql", "engine", "kind", "runs"),
    [
        ("TRUNCATE t", MYSQL, "TRUNCATE", "TRUNCATE TABLE t"),
        ("TRUNCATE TABLE t", PG, "TRUNCATE", "TRUNCATE TABLE t"),
        ("REPLACE INTO t (a) VALUES (1)", MYSQL, "REPLACE", "REPLACE INTO t (a) VALUES (1)"),
        ("DROP INDEX i ON t", MYSQL, "DROP", "DROP INDEX i ON t"),
        ("DROP INDEX i", PG, "DROP", "DROP INDEX i"),
        ("ALTER VIEW v AS SELECT 1", MYSQL, "ALTER", "ALTER VIEW v AS SELECT 1"),
    ],
)
def test_the_dialects_own_changes(sql: str, engine: str, kind: str, runs: str) -> None:
    st = ok(sql, engine)
    assert (st.kind, st.run) == (kind, runs) and st.changes


@pytest.mark.parametrize(
    ("sql", "engine", "name"),
    [
        ("UPDATE t SET a = sleep(1)", MYSQL, "sleep()"),
        ("DELETE FROM t WHERE a = load_file('x')", MYSQL, "load_file()"),
        ("INSERT INTO t SELECT pg_read_file('/etc/passwd')", PG, "pg_read_file()"),
        ("CREATE TABLE x (a int DEFAULT pg_sleep(1))", PG, "pg_sleep()"),
        ("CREATE INDEX i ON t ((pg_sleep(1)))", PG, "pg_sleep()"),
        ("CREATE VIEW v AS SELECT pg_read_file('x')", PG, "pg_read_file()"),
    ],
)
def test_a_change_calls_only_allowed_functions(sql: str, engine: str, name: str) -> None:
    assert name in refusal(sql, engine)


# refusals


@pytest.mark.parametrize(
    ("sql", "engine", "words"),
    [
        ("GRANT ALL ON *.* TO x", MYSQL, "GRANT"),
        ("GRANT SELECT ON t TO x", PG, "GRANT"),
        ("REVOKE ALL ON *.* FROM x", MYSQL, "REVOKE"),
        ("SET @a = 1", MYSQL, "SET"),
        ("SET SESSION sql_mode = ''", MYSQL, "SET"),
        ("SET search_path = x", PG, "SET"),
        ("SET ROLE postgres", PG, "SET"),
        ("CALL p()", MYSQL, "CALL"),
        ("CALL p()", PG, "CALL"),
        ("CREATE FUNCTION f() RETURNS INT RETURN 1", MYSQL, "not FUNCTION"),
        ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", PG, "not FUNCTION"),
        ("CREATE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$", PG, "not PROCEDURE"),
        ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", MYSQL, "CREATE"),
        ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", PG,
         "not TRIGGER"),
        ("DROP PROCEDURE p", MYSQL, "not PROCEDURE"),
        ("DROP TRIGGER tr", MYSQL, "not TRIGGER"),
        ("CREATE DATABASE d", MYSQL, "not DATABASE"),
        ("DROP SCHEMA s CASCADE", PG, "not SCHEMA"),
        ("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", MYSQL, "cannot check"),
        ("CREATE EXTENSION dblink", PG, "cannot check"),
        ("ALTER SYSTEM SET work_mem = 1", PG, "cannot check"),
        ("CREATE ROLE x", PG, "cannot check"),
        ("DO $$ BEGIN END $$", PG, "cannot check"),
        ("COPY t FROM PROGRAM 'id'", PG, "COPY"),
        ("LOCK TABLES t READ", MYSQL, "cannot check"),
        ("LOCK TABLE t", PG, "cannot check"),
        ("KILL 1", MYSQL, "KILL"),
        ("USE mysql", MYSQL, "USE"),
        ("LOAD DATA INFILE '/x' INTO TABLE t", MYSQL, "does not parse"),
        ("HANDLER t OPEN", MYSQL, "does not parse"),
        ("COMMIT", MYSQL, "COMMIT"),
        ("ROLLBACK", PG, "ROLLBACK"),
        ("START TRANSACTION", MYSQL, "TRANSACTION"),
        ("VACUUM", PG, "cannot check"),
        ("PREPARE p AS SELECT 1", PG, "cannot check"),
        ("LISTEN x", PG, "not"),
        ("RENAME TABLE a TO b", MYSQL, "cannot check"),
        ("PRAGMA table_info(t)", SQLITE, "PRAGMA"),
    ],
)  # fmt: skip
def test_what_is_not_a_read_or_a_table_change_is_refused(sql: str, engine: str, words: str) -> None:
    assert words in refusal(sql, engine)


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW PROCESSLIST",
        "SHOW FULL PROCESSLIST",
        "SHOW GRANTS",
        "SHOW GRANTS FOR root",
        "SHOW BINLOG EVENTS",
        "SHOW MASTER STATUS",
        "SHOW ENGINE INNODB STATUS",
        "SHOW CREATE PROCEDURE p",
        "SHOW TRIGGERS",
    ],
)
def test_show_forms_about_other_sessions_users_or_changes_are_refused(sql: str) -> None:
    assert "is not run by the console" in refusal(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW TABLES FROM mysql",
        "SHOW TABLES IN mysql",
        "SHOW COLUMNS FROM t FROM mysql",
        "SHOW COLUMNS FROM mysql.user",
        "SHOW INDEX FROM t IN mysql",
        "SHOW CREATE TABLE `mysql`.`user`",
        "SHOW TABLE STATUS FROM mysql",
    ],
)
def test_show_of_another_database_is_refused(sql: str) -> None:
    assert "another database" in refusal(sql)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SHOW TABLES WHERE sleep(1)", "sleep()"),
        ("SHOW COLUMNS FROM t WHERE load_file('/etc/passwd') IS NOT NULL", "load_file()"),
        ("SHOW TABLES WHERE (SELECT count(*) FROM secret.t) > 0", "subquery"),
        ("SHOW TABLES WHERE Tables_in_x IN (SELECT a FROM secret.t)", "subquery"),
    ],
)
def test_shows_filter_is_held_to_the_read_rules(sql: str, words: str) -> None:
    # a filter runs per row: a function off the allowlist would run, a subquery would read
    # a table no permission check saw
    assert words in refusal(sql)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO OUTFILE writes a file"),
        ("SELECT * INTO OUTFILE '/tmp/x' FROM t", "INTO OUTFILE writes a file"),
        ("SELECT * FROM t INTO DUMPFILE '/tmp/x'", "INTO DUMPFILE writes a file"),
        ("SELECT 1 INTO @x", "SELECT … INTO"),
        ("SELECT * FROM t FOR UPDATE", "FOR UPDATE"),
        ("SELECT * FROM t LOCK IN SHARE MODE", "FOR UPDATE"),
        ("SELECT load_file('/etc/passwd')", "load_file()"),
        ("SELECT sleep(10)", "sleep()"),
        ("SELECT benchmark(1000000, md5('a'))", "benchmark()"),
        ("SELECT * FROM t WHERE a = (SELECT sleep(1))", "sleep()"),
        ("SELECT CONNECTION_ID()", "CONNECTION_ID()"),
    ],
)
def test_mysql_queries_that_write_lock_or_reach_outside_are_refused(sql: str, words: str) -> None:
    assert words in refusal(sql)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file()"),
        ("SELECT pg_sleep(10)", "pg_sleep()"),
        ("SELECT pg_backend_pid()", "pg_backend_pid()"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend()"),
        ("SELECT set_config('a', 'b', false)", "set_config()"),
        ("SELECT lo_import('/etc/passwd')", "lo_import()"),
        ("SELECT * FROM dblink('x', 'y') AS t(a int)", "dblink()"),
        ("SELECT * FROM t FOR SHARE", "FOR UPDATE / FOR SHARE"),
        ("SELECT * INTO newt FROM t", "creates a table"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "hides a write (DELETE)"),
    ],
)
def test_postgresql_queries_that_write_lock_or_reach_outside_are_refused(
    sql: str, words: str
) -> None:
    assert words in refusal(sql, PG)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT /*! sleep(1) */ 1",
        "SELECT 1 /*!50000 , sleep(1) */",
        "SELECT 1 /*M! , sleep(1) */",
        "SELECT /*+ MAX_EXECUTION_TIME(1) */ 1",
    ],
)
def test_hidden_code_refuses_the_whole_script(sql: str) -> None:
    with pytest.raises(ConsoleRefused, match="executable comment"):
        read_script(f"SELECT 2; {sql}", MYSQL, 1000)


def test_an_unsplittable_script_is_refused_whole() -> None:
    with pytest.raises(ConsoleRefused):
        read_script("SELECT 'open", MYSQL, 1000)


def test_a_script_is_classified_statement_by_statement_and_comments_alone_skipped() -> None:
    found = read_script(
        "-- a note\nSELECT 1;\n/* only a comment */;\nUPDATE t SET a = 1;\nGRANT ALL ON *.* TO x",
        MYSQL,
        1000,
    )
    assert [(s.number, s.line, s.kind) for s in found] == [
        (1, 2, "SELECT"),
        (2, 4, "UPDATE"),
        (3, 5, "GRANT"),
    ]
    assert [s.refusal is None for s in found] == [True, True, False]


# the row cap


@pytest.mark.parametrize(
    ("sql", "engine", "runs"),
    [
        ("SELECT id FROM t LIMIT 5", MYSQL, "SELECT id FROM t LIMIT 5"),
        ("SELECT id FROM t LIMIT 11", MYSQL, "SELECT id FROM t LIMIT 11"),  # cap + 1 stays
        ("SELECT id FROM t LIMIT 5000", MYSQL, "SELECT id FROM t LIMIT 11"),
        ("SELECT id FROM t LIMIT 5 OFFSET 20", MYSQL, "SELECT id FROM t LIMIT 5 OFFSET 20"),
        ("SELECT id FROM t LIMIT 20, 5000", MYSQL, "SELECT id FROM t LIMIT 11 OFFSET 20"),
        ("SELECT id FROM t LIMIT 5000 OFFSET 3", PG, "SELECT id FROM t LIMIT 11 OFFSET 3"),
        ("SELECT id FROM t OFFSET 3", PG, "SELECT id FROM t LIMIT 11 OFFSET 3"),
        ("SELECT id FROM t LIMIT ALL", PG, "SELECT id FROM t LIMIT 11"),
        ("SELECT id FROM t FETCH FIRST 5 ROWS ONLY", PG,
         "SELECT id FROM t FETCH FIRST 5 ROWS ONLY"),
        ("SELECT id FROM t FETCH FIRST 500 ROWS ONLY", PG, "SELECT id FROM t LIMIT 11"),
        ("SELECT id FROM t ORDER BY id OFFSET 2 ROWS FETCH NEXT 500 ROWS ONLY", PG,
         "SELECT id FROM t ORDER BY id LIMIT 11 OFFSET 2"),
        ("(SELECT 1) UNION (SELECT 2) LIMIT 3000", MYSQL, "(SELECT 1) UNION (SELECT 2) LIMIT 11"),
        # a subquery's own LIMIT is its business: only the result is capped
        ("SELECT * FROM (SELECT id FROM t LIMIT 5000) AS x", MYSQL,
         "SELECT * FROM (SELECT id FROM t LIMIT 5000) AS x LIMIT 11"),
        ("SELECT id FROM t LIMIT 5", SQLITE, "SELECT id FROM t LIMIT 5"),
        ("SELECT id FROM t LIMIT 50", SQLITE, "SELECT id FROM t LIMIT 11"),
    ],
)  # fmt: skip
def test_a_smaller_limit_stays_and_a_larger_is_lowered(sql: str, engine: str, runs: str) -> None:
    assert ok(sql, engine, max_rows=10).run == runs


def test_the_tree_kept_for_masking_is_the_uncapped_query() -> None:
    st = ok("SELECT email FROM customers LIMIT 5000", max_rows=10)
    assert st.query is not None and "5000" in st.query.sql()


# what runs


@pytest.mark.parametrize(
    ("sql", "engine", "runs"),
    [
        ("SELECT 1 -- a note", MYSQL, "SELECT 1 LIMIT 1001"),
        ("/* c */ SELECT /* d */ id FROM t # e", MYSQL, "SELECT id FROM t LIMIT 1001"),
        ("SELECT 1 /*! not hidden in PostgreSQL */", PG, "SELECT 1 LIMIT 1001"),
        ("UPDATE t /* why */ SET a = 1 -- there", MYSQL, "UPDATE t SET a = 1"),
        ("select   ID\n from T\twhere id=1", MYSQL, "SELECT ID FROM T WHERE id = 1 LIMIT 1001"),
        ("SELECT $$a$$", PG, "SELECT 'a' LIMIT 1001"),
        ("TABLE t", PG, "SELECT * FROM t LIMIT 1001"),
        ("SELECT id FROM t; ", PG, "SELECT id FROM t LIMIT 1001"),
    ],
)
def test_what_runs_is_generated_from_the_tree_without_comments(
    sql: str, engine: str, runs: str
) -> None:
    st = ok(sql, engine)
    assert st.run == runs
    assert st.written.rstrip("; ") in sql  # the audit keeps what was submitted


def test_a_text_that_does_not_parse_back_to_the_same_tree_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a generator that wrote something other than what was checked must not get it run
    monkeypatch.setattr(console, "render", lambda node, engine: "SELECT 2")
    assert "back faithfully" in refusal("SELECT 1")
    assert "back faithfully" in refusal("UPDATE t SET a = 1")


@pytest.mark.parametrize(
    ("sql", "plans_change"),
    [
        ("EXPLAIN UPDATE t SET a = 1 WHERE id = 2", True),
        ("EXPLAIN DELETE FROM t WHERE id = 2", True),
        ("EXPLAIN SELECT * FROM t", False),
        ("SELECT 1", False),
    ],
)
def test_an_explain_of_a_change_is_marked_for_a_transaction_that_may_plan_it(
    sql: str, plans_change: bool
) -> None:
    assert one(sql).plans_change is plans_change
