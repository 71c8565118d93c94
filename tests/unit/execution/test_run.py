"""Executing approved data-change tickets on the SQLite demo target: who may start one, how
its statements run and are recorded, and what a failure, a closed ticket or a crash leaves."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.config import Settings
from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.execution.run import Execute
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Work
from opendms.means import Means
from opendms.notify import webhooks
from opendms.rulebook import rule_sets
from opendms.store.db import Store
from opendms.store.models import (
    Job,
    Order,
    PrecheckStatement,
    SqlAudit,
    SqlJob,
    SqlJobDetail,
    utcnow,
)
from opendms.targets.demo import ensure_demo_target
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World
from tests.store_outage import LostStore

TWO = (
    "UPDATE orders SET status = 'refunded' WHERE id = 1; "
    "UPDATE orders SET status = 'refunded' WHERE id IN (2, 3)"
)
BUMP = "UPDATE orders SET amount_cents = amount_cents + 1 WHERE id = 5"
# customers.email is UNIQUE: two rows cannot both get the same address
CLASH = "UPDATE customers SET email = 'x@y' WHERE id IN (1, 2)"
FREE = "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
FREE_RULES = "rules:\n  - name: everything is free\n    risk: NONE\n"


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets")


@pytest.fixture
def target(world: World, tmp_path: Path) -> Path:
    return ensure_demo_target(tmp_path / "targets")  # made by the world: only its path


def query(target: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(target)) as db:
        return db.execute(sql).fetchall()


def approved(world: World, sql: str, **params: Any) -> int:
    """A ticket through the default Owner -> DBA flow."""
    order_id = world.file(sql, **params)
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    world.act(wf, "dba", "AGREE")
    assert world.status(order_id) == "Approved"
    return order_id


def start(world: World, order_id: int, who: str = "alice", **plan: Any) -> int:
    with world.store.session() as s:
        checked = execution.checked_plan(**plan)
        return execution.execute(s, world.as_(who), order_id, checked).job_id


def refused(world: World, order_id: int, who: str = "alice") -> DmsError:
    with pytest.raises(DmsError) as err:
        start(world, order_id, who)
    return err.value


def sql_jobs(world: World, order_id: int) -> list[SqlJob]:
    with world.store.session() as s:
        return list(s.scalars(select(SqlJob).where(SqlJob.order_id == order_id)))


def details(world: World, order_id: int) -> list[SqlJobDetail]:
    with world.store.session() as s:
        return list(
            s.scalars(
                select(SqlJobDetail)
                .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
                .where(SqlJob.order_id == order_id)
                .order_by(SqlJobDetail.number)
            )
        )


def audits(world: World, order_id: int) -> list[SqlAudit]:
    with world.store.session() as s:
        return list(
            s.scalars(
                select(SqlAudit).where(SqlAudit.order_id == order_id).order_by(SqlAudit.audit_id)
            )
        )


def markers(target: Path) -> list[tuple[str, Any]]:
    """The progress markers on the target: key, and the row count(s) each recorded."""
    rows = query(target, "SELECT run_key, result FROM _opendms_progress ORDER BY run_key")
    return [(key, json.loads(result)["rows"]) for key, result in rows]


def detail_status(world: World, order_id: int) -> str:
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return execution.detail_status(s, order, "precheck-status")


def group_status(world: World, job_id: int) -> str:
    with world.store.session() as s:
        return execution.group_status(s, job_id)


def job(world: World, job_id: int) -> Job:
    with world.store.session() as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def step_by_hand(world: World, order_id: int, job_id: int, store: Store | None = None) -> None:
    """One step of the executor, outside the runner (no lease, no checkpoint stored), on
    ``store`` (by default the world's)."""
    executor = world.runner.executors["execute"]
    executor(Work(job_id, order_id, "execute", 1, store or world.store), {})


def lost_after_reading(world: World) -> LostStore:
    """The metadata store as a step sees it when it goes away once the step read its work:
    whatever the target commits then is never recorded."""
    return LostStore(world.store, answered=1, error=RuntimeError("metadata store went away"))


def free_rules(world: World, extra: str = "") -> None:
    """Tickets need no approval (and ``extra`` tunes review) on the demo instance."""
    with world.store.session() as s:
        rule_sets.load(s, world.tid, "free", FREE + extra + FREE_RULES)
        rule_sets.assign(s, world.tid, world.instance_id, "free")


# ------------------------------------------------------------------ a run that succeeds


def test_a_two_statement_ticket_changes_the_target_and_is_recorded(
    world: World, target: Path
) -> None:
    order_id = approved(world, TWO, EstimateAffectRows=3)
    job_id = start(world, order_id)
    assert world.run_jobs() == 1
    assert query(target, "SELECT id FROM orders WHERE status = 'refunded' ORDER BY id") == [
        (1,),
        (2,),
        (3,),
    ]
    assert world.status(order_id) == "success"
    (sql_job,) = sql_jobs(world, order_id)
    assert (sql_job.group_id, sql_job.db_id, sql_job.status, sql_job.affect_rows) == (
        job_id,
        world.db_id,
        "SUCCESS",
        3,
    )
    assert "succeeded: 3 rows" in sql_job.log
    one, two = details(world, order_id)
    assert [(d.number, d.status, d.affect_rows, d.execute_count) for d in (one, two)] == [
        (1, "SUCCESS", 1, 1),
        (2, "SUCCESS", 2, 1),
    ]
    for d in (one, two):
        assert d.started_at is not None and d.ended_at is not None
        assert d.started_at <= d.ended_at and d.time_ms is not None
    assert group_status(world, job_id) == "SUCCESS"
    assert job(world, job_id).state == "succeeded"


@pytest.mark.parametrize("transaction", [False, True], ids=["each", "all"])
def test_the_step_that_succeeds_the_ticket_ends_its_job(
    world: World, target: Path, transaction: bool
) -> None:
    """The step that records the last statement says the job is over: no step more (its
    store transactions and a runner pass) comes after the ticket's success."""
    order_id = approved(world, TWO, EstimateAffectRows=3)
    job_id = start(world, order_id, transaction=transaction)
    executor = world.runner.executors["execute"]
    step = executor(Work(job_id, order_id, "execute", 1, world.store), {})
    assert (step.done, step.failure) == (True, None)
    assert world.status(order_id) == "success"
    assert [j.status for j in sql_jobs(world, order_id)] == ["SUCCESS"]


def test_each_statement_commits_with_its_own_progress_marker(world: World, target: Path) -> None:
    order_id = approved(world, TWO, EstimateAffectRows=3)
    start(world, order_id)
    world.run_jobs()
    (sql_job,) = sql_jobs(world, order_id)
    assert markers(target) == [
        (f"{sql_job.token}:1", 1),
        (f"{sql_job.token}:2", 2),
    ]


def test_each_statement_is_audited_for_who_started_it(world: World) -> None:
    order_id = approved(world, TWO, EstimateAffectRows=3)
    start(world, order_id)
    world.run_jobs()
    rows = audits(world, order_id)
    assert [(a.sql_type, a.affect_rows, a.exec_state, a.user_id) for a in rows] == [
        ("UPDATE", 1, "SUCCESS", world.id("alice")),
        ("UPDATE", 2, "SUCCESS", world.id("alice")),
    ]
    assert {(a.instance_id, a.db_id) for a in rows} == {(world.instance_id, world.db_id)}
    since = execution.AuditFilter(utcnow() - timedelta(hours=1), utcnow() + timedelta(hours=1))
    with world.store.session() as s:
        # alice sees what ran on her behalf, a DBA sees all of it, carol nothing
        assert execution.audit_log(s, world.as_("alice"), since, 1, 10).total == 2
        assert execution.audit_log(s, world.as_("dba"), since, 1, 10).total == 2
        assert execution.audit_log(s, world.as_("carol"), since, 1, 10).total == 0
        failed_only = execution.AuditFilter(since.start, since.end, exec_state="FAIL")
        assert execution.audit_log(s, world.as_("dba"), failed_only, 1, 10).total == 0
        # SearchName is a DMS pattern (store.search) over the schema and instance names
        for text, found in (("%", 2), ("MA_N", 2), ("\\%", 0)):
            searched = execution.AuditFilter(since.start, since.end, search=text)
            assert execution.audit_log(s, world.as_("dba"), searched, 1, 10).total == found


def test_the_sql_job_pages_show_the_run_to_who_may_see_the_ticket(world: World) -> None:
    order_id = approved(world, TWO, EstimateAffectRows=3)
    job_id = start(world, order_id)
    world.run_jobs()
    with world.store.session() as s:
        page = execution.sql_jobs(s, world.as_("alice"), job_id, 1, 10)
        ((sql_job, db),) = page.items
        assert (page.total, sql_job.status, db.db_id) == (1, "SUCCESS", world.db_id)
        shown = execution.sql_job_details(s, world.as_("alice"), sql_job.sql_job_id, 1, 1)
        assert shown.total == 2 and [d.number for d in shown.items] == [1]
        assert execution.task_affected_rows(s, job_id) == 3
        carol, alice = world.as_("carol"), world.as_("alice")
        for ask in (
            partial(execution.sql_jobs, s, carol, job_id, 1, 10),
            partial(execution.sql_job_details, s, carol, sql_job.sql_job_id, 1, 10),
            partial(execution.sql_jobs, s, alice, job_id + 1000, 1, 10),
        ):
            with pytest.raises(DmsError) as err:
                ask()
            assert err.value.code == ErrorCode.ORDER_NOT_FOUND


def test_detail_status_waits_runs_and_succeeds(world: World) -> None:
    order_id = approved(world, TWO, EstimateAffectRows=3)
    assert detail_status(world, order_id) == "Approved"
    job_id = start(world, order_id)
    # queued and never tried yet
    assert detail_status(world, order_id) == "waiting"
    with world.store.session() as s:  # as the runner's claim would have counted it
        claimed = s.get(Job, job_id)
        assert claimed is not None
        claimed.attempts = 1
    assert detail_status(world, order_id) == "processing"
    world.run_jobs()
    assert detail_status(world, order_id) == "success"


def test_a_new_ticket_shows_its_precheck_status(world: World) -> None:
    order_id = world.file(TWO, EstimateAffectRows=3)
    assert detail_status(world, order_id) == "precheck-status"


# ------------------------------------------------------------------ who starts it


def test_commitor_mode_is_started_by_the_committer_only(world: World) -> None:
    order_id = approved(world, BUMP)
    for who in ("dba", "owen", "admin"):
        err = refused(world, order_id, who)
        assert err.code == ErrorCode.PERMISSION_DENIED
        assert "started by the committer (ExecMode COMMITOR)" in err.message
    start(world, order_id, "alice")
    assert world.status(order_id) == "processing"


def test_last_auditor_mode_is_started_by_the_last_approver_only(world: World) -> None:
    order_id = approved(world, BUMP, ExecMode="LAST_AUDITOR")
    for who in ("alice", "owen"):  # the committer and an earlier approver
        err = refused(world, order_id, who)
        assert err.code == ErrorCode.PERMISSION_DENIED
        assert "started by the last approver (ExecMode LAST_AUDITOR)" in err.message
    start(world, order_id, "dba")
    world.run_jobs()
    assert world.status(order_id) == "success"
    # the audit names who started it, not the committer
    assert [a.user_id for a in audits(world, order_id)] == [world.id("dba")]


def test_auto_mode_runs_by_itself_on_the_last_agree(world: World, target: Path) -> None:
    order_id = world.file(BUMP, ExecMode="AUTO")
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    with world.store.session() as s:  # not after the first approval
        assert execution.execute_job(s, order_id) is None
    world.act(wf, "dba", "AGREE")
    with world.store.session() as s:
        queued = execution.execute_job(s, order_id)
        assert queued is not None and queued.state == "queued"
    assert world.status(order_id) == "processing"
    err = refused(world, order_id)
    assert err.code == ErrorCode.ORDER_STATUS_INVALID and "ExecMode AUTO" in err.message
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    # nobody pressed the button: the audit names the committer
    assert [a.user_id for a in audits(world, order_id)] == [world.id("alice")]


# ------------------------------------------------------------------ the gate


def test_only_an_approved_ticket_executes(world: World) -> None:
    order_id = world.file(BUMP)
    err = refused(world, order_id)
    assert err.code == ErrorCode.ORDER_STATUS_INVALID
    assert "is new; only an approved ticket executes" in err.message
    world.submit(order_id)
    err = refused(world, order_id)
    assert err.code == ErrorCode.ORDER_STATUS_INVALID
    assert "is toaudit; only an approved ticket executes" in err.message
    with world.store.session() as s:
        assert execution.execute_job(s, order_id) is None


def test_a_ticket_executes_once(world: World, target: Path) -> None:
    order_id = approved(world, BUMP)
    start(world, order_id)
    err = refused(world, order_id)  # the double click, while it is queued
    assert err.code == ErrorCode.ORDER_STATUS_INVALID and "is processing" in err.message
    world.run_jobs()
    err = refused(world, order_id)
    assert err.code == ErrorCode.ORDER_STATUS_INVALID and "is success" in err.message
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    assert len(sql_jobs(world, order_id)) == 1


# ------------------------------------------------------------------ the plan


def wire(delta: timedelta) -> str:
    return f"{utcnow() + delta:%Y-%m-%d %H:%M:%S}"


def test_checked_plan_checks_typed_times_as_the_action_detail_is_checked() -> None:
    later, past = wire(timedelta(hours=1)), wire(timedelta(minutes=-1))
    plan = execution.checked_plan(start="", end=later, transaction=True, backup=True)
    assert plan == execution.ExecutionPlan(start=None, end=later, transaction=True, backup=True)
    for start, end, says in (
        ("tomorrow", None, "ActionDetail.startTime: 'tomorrow' is not a time"),
        (later, wire(timedelta(minutes=30)), "ActionDetail.endTime is not after startTime"),
        (None, past, "ActionDetail.endTime has already passed"),
    ):
        with pytest.raises(DmsError) as err:
            execution.checked_plan(start=start, end=end)
        assert err.value.code == ErrorCode.INVALID_PARAMETER
        assert says in err.value.message


def test_a_future_start_time_waits_until_then(world: World, target: Path) -> None:
    order_id = approved(world, BUMP)
    at = wire(timedelta(hours=1))
    job_id = start(world, order_id, start=at)
    assert f"{job(world, job_id).run_after:%Y-%m-%d %H:%M:%S}" == at
    assert world.run_jobs() == 0
    assert detail_status(world, order_id) == "waiting"
    assert f"to start at {at}" in sql_jobs(world, order_id)[0].log
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(500,)]


