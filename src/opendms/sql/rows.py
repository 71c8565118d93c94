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

from opendms.sql.statements import DIALECTS


@dataclass(frozen=True)
class RowCount:
    query: str | None  # a SELECT COUNT(*) to run; None when ``literal`` is the answer
    literal: int | None = None
    upper_bound: bool = False  # joins may count a changed row more than once


def _count_from(source: exp.Expression) -> exp.Select:
    return exp.select(exp.Count(this=exp.Star())).from_(source)


def _over(select: exp.Query) -> exp.Select:
    """COUNT(*) over a query, as a derived table."""
    return exp.select(exp.Count(this=exp.Star())).from_(select.subquery("counted"))


def _restricted(node: exp.Expression, body: exp.Select) -> exp.Select:
    """Carry WHERE, ORDER BY and LIMIT over; with a LIMIT the count is of a bounded subquery."""
    where = node.args.get("where")
    if where is not None:
        body = body.where(where.this.copy())
    limit = node.args.get("limit")
    if limit is None:
        return body
    inner = body.copy()
    inner.set("expressions", [exp.Literal.number(1)])
    if node.args.get("order") is not None:
        inner.set("order", node.args["order"].copy())
    inner.set("limit", limit.copy())
    return _over(inner)


def _joins(node: exp.Expression, body: exp.Select) -> tuple[exp.Select, bool]:
    joins = [j.copy() for j in node.args.get("joins") or []]
    from_ = node.args.get("from") or node.args.get("from_")  # PostgreSQL UPDATE … FROM
    if isinstance(from_, exp.From):
        joins.insert(0, exp.Join(this=from_.this.copy(), kind="CROSS"))
    using = node.args.get("using")  # PostgreSQL DELETE … USING
    for table in using or []:
        joins.append(exp.Join(this=table.copy(), kind="CROSS"))
    for join in joins:
        body = body.join(join)
    return body, bool(joins) or bool(node.this.args.get("joins"))  # MySQL: UPDATE t JOIN u


def count_query(statement: str, engine: str) -> RowCount | None:
    """The way to count what ``statement`` changes, or None for a statement that changes
    rows in ways a count cannot tell (DDL, CALL, …)."""
    dialect = DIALECTS.get(engine, "mysql")
    node = sqlglot.parse_one(statement, read=dialect)
    if isinstance(node, exp.Insert):
        source = node.expression
        if isinstance(source, exp.Values):
            return RowCount(None, literal=len(source.expressions))
        if isinstance(source, exp.Query):
            return RowCount(_over(source.copy()).sql(dialect=dialect))
        return None
    if isinstance(node, exp.Update | exp.Delete):
        target = node.this
        if not isinstance(target, exp.Table):
            return None
        body, joined = _joins(node, _count_from(target.copy()))
        return RowCount(_restricted(node, body).sql(dialect=dialect), upper_bound=joined)
    return None
