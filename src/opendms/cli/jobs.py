"""``opendms jobs run``: the job runner in this process, saying what each job does; and
``opendms worker``: a Celery worker that runs the jobs a broker tells it of."""

from __future__ import annotations

import logging.config
import time
from collections.abc import Mapping
from typing import Annotated

import typer

from opendms.cli.common import CliError, Place, out, shared_options
from opendms.config import Settings
from opendms.jobs.broker import describe
from opendms.jobs.runner import Checkpoint, Executor, Step, Work
from opendms.telemetry import metrics
from opendms.telemetry.logs import log_config


def _announced(found: Mapping[str, Executor]) -> dict[str, Executor]:
    """The executors, each saying when it starts a job and how the job ends (one line each;
    a job that waits or yields says so when it is picked up again)."""
    started: set[int] = set()

    def wrap(executor: Executor) -> Executor:
        def run(work: Work, checkpoint: Checkpoint) -> Step:
            what = f"job {work.job_id}: {work.kind}" + (
                f" of ticket {work.order_id}" if work.order_id else ""
            )
            if work.job_id not in started:
                started.add(work.job_id)
                out.print(f"{what}: started", markup=False, highlight=False)
            step = executor(work, checkpoint)
            if step.failure is not None:
                ended = f"failed: {step.failure}"
            elif step.done:
                ended = "succeeded"
            elif step.paused:
                ended = "paused"
            elif step.wait_seconds > 0:
                ended = f"waits {step.wait_seconds:g} s"
            else:
                return step
            started.discard(work.job_id)
            out.print(f"{what}: {ended}", markup=False, highlight=False)
            return step

        return run

    return {kind: wrap(executor) for kind, executor in found.items()}


@shared_options
def run(
    follow: Annotated[
        bool, typer.Option(help="Keep running and wait for new work (Ctrl-C stops).")
    ] = False,
    *,
    at: Place,
) -> None:
    """Run due background jobs in this process until none is left (or, with --follow, until
    stopped): a worker beside, or instead of, the server's own runner. Says when each job
    starts and how it ends."""
    with at.runtime() as rt:
        runner = rt.job_runner(threads=0, uploads=True, wrap=_announced)
        ran = 0
        try:
            while True:
                if runner.run_once():
                    ran += 1
                elif follow:
                    time.sleep(runner.idle_seconds)
                else:
                    break
        except KeyboardInterrupt:
            pass
        out.print(f"{ran} job{'' if ran == 1 else 's'} run")


QUEUE_NAMES = ("jobs", "uploads")


@shared_options
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Jobs run at once, on threads (env OPENDMS_WORKER_CONCURRENCY).",
            show_default=str(Settings.model_fields["worker_concurrency"].default),
        ),
    ] = None,
    queues: Annotated[
        str,
        typer.Option(help="Queues to take work from: jobs, uploads, or both (comma-separated)."),
    ] = "jobs,uploads",
    events: Annotated[
        bool, typer.Option("--events", help="Send Celery task events (for Flower).")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve this worker's Prometheus metrics on this port at OPENDMS_HOST "
            "(env OPENDMS_WORKER_METRICS_PORT).",
        ),
    ] = None,
    *,
    at: Place,
) -> None:
    """Run jobs (prechecks, executions, exports, uploads) that the broker (OPENDMS_BROKER_URL)
    tells of, until SIGTERM or Ctrl-C: the job in progress ends its step and goes back to
    the queue. Start any number, on any machine that reaches the store and the broker."""
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUE_NAMES))
    if unknown or not chosen:
        raise CliError(
            f"--queues takes jobs, uploads or both, not {', '.join(unknown) or 'nothing'}"
        )
    with at.runtime(worker_concurrency=concurrency, worker_metrics_port=metrics_port) as rt:
        settings = rt.settings
        if not settings.broker_url:
            raise CliError(
                "opendms worker needs a broker: set OPENDMS_BROKER_URL (redis://… or amqp://…). "
                "Without one, `opendms serve` runs jobs in its own threads."
            )
        logging.config.dictConfig(log_config(settings.log_format))
        if settings.worker_metrics_port is not None:
            try:
                metrics.serve(settings.host, settings.worker_metrics_port)
            except OSError as exc:
                raise CliError(
                    f"cannot serve metrics on {settings.host}:{settings.worker_metrics_port}: "
                    f"{exc.strerror or exc}"
                ) from exc
        out.print(
            f"worker: {settings.worker_concurrency} at once from {', '.join(chosen)} on "
            f"{describe(settings.broker_url)}",
            markup=False,
            highlight=False,
        )
        rt.work(settings.worker_concurrency, chosen, events=events)
