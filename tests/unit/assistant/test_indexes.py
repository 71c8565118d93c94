"""Index suggestions from the catalog: columns looked up by (WHERE, JOIN) or sorted by, on
tables whose indexes do not start with them; predicates no index serves are named."""

from __future__ import annotations

from dataclasses import replace

import sqlglot

from opendms.assistant.indexes import ddl, suggest
from opendms.assistant.scope import Index, Scope
from tests.approval_world import World
from tests.unit.assistant.conftest import scope


def advise(sc: Scope, sql: str) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    advice, notes = suggest(sqlglot.parse_one(sql, read=sc.dialect), sc)
    for a in advice:
        sqlglot.parse_one(a.ddl, read=sc.dialect)
    return [(a.table, a.columns) for a in advice], notes


def test_a_filtered_column_without_an_index_gets_one(world: World) -> None:
    sc = scope(world, "admin")
    assert advise(sc, "SELECT id FROM orders WHERE status = 'x'") == ([("orders", ("status",))], [])


def test_equality_columns_come_first_then_one_range_or_sort_column(world: World) -> None:
    sc = scope(world, "admin")
    got, _ = advise(
        sc,
        "SELECT id FROM orders WHERE amount_cents > 5 AND status = 'x' AND customer_id IN (1, 2) "
        "ORDER BY amount_cents",
    )
    assert got == [("orders", ("status", "customer_id", "amount_cents"))]


def test_a_column_an_index_starts_with_needs_nothing(world: World) -> None:
    sc = scope(world, "admin")
    assert advise(sc, "SELECT id FROM orders WHERE created_at > '2026' AND status = 'x'")[0] == []
    assert advise(sc, "SELECT id FROM customers WHERE id = 3")[0] == []  # the primary key
    assert advise(sc, "SELECT id FROM orders ORDER BY created_at LIMIT 5")[0] == []


def test_a_table_only_sorted_gets_an_index_on_its_sort_column(world: World) -> None:
    sc = scope(world, "admin")
    got, _ = advise(sc, "SELECT id FROM orders ORDER BY amount_cents DESC LIMIT 10")
    assert got == [("orders", ("amount_cents",))]


def test_join_columns_through_aliases(world: World) -> None:
    sc = scope(world, "admin")
    got, _ = advise(
        sc, "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 1"
    )
    assert got == [("orders", ("customer_id",))]


def test_predicates_no_index_serves_are_named_not_indexed(world: World) -> None:
    sc = scope(world, "admin")
    got, notes = advise(
        sc, "SELECT id FROM customers WHERE lower(name) = 'a' OR email LIKE '%@example.com'"
    )
    assert got == []
    assert any("LOWER(name) hides its column" in n for n in notes)
    assert any("starts with a wildcard" in n for n in notes)


def test_tables_the_caller_may_not_read_get_no_advice(world: World) -> None:
    assert advise(scope(world, "carol"), "SELECT id FROM orders WHERE status = 'x'") == ([], [])


def test_mixed_case_names_are_quoted_for_postgresql(world: World) -> None:
    assert ddl("Orders", ("customerId",), "postgres") == (
        'CREATE INDEX ix_orders_customerid ON "Orders" ("customerId")'
    )
    assert ddl("orders", ("status",), "mysql") == "CREATE INDEX ix_orders_status ON orders (status)"


def test_an_index_of_several_columns_counts_by_its_first(world: World) -> None:
    sc = scope(world, "admin")
    orders = sc.tables["orders"]
    wider = replace(orders, indexes=(*orders.indexes, Index("ix", "NORMAL", ("status", "id"))))
    sc = replace(sc, tables={**sc.tables, "orders": wider})
    assert advise(sc, "SELECT id FROM orders WHERE status = 'x'")[0] == []
    assert advise(sc, "SELECT id FROM orders WHERE amount_cents = 3")[0] == [
        ("orders", ("amount_cents",))
    ]
