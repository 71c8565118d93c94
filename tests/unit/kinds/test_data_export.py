"""The precheck of an export ticket (DATA_EXPORT): one read-only SELECT, the committer's
EXPORT permission on every table it reads, and its rows against AffectRows."""

from __future__ import annotations

import pytest

from opendms.catalog import sensitive
from opendms.errors import DmsError, ErrorCode
from opendms.precheck import service as precheck
from opendms.store.models import Order
from tests.approval_world import World

# customer 1 has 25 orders in the demo database
CUSTOMER_1 = "SELECT id, status, amount_cents FROM orders WHERE customer_id = 1"
ALLOWED = "The committer may export every table the SQL touches."


def steps(world: World, order_id: int) -> list[tuple[str, str, str]]:
    with world.store.session() as s:
        return [(v.step, v.status, v.tip) for v in precheck.steps(s, order_id)]


def step(world: World, order_id: int, name: str) -> tuple[str, str]:
    (found,) = [(status, tip) for st, status, tip in steps(world, order_id) if st == name]
    return found


def test_a_query_within_its_rows_passes_every_step(world: World) -> None:
    order_id = world.export(CUSTOMER_1, rows=30)
    assert steps(world, order_id) == [
        ("SQL_PARSE", "SUCCESS", "1 statement parsed."),
        ("SQL_TYPE_CHECK", "SUCCESS", "No findings."),
        ("PERMISSION_CHECK", "SUCCESS", ALLOWED),
        ("ROW_CHECK", "SUCCESS", "25 rows to export, within the 30 the ticket states."),
    ]
    with world.store.session() as s:
        (st,) = precheck.statements(s, order_id, None, 1, 10).items
        assert (st.sql_type, st.table_names, st.affect_rows, st.rows_source) == (
            "SELECT",
            "orders",
            25,
            "COUNT",
        )


def test_ordered_limited_and_joined_queries_are_counted_as_they_return(world: World) -> None:
    sql = (
        "SELECT c.name, o.amount_cents FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.customer_id = 1 ORDER BY o.id LIMIT 10"
    )
    order_id = world.export(sql, rows=10)
    assert step(world, order_id, "ROW_CHECK") == (
        "SUCCESS",
        "10 rows to export, within the 10 the ticket states.",
    )


def test_more_rows_than_stated_fail_unless_the_ticket_waives_them(world: World) -> None:
    order_id = world.export(CUSTOMER_1, rows=5)
    assert step(world, order_id, "ROW_CHECK") == (
        "FAIL",
        "25 rows to export, more than the 5 the ticket states. Raise AffectRows in a new "
        "ticket, or set IgnoreAffectRows with a reason.",
    )
    waived = world.export(
        CUSTOMER_1, rows=5, IgnoreAffectRows=True, IgnoreAffectRowsReason="monthly report"
    )
    assert step(world, waived, "ROW_CHECK") == (
        "SUCCESS",
        "25 rows to export, more than the 5 the ticket states; waived: monthly report",
    )


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT * FROM orders FOR UPDATE", "FOR UPDATE / FOR SHARE would hold row locks"),
        ("SELECT 1; SELECT 2", "this has 2 statements"),
        ("SELECT * INTO keep FROM orders", "SELECT … INTO creates a table"),
    ],
)
def test_a_query_that_is_not_read_only_fails_its_type_check(
    world: World, sql: str, why: str
) -> None:
    order_id = world.export(sql)
    status, tip = step(world, order_id, "SQL_TYPE_CHECK")
    assert status == "FAIL"
    assert "EXPORT_REFUSED: It cannot be exported: " in tip
    assert why in tip
    assert step(world, order_id, "ROW_CHECK") == ("WAITING", "Not run: SQL_TYPE_CHECK failed.")


def test_a_change_is_not_an_export(world: World) -> None:
    order_id = world.export("DELETE FROM orders WHERE id = 1")
    status, tip = step(world, order_id, "SQL_TYPE_CHECK")
    assert status == "FAIL"
    assert "STATEMENT_KIND_NOT_ALLOWED" in tip
    assert "only a SELECT reads, not DELETE" in tip


def test_the_committer_needs_export_not_correct(world: World) -> None:
    world.may("CORRECT", "carol")
    order_id = world.export(CUSTOMER_1, who="carol", rows=30)
    assert step(world, order_id, "PERMISSION_CHECK") == (
        "FAIL",
        "carol lacks the EXPORT permission on orders (statement 1)",
    )
    world.may("EXPORT", "carol")
    with world.store.session() as s:
        precheck.retry(s, world.as_("carol"), order_id)
    world.run_jobs()
    assert step(world, order_id, "PERMISSION_CHECK") == ("SUCCESS", ALLOWED)


def test_an_export_is_submitted_only_once_its_precheck_passed(world: World) -> None:
    order_id = world.export(CUSTOMER_1, rows=5)
    with pytest.raises(DmsError) as refused:
        world.submit(order_id)
    assert refused.value.code == ErrorCode.ORDER_STATUS_INVALID
    assert "ROW_CHECK failed" in refused.value.message
    world.free_of_approval("DATA_EXPORT")
    passing = world.export(CUSTOMER_1, rows=25)
    world.submit(passing)
    with world.store.session() as s:
        order = s.get(Order, passing)
        assert order is not None and order.status_code == "Approved"


def test_the_type_check_tells_the_approvers_what_the_export_masks(world: World) -> None:
    with world.store.session() as s:
        sensitive.set_mask(s, world.tid, world.db_id, "customers", "EMAIL", "LAST4", None)
    order_id = world.export("SELECT id, upper(email) AS mail FROM customers", rows=1000)
    assert step(world, order_id, "SQL_TYPE_CHECK") == (
        "SUCCESS",
        "No findings. The export masks mail (LAST4, from customers.email).",
    )
