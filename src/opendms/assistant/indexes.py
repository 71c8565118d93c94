"""Index suggestions from the catalog: the columns a statement filters, joins and sorts
each table by, against the indexes the table has.

A column helps the planner only when an index starts with it. For each table whose indexes
start with none of the columns the statement looks rows up by (WHERE, JOIN … ON), one index
is suggested: the equality columns first (at most three), then one range or ORDER BY column;
a table only sorted (ORDER BY … LIMIT) is suggested an index on its first sort column.
Predicates no index can serve (a function around the column, LIKE '%…') are named instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.assistant.scope import Scope, TableMeta
from opendms.sql.review import leading_wildcards, wrapped_columns
from opendms.sql.statements import table_name

MAX_KEY_COLUMNS = 3
_EQUAL = (exp.EQ, exp.In, exp.Is, exp.NullSafeEQ)
_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.Like)


@dataclass(frozen=True)
class IndexAdvice:
    table: str
    columns: tuple[str, ...]
    why: str
    ddl: str


@dataclass
class _Use:
    meta: TableMeta
    equal: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    ranged: list[str] = field(default_factory=list)
    sorted: list[str] = field(default_factory=list)

    def add(self, where: list[str], column: str) -> None:
        spelled = next((c for c in self.meta.column_names() if c.lower() == column.lower()), None)
        if spelled is not None and spelled not in where:
            where.append(spelled)


class _Resolver:
    """Which table of the statement a column belongs to."""

    def __init__(self, node: exp.Expr, scope: Scope) -> None:
        self.sources: dict[str, TableMeta] = {}
        for t in node.find_all(exp.Table):
            meta = scope.table(table_name(t)) if t.name else None
            if meta is not None:
                self.sources[t.alias_or_name.lower()] = meta
        self.uses: dict[str, _Use] = {}

    def use(self, column: exp.Column) -> _Use | None:
        if column.table:
            meta = self.sources.get(column.table.lower())
        else:
            owners = [m for m in self.sources.values() if m.has_column(column.name)]
            meta = owners[0] if len({m.name for m in owners}) == 1 else None
        if meta is None:
            return None
        return self.uses.setdefault(meta.name, _Use(meta))


def _compared(pred: exp.Expr) -> exp.Column | None:
    side = pred.this
    return side if isinstance(side, exp.Column) else None


def _where_of(node: exp.Expr) -> list[exp.Expression]:
    return [w.this for w in node.find_all(exp.Where)]


def _collect(node: exp.Expr, r: _Resolver) -> list[str]:
    """Fill the resolver's uses; what no index can serve, as notes."""
    notes: list[str] = []
    for where in _where_of(node):
        wrapped = {id(c) for f in wrapped_columns(where) for c in f.find_all(exp.Column)}
        for f in wrapped_columns(where):
            notes.append(f"{f.sql()} hides its column from indexes: compare the bare column.")
        likes = set()
        for like in leading_wildcards(where):
            likes.add(id(like))
            notes.append(f"{like.sql()} starts with a wildcard: no index can find its rows.")
        for pred in [n for n in where.walk(bfs=False) if isinstance(n, (*_EQUAL, *_RANGE))]:
            column = _compared(pred)
            if column is None or id(column) in wrapped or id(pred) in likes:
                continue
            if isinstance(pred.expression, exp.Column) and isinstance(pred, exp.EQ):
                continue  # a join written in the WHERE: the ON loop's business below
            use = r.use(column)
            if use is not None:
                use.add(use.equal if isinstance(pred, _EQUAL) else use.ranged, column.name)
    conditions = [j.args["on"] for j in node.find_all(exp.Join) if j.args.get("on")]
    conditions += [
        eq
        for where in _where_of(node)
        for eq in where.find_all(exp.EQ)
        if isinstance(eq.this, exp.Column) and isinstance(eq.expression, exp.Column)
    ]
    for on in conditions:
        for eq in [on] if isinstance(on, exp.EQ) else on.find_all(exp.EQ):
            for side in (eq.this, eq.expression):
                if isinstance(side, exp.Column) and (use := r.use(side)) is not None:
                    use.add(use.joined, side.name)
    for order in node.find_all(exp.Order):
        for key in order.expressions:
            column = key.this if isinstance(key, exp.Ordered) else key
            if isinstance(column, exp.Column) and (use := r.use(column)) is not None:
                use.add(use.sorted, column.name)
    return list(dict.fromkeys(notes))


def _ident(name: str, dialect: str) -> str:
    quoted = not re.fullmatch(r"[a-z_][a-z0-9_]*", name)
    return exp.to_identifier(name, quoted=quoted).sql(dialect=dialect)


def ddl(table: str, columns: tuple[str, ...], dialect: str) -> str | None:
    """CREATE INDEX for ``columns`` of ``table``; None if it would not parse back."""
    name = re.sub(r"\W+", "_", f"ix_{table}_{'_'.join(columns)}".lower())[:60]
    text = (
        f"CREATE INDEX {_ident(name, dialect)} ON {_ident(table, dialect)} "
        f"({', '.join(_ident(c, dialect) for c in columns)})"
    )
    try:
        sqlglot.parse_one(text, read=dialect)
    except SqlglotError:
        return None
    return text


def _advice(use: _Use, dialect: str) -> IndexAdvice | None:
    leading = {ix.columns[0].lower() for ix in use.meta.indexes if ix.columns}
    looked_up = [*use.equal, *use.joined, *use.ranged]
    if any(c.lower() in leading for c in looked_up):
        return None  # the planner has an index to start from
    if not looked_up:
        if not use.sorted or use.sorted[0].lower() in leading:
            return None
        key: tuple[str, ...] = (use.sorted[0],)
        why = f"ORDER BY {use.sorted[0]}: no index of {use.meta.name} starts with it"
    else:
        equal = list(dict.fromkeys([*use.equal, *use.joined]))[:MAX_KEY_COLUMNS]
        last = next((c for c in [*use.ranged, *use.sorted] if c not in equal), None)
        key = (*equal, *([last] if last else []))
        why = (
            f"rows of {use.meta.name} are looked up by {', '.join(looked_up)}, "
            "and no index of it starts with any of them"
        )
    text = ddl(use.meta.name, key, dialect)
    return IndexAdvice(use.meta.name, key, why, text) if text else None


def suggest(node: exp.Expr, scope: Scope) -> tuple[list[IndexAdvice], list[str]]:
    """Indexes that would serve ``node`` on the tables of ``scope`` it reads, and the
    predicates no index can serve."""
    r = _Resolver(node, scope)
    notes = _collect(node, r)
    advice = [a for use in r.uses.values() if (a := _advice(use, scope.dialect)) is not None]
    return advice, notes
