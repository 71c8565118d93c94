"""Telling runners that a job has work, once the transaction that queued it has committed.

Any unit of work that adds a job, or moves one back to ``queued`` (a restart, a step that
waits), is watched: after its commit, the process's ``Waker`` hears of the job. Before it,
in the same transaction, the job's ``sent_at`` records when its message is due, so that a
message lost with its process (between the commit and the send) is found by the sweeper
(``jobs.sweeper``) and sent again. Nothing is sent for a transaction that rolls back.

Two wakers: with a broker, ``jobs.broker.BrokerWaker`` sends "job N has work" to the
Celery workers; without one, ``LocalWaker`` wakes one of this process's runner threads
for each job at once, instead of at their next poll.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

from opendms.store.db import Store
from opendms.store.models import Job, utcnow
from opendms.store.states import JobState

_PENDING = "opendms.jobs.woken"  # Session.info key: the jobs to tell of after the commit


@dataclass(frozen=True)
class Due:
    """A job that has work from ``at`` on."""

    job_id: int
    kind: str
    at: datetime


class Waker(Protocol):
    def sent_at(self, at: datetime, now: datetime) -> datetime | None:
        """What ``Job.sent_at`` records for a job due at ``at``: when its message will be
        delivered, or None when none will be sent for it now (the sweeper sends it once due)."""
        ...

    def wake(self, due: Sequence[Due]) -> None:
        """Tell the runners; never blocks on the network and never raises."""
        ...

    def close(self, timeout: float = 5.0) -> None:
        """Send what is still waiting, for at most ``timeout`` seconds."""
        ...


class LocalWaker:
    """The runner threads of this process, woken at once when a job is due now: one thread
    for each such job, among those that run its kind (a job due later, or queued by another
    process, is found by their poll). Waking every thread for every job would have them all
    look for work at once, and on SQLite queue for its lock, behind the one that takes it."""

    # Wakes no thread has taken yet, kept per kind up to this many: a kind no thread of
    # this process runs (uploads with no upload threads) must not pile them up.
    KEPT = 64

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._generation = 0  # every thread's wake (``wake_all``)
        self._due: Counter[str] = Counter()  # jobs told of, by kind, no thread woke for yet

    def sent_at(self, at: datetime, now: datetime) -> datetime | None:
        return None

    def wake(self, due: Sequence[Due]) -> None:
        now = utcnow()
        ready = [d.kind for d in due if d.at <= now]
        if not ready:
            return
        with self._ready:
            for kind in ready:
                self._due[kind] = min(self._due[kind] + 1, self.KEPT)
            self._ready.notify_all()

    @property
    def generation(self) -> int:
        """How many ``wake_all`` so far: read before looking for work, given to ``wait``."""
        return self._generation

    def wait(self, seconds: float, seen: int, kinds: Collection[str]) -> None:
        """Sleep until a job of ``kinds`` is told of (one told of while the thread looked for
        work is not lost: it waits here until a thread takes it), until ``wake_all`` after
        ``generation`` was ``seen``, or ``seconds`` pass."""

        def woken() -> bool:
            return self._generation != seen or any(self._due[k] for k in kinds)

        with self._ready:
            if self._ready.wait_for(woken, timeout=seconds):
                taken = next((k for k in kinds if self._due[k]), None)
                if taken is not None:
                    self._due[taken] -= 1

    def wake_all(self) -> None:
        with self._ready:
            self._generation += 1
            self._ready.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        return None


def _queued(job: Job, new: bool) -> bool:
    """A job this flush makes due: added, or moved (back) to queued or to a new time."""
    if job.state not in (None, JobState.QUEUED):
        return False
    if new:
        return True
    attrs = inspect(job).attrs
    return bool(attrs.state.history.has_changes() or attrs.run_after.history.has_changes())


# The waker each watched session factory tells: watching a store again replaces its waker
# rather than adding listeners (tests build several runtimes on one store).
_WAKERS: weakref.WeakKeyDictionary[sessionmaker[Session], Waker] = weakref.WeakKeyDictionary()


def watch(store: Store, waker: Waker) -> None:
    """Tell ``waker`` of every job a committed unit of work on ``store`` queued."""
    sessions = store.sessions
    known = sessions in _WAKERS
    _WAKERS[sessions] = waker
    if known:
        return

    @event.listens_for(sessions, "before_flush")
    def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
        now = utcnow()
        waker = _WAKERS[sessions]
        for obj in (*session.new, *session.dirty):
            if isinstance(obj, Job) and _queued(obj, obj in session.new):
                obj.sent_at = waker.sent_at(obj.run_after or now, now)
                session.info.setdefault(_PENDING, []).append(obj)

    @event.listens_for(sessions, "after_commit")
    def _after_commit(session: Session) -> None:
        jobs: list[Job] = session.info.pop(_PENDING, [])
        now = utcnow()
        due = {j.job_id: Due(j.job_id, j.kind, j.run_after or now) for j in jobs}
        if due:
            _WAKERS[sessions].wake(list(due.values()))

    @event.listens_for(sessions, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)
