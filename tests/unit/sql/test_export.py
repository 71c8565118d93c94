"""The one read-only SELECT an export ticket may run, and everything refused with its reason."""

from __future__ import annotations

import pytest

from opendms.sql.export import ExportRefused, export_query


@pytest.mark.parametrize("engine", ["mariadb", "postgresql", "sqlite"])
def test_a_select_is_taken_with_the_tables_it_reads(engine: str) -> None:
    found = export_query(
        "WITH recent AS (SELECT * FROM orders WHERE created_at > '2026-01-01') "
        "SELECT r.id, c.name FROM recent r JOIN customers c ON c.id = r.customer_id "
        "UNION ALL SELECT id, name FROM archive.customers",
        engine,
    )
    assert found.tables == ("archive.customers", "customers", "orders")


@pytest.mark.parametrize(
    ("sql", "engine", "reason"),
    [
        ("SELECT 1; SELECT 2", "mariadb", "exactly one SELECT; this has 2 statements"),
        ("DELETE FROM t WHERE id = 1", "mariadb", "not DELETE"),
        ("SELECT a FROM t INTO OUTFILE '/tmp/x'", "mariadb", "INTO OUTFILE writes a file"),
        ("SELECT a INTO DUMPFILE '/tmp/x' FROM t", "mariadb", "INTO DUMPFILE writes a file"),
        ("SELECT a INTO copy FROM t", "postgresql", "SELECT … INTO creates a table"),
        ("SELECT * FROM t FOR UPDATE", "mariadb", "hold row locks"),
        ("SELECT * FROM t LOCK IN SHARE MODE", "mariadb", "hold row locks"),
        ("SELECT * FROM (SELECT * FROM t FOR SHARE) s", "postgresql", "hold row locks"),
        (
            "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
            "postgresql",
            "hides a write (DELETE)",
        ),
        ("SELECT nextval('s')", "postgresql", "calls nextval()"),
        ("SELECT SLEEP(10), a FROM t", "mariadb", "calls SLEEP()"),
        ("SELECT LOAD_FILE('/etc/passwd')", "mariadb", "calls LOAD_FILE()"),
        ("SELECT set_config('a.b', '1', false)", "postgresql", "calls set_config()"),
        ("SELECT `load_file`('/etc/passwd')", "mariadb", "calls load_file()"),
        ("SELECT \"pg_read_file\"('/etc/hostname')", "postgresql", "calls pg_read_file()"),
        ("SELECT pg_catalog.pg_read_file('/x')", "postgresql", "calls pg_catalog.pg_read_file()"),
        ("SELECT * FROM pg_ls_dir('/etc') AS f", "postgresql", "calls pg_ls_dir()"),
        (
            "SELECT query_to_xml('select secret from other.t', true, true, '')",
            "postgresql",
            "calls query_to_xml()",
        ),
        ("SELECT 1 /*!50000 FROM secret.t */", "mariadb", "executable comment"),
        ("SELECT id FROM t /*!50000 UNION SELECT secret FROM o.t */", "mysql", "executable"),
        ("SELECT FROM WHERE", "mariadb", "does not parse"),
    ],
)
def test_what_is_refused_says_why(sql: str, engine: str, reason: str) -> None:
    with pytest.raises(ExportRefused) as refused:
        export_query(sql, engine)
    assert reason in str(refused.value)
