"""The embedded job runner: threads that claim queued jobs from the metadata store and run
their executors one step at a time (DESIGN.md §3).

A claim is a conditional update that sets a lease (owner and expiry); every step renews it,
in the same transaction that stores the step's checkpoint, and only while this runner still
holds it; a heartbeat renews it while a long step runs. A runner that dies stops renewing,
and once its lease runs out another one takes the job over from its last checkpoint. A job
cancelled meanwhile (the ticket was closed) is noticed at the next step and left alone.

Runners are shared fairly between committers: a claim takes the earliest due job of the
committer with the fewest jobs running, and never one of a committer already running
``Fairness.per_user`` jobs; a job that has held its thread for ``Fairness.slice_seconds``
lets it go between two steps when another job is waiting that could take it. So two long
prechecks of one user do not keep another user's short one waiting.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from opendms.store.db import Store
from opendms.store.models import Job, Order, utcnow
from opendms.store.states import JobState

log = logging.getLogger("opendms.jobs")

Checkpoint = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """What one step did: the checkpoint to resume from, and whether the job is over."""

    checkpoint: Checkpoint
    done: bool = False
    failure: str | None = None  # the job is over and failed, for this reason
    wait_seconds: float = 0.0  # not done; run the next step no sooner than this
    paused: bool = False  # not done; left alone until someone queues it again


@dataclass(frozen=True)
class Work:
    """What an executor is given for one step."""

    job_id: int
    order_id: int  # 0 for a job that is no ticket's (an upload)
    kind: str
    attempt: int
    store: Store


class Executor(Protocol):
    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step: ...


@dataclass(frozen=True)
class Lease:
    seconds: float = 30.0


@dataclass(frozen=True)
class Fairness:
    """How runners are shared between committers (see the module)."""

    per_user: int = 1  # jobs one committer may have running at once, across all runners
    slice_seconds: float = 5.0  # a job runs this long before it yields to a waiting one


def _due(now: datetime) -> Any:
    return or_(
        (Job.state == JobState.QUEUED) & (Job.run_after <= now),
        (Job.state == JobState.RUNNING) & (Job.lease_until < now),
    )


def _share() -> Any:
    """Whose share of the runners a job is: its ticket's committer; a job that is no
    ticket's (an upload, capped where it is made) is a share of its own."""
    return func.coalesce(Order.committer_id, -Job.job_id)


def _running(s: Session, now: datetime) -> dict[int, int]:
    """Jobs running under a live lease, by share."""
    share = _share()
    rows = s.execute(
        select(share, func.count())
        .select_from(Job)
        .outerjoin(Order, Order.order_id == Job.order_id)
        .where(Job.state == JobState.RUNNING, Job.lease_until >= now)
        .group_by(share)
    ).all()
    return {int(who): int(n) for who, n in rows}


def _candidates(
    s: Session, kinds: set[str], now: datetime, fair: Fairness, without: int | None = None
) -> list[tuple[int, int]]:
    """(job, attempts) of the earliest due job of each share under the cap, those with the
    fewest jobs running first; ``without``: as if that job were not running."""
    share = _share()
    first = (
        select(
            Job.job_id,
            Job.attempts,
            share.label("share"),
            func.row_number()
            .over(partition_by=share, order_by=(Job.run_after, Job.job_id))
            .label("place"),
            Job.run_after,
        )
        .select_from(Job)
        .outerjoin(Order, Order.order_id == Job.order_id)
        .where(_due(now), Job.kind.in_(kinds))
        .subquery()
    )
    rows = s.execute(
        select(first.c.job_id, first.c.attempts, first.c.share)
        .where(first.c.place == 1)
        .order_by(first.c.run_after, first.c.job_id)
        .limit(50)
    ).all()
    if not rows:
        return []  # an idle runner's poll: one query
    running = _running(s, now)
    if without is not None:
        mine = s.scalar(
            select(share)
            .select_from(Job)
            .outerjoin(Order, Order.order_id == Job.order_id)
            .where(Job.job_id == without)
        )
        if mine is not None and running.get(mine):
            running[mine] -= 1
    open_ = [
        (running.get(who, 0), i, job_id, attempts)
        for i, (job_id, attempts, who) in enumerate(rows)
        if running.get(who, 0) < fair.per_user and job_id != without
    ]
    return [(job_id, attempts) for _, _, job_id, attempts in sorted(open_)]


