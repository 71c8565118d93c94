"""The one place the server's parts are built: the metadata store, the means every handler
and job executor is lent (secrets, target policy, files, link signer, limits), the job
executors, the runners that run them and the webhook deliverer. ``opendms.app``, the CLI and
``opendms jobs run`` all start from ``Runtime.from_settings``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opendms.config import Settings
from opendms.execution.cleanup import RECLAIM, SCHEDULE, Reclaim, Schedule
from opendms.execution.run import Execute
from opendms.execution.run_ddl import OnlineCancel
from opendms.exports.run import Export
from opendms.exports.service import EXPORT
from opendms.files.run import Upload
from opendms.files.service import UPLOAD
from opendms.identity.secrets import load_master_key
from opendms.jobs import broker, dispatch
from opendms.jobs.processes import Heartbeat
from opendms.jobs.runner import Executor, Fairness, Lease, Runner
from opendms.jobs.sweeper import sweeper
from opendms.means import Means
from opendms.notify import webhooks
from opendms.precheck.run import Precheck
from opendms.store.db import Store
from opendms.structure.run import DESIGN_COMPARE, DesignCompare
from opendms.tickets.service import ONLINE_CANCEL


def executors(means: Means) -> dict[str, Executor]:
    """Job kind -> executor: every kind of background work a runner can do."""
    return {
        "precheck": Precheck(means),
        "execute": Execute(means),
        SCHEDULE: Schedule(),
        RECLAIM: Reclaim(means),
        EXPORT: Export(means),
        UPLOAD: Upload(means.files, means.uploads),
        DESIGN_COMPARE: DesignCompare(means),
        ONLINE_CANCEL: OnlineCancel(means),
    }


def waker(settings: Settings) -> dispatch.Waker:
    """Who hears of queued jobs: the broker's workers, or this process's runner threads."""
    if settings.broker_url:
        queues = broker.Queues(settings.broker_queue)
        return broker.BrokerWaker(broker.celery_app(settings.broker_url, queues), queues)
    return dispatch.LocalWaker()


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: Store
    means: Means
    waker: dispatch.Waker

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None) -> Runtime:
        """Everything ``settings`` describe; ``store``: one the caller opened (and checked)
        already. The master key is read, or on a first start made, here. Every job a unit of
        work on the store queues is told to the waker once it commits (``jobs.dispatch``)."""
        if store is None:
            # The handler threads, the runners and housekeeping share the engine.
            store = Store(settings.metadata_url, pool_size=settings.worker_threads + 2)
        master = load_master_key(settings.secret_key, settings.data_dir)
        told = waker(settings)
        dispatch.watch(store, told)
        return cls(settings, store, Means.from_settings(settings, master), told)

    def executors(self) -> dict[str, Executor]:
        return executors(self.means)

    def job_runner(
        self,
        threads: int | None = None,
        *,
        uploads: bool = False,
        wrap: Callable[[dict[str, Executor]], dict[str, Executor]] | None = None,
    ) -> Runner:
        """The runner of every job but uploads (``uploads``: those too); ``threads=0``: it
        runs in the caller's thread; ``wrap``: what to make of the executors first."""
        work = {k: run for k, run in self.executors().items() if uploads or k != UPLOAD}
        if wrap is not None:
            work = wrap(work)
        s = self.settings
        return Runner(
            self.store,
            work,
            threads=s.runner_threads if threads is None else threads,
            lease=Lease(s.job_lease_seconds),
            fair=Fairness(s.jobs_per_user, s.job_slice_seconds),
            waker=self.waker,
        )

    def upload_runner(self) -> Runner:
        """Uploads fetch from wherever users point them and may take minutes: they run on
        threads of their own, so a few slow ones cannot hold back prechecks and executions."""
        s = self.settings
        return Runner(
            self.store,
            {UPLOAD: self.executors()[UPLOAD]},
            threads=s.upload_runner_threads,
            lease=Lease(s.job_lease_seconds),
            waker=self.waker,
        )

    def heartbeat(self, runners: list[Runner], role: str) -> Heartbeat:
        """This process's heartbeat (``jobs.processes``), counting ``runners``' jobs."""

        def counts() -> tuple[int, int]:
            return sum(r.running for r in runners), sum(r.finished for r in runners)

        name = runners[0].owner if runners else f"{role}:{id(self)}"
        return Heartbeat(self.store, name, role, self.settings.heartbeat_seconds, counts)

    def work(self, concurrency: int, queues: list[str], *, events: bool = False) -> None:
        """Be a Celery worker until SIGTERM: ``concurrency`` jobs at once from ``queues``
        (``jobs``, ``uploads``), sweeping for overdue jobs and beating meanwhile."""
        s = self.settings
        assert s.broker_url is not None
        if not isinstance(self.waker, broker.BrokerWaker):
            raise RuntimeError("a worker needs the broker's waker")
        runner = self.job_runner(threads=0, uploads=True)
        sweeping = sweeper(self.store, self.waker, s.job_resend_seconds, every=2.0)
        beating = self.heartbeat([runner], "worker")
        names = self.waker.queues
        chosen = tuple(names.jobs if q == "jobs" else names.uploads for q in queues)
        sweeping.start()
        beating.start()
        try:
            broker.run_worker(
                self.waker.app,
                runner.run_job,
                broker.WorkerOptions(
                    concurrency,
                    chosen,
                    f"opendms@{runner.owner}",
                    events,
                    banner=s.log_format != "json",
                ),
                on_shutdown=runner.shutting_down,
            )
        finally:
            runner.shutting_down()
            sweeping.stop()
            beating.stop()
            self.waker.close()

    def deliverer(self) -> webhooks.Deliverer:
        s = self.settings
        return webhooks.Deliverer(
            self.store,
            self.means.secrets,
            webhooks.Policy(
                max_attempts=s.webhook_max_attempts,
                backoff_seconds=s.webhook_backoff_seconds,
                timeout_seconds=s.webhook_timeout_seconds,
            ),
        )

    def close(self) -> None:
        """Send the messages still waiting (a command that queued a job and exits), then
        let the targets' kept sessions and the store's connections go."""
        self.waker.close()
        self.means.changes.close()
        self.store.dispose()
