"""The sweeper sends again what a broker should have delivered (jobs.sweeper)."""

from __future__ import annotations

from datetime import timedelta

from opendms.jobs.sweeper import sweep
from opendms.store.models import Job, utcnow
from opendms.store.states import JobState
from tests.approval_world import World
from tests.unit.jobs.test_runner import Told

GRACE = timedelta(seconds=30)


def _job(world: World, **fields) -> int:  # type: ignore[no-untyped-def]
    order_id = world.file()
    with world.store.session() as s:
        job = Job(order_id=order_id, kind="count", **fields)
        s.add(job)
        s.flush()
        job_id = job.job_id
    with world.store.session() as s:  # what the send path recorded, overwritten per test
        s.get_one(Job, job_id).sent_at = fields.get("sent_at")
    return job_id


def _cancel_prechecks(world: World) -> None:
    with world.store.session() as s:
        for job in s.query(Job).filter(Job.kind == "precheck"):
            job.state = JobState.CANCELLED


def test_overdue_jobs_are_sent_again_and_fresh_ones_left_alone(world: World) -> None:
    base = utcnow()
    now = base + timedelta(seconds=2)  # the sweep comes after every job was made
    lost = _job(world, sent_at=base - timedelta(minutes=5))  # its message never came
    never = _job(world)  # a wait too long for a countdown, now due
    fresh = _job(world, sent_at=base - timedelta(seconds=5))  # on its way
    later = _job(world, run_after=base + timedelta(hours=1))  # not due yet
    dead = _job(  # its worker was killed: the lease ran out
        world,
        state=JobState.RUNNING,
        lease_owner="gone",
        lease_until=base - timedelta(seconds=1),
        sent_at=base - timedelta(minutes=10),
    )
    held = _job(  # running under a live lease
        world,
        state=JobState.RUNNING,
        lease_owner="alive",
        lease_until=base + timedelta(seconds=20),
        sent_at=base - timedelta(minutes=10),
    )
    _cancel_prechecks(world)
    told = Told()
    assert sweep(world.store, told, now, GRACE) == 3
    assert sorted(told.sent) == sorted([lost, never, dead])
    assert fresh not in told.sent and later not in told.sent and held not in told.sent
    told.sent.clear()
    assert sweep(world.store, told, now, GRACE) == 0  # just sent: within the grace again
    assert sweep(world.store, told, now + GRACE + timedelta(seconds=1), GRACE) >= 3


def test_two_sweepers_send_one_message(world: World) -> None:
    lost = _job(world, sent_at=utcnow() - timedelta(minutes=5))
    _cancel_prechecks(world)
    now = utcnow() + timedelta(seconds=1)
    a, b = Told(), Told()
    assert sweep(world.store, a, now, GRACE) + sweep(world.store, b, now, GRACE) == 1
    assert a.sent + b.sent == [lost]
