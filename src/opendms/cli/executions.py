"""``opendms order precheck|execute|pause|restart|cleanup``: a data change's precheck, its
execution, steering it, and a cleanup ticket's runs."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from opendms.cli.common import EXIT_FAILED, AsUser, OrderArg, StartOpt, err, out, shared_options
from opendms.cli.follow import FollowOpt, follow_work, hint_runner
from opendms.execution import cleanup as cleanups
from opendms.execution import service as execution
from opendms.identity.caller import Caller
from opendms.precheck import service as precheck
from opendms.runtime import Runtime
from opendms.tickets import service as tickets

JobOpt = Annotated[int | None, typer.Option("--job", help="Only this SQL job (JobId).")]

PRECHECK_WAIT_SECONDS = 300.0


@shared_options
def precheck_(
    order_id: OrderArg,
    retry: Annotated[bool, typer.Option("--retry", help="Run the precheck again.")] = False,
    skip_row_check: Annotated[
        str | None, typer.Option("--skip-row-check", help="Waive a ROW_CHECK mismatch: why.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the precheck has run (by a runner).")
    ] = False,
    *,
    who: AsUser,
) -> None:
    """Show a data-change ticket's precheck: each step, then each statement."""
    with who.runtime() as rt:
        with rt.store.session() as s:
            caller = who.caller(s)
            if retry:
                precheck.retry(s, caller, order_id)
            if skip_row_check is not None:
                precheck.skip_row_check(s, caller, order_id, skip_row_check)
        if wait:
            _await_precheck(rt, caller, order_id)
        with rt.store.session() as s:
            shortfall = _show_precheck(rt, s, caller, order_id)
    if shortfall is not None:
        err.print(f"error: the precheck failed: {shortfall}", markup=False, highlight=False)
        raise typer.Exit(EXIT_FAILED)


def _await_precheck(rt: Runtime, caller: Caller, order_id: int) -> None:
    """Until the ticket's precheck has run (or PRECHECK_WAIT_SECONDS passed), saying once
    when no runner seems to be there to run it."""
    deadline = time.monotonic() + PRECHECK_WAIT_SECONDS
    hinted = False
    while time.monotonic() < deadline:
        with rt.store.session() as s:
            order = tickets.get_order(s, caller, order_id)
            if precheck.status(s, order) != "precheck":
                return
            job = tickets.latest_job(s, order_id, "precheck")
            if not hinted and job is not None:
                hint_runner(s, rt.settings, job.job_id)
                hinted = True
        time.sleep(0.2)


def _show_precheck(rt: Runtime, s: Session, caller: Caller, order_id: int) -> str | None:
    """Print the precheck's state, steps and statements; why it failed, if it did."""
    order = tickets.get_order(s, caller, order_id)
    state = precheck.status(s, order)
    out.print(f"Ticket {order_id}: {state}")
    shortfall = precheck.shortfall(s, order) if state == "precheck_fail" else None
    job = tickets.latest_job(s, order_id, "precheck")
    if state == "precheck" and job is not None:
        hint_runner(s, rt.settings, job.job_id)
    steps = Table("Step", "Status", "Tip")
    for v in precheck.steps(s, order_id):
        steps.add_row(v.step, v.status, v.tip)
    out.print(steps)
    found = precheck.statements(s, order_id, None, 1, 1000)
    grid = Table("DbId", "#", "Line", "Type", "Tables", "Rows", "How", "Review", "SQL")
    for st in found.items:
        grid.add_row(
            str(st.db_id),
            str(st.number),
            str(st.line),
            st.sql_type,
            st.table_names,
            "" if st.affect_rows is None else str(st.affect_rows),
            st.rows_source,
            st.review_status,
            st.sql_text[:80],
        )
    if found.total:
        out.print(grid)
    return shortfall


@shared_options
def execute(
    order_id: OrderArg,
    backup: Annotated[bool, typer.Option(help="Back up the rows the change overwrites.")] = False,
    transaction: Annotated[
        bool, typer.Option(help="Each database's statements commit together.")
    ] = False,
    start: StartOpt = None,
    end: Annotated[str | None, typer.Option(help="Not started after (UTC).")] = None,
    follow: FollowOpt = False,
    *,
    who: AsUser,
) -> None:
    """Start an approved data change (who may: the ticket's ExecMode says)."""
    with who.acting() as (rt, s, caller):
        plan = execution.checked_plan(start=start, end=end, transaction=transaction, backup=backup)
        job = execution.execute(s, caller, order_id, plan)
        out.print(f"Ticket {order_id}: execution {job.job_id} queued")
        if not follow:
            hint_runner(s, rt.settings, job.job_id)
    if follow:
        follow_work(who, order_id)


def _steer(who: AsUser, order_id: int, job: int | None, act: str) -> None:
    with who.acting() as (_, s, caller):
        how = execution.pause if act == "paused" else execution.restart
        done = how(s, caller, order_id, "SINGLE" if job else "ALL", job)
        out.print(f"Ticket {order_id}: SQL jobs {', '.join(str(j.sql_job_id) for j in done)} {act}")


@shared_options
def pause(order_id: OrderArg, job: JobOpt = None, *, who: AsUser) -> None:
    """Pause an execution between statements (or chunks)."""
    _steer(who, order_id, job, "paused")


@shared_options
def restart(order_id: OrderArg, job: JobOpt = None, *, who: AsUser) -> None:
    """Go on with a paused execution, or retry a failed one."""
    _steer(who, order_id, job, "restarted")


@shared_options
def cleanup(
    order_id: Annotated[int, typer.Argument(help="OrderId of a DC_CRON_CLEAR ticket.")],
    *,
    who: AsUser,
) -> None:
    """A cleanup ticket's schedule and its runs, newest first."""
    with who.acting() as (_, s, caller):
        config = cleanups.config(s, caller, order_id)
        out.print(
            f"cron {config.cron_format}: {config.status or 'never ran'}, {config.call_times} "
            f"runs, next {config.next_call or '-'}, window {config.duration_hours or 'none'} h, "
            f"space reclaimed every {config.optimize_every or '-'} runs ({config.reclaims} so far)"
        )
        runs, _ = cleanups.history(s, caller, order_id, 1, 50)
        table = Table("Created", "Task group", "Status", "Rows deleted")
        for r in runs:
            table.add_row(str(r.run.created_at), str(r.run.job_id or "-"), r.status, str(r.rows))
        out.print(table)