# ------------------------------------------------------------------ failures


def test_a_failing_statement_stops_the_run_and_keeps_what_committed(
    world: World, target: Path
) -> None:
    sql = f"{BUMP}; {CLASH}; DELETE FROM orders WHERE id = 6"
    order_id = approved(world, sql, EstimateAffectRows=4)
    job_id = start(world, order_id)
    world.run_jobs()
    first, second, third = details(world, order_id)
    assert (first.status, second.status, third.status) == ("SUCCESS", "FAIL", "INIT")
    assert "UNIQUE constraint failed: customers.email" in second.log
    assert (second.execute_count, third.execute_count) == (1, 0)
    # one by one: the first statement committed and stays
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    assert query(target, "SELECT count(*) FROM orders WHERE id = 6") == [(1,)]
    assert query(target, "SELECT count(*) FROM customers WHERE email = 'x@y'") == [(0,)]
    (sql_job,) = sql_jobs(world, order_id)
    assert sql_job.status == "FAIL" and "statement 2 failed: UNIQUE" in sql_job.log
    assert world.status(order_id) == "processing"
    assert detail_status(world, order_id) == "processing"
    with world.store.session() as s:  # the words say it failed, and where
        desc = tickets.status_desc(s, s.get_one(Order, order_id))
    assert desc.startswith("Execution failed: ") and "statement 2" in desc, desc
    assert group_status(world, job_id) == "FAIL"
    failed = job(world, job_id)
    assert failed.state == "failed"
    assert "statement 2: UNIQUE constraint failed" in failed.checkpoint["failure"]
    assert [(a.exec_state, a.affect_rows) for a in audits(world, order_id)] == [
        ("SUCCESS", 1),
        ("FAIL", None),
    ]


