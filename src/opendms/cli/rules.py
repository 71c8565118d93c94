"""``opendms rules``: security rule sets, which decide the approval a ticket needs
(docs/security-rules.md), and what one decides for a ticket."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendms.approvals import facts as ticket_facts
from opendms.cli.common import InTenant, out, read_file, shared_options, utc
from opendms.identity import service as identity
from opendms.rulebook import rule_sets, rules
from opendms.sql import review
from opendms.tickets import service as tickets

InstanceArg = Annotated[int, typer.Argument(help="InstanceId.")]


@shared_options
def load(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON rule set.")],
    name: Annotated[str, typer.Option(help="Rule set name ('default': the tenant's default).")],
    *,
    at: InTenant,
) -> None:
    """Validate a rule set and put it in force; a bad one changes nothing."""
    source = read_file(file)
    with at.session() as (_, s):
        row = rule_sets.load(s, at.tenant(s), name, source)
        out.print(f"Rule set {row.name!r} version {row.version} is in force")


@shared_options
def show(
    name: Annotated[str, typer.Argument(help="Rule set name.")] = rules.DEFAULT_NAME,
    *,
    at: InTenant,
) -> None:
    """Print a rule set as it was loaded (the built-in default if none was)."""
    with at.session() as (_, s):
        print(rule_sets.get(s, at.tenant(s), name).source, end="")


@shared_options
def list_(
    name: Annotated[str, typer.Argument(help="Rule set whose levels to show.")] = "default",
    *,
    at: InTenant,
) -> None:
    """The SQL review rules, their default levels and their levels in a rule set."""
    with at.session() as (_, s):
        chosen = rule_sets.get(s, at.tenant(s), name).rule_set.review
        grid = Table("Code", "Default", f"In {name!r}", "What it finds")
        for r in review.RULES:
            grid.add_row(r.code, r.level, chosen.get(r.code, r.level), r.summary)
        out.print(grid)


@shared_options
def sets(*, at: InTenant) -> None:
    """Rule sets of the tenant and the instances that follow each."""
    with at.session() as (_, s):
        grid = Table("Name", "Version", "Updated (UTC)", "Instances")
        for used in rule_sets.in_use(s, at.tenant(s)):
            grid.add_row(
                used.name,
                str(used.version) if used.version else "built-in",
                utc(used.updated_at),
                ", ".join(f"{i.instance_id} {i.alias}" for i in used.instances),
            )
        out.print(grid)


@shared_options
def assign(
    instance_id: InstanceArg,
    name: Annotated[str, typer.Argument(help="Rule set name.")],
    *,
    at: InTenant,
) -> None:
    """Make an instance follow a rule set (its SafeRule)."""
    with at.session() as (_, s):
        inst = rule_sets.assign(s, at.tenant(s), instance_id, name)
        out.print(f"Instance {inst.instance_id} ({inst.alias}) follows rule set {name!r}")


@shared_options
def decide(
    source: Annotated[str, typer.Argument(help="A loaded rule set's name, or a file.")],
    order_id: Annotated[
        int | None, typer.Option("--order", help="Take the factors from this ticket.")
    ] = None,
    plugin_type: Annotated[str, typer.Option("--type", help="PluginType.")] = "DC_COMMON",
    env: Annotated[str, typer.Option(help="EnvType.")] = "product",
    kinds: Annotated[str, typer.Option(help="Statement kinds, comma-separated.")] = "UPDATE",
    tables: Annotated[str, typer.Option(help="Tables (schema.table), comma-separated.")] = "",
    rows: Annotated[int | None, typer.Option(help="Affected rows (omit: unknown).")] = None,
    export_rows: Annotated[int | None, typer.Option(help="Exported rows.")] = None,
    *,
    at: InTenant,
) -> None:
    """What a rule set decides for a ticket, or for factors given as options."""
    path = Path(source)
    with at.session() as (_, s):
        tid = at.tenant(s)
        if path.is_file():
            rule_set, name = rule_sets.validate(s, tid, read_file(path)), source
        else:
            rule_set, name = rule_sets.get(s, tid, source).rule_set, source
        if order_id is not None:
            order = tickets.get_order(s, identity.caller_for(s, tid, None), order_id)
            found = ticket_facts.ticket_facts(s, order, ticket_facts.targets_of(s, order))
        else:
            found = rules.Facts(
                plugin_type=plugin_type,
                env_types=frozenset({env}),
                statement_kinds=frozenset(k.strip().upper() for k in kinds.split(",") if k),
                tables=frozenset(x.strip().lower() for x in tables.split(",") if x.strip()),
                affected_rows=rows,
                export_rows=export_rows,
                complete=True,
            )
        decision = rules.evaluate(rule_set, name, found)
        if decision.forbidden:
            out.print("FORBIDDEN: " + "; ".join(decision.forbidden), markup=False)
        out.print(
            f"risk {decision.risk} -> template {decision.template or 'none (no approval)'}",
            markup=False,
        )
        for reason in decision.reasons:
            out.print(f"  - {reason}", markup=False)
