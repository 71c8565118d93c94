"""``opendms sql review``: a script checked as a ticket's precheck would, before filing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendms.cli.common import EXIT_FAILED, InTenant, out, read_file, shared_options
from opendms.precheck.review import review_for_database


@shared_options
def review(
    file: Annotated[Path, typer.Argument(help="A SQL script.")],
    db: Annotated[int, typer.Option("--db", help="DbId to review it against.")],
    plugin_type: Annotated[str, typer.Option("--type", help="Ticket type.")] = "DC_COMMON",
    rule_set: Annotated[
        str | None,
        typer.Option("--rule-set", help="Levels from this rule set (default: the instance's)."),
    ] = None,
    *,
    at: InTenant,
) -> None:
    """Review a script as a ticket's precheck would; exits 1 when a finding is an ERROR."""
    sql = read_file(file)
    with at.session() as (_, s):
        findings = review_for_database(s, at.tenant(s), db, sql, plugin_type, rule_set)
    grid = Table("#", "Line", "Level", "Rule", "Finding", title=f"{len(findings)} finding(s)")
    for f in findings:
        grid.add_row(str(f.statement), f"{f.line}:{f.column}", f.level, f.code, f.message)
    out.print(grid)
    if any(f.level == "ERROR" for f in findings):
        raise typer.Exit(EXIT_FAILED)