def test_a_failing_statement_in_a_transaction_changes_nothing(world: World, target: Path) -> None:
    sql = f"{BUMP}; DELETE FROM orders WHERE id = 6; {CLASH}"
    order_id = approved(world, sql, EstimateAffectRows=4)
    before = (query(target, "SELECT * FROM orders"), query(target, "SELECT * FROM customers"))
    job_id = start(world, order_id, transaction=True)
    world.run_jobs()
    assert (query(target, "SELECT * FROM orders"), query(target, "SELECT * FROM customers")) == (
        before
    )
    assert markers(target) == []
    first, second, third = details(world, order_id)
    assert (first.status, second.status, third.status) == ("INIT", "INIT", "FAIL")
    for earlier in (first, second):
        assert "rolled back: statement 3 failed in the same transaction" in earlier.log
    assert "UNIQUE constraint failed" in third.log
    assert group_status(world, job_id) == "FAIL"
    failure = job(world, job_id).checkpoint["failure"]
    assert failure.endswith("nothing of this database was changed")
    assert [a.exec_state for a in audits(world, order_id)] == ["FAIL"]


def test_a_transaction_commits_all_statements_with_one_marker(world: World, target: Path) -> None:
    order_id = approved(world, TWO, EstimateAffectRows=3)
    start(world, order_id, transaction=True)
    world.run_jobs()
    assert world.status(order_id) == "success"
    (sql_job,) = sql_jobs(world, order_id)
    assert sql_job.transactional and sql_job.affect_rows == 3
    assert markers(target) == [(f"{sql_job.token}:all", [1, 2])]
    assert [(d.status, d.affect_rows) for d in details(world, order_id)] == [
        ("SUCCESS", 1),
        ("SUCCESS", 2),
    ]


