"""The embedded job runner: claims, steps, checkpoints, leases, takeovers, cancellation."""

from __future__ import annotations

import time
from datetime import timedelta

from opendms.jobs.runner import (
    Checkpoint,
    Fairness,
    Lease,
    Runner,
    Step,
    Work,
    claim,
    record,
)
from opendms.store.models import Job, utcnow
from opendms.tickets import service as tickets
from tests.approval_world import World
from tests.clock import HandClock

# The runners' clocks run this far ahead: jobs made while a test runs are due; however slow
# a loaded machine makes the test, an hour is longer than it takes (a test once made a job
# more than a second later).
AHEAD = timedelta(hours=1)


def counting(steps: int, seen: list[tuple[int, int]] | None = None):
    """An executor that counts to ``steps``, one per step."""

    def step(work: Work, checkpoint: Checkpoint) -> Step:
        n = checkpoint.get("n", 0) + 1
        if seen is not None:
            seen.append((work.job_id, n))
        return Step({"n": n}, done=n >= steps)

    return step


def add_job(world: World, kind: str = "count", who: str = "alice", **fields) -> int:
    order_id = world.file(who=who)
    with world.store.session() as s:
        job = Job(order_id=order_id, kind=kind, **fields)
        s.add(job)
        s.flush()
        return job.job_id


def job(world: World, job_id: int) -> Job:
    with world.store.session() as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def test_a_job_runs_step_by_step_to_success(world: World) -> None:
    job_id = add_job(world)
    runner = Runner(world.store, {"count": counting(3)}, clock=HandClock(AHEAD))
    assert runner.run_once() is True
    done = job(world, job_id)
    assert (done.state, done.checkpoint, done.attempts) == ("succeeded", {"n": 3}, 1)
    assert done.lease_owner is None
    other = add_job(world, kind="other")
    assert runner.run_once() is False  # nothing else of its kinds (the other job stays)
    assert job(world, other).state == "queued"


def test_failures_and_executor_errors_end_the_job_with_the_reason(world: World) -> None:
    def refuse(work: Work, checkpoint: Checkpoint) -> Step:
        return Step({"at": "parse"}, failure="statement 2 does not parse")

    def crash(work: Work, checkpoint: Checkpoint) -> Step:
        raise RuntimeError("boom")

    refused, crashed = add_job(world, "refuse"), add_job(world, "crash")
    runner = Runner(world.store, {"refuse": refuse, "crash": crash}, clock=HandClock(AHEAD))
    assert runner.run_once() and runner.run_once()
    assert job(world, refused).state == "failed"
    assert job(world, refused).checkpoint == {
        "at": "parse",
        "failure": "statement 2 does not parse",
    }
    assert job(world, crashed).state == "failed"
    assert "RuntimeError: boom" in job(world, crashed).checkpoint["failure"]


def test_a_waiting_job_is_released_until_its_time(world: World) -> None:
    clock = HandClock(AHEAD)

    def scheduled(work: Work, checkpoint: Checkpoint) -> Step:
        if not checkpoint.get("waited"):
            return Step({"waited": True}, wait_seconds=60)
        return Step(checkpoint, done=True)

    job_id = add_job(world, "scheduled")
    runner = Runner(world.store, {"scheduled": scheduled}, clock=clock)
    assert runner.run_once() is True
    waiting = job(world, job_id)
    assert (waiting.state, waiting.lease_owner) == ("queued", None)
    assert waiting.run_after == clock.now + timedelta(seconds=60)
    clock.advance(59)
    assert runner.run_once() is False
    clock.advance(1)
    assert runner.run_once() is True
    assert job(world, job_id).state == "succeeded"


