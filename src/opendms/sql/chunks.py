"""One data change cut into key ranges, for lock-free batched execution (DC_CHUNK, cleanup).

A statement qualifies when it changes one table and says which rows with a WHERE of its own
(``WHERE 1=1`` is the explicit "all rows"): an UPDATE or DELETE of that table, or an INSERT …
SELECT from it. Joins, sub-queries, LIMIT and ORDER BY would make a chunk's rows depend on
rows outside its range, so they are refused, as is a table without a key to walk (its primary
key, or a unique key of NOT NULL columns).

The executor walks the key in ascending order, between the first and last keys the
statement's condition matches (``matching``; ``before``: the key before the first):
``boundary`` finds where the next chunk of ``size`` keys ends, ``chunk`` is the statement
restricted to (after, upto]. A composite key is compared column by column (``a > 1 OR (a = 1
AND b > 2)``), which every engine's range optimiser understands, unlike row constructors on
older MySQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.sql.backup import literal
from opendms.sql.statements import DIALECTS, table_name

Key = tuple[Any, ...]


class ChunkRefused(ValueError):
    """The statement cannot be cut into key ranges; the message says why."""


@dataclass(frozen=True)
class Chunking:
    kind: str  # UPDATE, DELETE or INSERT
    table: str  # the table whose key is walked, as written ("schema.t" or "t")
    key: tuple[str, ...]
    engine: str
    node: exp.Expression  # the statement, parsed
    source: exp.Table  # the walked table's reference in it

    @property
    def dialect(self) -> str:
        return DIALECTS.get(self.engine, "mysql")

    # Boundary query and chunk differ per chunk only in their key literals, so each is
    # rendered through sqlglot once, with a marker where the key range goes, and a chunk's
    # SQL is that text with the range put in: rendering the whole tree per chunk was a
    # tenth of a chunk's time.

    @cached_property
    def _marker(self) -> str:
        return f"opendms_range_{uuid.uuid4().hex}"

    @cached_property
    def _rendered_marker(self) -> str:
        return exp.column(self._marker, quoted=True).sql(dialect=self.dialect)

    @cached_property
    def _key_columns(self) -> list[exp.Column]:
        qualifier = exp.to_identifier(self.source.alias_or_name, quoted=True)
        return [exp.column(k, table=qualifier.copy(), quoted=True) for k in self.key]

    @cached_property
    def _columns(self) -> list[str]:
        return [c.sql(dialect=self.dialect) for c in self._key_columns]

    def _compare(self, bound: Key, strict: str, last: str) -> str:
        """``key strict bound`` column by column: the first differing column decides; when
        all are equal, ``last`` decides (> for "after", <= for "up to")."""
        values = [literal(v, self.engine).sql(dialect=self.dialect) for v in bound]
        terms = []
        for i, column in enumerate(self._columns):
            equal = [f"{c} = {v}" for c, v in zip(self._columns[:i], values[:i], strict=True)]
            op = last if i == len(self._columns) - 1 else strict
            terms.append("(" + " AND ".join([*equal, f"{column} {op} {values[i]}"]) + ")")
        return "(" + " OR ".join(terms) + ")"

    def _first_key(self, where: exp.Expression, *, descending: bool = False) -> str:
        """``SELECT key FROM table WHERE … ORDER BY key LIMIT 1`` (``descending``: the last).
        The ORDER BY is written by hand: sqlglot spells out null ordering for some dialects
        (a CASE on MySQL, NULLS LAST on PostgreSQL), which no index of the key serves, and
        the key has no nulls."""
        query = exp.select(*(c.copy() for c in self._key_columns)).from_(self.source.copy())
        order = ", ".join(f"{c} DESC" if descending else c for c in self._columns)
        return f"{query.where(where).sql(dialect=self.dialect)} ORDER BY {order} LIMIT 1"

    @cached_property
    def _boundary(self) -> str:
        return self._first_key(exp.column(self._marker, quoted=True))

    def boundary(self, after: Key | None, size: int, end: Key | None = None) -> str:
        """``SELECT key … ORDER BY key LIMIT 1 OFFSET size - 1`` past ``after`` (and up to
        ``end``, when given): the last key of the next chunk, or no row when fewer than
        ``size`` keys are left."""
        query = self._boundary.replace(self._rendered_marker, self.where(after, end))
        return f"{query} OFFSET {max(size, 1) - 1}"

    def matching(self, *, last: bool = False) -> str:
        """The first key (``last``: the last) of a row the statement's condition matches: where
        a walk of it starts and ends (``execution.walk.bounded``)."""
        return self._first_key(self._condition.copy(), descending=last)

    def before(self, bound: Key) -> str:
        """The last key of the table below ``bound``, whatever the condition says."""
        query = self._first_key(exp.column(self._marker, quoted=True), descending=True)
        return query.replace(self._rendered_marker, self._compare(bound, "<", "<"))

    @cached_property
    def _condition(self) -> exp.Expression:
        """The statement's own WHERE condition (its SELECT's, for an INSERT … SELECT)."""
        target = self.node.expression if isinstance(self.node, exp.Insert) else self.node
        condition: exp.Expression = target.args["where"].this
        return condition

    @cached_property
    def _chunk(self) -> str:
        node = self.node.copy()
        target = node.expression if isinstance(node, exp.Insert) else node
        where = target.args["where"].this
        marker = exp.column(self._marker, quoted=True)
        target.set("where", exp.Where(this=exp.and_(exp.paren(where), marker, copy=False)))
        return node.sql(dialect=self.dialect)

    def where(self, after: Key | None, upto: Key | None) -> str:
        """The condition on the walked table's key for keys in (``after``, ``upto``]; None
        bounds are open. Columns are qualified by the table's name (or alias) as written."""
        ranges = []
        if after is not None:
            ranges.append(self._compare(after, ">", ">"))
        if upto is not None:
            ranges.append(self._compare(upto, "<", "<="))
        return " AND ".join(ranges) or "1 = 1"

    def chunk(self, after: Key | None, upto: Key | None) -> str:
        """The statement restricted to keys in (``after``, ``upto``]; None bounds are open."""
        return self._chunk.replace(self._rendered_marker, self.where(after, upto))


