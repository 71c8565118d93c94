"""``opendms design update|show|compare|run``: a schema design ticket's design (DDL), what
review found in it, and carrying it from its base database to each later stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendms.cli.common import AsUser, OrderArg, out, read_file, shared_options
from opendms.cli.follow import FollowOpt, follow_work, hint_runner
from opendms.structure import design

ScriptArg = Annotated[
    Path, typer.Argument(help="The design as DDL: a file, or - to read standard input.")
]
DbOpt = Annotated[int, typer.Option("--db", help="The stage's database (DbId).")]


@shared_options
def update(order_id: OrderArg, script: ScriptArg, *, who: AsUser) -> None:
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
        if saved.job_id is not None:
            hint_runner(s, rt.settings, saved.job_id)


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
