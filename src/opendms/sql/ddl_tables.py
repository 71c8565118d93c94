"""The table a DDL statement changes, read off its tree: what the ddl walk runs it on and
what a schema design's statements are checked against."""

from __future__ import annotations

from sqlglot import exp


def ddl_table(node: exp.Expr) -> str | None:
    """The table a DDL statement changes, as written ("t" or "schema.t"); None when it
    names none."""
    target: exp.Expr | None = node.this
    if isinstance(node, exp.Create) and isinstance(target, exp.Index):
        target = target.args.get("table")
    elif isinstance(node, exp.Drop) and node.args.get("kind") == "INDEX":
        cluster = node.args.get("cluster")
        target = cluster.this if isinstance(cluster, exp.OnProperty) else None
    elif isinstance(node, exp.Drop):
        tables = node.args.get("tables") or []
        target = tables[0] if tables else None
    elif isinstance(node, exp.Comment) and isinstance(target, exp.Column):
        target = exp.Table(this=target.args.get("table"), db=target.args.get("db"))
    if isinstance(target, exp.Schema):
        target = target.this
    if not isinstance(target, exp.Table) or not target.name:
        return None
    return ".".join(p for p in (target.db, target.name) if p)
