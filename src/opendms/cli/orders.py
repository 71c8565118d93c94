"""``opendms order create|list|show|close``: filing tickets and reading them. Approving
them is in ``approvals``, running them in ``executions`` and ``exports``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from opendms.cli import progress
from opendms.cli.common import (
    AsUser,
    CliError,
    OrderArg,
    out,
    print_json,
    read_text_or_file,
    shared_options,
    user_ids,
    utc,
)
from opendms.cli.follow import follow_work
from opendms.tickets import lifecycle, shortcut
from opendms.tickets import service as tickets
from opendms.tickets.registry import params_of


def _param(kind: str, param: str | None, db: int | None, sql: str | None, rows: int) -> Any:
    """The ticket's Param: the JSON given (or the file it names), or one built from --db and
    --sql."""
    if param is not None:
        try:
            return json.loads(read_text_or_file(param))
        except ValueError as exc:
            raise CliError(f"--param is not JSON: {exc}") from exc
    if db is not None and sql is not None:
        return shortcut.sql_param(kind, shortcut.SqlTicket(db, sql, rows))
    raise CliError("give --param, or --db with --sql")


@shared_options
def create(
    kind: Annotated[
        str,
        typer.Option(
            "--type",
            help="DC_COMMON, DC_CHUNK, DC_CRON_CLEAR, DC_BIG_FILE, DATA_EXPORT, NDDL, TABLE_SYNC.",
        ),
    ],
    comment: Annotated[str, typer.Option(help="Why.")],
    param: Annotated[str | None, typer.Option(help="Param JSON (PascalCase), or @file.")] = None,
    db: Annotated[int | None, typer.Option(help="DbId, with --sql, instead of --param.")] = None,
    sql: Annotated[str | None, typer.Option(help="SQL, with --db, instead of --param.")] = None,
    rows: Annotated[int, typer.Option(help="Estimated affected rows (with --sql).")] = 0,
    related: Annotated[str, typer.Option(help="Related UserIds, comma-separated.")] = "",
    attachment: Annotated[str | None, typer.Option(help="AttachmentKey to attach.")] = None,
    optimize_every: Annotated[
        int | None,
        typer.Option(help="DC_CRON_CLEAR: reclaim space (OPTIMIZE TABLE, VACUUM) every N runs."),
    ] = None,
    *,
    who: AsUser,
) -> None:
    """File a ticket; prints its OrderId."""
    params = _param(kind, param, db, sql, rows)
    if optimize_every is not None:
        params = shortcut.with_reclaim_cadence(kind, params, optimize_every)
        if params is None:
            raise CliError("--optimize-every is for DC_CRON_CLEAR tickets")
    related_ids = user_ids(related, "--related")
    with who.acting() as (_, s, caller):
        order = tickets.create_order(
            s,
            caller,
            kind,
            params,
            comment=comment,
            related_user_ids=related_ids,
            attachment_key=attachment,
        )
        print_json({"OrderId": order.order_id, "StatusCode": order.status_code})


@shared_options
def list_(
    scope: Annotated[
        str, typer.Option(help="AS_COMMITTER, AS_Related, AS_HANDLER, AS_OWNER, AS_ADMIN.")
    ] = "AS_ADMIN",
    status: Annotated[str | None, typer.Option(help="ALL, RUNNING or FINISHED.")] = None,
    *,
    who: AsUser,
) -> None:
    """List tickets."""
    with who.acting() as (_, s, caller):
        page = tickets.list_orders(
            s, caller, tickets.OrderFilter(scope=scope, status=status), 1, 100
        )
        grid = Table(
            "OrderId",
            "Type",
            "Status",
            "Committer",
            "Created (UTC)",
            "Comment",
            title=f"{page.total} ticket{'' if page.total == 1 else 's'}",
        )
        for o in page.items:
            grid.add_row(
                str(o.order_id),
                o.plugin_type,
                o.status_code,
                str(o.committer_id),
                utc(o.created_at),
                o.comment[:60],
            )
        out.print(grid)


@shared_options
def show(
    order_id: OrderArg,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show its progress until it ends; exit 1 if it fails.")
    ] = False,
    *,
    who: AsUser,
) -> None:
    """Show a ticket, its parameters and its execution or export (state, progress, backups);
    with --follow, follow that work to its end instead."""
    if follow:
        follow_work(who, order_id)
        return
    with who.acting() as (_, s, caller):
        o = tickets.get_order(s, caller, order_id)
        shown: dict[str, Any] = {
            "OrderId": o.order_id,
            "PluginType": o.plugin_type,
            "StatusCode": o.status_code,
            "CommitterId": o.committer_id,
            "Comment": o.comment,
            "RelatedUserIds": tickets.related_ids(o),
            "AttachmentKey": o.attachment_key,
            "CreateTime": utc(o.created_at),
            "Param": params_of(o).wire(),
            "CloseReason": o.close_reason,
        }
        work = progress.underway(s, caller, o)
        if work is not None:
            shown["Execution"] = work.shown()
    print_json(shown, indent=2, ascii_only=False)


@shared_options
def close(
    order_id: OrderArg,
    reason: Annotated[str, typer.Option(help="Why it is closed.")],
    *,
    who: AsUser,
) -> None:
    """Close a ticket that has not finished."""
    with who.acting() as (_, s, caller):
        o = lifecycle.close(s, caller, order_id, reason)
        out.print(f"Ticket {o.order_id} is {o.status_code}")
