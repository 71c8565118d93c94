"""Masking of sensitive columns in exports.

A column of the catalog may be flagged sensitive with a mask (``sensitive_columns``). An
export masks every column of its result that is computed from a sensitive column, traced
through sub-queries, CTEs, expressions and ``*`` by sqlglot's lineage over the catalog's
columns; where several sensitive columns feed one result column, the strongest mask wins.
A query the lineage cannot trace is masked whole when it reads any table with a sensitive
column: an export never guesses in the reader's favour.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

from opendms.catalog.sensitive import MASKS
from opendms.exports.values import plain
from opendms.identity.secrets import SecretBox
from opendms.sql.statements import DIALECTS

HIDDEN = "******"


@dataclass(frozen=True)
class Masked:
    """A column of the export's result, masked because of ``sources`` ("table.column")."""

    position: int  # 0-based, in the result
    column: str
    mask: str
    sources: tuple[str, ...]


def strongest(masks: set[str]) -> str:
    return min(masks, key=MASKS.index)


# (table, column), lower-cased -> mask
Sensitive = Mapping[tuple[str, str], str]
# table -> column -> type, the catalog's view of the tables a query reads
Schema = Mapping[str, Mapping[str, str]]


def _traced(node: exp.Query, engine: str, schema: Schema) -> list[tuple[str, set[tuple[str, str]]]]:
    """Each result column and the table columns it is computed from."""
    dialect = DIALECTS.get(engine, "mysql")
    qualified = qualify(
        node.copy(), schema=dict(schema), dialect=dialect, validate_qualify_columns=False
    )
    if not isinstance(qualified, exp.Query):
        raise SqlglotError("not a query")
    selects = qualified.selects
    if any(isinstance(s, exp.Star) or isinstance(s.unalias(), exp.Star) for s in selects):
        raise SqlglotError("a * the catalog cannot expand")
    scope = build_scope(qualified)
    if scope is None:
        raise SqlglotError("not a query")
    # every result column's lineage from the one qualified tree and scope: qualifying the
    # query again for each column cost more than the rest of a console query together
    roots = lineage(None, qualified, schema=dict(schema), dialect=dialect, scope=scope, copy=False)
    traced = {
        name: {
            (leaf.source.name.lower(), exp.to_column(leaf.name).name.lower())
            for leaf in root.walk()
            if isinstance(leaf.source, exp.Table) and not leaf.downstream
        }
        for name, root in roots.items()
    }
    return [(name, traced[name]) for name in qualified.named_selects]


def _whole_row(node: exp.Query, schema: Schema) -> bool:
    """Whether ``node`` reads a row as one value: PostgreSQL takes a table's name or alias
    that names none of its columns as its whole row (``SELECT p FROM people p``,
    ``row_to_json(p)``, ``ROW(p.*)``), which holds every column and which no lineage traces
    into."""
    sources: dict[str, Mapping[str, str]] = {}
    for table in node.find_all(exp.Table):
        columns = schema.get(table.name.lower(), {})
        sources[table.name.lower()] = columns
        if table.alias:
            sources[table.alias.lower()] = columns
    for named in node.find_all(exp.Subquery, exp.CTE):
        if named.alias_or_name:
            sources[named.alias_or_name.lower()] = {}
    top = {id(s) for s in node.selects} | {
        id(s.this) for s in node.selects if isinstance(s, exp.Alias)
    }
    for column in node.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            if id(column) not in top:  # t.* inside an expression: the row as one value
                return True
            continue
        name = column.name.lower()
        if not column.table and name in sources and name not in sources[name]:
            return True
    return any(
        isinstance(star.parent, exp.Func) and not isinstance(star.parent, exp.Count)
        for star in node.find_all(exp.Star)
    )


