"""``opendms sql run``: a script run now in the SQL console, a table per result (or the wire's
Results[] with --json), exit 1 when a statement failed or was refused."""

from __future__ import annotations

import io
import json

import pytest

from tests.unit.cli.site import Site, cells, row_of


def test_a_read_prints_a_table_per_result(site: Site) -> None:
    script = site.write(
        "read.sql",
        "SELECT id, name FROM customers WHERE id <= 2 ORDER BY id;\n"
        "SELECT count(*) AS n FROM orders WHERE id < 0;\n",
    )
    shown = site.run("sql", "run", "--db", str(site.db_id), str(script)).stdout
    assert "1. SELECT: 2 row(s)" in shown and "2. SELECT: 1 row(s)" in shown
    assert cells(row_of(shown, "2")) == ["2", "customer 2"]
    assert cells(row_of(shown, "0")) == ["0"]


def test_json_holds_the_wires_results(site: Site) -> None:
    script = site.write("one.sql", "SELECT id, name FROM customers WHERE id = 1")
    done = site.run("sql", "run", "--db", str(site.db_id), str(script), "--json")
    assert json.loads(done.stdout) == {
        "Results": [
            {
                "ColumnNames": ["id", "name"],
                "Rows": [{"id": 1, "name": "customer 1"}],
                "RowCount": 1,
                "Success": True,
                "Message": "",
            }
        ]
    }


def test_the_script_comes_from_stdin_by_default(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT 6 * 7 AS answer"))
    done = site.run("sql", "run", "--db", str(site.db_id), "--json")
    assert json.loads(done.stdout)["Results"][0]["Rows"] == [{"answer": 42}]


def test_truncated_and_masked_results_say_so(site: Site) -> None:
    site.run("column", "mask", str(site.db_id), "customers", "email", "FULL")
    rules = site.write(
        "small.yaml",
        "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\nconsole: {max_rows: 3}\n",
    )
    site.run("rules", "load", str(rules), "--name", "small")
    site.run("rules", "assign", str(site.instance_id), "small")
    script = site.write("masked.sql", "SELECT id, email FROM customers ORDER BY id")
    shown = site.run("sql", "run", "--db", str(site.db_id), str(script)).stdout
    assert "1. SELECT: 3 row(s)" in shown
    assert cells(row_of(shown, "3")) == ["3", "******"]
    assert "truncated: the first 3 rows are shown; masked: email" in shown


def test_a_refused_statement_exits_1_and_says_why(site: Site) -> None:
    # the demo instance is in production: the console changes nothing there
    script = site.write("change.sql", "SELECT 1;\nUPDATE orders SET status = 'x' WHERE id = 7;")
    done = site.as_("carl", "sql", "run", "--db", str(site.db_id), str(script), ok=False)
    assert done.returncode == 1
    assert "1. SELECT: not run" in done.stdout and "2. UPDATE: not run" in done.stdout
    assert "DC_COMMON" in done.stdout
    args = ("sql", "run", "--db", str(site.db_id), str(script), "--json")
    as_json = site.as_("carl", *args, ok=False)
    assert as_json.returncode == 1
    assert [r["Success"] for r in json.loads(as_json.stdout)["Results"]] == [False, False]


def test_a_failing_statement_exits_1(site: Site) -> None:
    script = site.write("bad.sql", "SELECT nope FROM customers")
    done = site.run("sql", "run", "--db", str(site.db_id), str(script), ok=False)
    assert done.returncode == 1 and "no such column" in done.stdout


def test_a_user_without_query_permission_sees_no_rows(site: Site) -> None:
    script = site.write("read.sql", "SELECT email FROM customers")
    done = site.as_("olly", "sql", "run", "--db", str(site.db_id), str(script), ok=False)
    assert done.returncode == 1 and "QUERY permission on customers" in done.stdout
    assert "@" not in done.stdout


def test_an_unreadable_script_is_one_line_error(site: Site) -> None:
    script = site.write("open.sql", "SELECT 'open")
    done = site.run("sql", "run", "--db", str(site.db_id), str(script), ok=False)
    assert done.returncode == 1 and done.stderr.strip().startswith("error: InvalidParameter")
