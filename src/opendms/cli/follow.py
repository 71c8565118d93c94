"""Following a ticket's execution or export as it goes (``--follow``), and saying when queued
work waits for a job runner that is not there."""

from __future__ import annotations

import socket
import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn
from rich.progress import Progress as Bar
from sqlalchemy.orm import Session

from opendms.cli import progress
from opendms.cli.common import EXIT_FAILED, AsUser, CliError, err, note, out
from opendms.config import Settings
from opendms.jobs import processes
from opendms.store.states import JobState, SqlJobStatus
from opendms.tickets import service as tickets

FOLLOW_SECONDS = 0.5  # how often --follow reads the store
NO_RUNNER = "no job runner is running: start `opendms serve`, or run `opendms jobs run`"
NO_WORKER = "no worker is running: start `opendms worker` (the broker holds the job until then)"

FollowOpt = Annotated[
    bool, typer.Option("--follow", help="Show its progress until it ends; exit 1 if it fails.")
]


def server_answers(settings: Settings) -> bool:
    """Whether something listens where `opendms serve` with these settings would: its
    runner would take queued work."""
    host, _, port = settings.endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.3):
            return True
    except OSError:
        return False


def no_runner(s: Session, settings: Settings, job_id: int) -> bool:
    """Whether a queued job looks like it waits for a runner that is not there: no job is
    held by any runner, and no server answers at the settings' endpoint (beside a broker:
    no worker's heartbeat is recent)."""
    if not progress.waiting_unclaimed(s, job_id):
        return False
    if settings.broker_url:
        return not processes.alive(s, "worker", settings.heartbeat_seconds)
    return not server_answers(settings)


def runner_hint(settings: Settings) -> str:
    return NO_WORKER if settings.broker_url else NO_RUNNER


def hint_runner(s: Session, settings: Settings, job_id: int) -> None:
    if no_runner(s, settings, job_id):
        note(f"note: {runner_hint(settings)}")


def follow_work(who: AsUser, order_id: int) -> None:
    """Show a ticket's execution or export as it goes, until it is over; exit 1 unless it
    succeeded."""
    seen: dict[tuple[int, int], str] = {}
    status = ""
    warned = False
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
    )
    # a bar only on a terminal: piped, the lines below are the whole story
    with (
        who.runtime() as rt,
        Bar(*columns, console=out, transient=True, disable=not out.is_terminal) as bar,
    ):
        task = bar.add_task(f"ticket {order_id}", total=None, rate="", eta="")
        while True:
            with rt.store.session() as s:
                caller = who.caller(s)
                order = tickets.get_order(s, caller, order_id)
                work = progress.underway(s, caller, order)
                if work is None:
                    raise CliError(f"ticket {order_id} has no execution or export to follow")
                waiting = work.state == JobState.QUEUED
                if not warned and waiting and no_runner(s, rt.settings, work.job_id):
                    note(f"note: {runner_hint(rt.settings)}")
                    warned = True
                final = order.status_code
            if work.status != status:
                status = work.status
                out.print(f"{work.kind} {work.job_id}: {status}", markup=False, highlight=False)
            for st in work.statements:
                key = (st.sql_job_id, st.number)
                if seen.get(key) != st.status and st.status != SqlJobStatus.INIT:
                    seen[key] = st.status
                    rows = "" if st.rows is None else f", {_rows(st.rows)}"
                    out.print(
                        f"  statement {st.number} on DbId {st.db_id}: {st.status}{rows}",
                        markup=False,
                        highlight=False,
                    )
            _advance(bar, task, work)
            if work.over:
                break
            time.sleep(FOLLOW_SECONDS)
    out.print(f"Ticket {order_id}: {final}, {work.state} ({_rows(work.rows)})", markup=False)
    if not work.succeeded:
        why = work.failure or (
            f"paused: `opendms order restart {order_id}` goes on"
            if work.state == JobState.PAUSED
            else work.status
        )
        err.print(f"error: {work.kind} {work.job_id} {work.state}: {why}", markup=False)
        raise typer.Exit(EXIT_FAILED)


def _rows(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def _advance(bar: Bar, task: Any, work: progress.Underway) -> None:
    """The bar: rows against the precheck's count for long statements, else statements."""
    total: float | None = None
    completed: float = work.rows
    if work.estimate:
        total, completed = work.estimate, min(work.rows, work.estimate)
    elif work.statements:
        total = len(work.statements)
        ended = (SqlJobStatus.SUCCESS, SqlJobStatus.FAIL)
        completed = sum(st.status in ended for st in work.statements)
    eta = work.eta_seconds
    bar.update(
        task,
        total=total,
        completed=completed,
        rate=f"{work.rows_per_second:,.0f} rows/s" if work.rows_per_second else "",
        eta=f"ETA {eta:,} s" if eta is not None else "",
    )
