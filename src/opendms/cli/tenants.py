"""``opendms tenant``: tenants (Tid)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from opendms.cli.common import Place, out, shared_options, utc
from opendms.identity import service as identity


@shared_options
def create(name: Annotated[str, typer.Argument(help="Tenant name.")], *, at: Place) -> None:
    """Create a tenant."""
    with at.session() as (_, s):
        tenant = identity.create_tenant(s, name)
        out.print(f"Tid {tenant.tid} ({tenant.name})")


@shared_options
def list_(*, at: Place) -> None:
    """List tenants."""
    with at.session() as (_, s):
        table = Table("Tid", "Name", "Created (UTC)")
        for t in identity.list_tenants(s):
            table.add_row(str(t.tid), t.name, utc(t.created_at))
        out.print(table)
