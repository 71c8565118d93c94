"""``opendms workflow``: approval nodes and the templates made of them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from opendms.cli.common import InTenant, out, shared_options, user_ids
from opendms.rulebook import templates


@shared_options
def list_(*, at: InTenant) -> None:
    """List approval templates and their nodes, in order."""
    with at.session() as (_, s):
        grid = Table("TemplateId", "Name", "System", "Nodes")
        for view in templates.list_templates(s, at.tenant(s)):
            grid.add_row(
                str(view.template.template_id),
                view.template.name,
                "yes" if view.template.is_system else "",
                " -> ".join(n.name for _, n in view.nodes),
            )
        out.print(grid)


@shared_options
def node(
    name: Annotated[str, typer.Argument(help="Node name.")],
    approvers: Annotated[str, typer.Option(help="Approver UserIds, comma-separated.")],
    comment: Annotated[str, typer.Option(help="What the node is for.")] = "",
    *,
    at: InTenant,
) -> None:
    """Create a USER_LIST node: any one of its approvers may approve."""
    ids = user_ids(approvers, "--approvers")
    with at.session() as (_, s):
        made = templates.create_node(s, at.tenant(s), name, ids, comment=comment)
        out.print(f"Node {made.node_id} ({made.name})")


@shared_options
def template(
    name: Annotated[str, typer.Argument(help="Template name.")],
    nodes: Annotated[str, typer.Option(help="Node names in order, comma-separated.")],
    comment: Annotated[str, typer.Option(help="What the template is for.")] = "",
    *,
    at: InTenant,
) -> None:
    """Create an approval template from existing nodes."""
    chain = [n.strip() for n in nodes.split(",") if n.strip()]
    with at.session() as (_, s):
        made = templates.create_template(s, at.tenant(s), name, chain, comment=comment)
        out.print(f"Template {made.template_id} ({made.name}): {' -> '.join(chain)}")
