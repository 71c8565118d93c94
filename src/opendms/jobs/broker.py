"""Celery as the transport between processes that queue jobs and ``opendms worker``.

The store stays the truth: a job's row and checkpoint are written in its ticket's
transaction, and the message sent after the commit only says "job N has work". A worker
that receives it claims the job's lease in the store before a step (``Runner.run_job``), so
a duplicate or redelivered message does nothing twice. Messages are acknowledged late
(after the task) and taken one at a time, so a busy worker holds no message another could
take. The sweeper (``jobs.sweeper``) sends again the message of a job that was never sent,
was lost with a broker, or whose worker died (its lease ran out): on Redis, nothing more is
asked of the broker (no acknowledgement emulation, see ``celery_app``).

Sends happen on a thread of their own: a request that queued a job never waits on the
broker, and a broker that is down costs a log line, not a failed request.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery
from celery import signals as celery_signals
from kombu.utils.url import maybe_sanitize_url

from opendms.jobs.dispatch import Due
from opendms.jobs.runner import STORE_DOWN, trouble
from opendms.store.models import utcnow

log = logging.getLogger("opendms.jobs.broker")

TASK = "opendms.run_job"
# A message with a countdown is held by a worker until it is due: longer waits are left to
# the sweeper (RabbitMQ closes a channel that holds an unacknowledged message for 30 min).
MAX_COUNTDOWN_SECONDS = 300.0
# Redis's emulation of acknowledgements (a copy of each unacknowledged message kept on the
# broker, delivered again after a visibility timeout) is off: the sweeper already sends a
# dead worker's job again within seconds, and with it on, a worker that held a message when
# the broker went away exits (kombu 5.7 restores the message over the connection it has
# just closed: "Unrecoverable error: AttributeError"), where it should reconnect.
REDIS_OPTIONS = {"ack_emulation": False}


@dataclass(frozen=True)
class Queues:
    """The queues of one OpenDMS installation (``prefix``: several may share a broker).
    Uploads fetch from wherever users point them and may take minutes: they have a queue of
    their own, so a few slow ones cannot hold back prechecks and executions."""

    prefix: str = "opendms"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}.jobs"

    @property
    def uploads(self) -> str:
        return f"{self.prefix}.uploads"

    def for_kind(self, kind: str) -> str:
        return self.uploads if kind == "upload" else self.jobs


def celery_app(broker_url: str, queues: Queues) -> Celery:
    """The Celery app of one process, sending and (in a worker) consuming."""
    app = Celery("opendms", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=queues.jobs,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        broker_transport_options=REDIS_OPTIONS if broker_url.startswith("redis") else {},
        # one message names one job: no result backend, no events unless asked for
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app


def describe(broker_url: str) -> str:
    """The broker's URL without its password, for messages."""
    return str(maybe_sanitize_url(broker_url))


class BrokerWaker:
    """Sends "job N has work" from a thread of its own (see the module)."""

    def __init__(self, app: Celery, queues: Queues) -> None:
        self.app = app
        self.queues = queues
        self._queue: queue.SimpleQueue[Due | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0

    def sent_at(self, at: datetime, now: datetime) -> datetime | None:
        if (at - now).total_seconds() > MAX_COUNTDOWN_SECONDS:
            return None
        return max(at, now)

    def wake(self, due: Sequence[Due]) -> None:
        now = utcnow()
        sending = [d for d in due if self.sent_at(d.at, now) is not None]
        if not sending:
            return
        with self._lock:
            self._pending += len(sending)
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._send_forever, name="opendms-broker-send", daemon=True
                )
                self._thread.start()
        for d in sending:
            self._queue.put(d)

    def _send_forever(self) -> None:
        while True:
            d = self._queue.get()
            if d is None:
                return
            try:
                self.send(d)
            except Exception as exc:  # noqa: BLE001 - any failure: the sweeper sends it again
                log.warning(
                    "telling the workers of job %s failed (%s: %s); the sweeper will send it again",
                    d.job_id,
                    type(exc).__name__,
                    exc,
                )
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()

    def send(self, d: Due) -> None:
        """One message now (the caller's thread): the job is due after its countdown."""
        countdown = max(0.0, (d.at - utcnow()).total_seconds())
        self.app.send_task(
            TASK,
            args=[d.job_id],
            queue=self.queues.for_kind(d.kind),
            countdown=countdown or None,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )

    def close(self, timeout: float = 5.0) -> None:
        self._idle.wait(timeout)
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(1.0)


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int
    queues: tuple[str, ...]
    hostname: str
    events: bool = False
    banner: bool = True  # Celery's start-up banner (plain text: not for JSON logs)


def run_worker(
    app: Celery,
    run_job: Callable[[int], object],
    options: WorkerOptions,
    *,
    on_shutdown: Callable[[], None],
) -> None:
    """Consume ``options.queues`` in this process until SIGTERM / SIGINT (a warm shutdown:
    tasks in progress finish; ``on_shutdown`` is called as it begins, so that a job's step
    in progress ends its time slice early)."""

    def _run_job(job_id: int) -> None:
        try:
            run_job(int(job_id))
        except STORE_DOWN as exc:  # its lease runs out, or it was never taken: sent again
            log.warning(
                "job %s could not be run now (%s); it will be sent again", job_id, trouble(exc)
            )

    app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(_run_job)

    def _shutting_down(**_kw: Any) -> None:
        on_shutdown()

    celery_signals.worker_shutting_down.connect(_shutting_down, weak=False)
    try:
        worker = app.Worker(
            pool="threads",
            concurrency=options.concurrency,
            queues=list(options.queues),
            hostname=options.hostname,
            without_mingle=True,
            without_gossip=True,
            send_events=options.events,
            loglevel="INFO",
            quiet=not options.banner,
        )
        worker.start()
        code = worker.exitcode
    finally:
        celery_signals.worker_shutting_down.disconnect(_shutting_down)
    if code:
        raise SystemExit(code)
