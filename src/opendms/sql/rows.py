"""How many rows a data change will touch, asked of the database without changing it.

``count_query`` turns an UPDATE, DELETE or INSERT … SELECT into a ``SELECT COUNT(*)`` over
the same tables, joins and conditions; the precheck runs it (under a time limit) and compares
the answer with the ticket's own estimate. INSERT … VALUES needs no query: its tuples are its
rows. A join that matches a row several times is counted several times, so for multi-table
changes the count is an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from opendms.sql.statements import DIALECTS, render


@dataclass(frozen=True)
class RowCount:
    query: str | None  # a SELECT COUNT(*) to run; None when ``literal`` is the answer
    literal: int | None = None
    upper_bound: bool = False  # joins may count a changed row more than once


def _over(select: exp.Query) -> exp.Select:
    """COUNT(*) over a query, as a derived table."""
    return exp.select(exp.Count(this=exp.Star())).from_(select.subquery("counted"))


def changed_rows(
    node: exp.Update | exp.Delete, column: exp.Expression, *, ordered: bool
) -> exp.Select:
    """``SELECT column`` over exactly the rows an UPDATE or DELETE (whose target is a table)
    changes: its table, joins (``JOIN``, PostgreSQL's ``FROM`` and ``USING``) and WHERE, and
    with ``ordered`` its ORDER BY and LIMIT. The row count and the backup both read this."""
    query = exp.select(column).from_(node.this.copy())
    from_ = node.args.get("from") or node.args.get("from_")  # PostgreSQL UPDATE … FROM
    extra = [from_.this] if isinstance(from_, exp.From) else []
    extra += node.args.get("using") or []  # PostgreSQL DELETE … USING
    for table in extra:
        query = query.join(exp.Join(this=table.copy(), kind="CROSS"))
    for join in node.args.get("joins") or []:
        query = query.join(join.copy())
    where = node.args.get("where")
    if where is not None:
        query = query.where(where.this.copy())
    for part in ("order", "limit") if ordered else ():
        if node.args.get(part) is not None:
            query.set(part, node.args[part].copy())
    return query


def _joined(node: exp.Update | exp.Delete) -> bool:
    """Whether a changed row may be matched more than once (MySQL: UPDATE t JOIN u …)."""
    from_ = node.args.get("from") or node.args.get("from_")
    return bool(
        from_ or node.args.get("using") or node.args.get("joins") or node.this.args.get("joins")
    )


def _nameable(node: exp.Query, engine: str) -> str:
    """The query as a derived table can hold it: as it is, unless two result columns share
    a name (MySQL refuses such a derived table); then with the repeats renamed, which
    changes no row."""
    first = node
    while isinstance(first, exp.SetOperation):
        first = first.left
    if not isinstance(first, exp.Select):
        return render(node, engine)
    names = [s.alias_or_name.lower() for s in first.selects]
    if len(set(names)) == len(names) or "*" in names:
        return render(node, engine)
    renamed = node.copy()
    head = renamed
    while isinstance(head, exp.SetOperation):
        head = head.left
    seen: set[str] = set()
    for i, projection in enumerate(head.selects):
        name = projection.alias_or_name.lower()
        if name in seen:
            projection.replace(exp.alias_(projection.copy(), f"{name}_{i + 1}"))
        seen.add(name)
    return render(renamed, engine)


def count_query(statement: str, engine: str) -> RowCount | None:
    """The way to count what ``statement`` changes (or, for a query, returns), or None for a
    statement that changes rows in ways a count cannot tell (DDL, CALL, …). The count is
    generated from the parsed statement, never pasted from its text, so it asks the
    database exactly what the checks read."""
    node = sqlglot.parse_one(statement, read=DIALECTS.get(engine, "mysql"))
    if isinstance(node, exp.Insert):
        source = node.expression
        if isinstance(source, exp.Values):
            return RowCount(None, literal=len(source.expressions))
        if isinstance(source, exp.Query):
            return RowCount(render(_over(source.copy()), engine))
        return None
    if isinstance(node, exp.Query):  # an export's rows
        text = _nameable(node, engine)
        return RowCount(f"SELECT COUNT(*) FROM (\n{text}\n) AS counted")  # noqa: S608
    if isinstance(node, exp.Update | exp.Delete):
        target = node.this
        if not isinstance(target, exp.Table):
            return None
        if node.args.get("limit") is not None:  # count the bounded set, not the table
            query = _over(changed_rows(node, exp.Literal.number(1), ordered=True))
        else:
            query = changed_rows(node, exp.Count(this=exp.Star()), ordered=False)
        return RowCount(render(query, engine), upper_bound=_joined(node))
    return None
