"""What an execution's DDL statements show as they run (``execution.ddl_progress``): each
statement's strategy, status, copy counts and message as its online progress holds them, the
time left of a copy only when the timestamps tell it, and the ticket's progress summing a
DDL execution without mistaking that progress for a chunked statement's."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from opendms.execution import ddl_progress
from opendms.execution import service as execution
from opendms.execution.online import OnlineProgress, OnlineStatus, Strategy
from opendms.store.models import Job, SqlJob, SqlJobDetail
from opendms.store.states import SqlJobStatus
from opendms.structure import design
from tests.approval_world import World
from tests.ticket_stages import schema_design

NOW = datetime(2026, 3, 1, 12, 0, 0)
SCRIPT = (
    "ALTER TABLE orders ADD COLUMN note TEXT;\n"
    "CREATE INDEX idx_orders_note ON orders (note);\n"
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
)


def copying(done: int, total: int) -> OnlineProgress:
    return OnlineProgress(OnlineStatus.RUNNING, Strategy.SHADOW, total, done, 500)


def test_the_time_left_is_the_rest_at_the_pace_kept_so_far() -> None:
    started = NOW - timedelta(seconds=60)
    assert ddl_progress.eta_seconds(copying(250, 1000), started, NOW, going=True) == 180


def test_no_time_left_is_told_where_it_would_be_a_guess() -> None:
    started = NOW - timedelta(seconds=60)
    eta = ddl_progress.eta_seconds
    assert eta(copying(250, 1000), started, NOW, going=False) is None  # paused
    assert eta(copying(0, 1000), started, NOW, going=True) is None  # nothing copied yet
    assert eta(copying(250, 0), started, NOW, going=True) is None  # no estimate
    assert eta(copying(1200, 1000), started, NOW, going=True) is None  # estimate too low
    assert eta(copying(250, 1000), None, NOW, going=True) is None  # never started
    assert eta(copying(250, 1000), NOW, NOW, going=True) is None  # no time spent
    waiting = copying(250, 1000)
    waiting.status = OnlineStatus.WAITING_CUTOVER
    assert eta(waiting, started, NOW, going=True) is None


def _base_run(world: World) -> tuple[int, int]:
    """A schema design run on its base database (queued, not run): the ticket and its
    execution."""
    order_id = schema_design(world, SCRIPT)
    world.run_jobs()
    with world.store.session() as s:
        job = design.execute_stage(s, world.as_("alice"), order_id, world.db_id)
        return order_id, job.job_id


def test_each_statement_shows_how_far_it_got(world: World) -> None:
    order_id, group_id = _base_run(world)
    with world.store.session() as s:
        queued, more = ddl_progress.statements(s, group_id, NOW)
    assert [st.number for st in queued] == [1, 2, 3] and more == 0
    assert all(st.strategy is None and st.how == "" for st in queued)  # not begun
    assert queued[0].sql == "ALTER TABLE orders ADD COLUMN note TEXT"

    with world.store.session() as s:  # the first statement half way through a shadow copy
        first = s.scalars(
            select(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(SqlJob.group_id == group_id, SqlJobDetail.number == 1)
        ).one()
        sql_job = s.get_one(SqlJob, first.sql_job_id)
        sql_job.status = first.status = SqlJobStatus.RUNNING
        first.started_at = NOW - timedelta(seconds=30)
        copy = copying(4000, 5000)
        copy.message = "copying rows"
        first.progress = copy.dumps()
    with world.store.session() as s:
        shown, _ = ddl_progress.statements(s, group_id, NOW)
    st = shown[0]
    assert (st.online, st.strategy, st.copy_count, st.copy_total) == (
        OnlineStatus.RUNNING,
        Strategy.SHADOW,
        4000,
        5000,
    )
    assert st.ratio == 0.8 and st.message == "copying rows" and st.copies
    assert st.how == "copied into a shadow table and swapped in"
    assert st.eta_seconds == 7  # 1,000 rows left at 4,000 rows in 30 s
    with world.store.session() as s:  # the statement running comes first when few are shown
        shown, more = ddl_progress.statements(s, group_id, NOW, limit=1)
    assert [x.number for x in shown] == [1] and more == 2
    with world.store.session() as s:  # it reaches the ticket's progress
        summed = execution.progress(s, world.as_("alice"), order_id)
    assert summed is not None and [x.number for x in summed.ddl] == [1, 2, 3]
    assert summed.ddl[0].copy_count == 4000 and summed.rows == 0


def test_a_finished_ddl_execution_sums_up(world: World) -> None:
    order_id, group_id = _base_run(world)
    world.run_jobs()
    with world.store.session() as s:
        summed = execution.progress(s, world.as_("alice"), order_id)
        assert s.get_one(Job, group_id).state == "succeeded"
    assert summed is not None and summed.over and summed.done == 3
    assert [(x.status, x.online, x.strategy) for x in summed.ddl] == [
        (SqlJobStatus.SUCCESS, OnlineStatus.SUCCESS, Strategy.DIRECT)
    ] * 3
    assert all(x.ratio == 1.0 and x.eta_seconds is None for x in summed.ddl)
