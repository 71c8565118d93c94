"""Historical-data cleanup tickets on the SQLite demo target: armed by approval, fired by
their schedule (missed fire times once, never twice), each run a chunked DELETE keyed by
its fire time, with its window, history and space reclaimed every N runs."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.execution import cleanup
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Runner
from opendms.means import Tuning
from opendms.precheck import service as precheck
from opendms.runtime import executors
from opendms.store.db import Store
from opendms.store.models import CronRun, Job, utcnow
from opendms.targets.demo import ensure_demo_target
from opendms.targets.pace import Pace
from opendms.tickets import cron, lifecycle
from tests.approval_world import World
from tests.clock import Clock

DAILY = "0 0 2 * * ?"  # 02:00 every day


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fire(n: int) -> datetime:
    """The n-th 02:00 from now (1: the next)."""
    at = utcnow()
    for _ in range(n):
        at = cron.next_run(DAILY, at)
    return at


def keeping(day: datetime, at: datetime) -> int:
    """RemainDays that, fired at ``at``, keep the demo's orders from ``day`` on."""
    return (at - day).days


def on_clock(w: World, clock: Clock) -> None:
    """The world's runner for ``w.means`` on ``clock``, the cleanup's schedule reading it too."""
    w.runner = Runner(
        w.store,
        {**executors(w.means), cleanup.SCHEDULE: cleanup.Schedule(clock)},
        threads=0,
        clock=clock,
    )


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path, clock: Clock) -> World:
    w = World.build(store, box, tmp_path / "targets")
    w.means = dataclasses.replace(w.means, pace=Pace(first_chunk_rows=50, max_chunk_rows=50))
    on_clock(w, clock)
    return w


@pytest.fixture
def target(world: World, tmp_path: Path) -> Path:
    return ensure_demo_target(tmp_path / "targets")


def query(target: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(target)) as db:
        return db.execute(sql).fetchall()


def cleanup_ticket(world: World, *, remain_days: int, **param: Any) -> int:
    order_id = world.file(
        "",
        kind="DC_CRON_CLEAR",
        CronClearItemList=[
            {"TableName": "orders", "ColumnName": "created_at", "RemainDays": remain_days}
        ],
        CronFormat=DAILY,
        **{"specifyDuration": False, **param},
    )
    with world.store.session() as s:
        steps = {v.step: v for v in precheck.steps(s, order_id)}
    assert all(v.status == "SUCCESS" for v in steps.values()), steps
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    world.act(wf, "dba", "AGREE")
    return order_id


def runs(world: World, order_id: int) -> list[CronRun]:
    with world.store.session() as s:
        found = list(s.scalars(select(CronRun).where(CronRun.order_id == order_id)))
        for r in found:
            s.expunge(r)
        return found


def test_runs_fire_on_schedule_and_delete_what_is_older(
    world: World, target: Path, clock: Clock
) -> None:
    # the demo's orders are made minute by minute from 2026-01-01 for about three days
    days = keeping(datetime(2026, 1, 2), fire(1))
    order_id = cleanup_ticket(world, remain_days=days)
    assert world.status(order_id) == "processing"
    with world.store.session() as s:
        armed = cleanup.schedule_job(s, order_id)
        assert armed is not None and armed.run_after == fire(1)

    world.run_jobs()  # before the fire time: nothing is due
    assert runs(world, order_id) == []

    total = query(target, "SELECT COUNT(*) FROM orders")[0][0]
    clock.now = fire(1) + timedelta(seconds=5)
    world.run_jobs()
    (first,) = runs(world, order_id)
    assert first.fire_at == fire(1)
    cut = f"{fire(1) - timedelta(days=days):%Y-%m-%d %H:%M:%S}"
    assert query(target, f"SELECT COUNT(*) FROM orders WHERE created_at < '{cut}'") == [(0,)]
    left = query(target, "SELECT COUNT(*) FROM orders")[0][0]
    assert 0 < left < total

    with world.store.session() as s:
        views, n = cleanup.history(s, world.as_("alice"), order_id, 1, 20)
        config = cleanup.config(s, world.as_("alice"), order_id)
    assert (n, views[0].status, views[0].rows) == (1, "SUCCESS", total - left)
    assert (config.status, config.call_times) == ("SUCCESS", 1)
    assert config.next_call is not None and config.next_call > clock.now
    assert world.status(order_id) == "processing"  # it stays on its schedule