def test_a_dead_runners_job_is_taken_over_from_its_last_checkpoint(world: World) -> None:
    clock, lease = HandClock(AHEAD), Lease(seconds=30)
    job_id = add_job(world)
    with world.store.session() as s:  # runner A claims and records one step, then dies
        claimed = claim(s, "A", {"count"}, clock(), lease)
        assert claimed is not None and claimed.job_id == job_id
    with world.store.session() as s:
        assert record(s, job_id, "A", Step({"n": 1}), clock(), lease) == "running"
    clock.advance(29)
    with world.store.session() as s:  # the lease still holds
        assert claim(s, "B", {"count"}, clock(), lease) is None
    clock.advance(2)
    seen: list[tuple[int, int]] = []
    runner = Runner(world.store, {"count": counting(3, seen)}, lease=lease, owner="B", clock=clock)
    assert runner.run_once() is True
    assert seen == [(job_id, 2), (job_id, 3)]  # resumed after A's step, not from scratch
    taken = job(world, job_id)
    assert (taken.state, taken.attempts) == ("succeeded", 2)
    with world.store.session() as s:  # A wakes up: its late step does not count
        assert record(s, job_id, "A", Step({"n": 99}, done=True), clock(), lease) is None
    assert job(world, job_id).checkpoint == {"n": 3}


