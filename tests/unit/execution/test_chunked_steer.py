"""Steering a DC_CHUNK execution on the SQLite demo target: pausing and restarting it, its
execution window, holding back while the target is busy, lost lock fights, a crash between a
chunk's commit and its recording, backups, and who may do what."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.errors import DmsError, ErrorCode
from opendms.execution import chunked, files
from opendms.execution import service as execution
from opendms.execution.chunked import Progress
from opendms.execution.run import Execute
from opendms.execution.run_chunks import CHUNK_LOCK_RETRIES
from opendms.execution.walk import advance, begin_walk
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Step, Work
from opendms.sql.chunks import chunking
from opendms.store.db import Store
from opendms.store.models import Instance, Job, SqlAudit, SqlJob, SqlJobDetail, utcnow
from opendms.targets.base import Endpoint, StatementError
from opendms.targets.demo import ensure_demo_target
from opendms.targets.pace import Gauge, Pace
from opendms.targets.registry import connector_for
from tests.approval_world import World
from tests.store_outage import LostStore

BUMP_ALL = "UPDATE orders SET amount_cents = amount_cents + 1 WHERE 1=1"
CUSTOMERS = 40  # the demo target, smaller: 40 customers with 25 orders each
CHUNK = 100  # keys a chunk; the 1000 orders take ten
FROZEN = (  # the third chunk of the walk fails
    "CREATE TRIGGER no_240 BEFORE UPDATE ON orders WHEN NEW.id = 240 "
    "BEGIN SELECT RAISE(ABORT, 'order 240 is frozen'); END"
)
STEP = 0.05  # seconds a runner step runs chunks, in tests that stop one early


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    ensure_demo_target(tmp_path / "targets", customers=CUSTOMERS)  # the world finds it made
    w = World.build(store, box, tmp_path / "targets")
    # chunks of CHUNK keys whatever their time (a budget no chunk comes near)
    pace = Pace(chunk_seconds=60.0, first_chunk_rows=CHUNK, max_chunk_rows=CHUNK)
    w.means = dataclasses.replace(w.means, pace=pace)
    w.rebuild_runner()
    return w


@pytest.fixture
def target(world: World, tmp_path: Path) -> Path:
    return ensure_demo_target(tmp_path / "targets")  # made by the world: only its path


# ------------------------------------------------------------------ helpers


def query(target: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(target)) as db:
        return db.execute(sql).fetchall()


def amounts(target: Path) -> list[tuple[int, int]]:
    return [(i, a) for i, a in query(target, "SELECT id, amount_cents FROM orders ORDER BY id")]


def bumped(before: list[tuple[int, int]], target: Path) -> list[int]:
    """How much each order's amount moved since ``before``, in id order."""
    now = dict(amounts(target))
    assert set(now) == {i for i, _ in before}
    return [now[i] - a for i, a in before]


def on_target(target: Path, sql: str) -> None:
    with closing(sqlite3.connect(target, isolation_level=None)) as db:
        db.execute(sql)


def approved(world: World, sql: str = BUMP_ALL) -> int:
    order_id = world.file(sql, kind="DC_CHUNK")
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    world.act(wf, "dba", "AGREE")
    assert world.status(order_id) == "Approved"
    return order_id


def start(world: World, order_id: int, who: str = "alice", **plan: Any) -> int:
    with world.store.session() as s:
        checked = execution.checked_plan(**plan)
        return execution.execute(s, world.as_(who), order_id, checked).job_id


def pause(world: World, order_id: int, who: str = "alice", kind: str = "ALL") -> list[int]:
    with world.store.session() as s:
        return [j.sql_job_id for j in execution.pause(s, world.as_(who), order_id, kind, None)]


def restart(world: World, order_id: int, who: str = "alice", kind: str = "ALL") -> list[int]:
    with world.store.session() as s:
        return [j.sql_job_id for j in execution.restart(s, world.as_(who), order_id, kind, None)]


def refusal(call: Callable[[], object]) -> DmsError:
    with pytest.raises(DmsError) as err:
        call()
    return err.value


def the_sql_job(world: World, order_id: int) -> SqlJob:
    with world.store.session() as s:
        found = s.scalars(select(SqlJob).where(SqlJob.order_id == order_id)).one()
        s.expunge(found)
        return found


