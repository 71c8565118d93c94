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
from opendms.jobs.runner import Executor, Fairness, Lease, Runner
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


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: Store
    means: Means

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None) -> Runtime:
        """Everything ``settings`` describe; ``store``: one the caller opened (and checked)
        already. The master key is read, or on a first start made, here."""
        if store is None:
            # The handler threads, the runners and housekeeping share the engine.
            store = Store(settings.metadata_url, pool_size=settings.worker_threads + 2)
        master = load_master_key(settings.secret_key, settings.data_dir)
        return cls(settings, store, Means.from_settings(settings, master))

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
        )

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
        self.store.dispose()
