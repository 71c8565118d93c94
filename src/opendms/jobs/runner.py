"""The job runner: claims jobs from the metadata store and runs their executors one step at
a time (DESIGN.md §3), on threads of a server process (``Runner.start``) or for the Celery
worker's messages (``Runner.run_job``: "job N has work", see ``jobs.broker``).

A claim is a conditional update that sets a lease (owner and expiry); every step renews it,
in the same transaction that stores the step's checkpoint, and only while this runner still
holds it; a heartbeat renews it while a long step runs. A runner that dies stops renewing,
and once its lease runs out another one takes the job over from its last checkpoint. A job
cancelled meanwhile (the ticket was closed) is noticed at the next step and left alone.

Runners are shared fairly between committers: a claim takes the earliest due job of the
committer with the fewest jobs running, and never one of a committer already running
``Fairness.per_user`` jobs; a job that has held its thread for ``Fairness.slice_seconds``
lets it go between two steps when another job is waiting that could take it. So two long
prechecks of one user do not keep another user's short one waiting. A job that ends or lets
its thread go tells the waker of its share's next due job, which a worker's message may have
found held back by the cap.

A step that fails because the metadata store is down is not the job's failure: the job goes
back to the queue from its last checkpoint (or, if the store cannot take even that, its
lease runs out), as if its runner had died.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from opendms.jobs.dispatch import Due, LocalWaker, Waker
from opendms.store.db import Store
from opendms.store.models import Job, Order, utcnow
from opendms.store.states import JobState
from opendms.telemetry import logs, metrics

log = logging.getLogger("opendms.jobs")

# What SQLAlchemy raises when the metadata store went away under a step (targets are reached
# through their own drivers, never through SQLAlchemy, so these are the store's).
STORE_DOWN: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.PendingRollbackError,
)


def trouble(exc: BaseException) -> str:
    """One line for a store that is down or busy: an expected outage, not a bug, is logged
    without a traceback (the driver's first line says what happened)."""
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {cause[0] if cause else ''}"


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


def is_due(now: datetime) -> Any:
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
        .where(is_due(now), Job.kind.in_(kinds))
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
    return take_first(s, _candidates(s, kinds, now, fair), owner, now, lease)


def take_first(
    s: Session, candidates: list[tuple[int, int]], owner: str, now: datetime, lease: Lease
) -> Job | None:
    """The first of ``candidates`` (``_candidates``'s, read in this transaction or an
    earlier one) that ``owner`` can still lease: the conditional update decides, so
    candidates read before another runner took them are merely passed over."""
    for job_id, attempts in candidates:
        job = _take(s, job_id, attempts, owner, now, lease)
        if job is not None:
            return job
    return None


def _take(
    s: Session, job_id: int, attempts: int, owner: str, now: datetime, lease: Lease
) -> Job | None:
    """The conditional update that leases a due job: only one of any number of runners wins.
    The job comes back with it (RETURNING), not read again."""
    return s.scalars(
        update(Job)
        .where(Job.job_id == job_id, Job.attempts == attempts, is_due(now))
        .values(
            state=JobState.RUNNING,
            attempts=attempts + 1,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease.seconds),
            updated_at=now,
        )
        .returning(Job),
        execution_options={"populate_existing": True},
    ).first()


def claim_job(
    s: Session,
    job_id: int,
    owner: str,
    kinds: set[str],
    now: datetime,
    lease: Lease,
    fair: Fairness = Fairness(),
) -> Job | None:
    """Job ``job_id``, leased to ``owner``, if it is due, of ``kinds`` and its committer's
    share is under the cap; None otherwise (a duplicate message, a job another runner holds
    or that is over, one whose share is full: its running job wakes it when it ends)."""
    share = _share()
    found = s.execute(
        select(Job.attempts, share)
        .select_from(Job)
        .outerjoin(Order, Order.order_id == Job.order_id)
        .where(Job.job_id == job_id, Job.kind.in_(kinds), is_due(now))
    ).first()
    if found is None:
        return None
    attempts, who = found
    if _running(s, now).get(int(who), 0) >= fair.per_user:
        return None
    return _take(s, job_id, attempts, owner, now, lease)


def next_of_share(s: Session, job_id: int, now: datetime) -> tuple[int, str] | None:
    """(job, kind) of the earliest due job that shares ``job_id``'s committer, but that one."""
    share = _share()
    mine = (
        select(share)
        .select_from(Job)
        .outerjoin(Order, Order.order_id == Job.order_id)
        .where(Job.job_id == job_id)
        .scalar_subquery()
    )
    found = s.execute(
        select(Job.job_id, Job.kind)
        .select_from(Job)
        .outerjoin(Order, Order.order_id == Job.order_id)
        .where(is_due(now), share == mine, Job.job_id != job_id)
        .order_by(Job.run_after, Job.job_id)
        .limit(1)
    ).first()
    return (int(found[0]), str(found[1])) if found is not None else None