def test_a_duplicate_primary_key_fails_the_insert(world: World, target: Path) -> None:
    sql = "INSERT INTO customers (id, name, email, created_at) VALUES (7, 'n', 'n@x', 'now')"
    order_id = approved(world, sql)
    start(world, order_id)
    world.run_jobs()
    (detail,) = details(world, order_id)
    assert detail.status == "FAIL" and "UNIQUE constraint failed: customers.id" in detail.log
    assert query(target, "SELECT email FROM customers WHERE id = 7") == [("c7@example.com",)]


# ------------------------------------------------------------------ exactly once


def test_a_commit_whose_recording_was_lost_is_not_applied_twice(world: World, target: Path) -> None:
    order_id = approved(world, BUMP)
    job_id = start(world, order_id)
    step_by_hand(world, order_id, job_id)
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    with world.store.session() as s:  # the store forgets; the target's marker remains
        (detail,) = s.scalars(select(SqlJobDetail))
        detail.status, detail.affect_rows, detail.execute_count = "INIT", None, 0
        (sql_job,) = s.scalars(select(SqlJob))
        sql_job.status = "RUNNING"
        order = s.get(Order, order_id)
        assert order is not None
        order.status_code = "processing"
    world.run_jobs()
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    (detail,) = details(world, order_id)
    assert (detail.status, detail.affect_rows, detail.execute_count) == ("SUCCESS", 1, 1)
    assert "committed before a restart; recorded from its progress marker" in detail.log
    assert world.status(order_id) == "success"


