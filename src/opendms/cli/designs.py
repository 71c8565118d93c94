"""``opendms design update|show|compare|run``: a schema design ticket's design (DDL), what
review found in it, and carrying it from its base database to each later stage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendms.cli.common import AsUser, CliError, OrderArg, out, read_file, shared_options
from opendms.cli.follow import FollowOpt, follow_work, hint_runner
from opendms.store.states import PlanState
from opendms.structure import design

ScriptArg = Annotated[
    Path, typer.Argument(help="The design as DDL: a file, or - to read standard input.")
]
DbOpt = Annotated[int, typer.Option("--db", help="The stage's database (DbId).")]


WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Wait until a runner has compared it with every stage.")
]
COMPARE_WAIT_SECONDS = 300.0


@shared_options
def update(order_id: OrderArg, script: ScriptArg, wait: WaitOpt = False, *, who: AsUser) -> None:
    """Give a schema design ticket its design; it is reviewed now and refused with every
    ERROR finding, then compared with each stage by a runner."""
    text = typer.get_text_stream("stdin").read() if str(script) == "-" else read_file(script)
    with who.acting() as (rt, s, caller):
        saved = design.update_design(s, caller, order_id, text)
        out.print(f"Ticket {order_id}: design version {saved.version}, being compared")
        for f in saved.findings:
            out.print(
                f"  {f['level']} statement {f['statement']} (line {f['line']}) {f['code']}: "
                f"{f['message']}",
                markup=False,
                highlight=False,
            )
        job_id = saved.job_id
        if job_id is not None and not wait:
            hint_runner(s, rt.settings, job_id)
    if wait and job_id is not None:
        _await_comparison(who, order_id, job_id)


def _await_comparison(who: AsUser, order_id: int, job_id: int) -> None:
    """Until the design is compared (or COMPARE_WAIT_SECONDS passed), saying once when no
    runner seems to be there; then what it found, failing when the design could not be
    tried."""
    deadline = time.monotonic() + COMPARE_WAIT_SECONDS
    hinted = False
    with who.runtime() as rt:
        while time.monotonic() < deadline:
            with rt.store.session() as s:
                view = design.detail(s, who.caller(s), order_id)
                found = view.design
                if found is not None and found.state != PlanState.COMPARING:
                    states = ", ".join(
                        f"{v.stage.db.schema_name}@{v.stage.inst.alias} {v.state}"
                        for v in view.stages
                    )
                    if found.state == PlanState.FAILED:
                        raise CliError(f"ticket {order_id}'s design: {found.message}")
                    out.print(f"Ticket {order_id}: compared; stages: {states}", markup=False)
                    return
                if not hinted:
                    hint_runner(s, rt.settings, job_id)
                    hinted = True
            time.sleep(0.2)
    raise CliError(f"ticket {order_id}'s design was not compared in {COMPARE_WAIT_SECONDS:.0f} s")


@shared_options
def show(order_id: OrderArg, *, who: AsUser) -> None:
    """The design, its review, and what each stage lacks of it."""
    with who.acting() as (_, s, caller):
        view = design.detail(s, caller, order_id)
        found = view.design
        if found is None:
            out.print(f"Ticket {order_id}: no design yet (opendms design update)")
        else:
            out.print(
                f"Ticket {order_id}: design version {found.version}, {found.state}"
                + (f": {found.message}" if found.message else ""),
                markup=False,
                highlight=False,
            )
            out.print(found.script, markup=False, highlight=False)
            for f in found.findings:
                out.print(
                    f"  {f['level']} statement {f['statement']} {f['code']}: {f['message']}",
                    markup=False,
                    highlight=False,
                )
        table = Table("stage", "DbId", "database", "env", "state", "lacks")
        for v in view.stages:
            lacks = ";\n".join(v.plan.statements) if v.plan is not None else ""
            if v.plan is not None and v.plan.message:
                lacks = f"({v.plan.message})\n{lacks}"
            table.add_row(
                str(v.stage.position),
                str(v.stage.db.db_id),
                f"{v.stage.db.schema_name}@{v.stage.inst.alias}",
                v.stage.inst.env_type,
                v.state,
                lacks,
            )
        out.print(table)


@shared_options
def compare(order_id: OrderArg, *, who: AsUser) -> None:
    """Compare the design with its stages again (after one changed or a run failed)."""
    with who.acting() as (rt, s, caller):
        job = design.compare_again(s, caller, order_id)
        out.print(f"Ticket {order_id}: comparison {job.job_id} queued")
        hint_runner(s, rt.settings, job.job_id)


@shared_options
def run(order_id: OrderArg, db: DbOpt, follow: FollowOpt = False, *, who: AsUser) -> None:
    """Run the design on one stage: its base before submission (the committer), a later
    stage once the ticket is approved."""
    with who.acting() as (rt, s, caller):
        job = design.execute_stage(s, caller, order_id, db)
        out.print(f"Ticket {order_id}: stage run {job.job_id} queued on database {db}")
        if not follow:
            hint_runner(s, rt.settings, job.job_id)
    if follow:
        follow_work(who, order_id)