def record(
    s: Session, job_id: int, owner: str, step: Step, now: datetime, lease: Lease
) -> JobState | None:
    """Store a step's outcome if ``owner`` still holds the job; returns the job's new state,
    or None when the lease was lost or the job cancelled (the step's work then does not
    count here; an executor's own target-side markers decide what happened there). A job
    called off under ``owner``'s lease (its ticket closed) is let go: the lease is over."""
    job = s.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.lease_owner != owner:
        return None
    if job.state != JobState.RUNNING:
        job.lease_owner, job.lease_until = None, None
        s.flush()
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


def release(
    s: Session, job_id: int, owner: str, now: datetime, sent_at: datetime | None = None
) -> bool:
    """Give a running job back to the queue between two steps (its checkpoint is stored),
    for any runner to claim again; False when ``owner`` no longer held it. ``sent_at``: when
    the message that says so will be sent (``jobs.dispatch``)."""
    done = s.execute(
        update(Job)
        .where(Job.job_id == job_id, Job.state == JobState.RUNNING, Job.lease_owner == owner)
        .values(
            state=JobState.QUEUED,
            run_after=now,
            lease_owner=None,
            lease_until=None,
            sent_at=sent_at,
        )
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
    """Renews the leases of the jobs a runner is in a step of, every third of the lease, so
    a statement that runs for minutes is not mistaken for a dead runner. One thread per
    runner, started with its first step and kept: a step does not wait for a thread of its
    own to start (with other threads holding the GIL, that took milliseconds a step). The
    thread holds the runner weakly and ends once the runner is gone."""

    def __init__(self, runner: Runner) -> None:
        self._runner = weakref.ref(runner)
        self._lock = threading.Lock()
        self._jobs: set[int] = set()
        self._thread: threading.Thread | None = None

    @contextmanager
    def beating(self, job_id: int) -> Iterator[None]:
        """Keep ``job_id``'s lease while the block (one step) runs."""
        with self._lock:
            self._jobs.add(job_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=_beat, args=(self,), name="opendms-lease", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._jobs.discard(job_id)

    def renew_all(self, runner: Runner) -> None:
        """Renew every job in a step now; a job whose lease is no longer the runner's is
        left alone (its step's record finds it lost)."""
        with self._lock:
            jobs = sorted(self._jobs)
        for job_id in jobs:
            try:
                with runner.store.session() as s:
                    held = renew(s, job_id, runner.owner, runner.clock(), runner.lease)
            except STORE_DOWN as exc:
                log.warning("renewing the lease of job %s failed: %s", job_id, trouble(exc))
                continue
            if not held:
                with self._lock:
                    self._jobs.discard(job_id)


def _beat(heart: _Heartbeat) -> None:
    """The heartbeat thread: every third of the lease, until the runner is gone."""
    while True:
        runner = heart._runner()
        if runner is None:
            return
        every = runner.lease.seconds / 3
        del runner  # not held while asleep
        time.sleep(every)
        runner = heart._runner()
        if runner is None:
            return
        heart.renew_all(runner)
        del runner


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Runner:
    """Runs jobs of the kinds it has executors for: on ``threads`` threads of its own
    (``start``), or one named job at a time for a broker's messages (``run_job``)."""

    store: Store
    executors: Mapping[str, Executor]
    threads: int = 2
    lease: Lease = Lease()
    fair: Fairness = Fairness()
    idle_seconds: float = 1.0
    owner: str = field(default_factory=_default_owner)
    clock: Callable[[], datetime] = utcnow
    # told of the jobs this runner makes due itself; a LocalWaker also wakes idle threads
    waker: Waker | None = None
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _workers: list[threading.Thread] = field(default_factory=list, init=False)
    _count: threading.Lock = field(default_factory=threading.Lock, init=False)
    _heart: _Heartbeat = field(init=False)
    running: int = field(default=0, init=False)  # jobs in a step loop now
    finished: int = field(default=0, init=False)  # jobs this runner saw end

    def __post_init__(self) -> None:
        self._heart = _Heartbeat(self)

    def run_once(self) -> bool:
        """Claim one due job and run it until it is over, waits, or is lost; False when no
        job was due."""
        kinds, now = set(self.executors), self.clock()
        # Looked for in a transaction that only reads, and taken in one that writes: on
        # SQLite a look takes no lock, so idle runners never hold up a request or a step.
        with self.store.reading() as r:
            candidates = _candidates(r, kinds, now, self.fair)
        if not candidates:
            return False
        with self.store.session() as s:
            job = take_first(s, candidates, self.owner, now, self.lease)
            if job is None:
                return False
            work = Work(job.job_id, job.order_id or 0, job.kind, job.attempts, self.store)
            checkpoint: Checkpoint = dict(job.checkpoint or {})
        self._drive(work, checkpoint, yield_always=False)
        return True

    def run_job(self, job_id: int) -> bool:
        """Run job ``job_id`` for one time slice if it is due and may be claimed (a broker's
        message); a job not over by then goes back to the queue with a message of its own,
        behind the others waiting. False when it was not claimed."""
        with self.store.session() as s:
            job = claim_job(
                s, job_id, self.owner, set(self.executors), self.clock(), self.lease, self.fair
            )
            if job is None:
                return False
            work = Work(job.job_id, job.order_id or 0, job.kind, job.attempts, self.store)
            checkpoint: Checkpoint = dict(job.checkpoint or {})
        self._drive(work, checkpoint, yield_always=True)
        return True

    def _drive(self, work: Work, checkpoint: Checkpoint, *, yield_always: bool) -> None:
        """Steps of a claimed job until it is over, waits, is lost, or yields its thread."""
        with self._count:
            self.running += 1
        try:
            self._steps(work, checkpoint, yield_always)
        finally:
            with self._count:
                self.running -= 1

    def _steps(self, work: Work, checkpoint: Checkpoint, yield_always: bool) -> None:
        executor = self.executors[work.kind]
        started = self.clock()
        while True:
            try:
                with (
                    self._heart.beating(work.job_id),
                    logs.context(order_id=work.order_id or None),
                ):
                    step = executor(work, checkpoint)
            except STORE_DOWN as exc:
                log.warning(
                    "job %s (%s): the metadata store went away during a step (%s); it runs "
                    "again from its last checkpoint",
                    work.job_id,
                    work.kind,
                    trouble(exc),
                )
                step = Step(checkpoint, wait_seconds=self.lease.seconds / 10)
            except Exception as exc:  # an executor bug must not kill the runner thread
                log.exception("job %s (%s) step failed", work.job_id, work.kind)
                step = Step(checkpoint, failure=f"internal error: {type(exc).__name__}: {exc}")
            with self.store.session() as s:
                state = record(s, work.job_id, self.owner, step, self.clock(), self.lease)
            metrics.job_step(work.kind, str(state) if state is not None else "lost")
            if state != JobState.RUNNING:
                if state is not None and state != JobState.QUEUED:
                    with self._count:
                        self.finished += 1
                self._wake_share(work.job_id)
                return
            checkpoint = step.checkpoint
            if self._stop.is_set() or self._slice_over(work.job_id, started, yield_always):
                self._let_go(work)
                return

    def _slice_over(self, job_id: int, started: datetime, yield_always: bool) -> bool:
        """Whether the job has run its slice and should let its thread go: always, for a
        broker's worker (its queue is the line); else when a job that could take it waits."""
        now = self.clock()
        if (now - started).total_seconds() < self.fair.slice_seconds:
            return False
        if yield_always:
            return True
        with self.store.reading() as r:
            return bool(_candidates(r, set(self.executors), now, self.fair, without=job_id))

    def _let_go(self, work: Work) -> None:
        """Give the job back to the queue between two steps and say it has work."""
        now = self.clock()
        sent_at = self.waker.sent_at(now, now) if self.waker is not None else None
        with self.store.session() as s:
            released = release(s, work.job_id, self.owner, now, sent_at)
        if released and self.waker is not None:
            self.waker.wake([Due(work.job_id, work.kind, now)])
        self._wake_share(work.job_id)

    def _wake_share(self, job_id: int) -> None:
        """Tell the waker of the next due job of this job's committer (see the module)."""
        if self.waker is None:
            return
        try:
            now = self.clock()
            with self.store.reading() as r:
                found = next_of_share(r, job_id, now)
            if found is None:
                return
            with self.store.session() as s:
                s.execute(
                    update(Job)
                    .where(Job.job_id == found[0])
                    .values(sent_at=self.waker.sent_at(now, now))
                )
            self.waker.wake([Due(found[0], found[1], now)])
        except STORE_DOWN as exc:
            log.warning("job %s: waking its share's next job failed: %s", job_id, trouble(exc))

    def _loop(self) -> None:
        local = self.waker if isinstance(self.waker, LocalWaker) else None
        while not self._stop.is_set():
            seen = local.generation if local is not None else 0
            try:
                busy = self.run_once()
            except STORE_DOWN as exc:
                log.warning("job runner pass failed (%s); will retry", trouble(exc))
                busy = False
            except Exception:
                log.warning("job runner pass failed; will retry", exc_info=True)
                busy = False
            if not busy and not self._stop.is_set():
                if local is not None:
                    local.wait(self.idle_seconds, seen, self.executors.keys())
                else:
                    self._stop.wait(self.idle_seconds)

    def start(self) -> None:
        self._stop.clear()
        for i in range(self.threads):
            worker = threading.Thread(target=self._loop, name=f"opendms-job-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def shutting_down(self) -> None:
        """Stop claiming; a job in progress ends its step, goes back to the queue from its
        checkpoint, and its thread returns (a SIGTERM's warm shutdown)."""
        self._stop.set()
        if isinstance(self.waker, LocalWaker):
            self.waker.wake_all()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; a step in progress finishes and its job goes back to the queue (its
        lease would let another runner resume it anyway if this process exits first)."""
        self.shutting_down()
        for worker in self._workers:
            worker.join(timeout)
        self._workers.clear()
