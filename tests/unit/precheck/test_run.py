"""The data-change precheck: its four steps as run by the job executor, and the service that
reads them back, runs them again, waives the row check and replaces the SQL."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.catalog import permissions
from opendms.errors import DmsError, ErrorCode
from opendms.files import service as files
from opendms.files.storage import FileStore
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Work
from opendms.precheck import run
from opendms.precheck import service as precheck
from opendms.store.db import Store
from opendms.store.models import Job, Order, PrecheckStatement, PrecheckStep, utcnow
from opendms.targets.demo import DEMO_FILE
from tests.approval_world import World

GOOD = "UPDATE orders SET status = 'x' WHERE id = 1"
# customer 1 has 25 orders: a ticket estimating 1 row is off
CUSTOMER_1 = "UPDATE orders SET status = 'x' WHERE customer_id = 1"
ROW_TIP = (
    "25 rows counted, where the ticket estimates 1. Correct the estimate in a new ticket, "
    "or waive the difference with SkipDataCorrectRowCheck and a reason."
)
ALLOWED = "The committer may change every table the SQL touches."


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets")


def steps(world: World, order_id: int) -> list[tuple[str, str, str]]:
    with world.store.session() as s:
        return [(v.step, v.status, v.tip) for v in precheck.steps(s, order_id)]


def status(world: World, order_id: int) -> str:
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return precheck.status(s, order)


def shortfall(world: World, order_id: int) -> str | None:
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return precheck.shortfall(s, order)


def statements(world: World, order_id: int) -> list[PrecheckStatement]:
    with world.store.session() as s:
        found = list(precheck.statements(s, order_id, None, 1, 100).items)
        s.expunge_all()
        return found


def step_jobs(world: World, order_id: int) -> set[int]:
    with world.store.session() as s:
        return set(s.scalars(select(PrecheckStep.job_id).where(PrecheckStep.order_id == order_id)))


def jobs(world: World, order_id: int) -> list[tuple[int, str]]:
    with world.store.session() as s:
        return [
            (j.job_id, j.state)
            for j in s.scalars(select(Job).where(Job.order_id == order_id).order_by(Job.job_id))
        ]


def act(world: World, fn: Callable[..., Any], who: str, order_id: int, *args: Any) -> Any:
    with world.store.session() as s:
        return fn(s, world.as_(who), order_id, *args)


def passed(tips: tuple[str, str, str, str]) -> list[tuple[str, str, str]]:
    return [(step, "SUCCESS", tip) for step, tip in zip(run.STEPS, tips, strict=True)]


def not_run_after(failed: str) -> list[tuple[str, str, str]]:
    later = run.STEPS[run.STEPS.index(failed) + 1 :]
    return [(step, "WAITING", f"Not run: {failed} failed.") for step in later]


# ------------------------------------------------------------------ a good ticket


def test_a_good_ticket_passes_every_step(world: World) -> None:
    order_id = world.file(GOOD)
    assert steps(world, order_id) == passed(
        ("1 statement parsed.", "No findings.", ALLOWED, "1 row, as estimated.")
    )
    assert status(world, order_id) == "precheck_success"
    assert shortfall(world, order_id) is None
    (st,) = statements(world, order_id)
    assert (st.db_id, st.number, st.line, st.sql_text, st.sql_type, st.table_names) == (
        world.db_id,
        1,
        1,
        GOOD,
        "UPDATE",
        "orders",
    )
    assert (st.affect_rows, st.rows_source, st.review_status, st.findings) == (
        1,
        "COUNT",
        "PASS",
        [],
    )


def test_a_script_of_two_statements_is_numbered_with_its_lines(world: World) -> None:
    sql = "UPDATE orders SET status = 'x' WHERE id = 1;\n\nDELETE FROM orders WHERE id < 4;"
    order_id = world.file(sql, EstimateAffectRows=4)
    assert steps(world, order_id)[0] == ("SQL_PARSE", "SUCCESS", "2 statements parsed.")
    assert steps(world, order_id)[3] == ("ROW_CHECK", "SUCCESS", "4 rows, as estimated.")
    assert [
        (st.number, st.line, st.sql_text, st.sql_type, st.affect_rows, st.rows_source)
        for st in statements(world, order_id)
    ] == [
        (1, 1, "UPDATE orders SET status = 'x' WHERE id = 1", "UPDATE", 1, "COUNT"),
        (2, 3, "DELETE FROM orders WHERE id < 4", "DELETE", 3, "COUNT"),
    ]
    with world.store.session() as s:
        assert precheck.actual_rows(s, order_id) == 4
        page = precheck.databases(s, order_id, 1, 10)
        assert page.total == 1
        assert [(db.db_id, n) for db, n in page.items] == [(world.db_id, 2)]


def test_insert_values_counts_its_tuples_without_asking_the_target(world: World) -> None:
    sql = (
        "INSERT INTO customers (id, name, email, created_at) "
        "VALUES (1001, 'a', 'a@x', 't'), (1002, 'b', 'b@x', 't')"
    )
    order_id = world.file(sql, EstimateAffectRows=2)
    assert status(world, order_id) == "precheck_success"
    (st,) = statements(world, order_id)
    assert (st.sql_type, st.table_names, st.affect_rows, st.rows_source) == (
        "INSERT",
        "customers",
        2,
        "LITERAL",
    )


def test_nothing_is_shown_before_the_first_run(world: World) -> None:
    # actual_rows is None, not 0: no count was made
    with world.store.session() as s:
        assert precheck.actual_rows(s, 10**6) is None
        assert [(v.status, v.tip) for v in precheck.steps(s, 10**6)] == [("WAITING", "")] * 4


# ------------------------------------------------------------------ SQL_PARSE


def test_broken_sql_fails_parse_naming_statement_line_and_column(world: World) -> None:
    sql = "UPDATE orders SET status = 'x' WHERE id = 1;\n\nUPDATE orders SET status = WHERE id = 2"
    order_id = world.file(sql)
    (step, state, tip), *later = steps(world, order_id)
    assert (step, state) == ("SQL_PARSE", "FAIL")
    # WHERE is the 28th character of the third line
    assert tip.startswith("statement 2 (line 3, column 28): ")
    assert tip.endswith(" near 'WHERE'")
    assert later == not_run_after("SQL_PARSE")
    assert status(world, order_id) == "precheck_fail"
    assert shortfall(world, order_id) == f"SQL_PARSE failed: {tip}"
    assert statements(world, order_id) == []


def test_parse_column_counts_from_the_start_of_the_line(world: World) -> None:
    # the second statement starts mid-line: its column is the line's, not the statement's
    sql = "UPDATE orders SET status = 'x' WHERE id = 1; UPDATE orders SET status = WHERE id = 2"
    order_id = world.file(sql)
    tip = steps(world, order_id)[0][2]
    assert tip.startswith(f"statement 2 (line 1, column {sql.index('WHERE id = 2') + 1}): ")


def test_a_script_of_comments_only_has_no_statement(world: World) -> None:
    order_id = world.file("-- nothing to do yet")
    assert steps(world, order_id)[0] == (
        "SQL_PARSE",
        "FAIL",
        "The ticket has no SQL statement.",
    )


@pytest.mark.parametrize(
    ("limits", "sql", "said"),
    [
        (
            {"ticket_max_statements": 2},
            "UPDATE orders SET status = 'x' WHERE id = 1;" * 3,
            "The SQL has 3 statements; a ticket runs at most 2 (OPENDMS_TICKET_MAX_STATEMENTS).",
        ),
        (
            {"ticket_max_sql_bytes": 1024},
            "UPDATE orders SET status = 'x' WHERE id = 1;" * 40,
            "The SQL is 1,760 bytes; a ticket's SQL is at most 1,024 "
            "(OPENDMS_TICKET_MAX_SQL_BYTES).",
        ),
    ],
)
def test_sql_beyond_the_ticket_limits_fails_parse_before_anything_is_parsed(
    world: World, limits: dict[str, int], sql: str, said: str
) -> None:
    world.means = dataclasses.replace(world.means, **limits)
    world.rebuild_runner()
    order_id = world.file(sql)
    (step, state, tip), *later = steps(world, order_id)
    assert (step, state) == ("SQL_PARSE", "FAIL")
    assert tip.startswith(said)
    assert later == not_run_after("SQL_PARSE")


# ------------------------------------------------------------------ SQL_TYPE_CHECK


@pytest.mark.parametrize(
    ("sql", "finding"),
    [
        (
            "SELECT * FROM orders",
            (
                "STATEMENT_KIND_NOT_ALLOWED",
                "SELECT is not allowed in this ticket; it runs DELETE, INSERT, REPLACE, UPDATE.",
            ),
        ),
        (
            "DELETE FROM orders",
            ("DML_WITHOUT_WHERE", "DELETE without WHERE changes every row of the table."),
        ),
        (
            "UPDATE orders SET nope = 1 WHERE id = 1",
            ("UNKNOWN_COLUMN", "Column nope does not exist."),
        ),
    ],
)
def test_an_error_finding_fails_the_type_check_and_blocks_the_statement(
    world: World, sql: str, finding: tuple[str, str]
) -> None:
    order_id = world.file(sql)
    code, message = finding
    assert steps(world, order_id)[:2] == [
        ("SQL_PARSE", "SUCCESS", "1 statement parsed."),
        ("SQL_TYPE_CHECK", "FAIL", f"statement 1 (line 1): {code}: {message}"),
    ]
    assert steps(world, order_id)[2:] == not_run_after("SQL_TYPE_CHECK")
    assert status(world, order_id) == "precheck_fail"
    # the statements are stored even so: the user sees which one is blocked and why
    (st,) = statements(world, order_id)
    assert (st.review_status, st.affect_rows, st.rows_source) == ("BLOCK", None, "UNKNOWN")
    assert st.findings == [{"code": code, "level": "ERROR", "message": message}]


def test_the_type_check_lists_every_error_by_statement(world: World) -> None:
    sql = "UPDATE orders SET status = 'x' WHERE id = 1;\nDELETE FROM orders;\nSELECT 1"
    order_id = world.file(sql)
    assert steps(world, order_id)[1][2] == (
        "statement 2 (line 2): DML_WITHOUT_WHERE: DELETE without WHERE changes every row of "
        "the table.; statement 3 (line 3): STATEMENT_KIND_NOT_ALLOWED: SELECT is not allowed "
        "in this ticket; it runs DELETE, INSERT, REPLACE, UPDATE."
    )
    assert [st.review_status for st in statements(world, order_id)] == ["PASS", "BLOCK", "BLOCK"]


def test_a_warning_alone_passes_and_is_counted(world: World) -> None:
    order_id = world.file("UPDATE orders SET status = 'x' WHERE id < 10 LIMIT 1")
    assert steps(world, order_id)[1] == ("SQL_TYPE_CHECK", "SUCCESS", "1 warning.")
    assert status(world, order_id) == "precheck_success"
    (st,) = statements(world, order_id)
    assert st.review_status == "PASS"
    assert st.findings == [
        {
            "code": "DML_LIMIT_WITHOUT_ORDER_BY",
            "level": "WARNING",
            "message": "LIMIT without ORDER BY changes whichever rows come first: not repeatable.",
        }
    ]


def test_warnings_are_counted_in_the_plural(world: World) -> None:
    sql = (
        "UPDATE orders SET status = 'x' WHERE id < 10 LIMIT 1;\n"
        "DELETE FROM orders WHERE id < 10 LIMIT 1"
    )
    order_id = world.file(sql, EstimateAffectRows=2)
    assert steps(world, order_id)[1] == ("SQL_TYPE_CHECK", "SUCCESS", "2 warnings.")


# ------------------------------------------------------------------ PERMISSION_CHECK


def grant_table(world: World, who: str, table: str) -> None:
    with world.store.session() as s:
        permissions.grant(
            s,
            world.tid,
            world.id(who),
            permissions.GrantTarget("TABLE", world.instance_id, world.db_id, table),
            "CORRECT",
            utcnow() + timedelta(days=1),
        )


def test_a_committer_without_a_grant_fails_naming_the_table(world: World) -> None:
    order_id = world.file(GOOD, who="carol")
    assert steps(world, order_id)[2:] == [
        ("PERMISSION_CHECK", "FAIL", "carol lacks the CORRECT permission on orders (statement 1)"),
        *not_run_after("PERMISSION_CHECK"),
    ]
    assert shortfall(world, order_id) == (
        "PERMISSION_CHECK failed: carol lacks the CORRECT permission on orders (statement 1)"
    )
    # the row count is itself something to be allowed to see: it did not run
    (st,) = statements(world, order_id)
    assert (st.affect_rows, st.rows_source) == (None, "UNKNOWN")


def test_the_instances_dba_needs_no_grant(world: World) -> None:
    order_id = world.file(GOOD, who="dba")
    assert steps(world, order_id)[2] == ("PERMISSION_CHECK", "SUCCESS", ALLOWED)
    assert status(world, order_id) == "precheck_success"


@pytest.mark.parametrize("named_by", ["dba", None])
def test_a_dba_nobody_else_assigned_needs_a_grant(world: World, named_by: str | None) -> None:
    world.dba_named_by(named_by)
    order_id = world.file(GOOD, who="dba")
    assert steps(world, order_id)[2] == (
        "PERMISSION_CHECK",
        "FAIL",
        "dba lacks the CORRECT permission on orders (statement 1)",
    )


def test_an_administrator_needs_no_grant(world: World) -> None:
    order_id = world.file(GOOD, who="admin")
    assert steps(world, order_id)[2] == (
        "PERMISSION_CHECK",
        "SUCCESS",
        "The committer is an administrator.",
    )


def test_a_table_grant_covers_that_table(world: World) -> None:
    grant_table(world, "carol", "orders")
    order_id = world.file(GOOD, who="carol")
    assert steps(world, order_id)[2] == ("PERMISSION_CHECK", "SUCCESS", ALLOWED)
    assert status(world, order_id) == "precheck_success"


def test_a_table_grant_does_not_cover_the_other_tables(world: World) -> None:
    grant_table(world, "carol", "orders")
    sql = f"{GOOD};\nUPDATE customers SET name = 'x' WHERE id = 1"
    order_id = world.file(sql, who="carol", EstimateAffectRows=2)
    assert steps(world, order_id)[2] == (
        "PERMISSION_CHECK",
        "FAIL",
        "carol lacks the CORRECT permission on customers (statement 2)",
    )


def test_a_table_only_read_needs_the_grant_too(world: World) -> None:
    # a subquery reads customers: what it reveals is the committer's to see
    grant_table(world, "carol", "orders")
    sql = (
        "UPDATE orders SET status = 'x' "
        "WHERE customer_id IN (SELECT id FROM customers WHERE id = 1)"
    )
    order_id = world.file(sql, who="carol", EstimateAffectRows=25)
    assert steps(world, order_id)[2] == (
        "PERMISSION_CHECK",
        "FAIL",
        "carol lacks the CORRECT permission on customers (statement 1)",
    )


# ------------------------------------------------------------------ ROW_CHECK and its waiver


def test_a_wrong_estimate_fails_the_row_check(world: World) -> None:
    order_id = world.file(CUSTOMER_1)
    assert steps(world, order_id) == [
        *passed(("1 statement parsed.", "No findings.", ALLOWED, ""))[:3],
        ("ROW_CHECK", "FAIL", ROW_TIP),
    ]
    assert status(world, order_id) == "precheck_fail"
    assert shortfall(world, order_id) == f"ROW_CHECK failed: {ROW_TIP}"
    # the count is kept: it is what the committer corrects the estimate to
    (st,) = statements(world, order_id)
    assert (st.affect_rows, st.rows_source) == (25, "COUNT")
    with world.store.session() as s:
        assert precheck.actual_rows(s, order_id) == 25


def test_the_committer_waives_a_row_mismatch_with_a_reason(world: World) -> None:
    order_id = world.file(CUSTOMER_1)
    order = act(world, precheck.skip_row_check, "alice", order_id, "the customer has 25")
    assert (order.row_check_waived_by, order.row_check_waiver) == (
        world.id("alice"),
        "alice: the customer has 25",
    )
    assert steps(world, order_id)[3] == (
        "ROW_CHECK",
        "SUCCESS",
        f"{ROW_TIP} Waived by alice: the customer has 25",
    )
    assert status(world, order_id) == "precheck_success"
    assert shortfall(world, order_id) is None


def test_a_waiver_holds_when_the_precheck_runs_again(world: World) -> None:
    order_id = world.file(CUSTOMER_1)
    act(world, precheck.skip_row_check, "alice", order_id, "the customer has 25")
    act(world, precheck.retry, "alice", order_id)
    world.run_jobs()
    assert steps(world, order_id)[3] == (
        "ROW_CHECK",
        "SUCCESS",
        "25 rows counted, where the ticket estimates 1; waived: alice: the customer has 25",
    )
    assert status(world, order_id) == "precheck_success"


def test_an_administrator_may_waive_for_the_committer(world: World) -> None:
    order_id = world.file(CUSTOMER_1)
    act(world, precheck.skip_row_check, "admin", order_id, "checked with alice")
    assert steps(world, order_id)[3][2].endswith(" Waived by admin: checked with alice")


def test_there_is_nothing_to_waive_when_the_row_check_passed(world: World) -> None:
    order_id = world.file(GOOD)
    with pytest.raises(DmsError) as err:
        act(world, precheck.skip_row_check, "alice", order_id, "just in case")
    assert err.value.code == ErrorCode.ORDER_STATUS_INVALID


def test_a_waiver_cannot_cover_an_earlier_failure(world: World) -> None:
    # ROW_CHECK never ran after a type-check failure: only a failed row count is waived
    order_id = world.file("DELETE FROM orders")
    with pytest.raises(DmsError) as err:
        act(world, precheck.skip_row_check, "alice", order_id, "please")
    assert err.value.code == ErrorCode.ORDER_STATUS_INVALID


def test_someone_else_cannot_waive(world: World) -> None:
    order_id = world.file(CUSTOMER_1)
    # carol cannot even see alice's ticket
    with pytest.raises(DmsError) as err:
        act(world, precheck.skip_row_check, "carol", order_id, "mine now")
    assert err.value.code == ErrorCode.ORDER_NOT_FOUND
    # the instance's DBA sees it, but the estimate is the committer's to vouch for
    with pytest.raises(DmsError) as err:
        act(world, precheck.skip_row_check, "dba", order_id, "fine by me")
    assert err.value.code == ErrorCode.PERMISSION_DENIED
    assert err.value.message == "Only the committer or an administrator waives its row check."
    assert steps(world, order_id)[3] == ("ROW_CHECK", "FAIL", ROW_TIP)


def test_an_unreadable_target_fails_the_row_check_with_its_message(
    world: World, tmp_path: Path
) -> None:
    order_id = world.file(GOOD)
    target = tmp_path / "targets" / DEMO_FILE
    target.unlink()
    act(world, precheck.retry, "alice", order_id)
    world.run_jobs()
    assert steps(world, order_id)[3] == (
        "ROW_CHECK",
        "FAIL",
        f"SQLite database file {target} does not exist.",
    )
    assert status(world, order_id) == "precheck_fail"
    # the job itself ended normally: the failure is the ticket's, not the runner's
    assert jobs(world, order_id)[-1][1] == "succeeded"


def test_a_target_failure_is_not_waived_as_a_row_mismatch(world: World, tmp_path: Path) -> None:
    # skip_row_check "waives a row-count mismatch", but it accepts a ROW_CHECK that counted
    # nothing because the target was unreachable, and the ticket then passes its precheck
    # (while a retry with the same waiver fails again: the waiver is only read on a mismatch).
    order_id = world.file(GOOD)
    (tmp_path / "targets" / DEMO_FILE).unlink()
    act(world, precheck.retry, "alice", order_id)
    world.run_jobs()
    with pytest.raises(DmsError) as err:
        act(world, precheck.skip_row_check, "alice", order_id, "whatever")
    assert err.value.code == ErrorCode.ORDER_STATUS_INVALID


def test_row_check_on_a_table_dropped_from_the_target_fails_with_its_message(
    world: World, tmp_path: Path
) -> None:
    # The catalog still lists orders, so review passes; the count then meets a raw
    # sqlite3.OperationalError, which is not a TargetError: the job dies with an internal
    # error and ROW_CHECK is left RUNNING with no tip, instead of failing with the message.
    order_id = world.file(GOOD)
    with sqlite3.connect(tmp_path / "targets" / DEMO_FILE) as target:
        target.execute("DROP TABLE orders")
    act(world, precheck.retry, "alice", order_id)
    world.run_jobs()
    assert steps(world, order_id)[3][:2] == ("ROW_CHECK", "FAIL")
    assert "no such table: orders" in steps(world, order_id)[3][2]


# ------------------------------------------------------------------ retry and modify_sql


def test_modify_sql_replaces_the_sql_and_drops_the_waiver(world: World) -> None:
    order_id = world.file(CUSTOMER_1)
    act(world, precheck.skip_row_check, "alice", order_id, "the customer has 25")
    act(world, precheck.retry, "alice", order_id)  # still queued when the SQL changes
    new_sql = "UPDATE orders SET status = 'y' WHERE id = 3"
    order = act(world, precheck.modify_sql, "alice", order_id, new_sql)
    assert json.loads(order.params)["ExecSQL"] == new_sql
    assert (order.row_check_waived_by, order.row_check_waiver) == (None, None)
    # filing's run, the retry's (called off: it would check the old SQL), the new SQL's
    assert [state for _, state in jobs(world, order_id)] == ["succeeded", "cancelled", "queued"]
    latest = jobs(world, order_id)[-1][0]
    # until the new run, nothing of the old SQL is shown
    assert status(world, order_id) == "precheck"
    assert shortfall(world, order_id) == "its precheck is still running"
    assert steps(world, order_id) == [(step, "WAITING", "") for step in run.STEPS]
    assert statements(world, order_id) == []
    world.run_jobs()
    assert step_jobs(world, order_id) == {latest}
    assert [(st.sql_text, st.affect_rows) for st in statements(world, order_id)] == [(new_sql, 1)]
    assert status(world, order_id) == "precheck_success"


def test_a_waiver_does_not_carry_over_to_new_sql(world: World) -> None:
    order_id = world.file(CUSTOMER_1)
    act(world, precheck.skip_row_check, "alice", order_id, "the customer has 25")
    act(world, precheck.modify_sql, "alice", order_id, CUSTOMER_1.replace("'x'", "'y'"))
    world.run_jobs()
    assert steps(world, order_id)[3] == ("ROW_CHECK", "FAIL", ROW_TIP)


def test_a_submitted_ticket_is_not_prechecked_again(world: World) -> None:
    order_id = world.file(GOOD)
    world.submit(order_id)
    for fn, args in ((precheck.retry, ()), (precheck.modify_sql, (GOOD,))):
        with pytest.raises(DmsError) as err:
            act(world, fn, "alice", order_id, *args)
        assert err.value.code == ErrorCode.ORDER_STATUS_INVALID


def test_only_the_committer_or_an_administrator_runs_it_again(world: World) -> None:
    order_id = world.file(GOOD)
    with pytest.raises(DmsError) as err:
        act(world, precheck.retry, "dba", order_id)
    assert err.value.code == ErrorCode.PERMISSION_DENIED
    act(world, precheck.retry, "admin", order_id)
    assert jobs(world, order_id)[-1][1] == "queued"


# ------------------------------------------------------------------ superseded runs


def test_of_two_queued_runs_only_the_newest_runs(world: World) -> None:
    order_id = world.file(GOOD)
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        older = precheck.queue(s, order).job_id
        newer = precheck.queue(s, order).job_id
    assert world.run_jobs() == 1
    assert dict(jobs(world, order_id))[older] == "cancelled"
    assert dict(jobs(world, order_id))[newer] == "succeeded"
    assert step_jobs(world, order_id) == {newer}
    assert status(world, order_id) == "precheck_success"


def test_a_run_superseded_midway_writes_nothing_more(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = world.file(GOOD)
    act(world, precheck.retry, "alice", order_id)
    newer: list[int] = []
    check = run._Checks.permission_check

    def retried_meanwhile(self: run._Checks) -> str:
        newer.append(act(world, precheck.retry, "alice", order_id).job_id)
        return check(self)

    monkeypatch.setattr(run._Checks, "permission_check", retried_meanwhile)
    assert world.runner.run_once()
    # the old run's PERMISSION_CHECK and ROW_CHECK verdicts are not written over the new run's
    assert step_jobs(world, order_id) == set(newer)
    assert steps(world, order_id) == [(step, "WAITING", "") for step in run.STEPS]
    assert statements(world, order_id) == []


def test_a_cancelled_run_that_starts_late_leaves_the_steps_alone(world: World) -> None:
    # A runner claims a job, and a retry cancels it before its executor starts: when it
    # does start, it resets the steps to itself and runs, overriding the newer run.
    order_id = world.file(GOOD)
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        older = precheck.queue(s, order).job_id
        newer = precheck.queue(s, order).job_id
    world.run_jobs()
    late = world.runner.executors["precheck"]
    late(Work(older, order_id, "precheck", 1, world.store), {})
    assert step_jobs(world, order_id) == {newer}


# ------------------------------------------------------------------ SQL in an attachment


def attach(world: World, tmp_path: Path, name: str, content: bytes) -> str:
    # the same root World.build gives the precheck's FileStore
    with world.store.session() as s:
        return files.save_attachment(
            s,
            FileStore(tmp_path / "files"),
            world.as_("alice"),
            name,
            "datacorrect",
            [content],
            files.UploadLimits(max_bytes=1 << 20, timeout_seconds=5),
        ).attachment_key


def test_sql_in_an_attachment_is_prechecked(world: World, tmp_path: Path) -> None:
    # a byte-order mark, as editors on Windows write it, is not part of the SQL
    body = "\ufeffUPDATE orders SET status = 'x' WHERE id = 1;\nDELETE FROM orders WHERE id = 2;\n"
    key = attach(world, tmp_path, "fix.sql", body.encode())
    order_id = world.file(
        GOOD, SqlType="ATTACHMENT", AttachmentName=key, ExecSQL=None, EstimateAffectRows=2
    )
    assert status(world, order_id) == "precheck_success"
    assert [(st.number, st.line, st.sql_text) for st in statements(world, order_id)] == [
        (1, 1, "UPDATE orders SET status = 'x' WHERE id = 1"),
        (2, 2, "DELETE FROM orders WHERE id = 2"),
    ]


def test_an_attachment_that_is_not_utf8_fails_parse(world: World, tmp_path: Path) -> None:
    key = attach(world, tmp_path, "latin1.sql", "UPDATE orders SET status = 'é'".encode("latin-1"))
    order_id = world.file(GOOD, SqlType="ATTACHMENT", AttachmentName=key, ExecSQL=None)
    assert steps(world, order_id)[0] == (
        "SQL_PARSE",
        "FAIL",
        "The SQL attachment latin1.sql is not UTF-8 text (byte 28 is not valid).",
    )
    assert [state for _, state, _ in steps(world, order_id)[1:]] == ["WAITING"] * 3
    assert status(world, order_id) == "precheck_fail"


def test_an_attachment_whose_file_is_gone_fails_parse(world: World, tmp_path: Path) -> None:
    key = attach(world, tmp_path, "fix.sql", GOOD.encode())
    for stored in (tmp_path / "files").rglob("*"):
        if stored.is_file():
            stored.unlink()
    order_id = world.file(GOOD, SqlType="ATTACHMENT", AttachmentName=key, ExecSQL=None)
    assert steps(world, order_id)[0] == (
        "SQL_PARSE",
        "FAIL",
        "The SQL attachment fix.sql is missing.",
    )
