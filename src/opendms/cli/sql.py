"""``opendms sql``: a script checked as a ticket's precheck would, before filing
(``review``); a script run now in the SQL console (``run``, what ``ExecuteScript`` does)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from opendms.cli.common import (
    EXIT_FAILED,
    AsUser,
    InTenant,
    out,
    print_json,
    read_file,
    shared_options,
)
from opendms.console import service as console
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


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


def _show(r: console.StatementResult) -> None:
    where = f"{r.number}. {r.kind}"
    if r.columns:
        out.print(f"{where}: {r.row_count} row(s)", highlight=False)
        grid = Table(*(escape(c) for c in r.columns))
        for row in r.rows:
            grid.add_row(*(escape(_cell(v)) for v in row.values()))
        out.print(grid)
    elif r.success:
        out.print(f"{where}: {r.row_count} row(s) affected", highlight=False)
    else:
        out.print(f"{where}: not run", highlight=False)
    if r.message:
        style = "" if r.success else "red"
        out.print(escape(r.message), style=style, highlight=False)


@shared_options
def run(
    db: Annotated[int, typer.Option("--db", help="DbId to run it on.")],
    file: Annotated[str, typer.Argument(help="A SQL script; - (the default) reads stdin.")] = "-",
    as_json: Annotated[
        bool, typer.Option("--json", help="The results as ExecuteScript's Results[].")
    ] = False,
    *,
    who: AsUser,
) -> None:
    """Run a script now in the SQL console, as ExecuteScript does: reads under the QUERY
    permission (capped, masked), changes where the rule set allows; exits 1 when a statement
    failed or was refused."""
    script = sys.stdin.read() if file == "-" else read_file(Path(file))
    with who.acting() as (rt, s, caller):
        try:
            results = console.execute_script(s, rt.means, caller, db, script)
        finally:
            rt.means.console.close()  # one script per process: nothing to keep for
    if as_json:
        print_json({"Results": [r.wire() for r in results]}, ascii_only=False)
    else:
        for r in results:
            _show(r)
    if not all(r.success for r in results):
        raise typer.Exit(EXIT_FAILED)
