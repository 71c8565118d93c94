"""FixSqlByMetaAgent without a model: the parse error's place, statements corrected from
another dialect or with the catalog's names (only names the caller may read), review
findings; never a statement that does not parse."""

from __future__ import annotations

import re

import pytest
import sqlglot

from opendms.assistant import service
from opendms.assistant.fix import fix
from opendms.assistant.names import named_in_error
from opendms.errors import DmsError, ErrorCode
from tests.approval_world import World
from tests.unit.assistant.conftest import grant_tables, scope

SQL_BLOCK = re.compile(r"```sql\n(.*?)\n```", re.S)


def content(world: World, who: str, sql: str, error: str = "") -> str:
    with world.store.session() as s:
        return service.fix_sql(s, world.means, world.as_(who), world.db_id, sql, error).content


def offered(text: str) -> list[str]:
    return SQL_BLOCK.findall(text)


@pytest.fixture
def world(world: World) -> World:
    world.may("QUERY", "alice")
    return world


def test_the_parse_error_names_statement_line_and_column(world: World) -> None:
    text = content(world, "alice", "SELECT 1;\n\nSELECT id FROM orders WHERE")
    assert "## Statement 2 (line 3)" in text
    assert "Does not parse: statement 2 (line 3, column 23)" in text
    assert "OpenDMS cannot correct it by itself." in text
    assert offered(text) == []  # nothing that does not parse is offered


def test_sql_from_another_dialect_is_written_for_the_databases(world: World) -> None:
    text = content(world, "alice", "SELECT TOP 5 id FROM orders ORDER BY id")
    assert "read as tsql and written for sqlite" in text
    assert offered(text) == ["SELECT id FROM orders ORDER BY id LIMIT 5"]


def test_misspelt_tables_and_columns_get_the_catalogs_closest_names(world: World) -> None:
    text = content(world, "alice", "SELECT nme, emial FROM customer WHERE id = 1")
    assert "Table customer is not in the catalog you may read; closest: customers" in text
    assert "Column nme of customers" in text and "closest: name" in text
    assert offered(text) == ["SELECT name, email FROM customers WHERE id = 1"]


def test_qualified_columns_resolve_through_their_alias(world: World) -> None:
    text = content(world, "alice", "SELECT o.stauts FROM orders o JOIN customers c ON c.id = o.id")
    assert offered(text) == ["SELECT o.status FROM orders AS o JOIN customers AS c ON c.id = o.id"]


def test_the_databases_error_names_what_is_missing() -> None:
    assert named_in_error("Table 'shop.ordrs' doesn't exist") == (["ordrs"], [])
    assert named_in_error("Unknown column 'o.stauts' in 'field list'") == ([], ["stauts"])
    assert named_in_error('relation "ordrs" does not exist') == (["ordrs"], [])
    assert named_in_error('column "stauts" does not exist') == ([], ["stauts"])
    assert named_in_error("no such column: o.stauts") == ([], ["stauts"])


def test_a_syntax_error_the_parser_reads_past_gets_its_reading(world: World) -> None:
    text = content(world, "alice", "SELECT id,, status FROM orders", "near ',': syntax error")
    assert "as OpenDMS reads it" in text
    assert offered(text) == ["SELECT id, status FROM orders"]
    assert offered(content(world, "alice", "SELECT id,, status FROM orders")) == []


def test_names_are_suggested_only_from_tables_the_caller_may_read(world: World) -> None:
    grant_tables(world, "carol", "customers")
    text = content(world, "carol", "SELECT id FROM ordrs")
    assert "Table ordrs is not in the catalog you may read; nothing close" in text
    assert "orders" not in text.replace("ordrs", "")
    assert offered(text) == []
    assert "closest: orders" in content(world, "alice", "SELECT id FROM ordrs")


def test_review_findings_are_reported(world: World) -> None:
    text = content(world, "alice", "DELETE FROM orders")
    assert "ERROR DML_WITHOUT_WHERE (statement 1, line 1)" in text


def test_every_offered_statement_parses_in_the_databases_dialect(world: World) -> None:
    scripts = [
        "SELECT TOP 3 nme FROM customer",
        "SELECT `id` FROM orders",
        "SELECT id FROM orders WHERE status = 'x' AND amount_cents >",
        "UPDATE ordrs SET stauts = 'x' WHERE id = 1",
    ]
    for sql in scripts:
        for statement in offered(content(world, "alice", sql, "syntax error")):
            sqlglot.parse_one(statement, read="sqlite")


def test_a_script_that_cannot_be_split_says_where(world: World) -> None:
    with world.store.session() as s:
        report = fix(s, scope(world, "alice"), "SELECT 'unterminated", "")
    assert report.script_error is not None and "line 1" in report.script_error


def test_a_database_of_another_tenant_is_not_found(world: World) -> None:
    with world.store.session() as s, pytest.raises(DmsError) as caught:
        service.fix_sql(s, world.means, world.as_("alice"), 999_999, "SELECT 1")
    assert caught.value.code == ErrorCode.DATABASE_NOT_FOUND


def test_a_model_asked_for_without_one_configured_is_refused(world: World) -> None:
    with world.store.session() as s, pytest.raises(DmsError) as caught:
        service.fix_sql(s, world.means, world.as_("alice"), world.db_id, "SELECT 1", model="q")
    assert caught.value.code == ErrorCode.INVALID_PARAMETER