def test_a_crash_between_commit_and_recording_is_recovered_from_the_marker(
    world: World, target: Path
) -> None:
    order_id = approved(world, BUMP)
    job_id = start(world, order_id)

    with pytest.raises(RuntimeError):
        step_by_hand(world, order_id, job_id, lost_after_reading(world))
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    assert details(world, order_id)[0].status == "INIT"
    world.run_jobs()
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    (detail,) = details(world, order_id)
    assert (detail.status, detail.affect_rows) == ("SUCCESS", 1)
    (audit,) = audits(world, order_id)  # audited once, when it was recorded
    assert "recorded from its progress marker" in audit.remark
    assert world.status(order_id) == "success"


def test_a_transaction_that_committed_before_a_crash_is_recorded_not_rerun(
    world: World, target: Path
) -> None:
    order_id = approved(world, f"{BUMP}; DELETE FROM orders WHERE id = 6", EstimateAffectRows=2)
    job_id = start(world, order_id, transaction=True)

    with pytest.raises(RuntimeError):
        step_by_hand(world, order_id, job_id, lost_after_reading(world))
    world.run_jobs()
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(501,)]
    assert [(d.status, d.affect_rows) for d in details(world, order_id)] == [
        ("SUCCESS", 1),
        ("SUCCESS", 1),
    ]
    assert world.status(order_id) == "success"