def test_fire_times_missed_while_down_run_once(world: World, target: Path, clock: Clock) -> None:
    order_id = cleanup_ticket(world, remain_days=30)
    clock.now = fire(4) + timedelta(hours=7)  # four fire times passed while no server ran
    world.run_jobs()
    (only,) = runs(world, order_id)
    assert only.fire_at == fire(4)
    world.run_jobs()  # woken again before the next fire time: nothing new
    assert len(runs(world, order_id)) == 1


def test_a_second_scheduler_does_not_run_a_fire_time_twice(
    world: World, target: Path, clock: Clock
) -> None:
    order_id = cleanup_ticket(world, remain_days=30)
    clock.now = fire(1) + timedelta(seconds=1)
    with world.store.session() as s:  # a second schedule job, as a duplicate arming would
        s.add(Job(order_id=order_id, kind=cleanup.SCHEDULE, run_after=clock.now))
    world.run_jobs()
    assert [r.fire_at for r in runs(world, order_id)] == [fire(1)]


def test_closing_the_ticket_stops_the_schedule(world: World, target: Path, clock: Clock) -> None:
    order_id = cleanup_ticket(world, remain_days=30)
    with world.store.session() as s:
        lifecycle.close(s, world.as_("alice"), order_id, "no longer needed")
    clock.now = fire(2) + timedelta(seconds=1)
    world.run_jobs()
    assert runs(world, order_id) == []


def test_space_is_reclaimed_every_n_runs(world: World, target: Path, clock: Clock) -> None:
    order_id = cleanup_ticket(world, remain_days=30, OptimizeTableAfterEveryClearTimes=2)
    for n in (1, 2, 3, 4):
        clock.now = fire(n) + timedelta(seconds=1)
        world.run_jobs()
    with world.store.session() as s:
        reclaims = list(
            s.scalars(select(Job).where(Job.order_id == order_id, Job.kind == cleanup.RECLAIM))
        )
        config = cleanup.config(s, world.as_("alice"), order_id)
    assert [j.state for j in reclaims] == ["succeeded", "succeeded"]
    assert (config.call_times, config.optimize_every, config.reclaims) == (4, 2, 2)


def test_a_window_pauses_a_run_and_the_next_run_goes_on(
    world: World, target: Path, clock: Clock
) -> None:
    world.means = dataclasses.replace(world.means, tuning=Tuning(step_seconds=0.0))
    on_clock(world, clock)  # a chunk per step
    days = keeping(datetime(2026, 1, 2), fire(1))
    order_id = cleanup_ticket(world, remain_days=days, DurationHour=1, specifyDuration=True)
    clock.now = fire(1) + timedelta(seconds=1)
    calls = iter(range(10**6))
    # the executor's clock: the first step (three readings) inside the window, then past it
    execute: Any = world.runner.executors["execute"]
    execute.clock = lambda: clock.now + timedelta(hours=0 if next(calls) < 3 else 2)
    world.run_jobs()
    assert len(runs(world, order_id)) == 1
    with world.store.session() as s:
        views, _ = cleanup.history(s, world.as_("alice"), order_id, 1, 20)
    assert views[0].status == "PAUSE"
    execute.clock = clock
    clock.now = fire(2) + timedelta(seconds=1)
    world.run_jobs()
    with world.store.session() as s:
        views, total = cleanup.history(s, world.as_("alice"), order_id, 1, 20)
    assert total == 2 and [v.status for v in views] == ["SUCCESS", "PAUSE"]
    cut = f"{fire(2) - timedelta(days=days):%Y-%m-%d %H:%M:%S}"
    assert query(target, f"SELECT COUNT(*) FROM orders WHERE created_at < '{cut}'") == [(0,)]


def test_a_run_caught_up_late_gets_its_whole_window(
    world: World, target: Path, clock: Clock
) -> None:
    days = keeping(datetime(2026, 1, 2), fire(1))
    order_id = cleanup_ticket(world, remain_days=days, DurationHour=1, specifyDuration=True)
    execute: Any = world.runner.executors["execute"]
    execute.clock = clock  # the executor sees the window on the same clock
    clock.now = fire(1) + timedelta(hours=3)  # the server was down at the fire time
    world.run_jobs()
    with world.store.session() as s:
        views, total = cleanup.history(s, world.as_("alice"), order_id, 1, 20)
    assert (total, views[0].status) == (1, "SUCCESS")  # not failed for a window long gone
