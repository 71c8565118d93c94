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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import lineage
from sqlglot.optimizer.qualify import qualify

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
    out = []
    traced: dict[str, set[tuple[str, str]]] = {}
    for name in qualified.named_selects:
        if name not in traced:
            root = lineage(name, qualified, schema=dict(schema), dialect=dialect)
            traced[name] = {
                (leaf.source.name.lower(), exp.to_column(leaf.name).name.lower())
                for leaf in root.walk()
                if isinstance(leaf.source, exp.Table) and not leaf.downstream
            }
        out.append((name, traced[name]))
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
    try:
        traced = _traced(node, engine, schema)
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
        self._key = hashlib.sha256(b"opendms export masks\0" + master_key).digest()

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
            return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:32]
        keep = text[-4:] if len(text) > 4 else ""
        return "*" * (len(text) - len(keep)) + keep

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
