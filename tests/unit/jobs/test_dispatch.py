"""Jobs told to the waker once the unit of work that queued them commits (jobs.dispatch)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from opendms.jobs import dispatch
from opendms.jobs.dispatch import Due
from opendms.store.models import Job, utcnow
from opendms.store.states import JobState
from tests.approval_world import World


class Told:
    """A waker that remembers; messages for waits up to a minute."""

    def __init__(self) -> None:
        self.due: list[Due] = []

    def sent_at(self, at: datetime, now: datetime) -> datetime | None:
        return max(at, now) if at - now <= timedelta(minutes=1) else None

    def wake(self, due: Sequence[Due]) -> None:
        self.due.extend(due)

    def close(self, timeout: float = 5.0) -> None:
        return None


@pytest.fixture
def told(world: World) -> Told:
    waker = Told()
    dispatch.watch(world.store, waker)
    return waker


def test_a_job_is_told_after_its_commit_and_not_before(world: World, told: Told) -> None:
    order_id = world.file()
    told.due.clear()  # filing queued the ticket's precheck
    with world.store.session() as s:
        job = Job(order_id=order_id, kind="count")
        s.add(job)
        s.flush()
        assert told.due == []  # flushed, not committed
    assert [(d.job_id, d.kind) for d in told.due] == [(job.job_id, "count")]
    with world.store.session() as s:
        sent_at = s.get_one(Job, job.job_id).sent_at
    assert sent_at is not None and abs(sent_at - utcnow()) < timedelta(minutes=1)


def test_a_rolled_back_job_is_never_told(world: World, told: Told) -> None:
    order_id = world.file()
    told.due.clear()
    with pytest.raises(RuntimeError), world.store.session() as s:
        s.add(Job(order_id=order_id, kind="count"))
        s.flush()
        raise RuntimeError("the request failed after queuing")
    with world.store.session() as s:  # the next unit of work tells nothing stale
        s.add(Job(order_id=order_id, kind="other"))
    assert [d.kind for d in told.due] == ["other"]


def test_a_job_queued_again_is_told_and_one_changed_otherwise_is_not(
    world: World, told: Told
) -> None:
    order_id = world.file()
    with world.store.session() as s:
        job = Job(order_id=order_id, kind="count", state=JobState.PAUSED)
        s.add(job)
    told.due.clear()
    with world.store.session() as s:
        s.get_one(Job, job.job_id).checkpoint = {"n": 1}  # paused, still paused
    assert told.due == []
    with world.store.session() as s:
        s.get_one(Job, job.job_id).state = JobState.QUEUED  # a restart
    assert [d.job_id for d in told.due] == [job.job_id]


def test_a_long_wait_gets_no_message_until_the_sweeper_finds_it_due(
    world: World, told: Told
) -> None:
    order_id = world.file()
    later = utcnow() + timedelta(hours=2)
    with world.store.session() as s:
        job = Job(order_id=order_id, kind="count", run_after=later)
        s.add(job)
    with world.store.session() as s:
        assert s.get_one(Job, job.job_id).sent_at is None
    assert [d.at for d in told.due if d.job_id == job.job_id] == [later]


def test_watching_a_store_again_replaces_its_waker(world: World, told: Told) -> None:
    other = Told()
    dispatch.watch(world.store, other)
    told.due.clear()
    world.file()
    assert told.due == []
    assert [d.kind for d in other.due] == ["precheck"]


def _waiting(waker: dispatch.LocalWaker, kinds: set[str], seconds: float = 30) -> Any:
    """A thread waiting as an idle runner does, for ``kinds``; ``.woke`` is set when it
    returns, ``.took`` is how long it waited."""
    seen = waker.generation  # read before the thread looks for work, as a runner does

    def idle() -> None:
        began = time.monotonic()
        waker.wait(seconds, seen, kinds)
        thread.took = time.monotonic() - began  # type: ignore[attr-defined]
        thread.woke.set()  # type: ignore[attr-defined]

    thread = threading.Thread(target=idle)
    thread.woke = threading.Event()  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_a_local_waker_wakes_a_waiting_runner_thread_at_once() -> None:
    waker = dispatch.LocalWaker()
    waker.wake([Due(1, "count", utcnow() + timedelta(hours=1))])  # not due: no wake
    waker.wake([Due(1, "count", utcnow())])  # due, before the thread even waits: not lost
    thread = _waiting(waker, {"count", "other"})
    assert thread.woke.wait(10)
    thread.join()
    assert thread.took < 10


def test_a_local_waker_wakes_one_thread_per_job_of_the_kinds_it_runs() -> None:
    """Two idle runner threads and an upload thread: a job due wakes one runner thread,
    not the other and not the upload thread (all of them looking for work at once would
    queue for SQLite's lock behind the one that takes it)."""
    waker = dispatch.LocalWaker()
    first, second = _waiting(waker, {"count"}, 1.5), _waiting(waker, {"count"}, 1.5)
    uploads = _waiting(waker, {"upload"}, 1.5)
    waker.wake([Due(1, "count", utcnow())])
    woken = [t for t in (first, second) if t.woke.wait(1.0)]
    assert len(woken) == 1 and woken[0].took < 1.0
    for thread in (first, second, uploads):
        thread.join()
    late = [t for t in (first, second, uploads) if t not in woken]
    assert all(t.took >= 1.5 for t in late)  # their poll, not the job, ended their wait


def test_a_local_waker_wake_all_wakes_every_thread() -> None:
    waker = dispatch.LocalWaker()
    threads = [_waiting(waker, {"count"}), _waiting(waker, {"upload"})]
    waker.wake_all()
    for thread in threads:
        assert thread.woke.wait(10)
        thread.join()


def test_a_local_waker_keeps_wakes_of_a_kind_nobody_runs_bounded() -> None:
    waker = dispatch.LocalWaker()
    for n in range(1000):
        waker.wake([Due(n, "upload", utcnow())])  # a process with no upload threads
    assert waker._due["upload"] == dispatch.LocalWaker.KEPT
