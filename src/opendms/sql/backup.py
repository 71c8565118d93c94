"""Backups before a change and the rollback script made from them.

``preimage_query`` reads, with row locks, the rows an UPDATE or DELETE is about to change;
the executor runs it in the change's own transaction, just before the change, so nothing can
slip in between. From those rows (and from the keys an INSERT created) the ``restore_*``
functions write the statements that put the table back: updated rows get their old values
again, deleted rows are inserted again, inserted rows are deleted. Values become literals
through sqlglot, in the target's dialect, so quotes and backslashes in the data stay data.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlglot
from sqlglot import exp

from opendms.sql.rows import changed_rows
from opendms.sql.statements import DIALECTS

Row = Mapping[str, Any]


def literal(value: Any, engine: str) -> exp.Expression:
    """``value`` as read by the target's driver, as a literal the same target reads back."""
    postgres = engine == "postgresql"
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes | bytearray):
        if postgres:  # x'..' is a bit string there, not bytea
            decoded = exp.func("decode", exp.Literal.string(value.hex()), exp.Literal.string("hex"))
            return cast(exp.Expression, decoded)
        return exp.HexString(this=value.hex())
    if isinstance(value, dict | list):
        return exp.Literal.string(json.dumps(value, ensure_ascii=False))
    if isinstance(value, uuid.UUID | dt.time | dt.timedelta):
        return exp.Literal.string(_clock(value) if isinstance(value, dt.timedelta) else str(value))
    if isinstance(value, dt.datetime):
        return exp.Literal.string(value.isoformat(sep=" "))
    if isinstance(value, dt.date):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return exp.Literal.string(str(value))
    if isinstance(value, float) and not math.isfinite(value):
        return exp.Literal.string(str(value))
    return cast(exp.Expression, exp.convert(value))


def _clock(value: dt.timedelta) -> str:
    """MySQL TIME arrives as a timedelta: ``-838:59:59`` … ``838:59:59``."""
    total = int(value.total_seconds())
    sign, total = ("-" if total < 0 else ""), abs(total)
    micro = f".{value.microseconds:06d}" if value.microseconds else ""
    return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}{micro}"


def _table(name: str) -> exp.Table:
    """``schema.table`` or ``table`` as the catalog names it, each part quoted."""
    schema, _, table = name.rpartition(".")
    return exp.Table(
        this=exp.to_identifier(table, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )


def _column(name: str) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True))


def preimage_query(statement: str, engine: str) -> str | None:
    """``SELECT <target>.* … FOR UPDATE`` over exactly the rows ``statement`` (an UPDATE or
    DELETE) will change; None for other statements."""
    dialect = DIALECTS.get(engine, "mysql")
    node = sqlglot.parse_one(statement, read=dialect)
    if not isinstance(node, exp.Update | exp.Delete) or not isinstance(node.this, exp.Table):
        return None
    target = node.this
    deleted = node.args.get("tables") if isinstance(node, exp.Delete) else None
    changed = deleted[0] if deleted else target
    alias = changed.args.get("alias")
    name = alias.this if isinstance(alias, exp.TableAlias) else changed.this
    star = exp.Column(this=exp.Star(), table=name.copy())  # keeps its quoting
    query = changed_rows(node, star, ordered=True)
    return query.lock(update=True).sql(dialect=dialect)


def _render(node: exp.Expression, engine: str) -> str:
    return node.sql(dialect=DIALECTS.get(engine, "mysql"))


def _key_match(key: Sequence[str], row: Row, engine: str) -> exp.Where:
    return exp.Where(
        this=exp.and_(
            *(
                _column(k).is_(exp.null())
                if row[k] is None
                else exp.EQ(this=_column(k), expression=literal(row[k], engine))
                for k in key
            )
        )
    )


def restore_updated(table: str, rows: Sequence[Row], key: Sequence[str], engine: str) -> list[str]:
    """Statements giving each updated row its old values back, found by its key (which the
    change must not have altered)."""
    return [
        _render(
            exp.Update(
                this=_table(table),
                expressions=[
                    exp.EQ(this=_column(c), expression=literal(v, engine))
                    for c, v in row.items()
                    if c not in key
                ],
                where=_key_match(key, row, engine),
            ),
            engine,
        )
        for row in rows
    ]


def restore_deleted(table: str, rows: Sequence[Row], engine: str) -> list[str]:
    """Statements inserting the deleted rows again, every column as it was."""
    return [
        _render(
            exp.Insert(
                this=exp.Schema(this=_table(table), expressions=[_column(c).this for c in row]),
                expression=exp.values([exp.tuple_(*(literal(v, engine) for v in row.values()))]),
            ),
            engine,
        )
        for row in rows
    ]


def remove_inserted(table: str, keys: Sequence[Row], key: Sequence[str], engine: str) -> list[str]:
    """Statements deleting the rows an INSERT created, by the keys it recorded."""
    return [
        _render(exp.Delete(this=_table(table), where=_key_match(key, row, engine)), engine)
        for row in keys
    ]