def test_a_job_cancelled_meanwhile_is_left_alone(world: World) -> None:
    job_id = add_job(world)
    order_id = job(world, job_id).order_id

    def cancel_then_step(work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:  # the ticket is closed while the step runs
            tickets.cancel_jobs(s, order_id)
        return Step({"n": 1})

    runner = Runner(world.store, {"count": cancel_then_step}, clock=HandClock(AHEAD))
    assert runner.run_once() is True
    left = job(world, job_id)
    assert (left.state, left.checkpoint) == ("cancelled", {})
    assert (left.lease_owner, left.lease_until) == (None, None)  # its runner let it go


def test_threads_run_every_job_once(world: World) -> None:
    ids = [add_job(world) for _ in range(6)]
    seen: list[tuple[int, int]] = []
    runner = Runner(world.store, {"count": counting(2, seen)}, threads=2, idle_seconds=0.05)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(job(world, j).state == "succeeded" for j in ids):
                break
            time.sleep(0.05)
    finally:
        runner.stop()
    assert all(job(world, j).state == "succeeded" for j in ids)
    assert sorted(seen) == sorted((j, n) for j in ids for n in (1, 2))


def test_a_long_step_keeps_its_lease_with_a_heartbeat(world: World) -> None:
    """A step that outlasts the lease (one long statement) is not taken for a dead runner:
    another runner cannot claim the job while it runs."""
    lease = Lease(seconds=0.6)
    job_id = add_job(world)
    stolen: list[object] = []

    def slow(work: Work, checkpoint: Checkpoint) -> Step:
        for _ in range(4):  # 1.2 s in all: twice the lease
            time.sleep(0.3)
            with world.store.session() as s:
                stolen.append(claim(s, "B", {"slow"}, utcnow(), lease))
        return Step({"slept": True}, done=True)

    runner = Runner(world.store, {"slow": slow}, lease=lease, owner="A")
    with world.store.session() as s:
        s.get_one(Job, job_id).kind = "slow"
    assert runner.run_once() is True
    assert stolen == [None] * 4
    done = job(world, job_id)
    assert (done.state, done.attempts, done.lease_owner) == ("succeeded", 1, None)


def test_an_idle_runners_look_for_work_does_not_wait_for_a_writer(world: World) -> None:
    """On SQLite a look for work takes no lock: a runner with nothing to do is not held up
    by a request writing meanwhile, nor holds it up (a claim that found nothing used to
    take the write lock, and threads queued for it behind each other)."""
    import threading

    taken, release = threading.Event(), threading.Event()

    def write() -> None:
        with world.store.session() as s:
            s.get(Job, 0)  # the lock is taken with the transaction's first statement
            taken.set()
            release.wait(30)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert taken.wait(10)
        runner = Runner(world.store, {"count": counting(1)}, clock=HandClock(AHEAD))
        began = time.monotonic()
        assert runner.run_once() is False
        assert time.monotonic() - began < 2  # not the busy timeout (10 s)
    finally:
        release.set()
        writer.join()


def test_one_heartbeat_thread_serves_a_runners_steps_and_goes_with_it(world: World) -> None:
    """The lease is renewed by one thread of the runner, not a thread started for each step
    (a step waited for it to start); it ends once the runner is gone."""
    import gc
    import threading

    beats: list[threading.Thread | None] = []
    runner = Runner(world.store, {}, lease=Lease(seconds=0.3))
    heart = runner._heart  # holds the runner weakly

    def step(work: Work, checkpoint: Checkpoint) -> Step:
        beats.append(heart._thread)
        return counting(3)(work, checkpoint)

    runner.executors = {"count": step}
    for _ in range(2):
        add_job(world)
        assert runner.run_once() is True
    thread = beats[0]
    assert len(beats) == 6 and thread is not None and all(b is thread for b in beats)
    del runner
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


# ------------------------------------------------------------------ fair shares


def test_a_committer_at_the_cap_waits_and_another_is_served_first(world: World) -> None:
    """Two jobs of alice filed first, one of carol after: with one job each at a time,
    carol's is claimed while alice's first runs, and alice's second only once it is done."""
    clock, lease = HandClock(AHEAD), Lease()
    first, second = add_job(world), add_job(world)
    carols = add_job(world, who="carol")
    with world.store.session() as s:
        taken = claim(s, "A", {"count"}, clock(), lease)
        assert taken is not None and taken.job_id == first
    with world.store.session() as s:
        taken = claim(s, "B", {"count"}, clock(), lease)
        assert taken is not None and taken.job_id == carols
    with world.store.session() as s:
        assert claim(s, "C", {"count"}, clock(), lease) is None  # alice is at her cap
    with world.store.session() as s:
        assert record(s, first, "A", Step({}, done=True), clock(), lease) == "succeeded"
    with world.store.session() as s:
        taken = claim(s, "C", {"count"}, clock(), lease)
        assert taken is not None and taken.job_id == second
    extra = add_job(world)
    with world.store.session() as s:  # a wider cap lets a committer run two at once
        assert claim(s, "D", {"count"}, clock(), lease) is None
        taken = claim(s, "D", {"count"}, clock(), lease, Fairness(per_user=2))
        assert taken is not None and taken.job_id == extra


def test_a_long_job_yields_its_thread_to_a_waiting_one_between_steps(world: World) -> None:
    clock = HandClock(AHEAD)
    seen: list[tuple[int, int]] = []
    steps = counting(100, seen)

    def long(work: Work, checkpoint: Checkpoint) -> Step:
        clock.advance(1)  # each step takes a second
        return steps(work, checkpoint)

    alices = add_job(world)
    runner = Runner(world.store, {"count": long}, clock=clock, fair=Fairness(slice_seconds=5))
    assert runner.run_once() is True  # nobody waits: it may run on past its slice
    assert job(world, alices).state == "succeeded"
    seen.clear()
    alices = add_job(world)
    carols = add_job(world, who="carol")
    assert runner.run_once() is True  # alice's first: it yields after its slice
    assert [j for j, _ in seen] == [alices] * 5
    held = job(world, alices)
    assert (held.state, held.lease_owner, held.checkpoint) == ("queued", None, {"n": 5})
    assert runner.run_once() is True  # carol's, to its end (alice's is waiting, and yields)
    assert [j for j, _ in seen[5:10]] == [carols] * 5
    while runner.run_once():
        pass
    assert job(world, alices).state == job(world, carols).state == "succeeded"
    assert [n for j, n in seen if j == alices] == list(range(1, 101))  # resumed, not redone


# ------------------------------------------------------------------ a broker's messages


class Told:
    """A broker's waker, remembering what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def sent_at(self, at, now):  # type: ignore[no-untyped-def]
        return max(at, now)

    def wake(self, due) -> None:  # type: ignore[no-untyped-def]
        self.sent.extend(d.job_id for d in due)

    def close(self, timeout: float = 5.0) -> None:
        return None


def test_a_message_runs_its_job_once_however_often_it_comes(world: World) -> None:
    job_id = add_job(world)
    seen: list[tuple[int, int]] = []
    runner = Runner(world.store, {"count": counting(3, seen)}, clock=HandClock(AHEAD))
    assert runner.run_job(job_id) is True
    assert runner.run_job(job_id) is False  # a duplicate, or a redelivery: over already
    assert seen == [(job_id, 1), (job_id, 2), (job_id, 3)]
    assert (job(world, job_id).state, job(world, job_id).attempts) == ("succeeded", 1)
    assert runner.run_job(10**9) is False  # no such job (a message of another store)


def test_a_message_for_a_job_another_runner_holds_does_nothing(world: World) -> None:
    clock, lease = HandClock(AHEAD), Lease()
    job_id = add_job(world)
    with world.store.session() as s:
        assert claim(s, "A", {"count"}, clock(), lease) is not None
    runner = Runner(world.store, {"count": counting(3)}, clock=clock, owner="B")
    assert runner.run_job(job_id) is False
    clock.advance(lease.seconds + 1)  # A died: its lease ran out
    assert runner.run_job(job_id) is True
    assert (job(world, job_id).state, job(world, job_id).attempts) == ("succeeded", 2)


def test_a_worker_lets_go_after_its_slice_and_says_so(world: World) -> None:
    clock = HandClock(AHEAD)
    told = Told()
    steps = counting(12)

    def long(work: Work, checkpoint: Checkpoint) -> Step:
        clock.advance(1)
        return steps(work, checkpoint)

    job_id = add_job(world)
    runner = Runner(
        world.store, {"count": long}, clock=clock, fair=Fairness(slice_seconds=5), waker=told
    )
    assert runner.run_job(job_id) is True  # nobody else waits, yet it lets go: the queue decides
    held = job(world, job_id)
    assert (held.state, held.checkpoint, held.sent_at) == ("queued", {"n": 5}, clock())
    assert told.sent == [job_id]
    assert runner.run_job(job_id) and runner.run_job(job_id)
    assert job(world, job_id).state == "succeeded"


def test_a_job_held_back_by_its_share_is_woken_when_the_running_one_ends(world: World) -> None:
    clock, told = HandClock(AHEAD), Told()
    first, second = add_job(world), add_job(world)
    runner = Runner(world.store, {"count": counting(1)}, clock=clock, waker=told)
    with world.store.session() as s:  # first is running elsewhere
        assert claim(s, "A", {"count"}, clock(), Lease()) is not None
    assert runner.run_job(second) is False  # alice is at her cap: the message is dropped
    with world.store.session() as s:
        assert record(s, first, "A", Step({}), clock(), Lease()) == "running"
    told.sent.clear()
    with world.store.session() as s:
        s.get_one(Job, first).state = "queued"  # A let it go
        s.get_one(Job, first).lease_owner = None
    assert runner.run_job(first) is True  # runs to its end, then wakes alice's next
    assert told.sent == [second]
    assert runner.run_job(second) is True
    assert job(world, second).state == "succeeded"


def test_a_step_that_loses_the_store_is_retried_not_failed(world: World) -> None:
    from sqlalchemy.exc import OperationalError

    clock = HandClock(AHEAD)
    calls: list[int] = []

    def flaky(work: Work, checkpoint: Checkpoint) -> Step:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("UPDATE sql_jobs", {}, Exception("server closed the connection"))
        return Step({"n": checkpoint.get("n", 0) + 1}, done=checkpoint.get("n", 0) + 1 >= 3)

    job_id = add_job(world)
    runner = Runner(world.store, {"count": flaky}, clock=clock)
    assert runner.run_once() is True
    waiting = job(world, job_id)
    assert (waiting.state, waiting.checkpoint) == ("queued", {"n": 1})  # from its checkpoint
    clock.advance(60)
    assert runner.run_once() is True
    assert (job(world, job_id).state, job(world, job_id).checkpoint) == ("succeeded", {"n": 3})


def test_stopping_lets_a_running_job_go_from_its_checkpoint(world: World) -> None:
    clock = HandClock(AHEAD)
    job_id = add_job(world)
    runner: Runner

    def stop_during(work: Work, checkpoint: Checkpoint) -> Step:
        runner.shutting_down()  # SIGTERM arrives while the step runs
        return Step({"n": 1})

    runner = Runner(world.store, {"count": stop_during}, clock=clock)
    assert runner.run_once() is True
    stopped = job(world, job_id)
    assert (stopped.state, stopped.checkpoint, stopped.lease_owner) == ("queued", {"n": 1}, None)
