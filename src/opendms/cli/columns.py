"""``opendms column``: sensitive columns, which exports show masked."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from opendms.catalog import sensitive
from opendms.cli.common import AsUser, CliError, InTenant, out, shared_options

DbArg = Annotated[int, typer.Argument(help="DbId.")]


@shared_options
def mask(
    db_id: DbArg,
    table: Annotated[str, typer.Argument(help="Table name.")],
    column: Annotated[str, typer.Argument(help="Column name.")],
    mask: Annotated[str, typer.Argument(help="FULL, HASH, LAST4, or NONE to clear.")],
    *,
    who: AsUser,
) -> None:
    """Flag a column sensitive: exports show it masked."""
    with who.acting() as (_, s, caller):
        if not caller.is_admin:
            raise CliError("only an administrator flags sensitive columns")
        chosen = None if mask.upper() == "NONE" else mask.upper()
        sensitive.set_mask(s, caller.tid, db_id, table, column, chosen, caller.user_id)
        out.print(
            f"{table}.{column}: " + (f"masked {chosen} in exports" if chosen else "not masked")
        )


@shared_options
def list_(db_id: DbArg, *, at: InTenant) -> None:
    """The database's sensitive columns."""
    with at.session() as (_, s):
        table = Table("Table", "Column", "Mask", "Set")
        for c in sensitive.listed(s, at.tenant(s), db_id):
            table.add_row(c.table_name, c.column_name, c.mask, f"{c.set_at:%Y-%m-%d %H:%M}")
        out.print(table)
