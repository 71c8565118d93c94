"""Process heartbeats (jobs.processes)."""

from __future__ import annotations

import time
from datetime import timedelta

from opendms.jobs.processes import Heartbeat, beat, forget_silent
from opendms.store.models import Process, utcnow
from tests.approval_world import World


def test_a_beat_makes_then_refreshes_the_row_and_stop_removes_it(world: World) -> None:
    beat(world.store, "w1", "worker", 1, 0)
    beat(world.store, "w1", "worker", 0, 4)
    with world.store.session() as s:
        row = s.get_one(Process, "w1")
        assert (row.role, row.jobs_running, row.jobs_done) == ("worker", 0, 4)
    counts = iter([(2, 5)] * 10)
    hb = Heartbeat(world.store, "w2", "api", every=60, counts=lambda: next(counts))
    hb.start()
    try:
        deadline = time.monotonic() + 30
        while _running("w2", world) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _running("w2", world) == 2  # its first beat comes at once
    finally:
        hb.stop()
    with world.store.session() as s:
        assert s.get(Process, "w2") is None


def test_silent_processes_are_forgotten(world: World) -> None:
    beat(world.store, "old", "worker", 0, 0)
    with world.store.session() as s:
        s.get_one(Process, "old").seen_at = utcnow() - timedelta(hours=1)
    beat(world.store, "new", "worker", 0, 0)
    assert forget_silent(world.store, timedelta(minutes=5)) == 1
    with world.store.session() as s:
        assert [p.name for p in s.query(Process)] == ["new"]


def _running(name: str, world: World) -> int | None:
    with world.store.session() as s:
        row = s.get(Process, name)
        return None if row is None else row.jobs_running
