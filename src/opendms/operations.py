"""What load balancers and Prometheus ask a server process, beside the API: whether it is
ready (its metadata store answers, and its broker when it has one) and, at scrape time, what
the store says of the work and of every process (jobs waiting and running by kind, each
server's and worker's last heartbeat).

Each check is blocking I/O with a deadline, run off the event loop and never twice at once:
a store that hangs costs one thread per check, however often the balancer asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Generic, TypeVar

from kombu.connection import Connection as BrokerConnection
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Connection, func, select

from opendms.store.db import Store
from opendms.store.models import Job, Process, utcnow
from opendms.store.states import JobState

log = logging.getLogger("opendms.operations")

T = TypeVar("T")
DEADLINE_SECONDS = 2.0
# The states of the work a gauge follows: what waits for a runner, what one holds.
GAUGED_STATES = (JobState.QUEUED, JobState.RUNNING)


class SingleFlight(Generic[T]):
    """``fn`` on a thread of its own, awaited at most ``seconds``. While one call is under
    way every caller waits for that one (within its own deadline) instead of starting
    another, so a hung store does not gather a thread per request. The thread is a daemon:
    one stuck in a connect does not hold up the process's exit either."""

    def __init__(self, fn: Callable[[], T], seconds: float = DEADLINE_SECONDS) -> None:
        self.fn, self.seconds = fn, seconds
        self._pending: asyncio.Future[T] | None = None

    async def __call__(self) -> T:
        loop = asyncio.get_running_loop()
        pending = self._pending
        if pending is None or pending.done() or pending.get_loop() is not loop:
            pending = self._pending = self._start(loop)
        return await asyncio.wait_for(asyncio.shield(pending), self.seconds)

    def _start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
        future: asyncio.Future[T] = loop.create_future()
        # its outcome is read even when every waiter gave up on it (no "never retrieved")
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

        def settle(result: T | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def run() -> None:
            try:
                outcome: tuple[T | None, BaseException | None] = (self.fn(), None)
            except Exception as exc:  # noqa: BLE001 (handed to whoever awaits it)
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(target=run, name="opendms-probe", daemon=True).start()
        return future


def _reading(store: Store) -> Connection:
    """A connection outside any transaction: a probe or a scrape takes no lock (SQLite's
    transactions begin by taking the write lock)."""
    return store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def store_answers(store: Store) -> None:
    with _reading(store) as conn:
        conn.exec_driver_sql("SELECT 1")


def broker_answers(url: str) -> None:
    with BrokerConnection(url, connect_timeout=DEADLINE_SECONDS) as conn:  # type: ignore[no-untyped-call]
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=DEADLINE_SECONDS
        )


def _cause(exc: BaseException) -> str:
    """The first line of what went wrong: a log line per probe, not a traceback."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Readiness:
    """Whether this process can serve: each check's verdict by name ("ok", "unreachable",
    "no answer"); why one failed goes to the log, not to whoever asked."""

    def __init__(self, store: Store, broker_url: str | None) -> None:
        self.checks: dict[str, SingleFlight[None]] = {
            "store": SingleFlight(lambda: store_answers(store))
        }
        if broker_url:
            # its transport's modules (redis, amqp) imported now, not within a check's 2 s
            BrokerConnection(broker_url).get_transport_cls()  # type: ignore[no-untyped-call]
            self.checks["broker"] = SingleFlight(lambda: broker_answers(broker_url))

    async def __call__(self) -> tuple[bool, dict[str, str]]:
        names = list(self.checks)
        verdicts = await asyncio.gather(*(self._verdict(n) for n in names))
        found = dict(zip(names, verdicts, strict=True))
        return all(v == "ok" for v in verdicts), found

    async def _verdict(self, name: str) -> str:
        try:
            await self.checks[name]()
        except TimeoutError:
            log.warning("not ready: the %s gave no answer within %.0f s", name, DEADLINE_SECONDS)
            return "no answer"
        except Exception as exc:  # noqa: BLE001 (whatever stops it, the process is not ready)
            log.warning("not ready: the %s cannot be reached: %s", name, _cause(exc))
            return "unreachable"
        return "ok"


class StoreGauges:
    """The gauges read from the store at scrape time. The store's answer is one of them
    (``opendms_store_up``): a scrape while it is down still answers, with 0 there."""

    def __init__(
        self, store: Store, kinds: Iterable[str], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store, self.clock = store, clock
        self.kinds = frozenset(kinds)  # job kinds reported even with no job: series stay put
        self._read = SingleFlight(self.read)

    async def __call__(self) -> list[Metric]:
        up = GaugeMetricFamily(
            "opendms_store_up", "Whether this scrape could read the metadata store (1) or not."
        )
        families: list[Metric] = []
        try:
            families = await self._read()
        except TimeoutError:
            log.warning("metrics: the store gave no answer within %.0f s", DEADLINE_SECONDS)
        except Exception as exc:  # noqa: BLE001 (the scrape answers all the same)
            log.warning("metrics: the store could not be read: %s", _cause(exc))
        up.add_metric([], 1 if families else 0)
        return [up, *families]

    def read(self) -> list[Metric]:
        with _reading(self.store) as conn:
            counted = conn.execute(
                select(Job.kind, Job.state, func.count())
                .where(Job.state.in_(GAUGED_STATES))
                .group_by(Job.kind, Job.state)
            ).all()
            processes = conn.execute(
                select(
                    Process.name,
                    Process.role,
                    Process.seen_at,
                    Process.jobs_running,
                    Process.jobs_done,
                ).order_by(Process.name)
            ).all()
        jobs = GaugeMetricFamily(
            "opendms_jobs",
            "Jobs waiting for a runner or held by one, by kind.",
            labels=["kind", "state"],
        )
        by = {(str(kind), str(state)): int(n) for kind, state, n in counted}
        for kind in sorted({*self.kinds, *(k for k, _ in by)}):
            for state in GAUGED_STATES:
                jobs.add_metric([kind, str(state)], by.get((kind, str(state)), 0))
        labels = ["name", "role"]
        age = GaugeMetricFamily(
            "opendms_process_heartbeat_age_seconds",
            "Seconds since each server or worker process last said it was alive.",
            labels=labels,
        )
        running = GaugeMetricFamily(
            "opendms_process_jobs_running", "Jobs each process is running.", labels=labels
        )
        done = CounterMetricFamily(
            "opendms_process_jobs_done", "Jobs each process has run to an end.", labels=labels
        )
        now = self.clock()
        for name, role, seen_at, jobs_running, jobs_done in processes:
            age.add_metric([name, role], max(0.0, (now - seen_at).total_seconds()))
            running.add_metric([name, role], jobs_running)
            done.add_metric([name, role], jobs_done)
        return [jobs, age, running, done]
