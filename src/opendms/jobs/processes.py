"""Heartbeats: every server and worker process says, every few seconds, that it is alive
and how many jobs it runs; ``/metrics`` reports them (a worker that stopped beating is a
worker gone) and a process that stops cleanly takes its row away. Rows of processes silent
for a long time are removed by the others."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from opendms.jobs.periodic import Periodic
from opendms.jobs.runner import STORE_DOWN, trouble
from opendms.store.db import Store
from opendms.store.models import Process, utcnow

log = logging.getLogger("opendms.jobs.processes")

# A process silent for this many heartbeats is gone; its row is removed.
FORGET_AFTER_BEATS = 30


def beat(store: Store, name: str, role: str, running: int, done: int) -> None:
    """Say ``name`` is alive now (its row made on the first beat)."""
    now = utcnow()
    with store.session() as s:
        seen = s.execute(
            update(Process)
            .where(Process.name == name)
            .values(seen_at=now, jobs_running=running, jobs_done=done)
        )
        if seen.rowcount == 0:  # type: ignore[attr-defined]
            s.add(
                Process(
                    name=name,
                    role=role,
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    started_at=now,
                    seen_at=now,
                    jobs_running=running,
                    jobs_done=done,
                )
            )


def alive(s: Session, role: str, every: float) -> int:
    """Processes of ``role`` whose heartbeat is at most three beats old."""
    since = utcnow() - timedelta(seconds=3 * every)
    found = s.scalar(
        select(func.count())
        .select_from(Process)
        .where(Process.role == role, Process.seen_at >= since)
    )
    return int(found or 0)


def forget_silent(store: Store, older_than: timedelta) -> int:
    with store.session() as s:
        gone = s.execute(delete(Process).where(Process.seen_at < utcnow() - older_than))
        return int(gone.rowcount)  # type: ignore[attr-defined]


class Heartbeat(Periodic):
    """Beats for one process on a thread of its own (at once, then every ``every`` seconds);
    ``counts`` says (running, done). Stopping takes the process's row away."""

    def __init__(
        self,
        store: Store,
        name: str,
        role: str,
        every: float,
        counts: Callable[[], tuple[int, int]],
    ) -> None:
        super().__init__("heartbeat", every, self._beat, at_start=True)
        self.store, self.name, self.role, self.counts = store, name, role, counts

    def _beat(self) -> None:
        beat(self.store, self.name, self.role, *self.counts())
        forget_silent(self.store, timedelta(seconds=self.every * FORGET_AFTER_BEATS))

    def stop(self) -> None:
        super().stop()
        try:
            with self.store.session() as s:
                s.execute(delete(Process).where(Process.name == self.name))
        except STORE_DOWN as exc:
            log.warning("could not remove %s from the processes: %s", self.name, trouble(exc))
