"""Which result columns of an export are masked, and how a mask shows a value."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from opendms.exports.masks import HIDDEN, Masker, _traced, direct, plan

SCHEMA = {
    "customers": {"id": "INT", "name": "TEXT", "email": "TEXT", "phone": "TEXT"},
    "orders": {"id": "INT", "customer_id": "INT", "amount": "INT"},
}
SENSITIVE = {("customers", "email"): "LAST4", ("customers", "phone"): "FULL"}


def masked(sql: str, columns: list[str] | None = None) -> tuple[list[tuple[int, str, str]], bool]:
    node = sqlglot.parse_one(sql, read="mysql")
    assert isinstance(node, exp.Query)
    found, traced = plan(node, "mysql", SCHEMA, SENSITIVE, columns)
    return [(m.position, m.column, m.mask) for m in found], traced


def test_plain_columns_are_masked_by_their_flag() -> None:
    assert masked("SELECT id, email, name, phone FROM customers") == (
        [(1, "email", "LAST4"), (3, "phone", "FULL")],
        True,
    )


def test_a_star_expands_through_the_catalog() -> None:
    assert masked("SELECT * FROM customers") == (
        [(2, "email", "LAST4"), (3, "phone", "FULL")],
        True,
    )


def test_expressions_ctes_and_subqueries_are_traced_to_their_sources() -> None:
    sql = (
        "WITH c AS (SELECT id, CONCAT(email, '!') AS contact FROM customers) "
        "SELECT o.id, UPPER(x.contact) AS shout FROM orders o "
        "JOIN (SELECT id, contact FROM c) x ON x.id = o.customer_id"
    )
    assert masked(sql) == ([(1, "shout", "LAST4")], True)


def test_the_strongest_mask_wins_where_several_columns_meet() -> None:
    assert masked("SELECT CONCAT(email, phone) AS both_ FROM customers") == (
        [(0, "both_", "FULL")],
        True,
    )


def test_a_filter_on_a_sensitive_column_masks_nothing_it_does_not_return() -> None:
    assert masked("SELECT id, name FROM customers WHERE email LIKE '%@x.com'") == ([], True)


def test_tables_without_flags_need_no_tracing() -> None:
    assert masked("SELECT * FROM orders") == ([], True)


def test_an_untraceable_query_is_masked_whole() -> None:
    # a table the catalog does not know, read with *: which columns come from customers?
    found, traced = masked(
        "SELECT * FROM customers JOIN unknown_table u ON u.id = customers.id",
        ["id", "name", "email", "phone", "u_id"],
    )
    assert traced is False
    assert found == [(i, n, "FULL") for i, n in enumerate(["id", "name", "email", "phone", "u_id"])]


def test_the_database_names_of_the_columns_win() -> None:
    assert masked("SELECT email FROM customers", ["EMAIL"]) == ([(0, "EMAIL", "LAST4")], True)


def test_masks_show_nothing_the_end_or_a_keyed_hash() -> None:
    mask = Masker(b"k" * 32)
    assert mask("FULL", "13812345678") == HIDDEN
    assert mask("LAST4", "13812345678") == "*******5678"
    assert mask("LAST4", "abc") == "***"
    assert mask("LAST4", 1234567) == "***4567"
    assert mask("FULL", None) is None
    one, two = mask("HASH", "a@x.com"), mask("HASH", "a@x.com")
    assert one == two and one != mask("HASH", "b@x.com") and len(one or "") == 32
    assert Masker(b"other key" * 4)("HASH", "a@x.com") != one  # keyed, not a bare SHA-256


def test_rows_are_masked_in_place_of_their_columns() -> None:
    mask = Masker(b"k" * 32)
    found, _ = plan(
        sqlglot.parse_one("SELECT id, phone FROM customers", read="mysql"),  # type: ignore[arg-type]
        "mysql",
        SCHEMA,
        SENSITIVE,
        ["id", "phone"],
    )
    assert mask.rows(found, [(1, "555"), (2, None)]) == [(1, HIDDEN), (2, None)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT customers FROM customers WHERE id = 1",
        "SELECT c FROM customers c",
        "SELECT c::text AS t FROM customers c",
        "SELECT row_to_json(c) AS j FROM customers c",
        "SELECT to_json(customers.*) AS j FROM customers",
        "SELECT ROW(c.*) AS r FROM customers c",
        "SELECT (c).email FROM customers c",
        "SELECT s FROM (SELECT email FROM customers) s",
        "WITH w AS (SELECT phone FROM customers) SELECT json_agg(w) AS j FROM w",
    ],
)
def test_a_whole_row_read_as_one_value_is_masked_whole(sql: str) -> None:
    # PostgreSQL reads a table's name or alias as its whole row, every column in it: the
    # lineage saw no sensitive column there, and the console and exports showed the emails.
    node = sqlglot.parse_one(sql, read="postgres")
    assert isinstance(node, exp.Query)
    found, traced = plan(node, "postgresql", SCHEMA, SENSITIVE, ["x"])
    assert traced is False and [(m.column, m.mask) for m in found] == [("x", "FULL")]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) AS n FROM customers",
        "SELECT c.* FROM customers c",
        "SELECT c.name FROM customers c",
        "SELECT name AS customers FROM customers",
    ],
)
def test_columns_named_like_nothing_else_are_traced_as_usual(sql: str) -> None:
    node = sqlglot.parse_one(sql, read="postgres")
    assert isinstance(node, exp.Query)
    assert plan(node, "postgresql", SCHEMA, SENSITIVE)[1] is True


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, email FROM customers",
        "SELECT upper(email) AS e, id FROM customers AS p WHERE id = 1",
        "SELECT concat(name, phone) AS both_, id FROM customers ORDER BY id LIMIT 3",
        "SELECT id FROM customers WHERE email = 'x'",
    ],
)
def test_a_query_over_one_table_is_planned_off_its_tree_as_the_lineage_would(sql: str) -> None:
    node = sqlglot.parse_one(sql, read="mysql")
    assert isinstance(node, exp.Query)
    found = direct(node, SENSITIVE)
    assert found is not None
    traced = _traced(node, "mysql", SCHEMA)  # the lineage itself, not plan's shortcut
    expected = [
        (i, SENSITIVE[hit], (f"{hit[0]}.{hit[1]}",))
        for i, (_, sources) in enumerate(traced)
        for hit in sorted(sources & SENSITIVE.keys())
    ]
    assert [(m.position, m.mask, m.sources) for m in found] == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM customers",
        "SELECT p.email FROM customers p JOIN orders o ON o.customer_id = p.id",
        "SELECT email FROM (SELECT email FROM customers) s",
        "WITH s AS (SELECT email FROM customers) SELECT email FROM s",
        "SELECT email FROM customers UNION SELECT phone FROM customers",
        "SELECT c FROM customers c",
        "SELECT count(*) FROM customers",
    ],
)
def test_anything_more_is_left_to_the_lineage(sql: str) -> None:
    node = sqlglot.parse_one(sql, read="postgres")
    assert isinstance(node, exp.Query)
    assert direct(node, SENSITIVE) is None