# ------------------------------------------------------------------ stopping


def test_closing_a_processing_ticket_stops_its_run(world: World, target: Path) -> None:
    world.tune(step_seconds=-1.0)  # one statement a step
    order_id = approved(world, f"{BUMP}; DELETE FROM orders WHERE id = 6", EstimateAffectRows=2)
    job_id = start(world, order_id)
    step_by_hand(world, order_id, job_id)
    with world.store.session() as s:
        lifecycle.close(s, world.as_("alice"), order_id, "wrong customer")
    (sql_job,) = sql_jobs(world, order_id)
    assert sql_job.status == "DELETE" and "ticket closed" in sql_job.log
    assert job(world, job_id).state == "cancelled"
    assert world.run_jobs() == 0
    step_by_hand(world, order_id, job_id)  # a runner already holding it stops too
    assert query(target, "SELECT count(*) FROM orders WHERE id = 6") == [(1,)]
    assert [d.status for d in details(world, order_id)] == ["SUCCESS", "INIT"]
    assert world.status(order_id) == "closed"
    assert group_status(world, job_id) == "DELETE"


def test_a_run_whose_window_passed_before_it_started_fails(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = approved(world, BUMP)
    end = wire(timedelta(minutes=10))
    job_id = start(world, order_id, end=end)
    executor = world.runner.executors["execute"]
    assert isinstance(executor, Execute)
    monkeypatch.setattr(executor, "clock", lambda: utcnow() + timedelta(hours=1))  # it waited
    world.run_jobs()
    reason = f"Not started: the execution window ended at {end} (UTC)."
    assert job(world, job_id).checkpoint["failure"] == reason
    (sql_job,) = sql_jobs(world, order_id)
    assert sql_job.status == "FAIL" and reason in sql_job.log
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(500,)]
    assert [d.status for d in details(world, order_id)] == ["INIT"]


# ------------------------------------------------------------------ only data changes


def test_ddl_that_the_precheck_let_through_is_refused_by_the_executor(
    world: World, target: Path
) -> None:
    """The executor's own wall: were a CREATE ever recorded as a prechecked statement (the
    review cannot be told to allow one: STATEMENT_KIND_NOT_ALLOWED is fixed), it still
    does not run."""
    free_rules(world)
    order_id = world.file("UPDATE orders SET amount_cents = 1 WHERE id = 5")
    world.submit(order_id)
    assert world.status(order_id) == "Approved"
    with world.store.session() as s:
        (st,) = s.scalars(select(PrecheckStatement).where(PrecheckStatement.order_id == order_id))
        st.sql_text, st.sql_type = "CREATE TABLE x (id INT)", "CREATE"
    job_id = start(world, order_id)
    world.run_jobs()
    (detail,) = details(world, order_id)
    message = "statement 1 is CREATE: a data change runs only INSERT, REPLACE, UPDATE and DELETE."
    assert detail.status == "FAIL" and message in detail.log
    assert message in job(world, job_id).checkpoint["failure"]
    assert query(target, "SELECT name FROM sqlite_master WHERE name = 'x'") == []
    assert [(a.sql_type, a.exec_state) for a in audits(world, order_id)] == [("CREATE", "FAIL")]


# ------------------------------------------------------------------ bugs found


