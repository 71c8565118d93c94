"""``opendms webhook``: the tenant's webhook for ticket events (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from opendms.cli.common import CliError, InTenant, out, print_json, shared_options, utc
from opendms.notify import webhooks


@shared_options
def set_(
    url: Annotated[str, typer.Argument(help="Where events are POSTed (http or https).")],
    secret: Annotated[
        str | None, typer.Option(help="Signing secret (default: generated and printed once).")
    ] = None,
    *,
    at: InTenant,
) -> None:
    """Set (or replace) the tenant's webhook."""
    with at.session() as (rt, s):
        hook, key = webhooks.configure(s, rt.means.secrets, at.tenant(s), url, secret)
        print_json({"Url": hook.url, "Secret": key})


@shared_options
def disable(*, at: InTenant) -> None:
    """Stop sending events (queued ones are dropped when their turn comes)."""
    with at.session() as (_, s):
        webhooks.set_enabled(s, at.tenant(s), False)
        out.print("Webhook disabled")


@shared_options
def ping(*, at: InTenant) -> None:
    """Queue a webhook.ping event, to check the receiver."""
    with at.session() as (_, s):
        delivery = webhooks.emit(s, at.tenant(s), "webhook.ping", {})
        if delivery is None:
            raise CliError("no enabled webhook: `opendms webhook set URL` first")
        out.print(f"Delivery {delivery.delivery_id} queued")


@shared_options
def log(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    *,
    at: InTenant,
) -> None:
    """Recent deliveries and how each went."""
    with at.session() as (_, s):
        tid = at.tenant(s)
        hook = webhooks.get(s, tid)
        grid = Table(
            "Id",
            "Event",
            "State",
            "Attempts",
            "HTTP",
            "Created (UTC)",
            "Error",
            title=f"{hook.url if hook else 'no webhook'}"
            + ("" if hook is None or hook.enabled else " (disabled)"),
        )
        for d in webhooks.deliveries(s, tid, limit):
            grid.add_row(
                str(d.delivery_id),
                d.event,
                d.state,
                str(d.attempts),
                str(d.last_status or ""),
                utc(d.created_at),
                d.last_error[:80],
            )
        out.print(grid)