def direct(
    node: exp.Query, sensitive: Sensitive, columns: list[str] | None = None
) -> list[Masked] | None:
    """The masked columns of a query over one table with no subquery, read straight off its
    tree: each result column is computed from the columns its expression names, nothing
    else. None when the query is not that simple (a join, a subquery, a CTE, a set
    operation, a ``*``, or a name that may be the table's whole row): :func:`plan` traces it.
    No catalog is read, which is what makes a console query's masking cheap."""
    if not isinstance(node, exp.Select) or node.args.get("with") is not None:
        return None
    tables = list(node.find_all(exp.Table))
    if len(tables) != 1 or any(True for _ in node.find_all(exp.Subquery, exp.SetOperation)):
        return None
    if any(True for _ in node.find_all(exp.Star)):
        return None
    table = tables[0]
    rows = {table.name.lower(), table.alias.lower()} - {""}
    selects = node.selects
    if columns is not None and len(columns) != len(selects):
        return None
    out = []
    for i, select in enumerate(selects):
        named = [c.name.lower() for c in select.find_all(exp.Column)]
        if rows & set(named):
            return None  # PostgreSQL may read it as the whole row
        hits = {(table.name.lower(), c) for c in named} & sensitive.keys()
        if hits:
            out.append(
                Masked(
                    i,
                    columns[i] if columns is not None else select.alias_or_name,
                    strongest({sensitive[h] for h in hits}),
                    tuple(sorted(f"{t}.{c}" for t, c in hits)),
                )
            )
    return out


def plan(
    node: exp.Query,
    engine: str,
    schema: Schema,
    sensitive: Sensitive,
    columns: list[str] | None = None,
) -> tuple[list[Masked], bool]:
    """The masked columns of ``node``'s result, and whether the lineage traced them (False:
    every column is masked, see the module). ``columns`` names the result's columns as the
    database returned them, when known (they win over the parse's names)."""
    if not sensitive:
        return [], True
    read = {t.name.lower() for t in node.find_all(exp.Table)}
    relevant = {k: v for k, v in sensitive.items() if k[0] in read}
    if not relevant:
        return [], True
    simple = direct(node, relevant, columns)
    if simple is not None:
        return simple, True
    try:
        traced = [] if _whole_row(node, schema) else _traced(node, engine, schema)
    except (SqlglotError, KeyError, ValueError, AttributeError):
        traced = []
    if columns is not None and len(columns) != len(traced):
        traced = []
    if not traced:
        whole = strongest(set(relevant.values()))
        every = tuple(sorted(f"{t}.{c}" for t, c in relevant))
        return [Masked(i, n, whole, every) for i, n in enumerate(columns or [])], False
    out = []
    for i, (name, sources) in enumerate(traced):
        hits = sources & relevant.keys()
        if hits:
            shown = columns[i] if columns is not None else name
            out.append(
                Masked(
                    i,
                    shown,
                    strongest({relevant[h] for h in hits}),
                    tuple(sorted(f"{t}.{c}" for t, c in hits)),
                )
            )
    return out, True


class Masker:
    """Applies masks to values. HASH is keyed (HMAC-SHA256, a key derived from the server's
    master key): equal values hash equal across exports and the SQL console, but a phone
    number cannot be found again by hashing every phone number."""

    def __init__(self, master_key: bytes) -> None:
        key = hashlib.sha256(b"opendms export masks\0" + master_key).digest()
        # keyed once: each value's HMAC starts from a copy (the key's two blocks not hashed
        # again per value), the same digest as hmac.new(key, text, sha256)
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)

    @classmethod
    def of(cls, secrets: SecretBox) -> Masker:
        """The server's masker: the one every export and console result is masked with."""
        return cls(secrets.key_for("opendms export masks"))

    def __call__(self, mask: str, value: Any) -> str | None:
        if value is None:
            return None
        if mask == "FULL":
            return HIDDEN
        text = plain(value)
        if mask == "HASH":
            keyed = self._hmac.copy()
            keyed.update(text.encode())
            return keyed.hexdigest()[:32]
        keep = text[-4:] if len(text) > 4 else ""
        return "*" * (len(text) - len(keep)) + keep

    def column(self, mask: str, values: Sequence[Any]) -> list[str | None]:
        """One result column's values, masked."""
        return [self(mask, v) for v in values]

    def rows(self, masked: list[Masked], batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if not masked:
            return batch
        out = []
        for row in batch:
            values = list(row)
            for m in masked:
                values[m.position] = self(m.mask, values[m.position])
            out.append(tuple(values))
        return out