def the_detail(world: World, order_id: int) -> SqlJobDetail:
    with world.store.session() as s:
        found = s.scalars(
            select(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(SqlJob.order_id == order_id)
        ).one()
        s.expunge(found)
        return found


def progress_of(world: World, order_id: int) -> Progress:
    return Progress.load(the_detail(world, order_id).progress)


def job(world: World, job_id: int) -> Job:
    with world.store.session() as s:
        found = s.get(Job, job_id)
        assert found is not None
        s.expunge(found)
        return found


def make_due(world: World, job_id: int) -> None:
    """A job waiting out a rest is due now (rather than sleeping in a test)."""
    with world.store.session() as s:
        found = s.get(Job, job_id)
        assert found is not None and found.state == "queued"
        found.run_after = utcnow() - timedelta(seconds=1)


def executor(world: World) -> Execute:
    found = world.runner.executors["execute"]
    assert isinstance(found, Execute)
    return found


def step_by_hand(world: World, order_id: int, job_id: int, store: Store | None = None) -> Step:
    """One step of the executor, outside the runner (no lease, no checkpoint stored), on
    ``store`` (by default the world's)."""
    return executor(world)(Work(job_id, order_id, "execute", 1, store or world.store), {})


def wire(delta: timedelta) -> str:
    return f"{utcnow() + delta:%Y-%m-%d %H:%M:%S}"


class Chunks:
    """Watches the chunks the executor runs (``walk.advance`` as ``chunked.stride`` calls it):
    counts those that committed, runs a hook after a chosen one, and can make calls lose a
    lock fight instead of running."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.committed = 0
        self.after: dict[int, Callable[[], None]] = {}
        self.losing: Callable[[int], bool] = lambda call: False

        def watched(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.losing(self.calls):
                raise StatementError("database is locked", lost_lock=True)
            result = advance(*args, **kwargs)
            self.committed += 1
            hook = self.after.pop(self.committed, None)
            if hook is not None:
                hook()
            return result

        monkeypatch.setattr(chunked, "advance", watched)

    def stop_after(self, n: int, then: Callable[[], object] = lambda: None) -> None:
        """After the ``n``-th chunk commits, do ``then`` and let the step's time run out (the
        test's STEP is short), so the runner's next step sees what ``then`` did."""

        def hook() -> None:
            then()
            time.sleep(STEP * 1.5)

        self.after[n] = hook


@pytest.fixture
def short_steps(world: World) -> None:
    world.tune(step_seconds=STEP)


# ------------------------------------------------------------------ pause and restart


@pytest.mark.usefixtures("short_steps")
def test_pausing_stops_between_chunks_and_restarting_goes_on_from_there(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    order_id = approved(world)
    job_id = start(world, order_id)
    chunks = Chunks(monkeypatch)
    paused: list[int] = []
    chunks.stop_after(3, lambda: paused.extend(pause(world, order_id)))
    world.run_jobs()

    sql_job = the_sql_job(world, order_id)
    assert paused == [sql_job.sql_job_id]
    assert job(world, job_id).state == "paused"
    assert sql_job.status == "PAUSE" and "paused by alice" in sql_job.log
    assert chunks.committed == 3
    # the first three chunks committed, nothing after them
    assert bumped(before, target) == [1] * (3 * CHUNK) + [0] * (len(before) - 3 * CHUNK)
    detail = the_detail(world, order_id)
    assert detail.affect_rows == 3 * CHUNK
    progress = Progress.load(detail.progress)
    assert (progress.rows, progress.chunks, progress.after) == (3 * CHUNK, 3, [3 * CHUNK])
    assert progress.estimate == len(before)  # the precheck's count
    with world.store.session() as s:
        assert execution.group_status(s, job_id) == "PAUSE"
        assert [p.rows for p in execution.chunk_progress(s, job_id)] == [3 * CHUNK]
    assert world.run_jobs() == 0  # paused: no runner picks it up
    assert chunks.committed == 3

    assert restart(world, order_id) == [sql_job.sql_job_id]
    assert job(world, job_id).state == "queued"
    world.run_jobs()
    assert bumped(before, target) == [1] * len(before)
    assert world.status(order_id) == "success"
    sql_job = the_sql_job(world, order_id)
    assert sql_job.status == "SUCCESS" and "restarted by alice" in sql_job.log
    assert sql_job.affect_rows == len(before)
    detail = the_detail(world, order_id)
    assert (detail.status, detail.affect_rows) == ("SUCCESS", len(before))
    assert Progress.load(detail.progress).state == "DONE"
    with world.store.session() as s:  # audited once, for the whole statement
        audits = list(s.scalars(select(SqlAudit).where(SqlAudit.order_id == order_id)))
    assert [(a.exec_state, a.affect_rows) for a in audits] == [("SUCCESS", len(before))]


@pytest.mark.usefixtures("short_steps")
def test_a_paused_chunked_statement_shows_paused(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # paused mid-step: the step's progress, recorded after the pause, must not say RUNNING
    order_id = approved(world)
    start(world, order_id)
    Chunks(monkeypatch).stop_after(2, lambda: pause(world, order_id))
    world.run_jobs()
    assert the_sql_job(world, order_id).status == "PAUSE"
    assert progress_of(world, order_id).state == "PAUSED"


@pytest.mark.usefixtures("short_steps")
def test_pausing_one_sql_job_by_its_id(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = approved(world)
    job_id = start(world, order_id)
    sql_job_id = the_sql_job(world, order_id).sql_job_id

    def single() -> None:
        with world.store.session() as s:
            execution.pause(s, world.as_("dba"), order_id, "SINGLE", sql_job_id)

    Chunks(monkeypatch).stop_after(1, single)
    world.run_jobs()
    assert job(world, job_id).state == "paused"
    sql_job = the_sql_job(world, order_id)
    assert sql_job.status == "PAUSE" and "paused by dba" in sql_job.log
    with world.store.session() as s:
        restarted = execution.restart(s, world.as_("admin"), order_id, "SINGLE", sql_job_id)
        assert [j.sql_job_id for j in restarted] == [sql_job_id]
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert "restarted by admin" in the_sql_job(world, order_id).log


def test_a_failed_chunk_is_retried_by_a_restart_without_redoing_committed_chunks(
    world: World, target: Path
) -> None:
    before = amounts(target)
    on_target(
        target,
        FROZEN,
    )
    order_id = approved(world)
    job_id = start(world, order_id)
    world.run_jobs()

    failed = job(world, job_id)
    assert failed.state == "failed"
    assert "order 240 is frozen" in failed.checkpoint["failure"]
    sql_job = the_sql_job(world, order_id)
    assert sql_job.status == "FAIL" and "statement 1 failed: order 240 is frozen" in sql_job.log
    detail = the_detail(world, order_id)
    assert detail.status == "FAIL" and "order 240 is frozen" in detail.log
    # two chunks committed; the third (201-300) rolled back whole
    assert bumped(before, target) == [1] * 2 * CHUNK + [0] * (len(before) - 2 * CHUNK)
    assert world.status(order_id) == "processing"

    on_target(target, "DROP TRIGGER no_240")
    assert restart(world, order_id) == [sql_job.sql_job_id]
    assert job(world, job_id).state == "queued"
    assert the_detail(world, order_id).status == "INIT"
    world.run_jobs()
    assert bumped(before, target) == [1] * len(before)
    assert world.status(order_id) == "success"
    sql_job = the_sql_job(world, order_id)
    assert sql_job.status == "SUCCESS" and "retried by alice" in sql_job.log
    detail = the_detail(world, order_id)
    assert (detail.status, detail.affect_rows) == ("SUCCESS", len(before))


def test_a_failing_chunk_keeps_the_rows_committed_before_it_in_its_step(
    world: World, target: Path
) -> None:
    # the two chunks before the failing one committed (200 rows changed on the target),
    # and the statement's recorded rows and progress say so
    on_target(
        target,
        FROZEN,
    )
    order_id = approved(world)
    start(world, order_id)
    world.run_jobs()
    detail = the_detail(world, order_id)
    assert detail.status == "FAIL"
    assert detail.affect_rows == 2 * CHUNK
    assert Progress.load(detail.progress).rows == 2 * CHUNK
    assert the_sql_job(world, order_id).affect_rows == 2 * CHUNK


# ------------------------------------------------------------------ the execution window


@pytest.mark.usefixtures("short_steps")
def test_a_window_that_ends_pauses_the_change_and_a_new_window_continues_it(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    order_id = approved(world)
    end = wire(timedelta(minutes=10))
    job_id = start(world, order_id, end=end, backup=True)
    late = [timedelta(0)]
    monkeypatch.setattr(executor(world), "clock", lambda: utcnow() + late[0])

    def window_over() -> None:
        late[0] = timedelta(hours=1)

    Chunks(monkeypatch).stop_after(3, window_over)
    world.run_jobs()

    assert job(world, job_id).state == "paused"
    sql_job = the_sql_job(world, order_id)
    assert sql_job.status == "PAUSE"
    assert f"paused: the execution window ended at {end} (UTC)" in sql_job.log
    assert bumped(before, target) == [1] * (3 * CHUNK) + [0] * (len(before) - 3 * CHUNK)

    # a new window, asking for no backup: the backup half taken goes on all the same
    late[0] = timedelta(0)
    new_end = wire(timedelta(minutes=30))
    assert start(world, order_id, end=new_end, backup=False) == job_id
    continued = the_sql_job(world, order_id)
    assert continued.sql_job_id == sql_job.sql_job_id
    assert continued.status == "RUNNING" and continued.backup
    assert f"continued by alice, not after {new_end}" in continued.log
    spec = job(world, job_id).spec
    assert (spec["end"], spec["backup"]) == (new_end, True)
    world.run_jobs()

    assert world.status(order_id) == "success"
    assert bumped(before, target) == [1] * len(before)
    detail = the_detail(world, order_id)
    assert (detail.status, detail.affect_rows) == ("SUCCESS", len(before))
    backup = detail.backup or {}
    assert backup["rows"] == len(before)
    table = backup["table"]
    # each chunk's rows were saved once, in the transaction that changed them
    assert query(target, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [
        (len(before), len(before))
    ]


@pytest.mark.usefixtures("short_steps")
def test_restarting_after_the_window_ended_goes_on_past_it(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a restart of a change its window paused goes on past that window, not into it again
    before = amounts(target)
    order_id = approved(world)
    end = wire(timedelta(minutes=10))
    job_id = start(world, order_id, end=end)
    late = [timedelta(0)]
    monkeypatch.setattr(executor(world), "clock", lambda: utcnow() + late[0])
    Chunks(monkeypatch).stop_after(2, lambda: late.__setitem__(0, timedelta(hours=1)))
    world.run_jobs()
    assert the_sql_job(world, order_id).status == "PAUSE"
    assert "RestartDataCorrectSQLJob" in the_sql_job(world, order_id).log

    restart(world, order_id)
    world.run_jobs()
    assert job(world, job_id).state != "paused", the_sql_job(world, order_id).log
    assert bumped(before, target) == [1] * len(before)


def test_a_window_that_ends_before_the_change_started_fails_it(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    order_id = approved(world)
    end = wire(timedelta(minutes=10))
    job_id = start(world, order_id, end=end)
    monkeypatch.setattr(executor(world), "clock", lambda: utcnow() + timedelta(hours=1))
    world.run_jobs()
    assert job(world, job_id).state == "failed"
    sql_job = the_sql_job(world, order_id)
    assert sql_job.status == "FAIL"
    assert f"Not started: the execution window ended at {end} (UTC)." in sql_job.log
    assert bumped(before, target) == [0] * len(before)


# ------------------------------------------------------------------ holding back


def test_a_busy_target_holds_the_change_back_and_it_goes_on_later(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    reason = "40 statements running on the target, more than 25"
    looks: list[int] = []

    def hold(self: Gauge) -> str | None:
        looks.append(1)
        return reason if len(looks) in (3, 4) else None  # busy after two chunks, twice

    monkeypatch.setattr(Gauge, "hold", hold)
    order_id = approved(world)
    job_id = start(world, order_id)
    world.run_jobs()

    waiting = job(world, job_id)
    assert waiting.state == "queued"
    assert waiting.run_after > utcnow() + timedelta(seconds=1)  # pace.hold_seconds: 2
    detail = the_detail(world, order_id)
    progress = Progress.load(detail.progress)
    assert (progress.state, progress.why) == ("THROTTLED", reason)
    assert (progress.rows, detail.affect_rows, detail.status) == (2 * CHUNK, 2 * CHUNK, "RUNNING")
    assert bumped(before, target) == [1] * 2 * CHUNK + [0] * (len(before) - 2 * CHUNK)
    assert reason in detail.log
    with world.store.session() as s:
        assert [(p.state, p.why) for p in execution.chunk_progress(s, job_id)] == [
            ("THROTTLED", reason)
        ]
        assert execution.group_status(s, job_id) == "RUNNING"

    make_due(world, job_id)
    world.run_jobs()  # still busy: holds back again, without a second log line
    assert job(world, job_id).state == "queued"
    assert progress_of(world, order_id).rows == 2 * CHUNK
    assert the_detail(world, order_id).log.count(reason) == 1

    make_due(world, job_id)
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert bumped(before, target) == [1] * len(before)
    progress = progress_of(world, order_id)
    assert (progress.state, progress.why, progress.rows) == ("DONE", "", len(before))


def test_a_replica_that_replicates_from_nothing_holds_the_change_back(
    world: World, target: Path
) -> None:
    # The instance names itself as its replica to watch: SQLite is no replica.
    with world.store.session() as s:
        inst = s.get(Instance, world.instance_id)
        assert inst is not None
        inst.throttle = {"replica_instance_id": world.instance_id}
    before = amounts(target)
    order_id = approved(world)
    job_id = start(world, order_id)
    world.run_jobs()
    assert job(world, job_id).state == "queued"
    progress = progress_of(world, order_id)
    assert progress.state == "THROTTLED"
    assert progress.why == "the configured replica is not replicating from anything"
    assert bumped(before, target) == [0] * len(before)


# ------------------------------------------------------------------ lost lock fights


def test_a_lost_lock_fight_waits_and_tries_a_smaller_chunk_again(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    chunks = Chunks(monkeypatch)
    chunks.losing = lambda call: call == 1
    order_id = approved(world)
    job_id = start(world, order_id)
    world.run_jobs()

    waiting = job(world, job_id)
    assert waiting.state == "queued" and waiting.run_after > utcnow()
    detail = the_detail(world, order_id)
    progress = Progress.load(detail.progress)
    assert progress.state == "LOCK_WAIT" and "database is locked" in progress.why
    assert (progress.lost_locks, progress.size, progress.rows) == (1, CHUNK // 2, 0)
    assert "lost a lock wait: database is locked" in detail.log
    assert bumped(before, target) == [0] * len(before)

    make_due(world, job_id)
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert bumped(before, target) == [1] * len(before)
    progress = progress_of(world, order_id)
    assert (progress.state, progress.lost_locks) == ("DONE", 0)


def test_too_many_lost_lock_fights_in_a_row_fail_the_statement(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    chunks = Chunks(monkeypatch)
    chunks.losing = lambda call: True
    order_id = approved(world)
    job_id = start(world, order_id)
    waits = [step_by_hand(world, order_id, job_id) for _ in range(CHUNK_LOCK_RETRIES - 1)]
    assert all(w.failure is None and w.wait_seconds > 0 for w in waits)
    seconds = [w.wait_seconds for w in waits]
    assert seconds == sorted(seconds) and seconds[0] < seconds[-1]  # waiting longer each time
    assert seconds[-1] <= 30.0
    assert progress_of(world, order_id).lost_locks == CHUNK_LOCK_RETRIES - 1
    world.run_jobs()  # the last straw, through the runner

    assert job(world, job_id).state == "failed"
    message = f"a chunk lost {CHUNK_LOCK_RETRIES} lock fights in a row: database is locked"
    detail = the_detail(world, order_id)
    assert detail.status == "FAIL" and message in detail.log
    sql_job = the_sql_job(world, order_id)
    assert sql_job.status == "FAIL" and message in sql_job.log
    assert bumped(before, target) == [0] * len(before)

    # a restart starts counting afresh: one more lost fight does not fail it again
    chunks.losing = lambda call: call == CHUNK_LOCK_RETRIES + 1
    restart(world, order_id)
    assert progress_of(world, order_id).lost_locks == 0
    world.run_jobs()
    assert job(world, job_id).state == "queued"
    assert progress_of(world, order_id).lost_locks == 1
    make_due(world, job_id)
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert bumped(before, target) == [1] * len(before)


# ------------------------------------------------------------------ crashes


def lost_after_reading(world: World, error: Exception) -> LostStore:
    """The metadata store as a step sees it when it goes away once the step read its work:
    the chunks its stride commits then are never recorded."""
    return LostStore(world.store, answered=1, error=error)


@pytest.mark.usefixtures("short_steps")
def test_chunks_whose_recording_was_lost_are_counted_from_the_target_not_rerun(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    order_id = approved(world)
    job_id = start(world, order_id)
    chunks = Chunks(monkeypatch)
    chunks.stop_after(3)
    lost = lost_after_reading(world, RuntimeError("metadata store went away"))
    with pytest.raises(RuntimeError):
        step_by_hand(world, order_id, job_id, lost)
    assert lost.refused == 1  # the stride's progress, the first thing it records
    done = chunks.committed
    assert 1 <= done <= 3  # the step ran out of time after at most three chunks
    assert bumped(before, target) == [1] * (done * CHUNK) + [0] * (len(before) - done * CHUNK)
    detail = the_detail(world, order_id)
    assert detail.affect_rows in (None, 0)  # nothing of it reached the store
    assert Progress.load(detail.progress).rows == 0

    world.run_jobs()
    assert world.status(order_id) == "success"
    assert bumped(before, target) == [1] * len(before)
    detail = the_detail(world, order_id)
    assert (detail.status, detail.affect_rows) == ("SUCCESS", len(before))
    assert the_sql_job(world, order_id).affect_rows == len(before)
    progress = Progress.load(detail.progress)
    assert progress.rows == len(before)
    assert progress.chunks == chunks.committed  # the target's count, lost step included


def test_a_walk_finished_but_not_recorded_is_recorded_from_its_position(
    world: World, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = amounts(target)
    order_id = approved(world)
    job_id = start(world, order_id)
    with pytest.raises(OSError):
        step_by_hand(world, order_id, job_id, lost_after_reading(world, OSError("store gone")))
    assert bumped(before, target) == [1] * len(before)  # the whole walk committed
    assert the_detail(world, order_id).status != "SUCCESS"
    chunks = Chunks(monkeypatch)
    world.run_jobs()
    assert chunks.committed == 0  # nothing left to run
    assert bumped(before, target) == [1] * len(before)
    assert world.status(order_id) == "success"
    detail = the_detail(world, order_id)
    assert (detail.status, detail.affect_rows) == ("SUCCESS", len(before))


def test_chunks_another_runner_committed_are_not_run_again(world: World, target: Path) -> None:
    # A runner that died after committing chunks (its recording lost): the next one starts
    # from the position on the target, under the key the executor uses.
    before = amounts(target)
    order_id = approved(world)
    start(world, order_id)
    key = f"{the_sql_job(world, order_id).token}:{the_detail(world, order_id).number}"
    plan = chunking(BUMP_ALL, "sqlite", {"orders": ("id",)}.get)
    with connector_for(Endpoint("sqlite", str(target))).change(("main", "main"), 5) as change:
        begin_walk(change, key)
        for _ in range(3):
            advance(change, plan, key, 120)
    assert bumped(before, target) == [1] * 360 + [0] * (len(before) - 360)

    world.run_jobs()
    assert world.status(order_id) == "success"
    assert bumped(before, target) == [1] * len(before)
    detail = the_detail(world, order_id)
    assert (detail.status, detail.affect_rows) == ("SUCCESS", len(before))
    assert Progress.load(detail.progress).chunks > 3


# ------------------------------------------------------------------ backups


def test_a_chunked_update_with_backup_is_rolled_back_by_its_script(
    world: World, target: Path
) -> None:
    sql = "UPDATE orders SET amount_cents = 0, status = 'void' WHERE customer_id <= 8"
    snapshot = "SELECT * FROM orders ORDER BY id"
    before = query(target, snapshot)
    order_id = approved(world, sql)
    start(world, order_id, backup=True)
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert query(target, "SELECT count(*) FROM orders WHERE status = 'void'") == [(200,)]

    sql_job = the_sql_job(world, order_id)
    assert sql_job.backup
    detail = the_detail(world, order_id)
    assert detail.affect_rows == 200
    backup = detail.backup or {}
    assert backup["rows"] == 200
    assert (backup["kind"], backup["of"], backup["key"]) == ("UPDATE", "orders", ["id"])
    assert sql_job.token[:12] in backup["table"]
    assert query(target, f"SELECT count(*) FROM {backup['table']}") == [(200,)]

    script = "".join(files.rollback_script(world.store, world.means, sql_job.sql_job_id))
    assert "statement 1: undo UPDATE of orders (200 rows)" in script
    with closing(sqlite3.connect(target, isolation_level=None)) as db:
        db.executescript(f"BEGIN;\n{script}\nCOMMIT;")
    assert query(target, snapshot) == before
    download = files.download(world.store, world.means, "backup", sql_job.sql_job_id)
    assert download is not None and download.parts is not None
    assert "".join(download.parts).count("UPDATE") >= 200


# ------------------------------------------------------------------ who may steer it


def test_only_the_committer_starter_admin_or_dba_steer_an_execution(
    world: World, target: Path
) -> None:
    order_id = approved(world)
    start(world, order_id)
    for call in (lambda: pause(world, order_id, "owen"), lambda: restart(world, order_id, "owen")):
        assert refusal(call).code == ErrorCode.PERMISSION_DENIED
    assert the_sql_job(world, order_id).status == "INIT"
    assert pause(world, order_id, "dba") == [the_sql_job(world, order_id).sql_job_id]
    assert restart(world, order_id, "admin") == [the_sql_job(world, order_id).sql_job_id]


def test_single_needs_a_job_id_of_the_ticket(world: World, target: Path) -> None:
    order_id = approved(world)
    start(world, order_id)
    with world.store.session() as s:
        err = refusal(lambda: execution.pause(s, world.as_("alice"), order_id, "SINGLE", None))
    assert err.code == ErrorCode.INVALID_PARAMETER
    with world.store.session() as s:
        err = refusal(lambda: execution.restart(s, world.as_("alice"), order_id, "SINGLE", None))
    assert err.code == ErrorCode.INVALID_PARAMETER
    other = the_sql_job(world, order_id).sql_job_id + 1000
    with world.store.session() as s:
        err = refusal(lambda: execution.pause(s, world.as_("alice"), order_id, "SINGLE", other))
    assert err.code == ErrorCode.ORDER_NOT_FOUND


def test_only_an_executing_ticket_is_paused_or_restarted(world: World, target: Path) -> None:
    order_id = approved(world)
    for call in (lambda: pause(world, order_id), lambda: restart(world, order_id)):
        assert refusal(call).code == ErrorCode.ORDER_STATUS_INVALID  # approved, not started
    start(world, order_id)
    assert refusal(lambda: restart(world, order_id)).code == ErrorCode.ORDER_STATUS_INVALID
    pause(world, order_id)
    assert refusal(lambda: pause(world, order_id)).code == ErrorCode.ORDER_STATUS_INVALID
    restart(world, order_id)
    world.run_jobs()
    assert world.status(order_id) == "success"
    for call in (lambda: pause(world, order_id), lambda: restart(world, order_id)):
        assert refusal(call).code == ErrorCode.ORDER_STATUS_INVALID  # finished


def test_a_chunked_change_refuses_to_run_in_one_transaction(world: World, target: Path) -> None:
    order_id = approved(world)
    err = refusal(lambda: start(world, order_id, transaction=True))
    assert err.code == ErrorCode.INVALID_PARAMETER
    assert "transaction" in err.message
    assert world.status(order_id) == "Approved"
    with world.store.session() as s:
        assert execution.execute_job(s, order_id) is None


def test_a_paused_change_is_continued_only_by_who_may_start_it(world: World, target: Path) -> None:
    order_id = approved(world)
    job_id = start(world, order_id)
    pause(world, order_id)
    with world.store.session() as s:
        job_row = s.get(Job, job_id)
        assert job_row is not None
        job_row.state = "paused"  # as the runner leaves it
    err = refusal(lambda: start(world, order_id, who="dba"))
    assert err.code == ErrorCode.PERMISSION_DENIED
    assert the_sql_job(world, order_id).status == "PAUSE"
    assert start(world, order_id) == job_id
    world.run_jobs()
    assert world.status(order_id) == "success"
