"""``opendms actions`` and ``opendms errors``: what the API answers, and its error codes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from opendms import api_reference
from opendms.cli.common import out, print_json
from opendms.errors import DESCRIPTIONS


def actions(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the DMS API actions this server answers, with their RAM action and access level."""
    rows: list[dict[str, Any]] = [
        {
            "Action": a.name,
            "RamAction": a.ram_action,
            "AccessLevel": a.access_level,
            "Methods": ",".join(a.methods),
            "Parameters": list(a.parameters),
            "Summary": a.summary,
            "Extension": a.extension,
        }
        for a in api_reference.described()
    ]
    if as_json:
        print_json(rows, indent=2)
        return
    grid = Table("Action", "RAM action", "Access", "Parameters", "Summary")
    for r in rows:
        grid.add_row(
            r["Action"], r["RamAction"], r["AccessLevel"], ", ".join(r["Parameters"]), r["Summary"]
        )
    out.print(grid)


def errors() -> None:
    """List the business error codes (ErrorCode with Success=false)."""
    grid = Table("ErrorCode", "Meaning")
    for code, text in DESCRIPTIONS.items():
        grid.add_row(code.value, text)
    out.print(grid)
