"""The sweeper: with a broker, the store is the truth and a message only a wake-up call, so
every worker process looks now and then for due jobs whose message is overdue, and sends
one again: a message that was never sent (its process died between the commit and the
send, or the broker was down), one lost with a broker, a job whose worker was killed (its
lease ran out), and a job whose wait was too long for a countdown.

Any number of workers sweep; a conditional update of ``sent_at`` lets one of them send.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from opendms.jobs.dispatch import Due, Waker
from opendms.jobs.periodic import Periodic
from opendms.jobs.runner import is_due
from opendms.store.db import Store
from opendms.store.models import Job, utcnow

log = logging.getLogger("opendms.jobs.sweeper")


def sweep(store: Store, waker: Waker, now: datetime, grace: timedelta, limit: int = 200) -> int:
    """Send again the message of every due job whose last one is older than ``grace``;
    how many were sent."""
    with store.session() as s:
        overdue = s.execute(
            select(Job.job_id, Job.kind, Job.sent_at)
            .where(is_due(now), or_(Job.sent_at.is_(None), Job.sent_at < now - grace))
            .order_by(Job.run_after, Job.job_id)
            .limit(limit)
        ).all()
    due: list[Due] = []
    for job_id, kind, sent_at in overdue:
        with store.session() as s:
            mine = s.execute(
                update(Job)
                .where(Job.job_id == job_id, Job.sent_at.is_not_distinct_from(sent_at))
                .values(sent_at=now)
            )
            if mine.rowcount == 1:  # type: ignore[attr-defined]
                due.append(Due(job_id, kind, now))
    if due:
        log.info(
            "sending again the messages of %d due job(s): %s", len(due), [d.job_id for d in due]
        )
        waker.wake(due)
    return len(due)


def sweeper(store: Store, waker: Waker, grace_seconds: float, every: float) -> Periodic:
    """``sweep`` every ``every`` seconds on a thread of its own."""
    grace = timedelta(seconds=grace_seconds)
    return Periodic("sweep", every, lambda: sweep(store, waker, utcnow(), grace))