def _refuse_shape(node: exp.Expression, query: exp.Expression) -> None:
    joined = node.this.args.get("joins") if isinstance(node.this, exp.Table) else None
    if (
        query.args.get("joins")
        or joined
        or (isinstance(node, exp.Update) and node.args.get("from"))
    ):
        raise ChunkRefused("it joins tables; a chunked change touches one table")
    if isinstance(node, exp.Delete) and (node.args.get("using") or node.args.get("tables")):
        raise ChunkRefused("it deletes through several tables; a chunked change touches one")
    if query.args.get("limit") is not None or query.args.get("order") is not None:
        raise ChunkRefused("LIMIT and ORDER BY have no meaning when the rows come in key ranges")
    if query.args.get("where") is None:
        raise ChunkRefused("it has no WHERE; write WHERE 1=1 to change every row")
    for sub in node.find_all(exp.Subquery, exp.Exists, exp.In):
        if isinstance(sub, exp.In) and not sub.args.get("query"):
            continue
        raise ChunkRefused("it has a sub-query, whose rows a key range cannot bound")
    if isinstance(node, exp.Insert) and isinstance(node.expression, exp.Union):
        raise ChunkRefused("its SELECT is a UNION")


def chunking(
    statement: str, engine: str, key_of: Callable[[str], tuple[str, ...] | None]
) -> Chunking:
    """How to cut ``statement`` into key ranges; ``key_of(table)``: the table's primary key,
    or a unique key of NOT NULL columns, lower-cased (None: it has none)."""
    dialect = DIALECTS.get(engine, "mysql")
    try:
        found = [n for n in sqlglot.parse(statement, read=dialect) if n is not None]
    except SqlglotError as exc:
        raise ChunkRefused(f"it does not parse: {str(exc).splitlines()[0]}") from None
    if len(found) != 1:
        raise ChunkRefused("a chunked change is exactly one statement")
    node = found[0]
    query: exp.Expression
    if isinstance(node, exp.Update | exp.Delete):
        query, kind = node, "UPDATE" if isinstance(node, exp.Update) else "DELETE"
        source = node.this
    elif isinstance(node, exp.Insert) and isinstance(node.expression, exp.Select):
        query, kind = node.expression, "INSERT"
        from_ = query.args.get("from") or query.args.get("from_")
        source = from_.this if isinstance(from_, exp.From) else None
        if node.args.get("conflict") or node.args.get("replace"):
            raise ChunkRefused("an INSERT that may overwrite rows is not chunked")
    else:
        raise ChunkRefused("a chunked change is one UPDATE, DELETE or INSERT … SELECT")
    if not isinstance(source, exp.Table):
        raise ChunkRefused("it changes or reads something that is not a table")
    _refuse_shape(node, query)
    name = table_name(source)
    key = key_of(name)
    if not key:
        raise ChunkRefused(
            f"table {name} has neither a primary key nor a unique key of NOT NULL columns to walk"
        )
    return Chunking(kind, name, tuple(key), engine, node, source)


def chunk_keys(rows: Sequence[Sequence[Any]]) -> Key | None:
    """The boundary query's answer as a key, or None (fewer keys left than a chunk)."""
    return tuple(rows[0]) if rows else None