def claim(
    s: Session,
    owner: str,
    kinds: set[str],
    now: datetime,
    lease: Lease,
    fair: Fairness = Fairness(),
) -> Job | None:
    """One due job of ``kinds``, leased to ``owner``, chosen fairly (see the module); None
    when there is none (or another runner took each candidate first)."""
    for job_id, attempts in _candidates(s, kinds, now, fair):
        taken = s.execute(
            update(Job)
            .where(Job.job_id == job_id, Job.attempts == attempts, _due(now))
            .values(
                state=JobState.RUNNING,
                attempts=attempts + 1,
                lease_owner=owner,
                lease_until=now + timedelta(seconds=lease.seconds),
                updated_at=now,
            )
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            s.flush()
            return s.get(Job, job_id, populate_existing=True)
    return None


def record(
    s: Session, job_id: int, owner: str, step: Step, now: datetime, lease: Lease
) -> JobState | None:
    """Store a step's outcome if ``owner`` still holds the job; returns the job's new state,
    or None when the lease was lost or the job cancelled (the step's work then does not
    count here; an executor's own target-side markers decide what happened there)."""
    job = s.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.state != JobState.RUNNING or job.lease_owner != owner:
        return None
    job.checkpoint = dict(step.checkpoint)
    job.updated_at = now
    if step.failure is not None or step.done:
        job.state = JobState.FAILED if step.failure is not None else JobState.SUCCEEDED
        job.lease_owner, job.lease_until = None, None
        if step.failure is not None:
            job.checkpoint = {**step.checkpoint, "failure": step.failure}
    elif step.paused:
        job.state = JobState.PAUSED
        job.lease_owner, job.lease_until = None, None
    elif step.wait_seconds > 0:  # let it go until then; any runner may pick it up
        job.state = JobState.QUEUED
        job.run_after = now + timedelta(seconds=step.wait_seconds)
        job.lease_owner, job.lease_until = None, None
    else:
        job.lease_until = now + timedelta(seconds=lease.seconds)
    s.flush()
    return job.state


def release(s: Session, job_id: int, owner: str, now: datetime) -> bool:
    """Give a running job back to the queue between two steps (its checkpoint is stored),
    for any runner to claim again; False when ``owner`` no longer held it."""
    done = s.execute(
        update(Job)
        .where(Job.job_id == job_id, Job.state == JobState.RUNNING, Job.lease_owner == owner)
        .values(state=JobState.QUEUED, run_after=now, lease_owner=None, lease_until=None)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def renew(s: Session, job_id: int, owner: str, now: datetime, lease: Lease) -> bool:
    """Extend ``owner``'s lease while a long step runs; False when it is no longer its."""
    done = s.execute(
        update(Job)
        .where(Job.job_id == job_id, Job.state == JobState.RUNNING, Job.lease_owner == owner)
        .values(lease_until=now + timedelta(seconds=lease.seconds))
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


class _Heartbeat:
    """Renews a job's lease every third of it while one step runs, so a statement that runs
    for minutes is not mistaken for a dead runner."""

    def __init__(self, runner: Runner, job_id: int) -> None:
        self.runner, self.job_id = runner, job_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"opendms-lease-{job_id}")

    def _beat(self) -> None:
        r = self.runner
        while not self.stop.wait(r.lease.seconds / 3):
            try:
                with r.store.session() as s:
                    if not renew(s, self.job_id, r.owner, r.clock(), r.lease):
                        return
            except Exception:
                log.warning("renewing the lease of job %s failed", self.job_id, exc_info=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Runner:
    """Runs jobs of the kinds it has executors for, on ``threads`` threads."""

    store: Store
    executors: Mapping[str, Executor]
    threads: int = 2
    lease: Lease = Lease()
    fair: Fairness = Fairness()
    idle_seconds: float = 1.0
    owner: str = field(default_factory=_default_owner)
    clock: Callable[[], datetime] = utcnow
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _workers: list[threading.Thread] = field(default_factory=list, init=False)

    def run_once(self) -> bool:
        """Claim one due job and run it until it is over, waits, or is lost; False when no
        job was due."""
        kinds = set(self.executors)
        with self.store.session() as s:
            job = claim(s, self.owner, kinds, self.clock(), self.lease, self.fair)
            if job is None:
                return False
            work = Work(job.job_id, job.order_id or 0, job.kind, job.attempts, self.store)
            checkpoint: Checkpoint = dict(job.checkpoint or {})
        executor = self.executors[work.kind]
        started = self.clock()
        while not self._stop.is_set():
            try:
                with _Heartbeat(self, work.job_id):
                    step = executor(work, checkpoint)
            except Exception as exc:  # an executor bug must not kill the runner thread
                log.exception("job %s (%s) step failed", work.job_id, work.kind)
                step = Step(checkpoint, failure=f"internal error: {type(exc).__name__}: {exc}")
            with self.store.session() as s:
                state = record(s, work.job_id, self.owner, step, self.clock(), self.lease)
            if state != JobState.RUNNING:
                return True
            checkpoint = step.checkpoint
            if self._yields(work.job_id, kinds, started):
                return True
        return True

    def _yields(self, job_id: int, kinds: set[str], started: datetime) -> bool:
        """Whether the job, running for its slice, gave its thread to a waiting one."""
        now = self.clock()
        if (now - started).total_seconds() < self.fair.slice_seconds:
            return False
        with self.store.session() as s:
            if not _candidates(s, kinds, now, self.fair, without=job_id):
                return False
            return release(s, job_id, self.owner, now)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.warning("job runner pass failed; will retry", exc_info=True)
                busy = False
            if not busy:
                self._stop.wait(self.idle_seconds)

    def start(self) -> None:
        self._stop.clear()
        for i in range(self.threads):
            worker = threading.Thread(target=self._loop, name=f"opendms-job-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; a step in progress finishes (its lease lets another runner resume
        the job if this process exits first)."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout)
        self._workers.clear()