@pytest.mark.parametrize(
    "hold",
    [
        "BEGIN IMMEDIATE",  # another writer: the executor's BEGIN IMMEDIATE finds it busy
        "BEGIN; SELECT count(*) FROM orders",  # a reader: the executor's COMMIT finds it busy
    ],
)
def test_a_busy_sqlite_target_is_waited_out_like_a_lost_lock(
    world: World, target: Path, hold: str
) -> None:
    """A lock held by someone else is what LOCK_RETRIES waits out, whether the executor meets
    it at BEGIN or at COMMIT: the job goes back to the queue, nothing changed."""
    world.means = dataclasses.replace(world.means, lock_wait_seconds=0)
    world.rebuild_runner()
    order_id = approved(world, BUMP)
    job_id = start(world, order_id)
    with closing(sqlite3.connect(target, isolation_level=None)) as other:
        other.execute(  # as an earlier run left it, so the executor gets as far as BEGIN
            "CREATE TABLE _opendms_progress (run_key TEXT PRIMARY KEY, result TEXT NOT NULL, "
            "done_at TEXT NOT NULL)"
        )
        for statement in hold.split("; "):
            other.execute(statement).fetchall()
        world.run_jobs()
        other.execute("ROLLBACK")
    assert query(target, "SELECT amount_cents FROM orders WHERE id = 5") == [(500,)]
    failure = job(world, job_id).checkpoint.get("failure")
    assert job(world, job_id).state == "queued", failure


def test_a_last_auditor_ticket_that_needed_no_approval_is_started_by_its_committer(
    world: World,
) -> None:
    """ExecMode LAST_AUDITOR on a ticket the rule set waived approval for: there is no last
    approver, so the committer starts it (else nobody could)."""
    free_rules(world)
    order_id = world.file(BUMP, ExecMode="LAST_AUDITOR")
    world.submit(order_id)
    assert world.status(order_id) == "Approved"

    def may_start(who: str) -> bool:
        try:
            start(world, order_id, who)
        except DmsError as err:
            assert err.code == ErrorCode.PERMISSION_DENIED
            return False
        return True

    assert not may_start("dba")
    assert may_start("alice")


def test_a_finished_execution_is_announced_to_the_webhook(world: World, box: SecretBox) -> None:
    with world.store.session() as s:
        webhooks.configure(s, box, world.tid, "http://127.0.0.1:9/hook")
    order_id = approved(world, BUMP)
    start(world, order_id)
    world.run_jobs()
    executed = world.events()[-1]
    assert executed["event"] == "order.executed"
    assert executed["order"]["order_id"] == order_id
    assert executed["order"]["status_code"] == "success"


def test_the_ticket_succeeds_in_the_step_that_finishes_its_last_sql_job(
    world: World, box: SecretBox
) -> None:
    with world.store.session() as s:
        webhooks.configure(s, box, world.tid, "http://127.0.0.1:9/hook")
    order_id = approved(world, BUMP)
    job_id = start(world, order_id)
    step_by_hand(world, order_id, job_id)
    (sql_job,) = sql_jobs(world, order_id)
    assert (sql_job.status, world.status(order_id)) == ("SUCCESS", "success")
    step_by_hand(world, order_id, job_id)  # the runner's next step only ends the job
    assert [e["event"] for e in world.events()].count("order.executed") == 1


def test_a_restarted_regular_statement_keeps_no_chunk_progress(world: World) -> None:
    order_id = approved(world, CLASH, EstimateAffectRows=2)
    start(world, order_id)
    world.run_jobs()
    assert [d.status for d in details(world, order_id)] == ["FAIL"]
    with world.store.session() as s:
        execution.restart(s, world.as_("alice"), order_id, "ALL", None)
    (detail,) = details(world, order_id)
    # ListDBTaskSQLJobDetail shows chunk fields only for a statement run in chunks
    assert (detail.status, detail.progress) == ("INIT", {})


def test_the_sessions_an_import_writes_through_are_a_setting(tmp_path: Path) -> None:
    def streams(**settings: Any) -> int:
        means = Means.from_settings(Settings(data_dir=tmp_path, **settings), b"k" * 32)
        return Execute(means).importer.streams

    assert (streams(), streams(import_streams=1)) == (2, 1)
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, import_streams=3)
