"""``opendms order export|exported``: running an approved export and reading how it went."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opendms.cli.common import EXIT_FAILED, AsUser, CliError, StartOpt, out, shared_options
from opendms.cli.follow import FollowOpt, follow_work, hint_runner
from opendms.exports import service as exports


@shared_options
def export(
    order_id: Annotated[int, typer.Argument(help="OrderId of an approved DATA_EXPORT ticket.")],
    file_type: Annotated[str, typer.Option(help="CSV, XLSX, SQL, JSON or TXT.")] = "CSV",
    encoding: Annotated[str, typer.Option(help="UTF8, GBK, GB2312, ISO_8859_1, CP1252…")] = "UTF8",
    start: StartOpt = None,
    follow: FollowOpt = False,
    *,
    who: AsUser,
) -> None:
    """Run an approved export (its committer does)."""
    with who.acting() as (rt, s, caller):
        plan = exports.checked_plan(file_type=file_type, encoding=encoding, start=start)
        job = exports.execute(s, caller, order_id, plan)
        out.print(f"Ticket {order_id}: export {job.job_id} queued")
        if not follow:
            hint_runner(s, rt.settings, job.job_id)
    if follow:
        follow_work(who, order_id)


@shared_options
def exported(
    order_id: Annotated[int, typer.Argument(help="OrderId of a DATA_EXPORT ticket.")],
    save: Annotated[Path | None, typer.Option("--save", help="Copy the zip here.")] = None,
    *,
    who: AsUser,
) -> None:
    """How an export went: its status, rows, file and the columns it masked; exits 1 when
    it failed."""
    with who.acting() as (rt, s, caller):
        order = exports.export_ticket(s, caller, order_id, lock=False)
        job, found = exports.latest(s, order)
        status = exports.job_status(s, order)
        out.print(
            f"Ticket {order_id}: {status}"
            + (f" ({exports.failure(job)})" if exports.failure(job) else "")
        )
        if status == "EXPORT_FAIL":
            raise typer.Exit(EXIT_FAILED)  # a script can tell; the line above says why
        if found is None:
            return
        out.print(
            f"{found.rows} rows, {found.file_type} in {found.encoding}, {found.size_bytes} bytes"
        )
        masking = exports.masking(found)
        if not masking.get("traced", True):
            out.print("Every column was masked: the query's columns could not be traced.")
        for m in masking.get("columns", []):
            out.print(f"masked {m['column']} ({m['mask']}) from {', '.join(m['sources'])}")
        if save is not None:
            opened = exports.open_download(
                s, rt.settings.files, caller.user_id, found.job_id, "cli"
            )
            if opened is None:
                raise CliError(f"the file of export {found.job_id} is gone")
            save.write_bytes(opened[0].read_bytes())
            out.print(f"saved to {save}")
