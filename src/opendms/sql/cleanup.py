"""The DELETE a historical-data cleanup runs for one table (dms-api.md B.6, E.9).

Rows whose time column is older than ``RemainDays`` before the run's fire time go, and only
those the optional ``FilterSQL`` also matches. The statement is built as a syntax tree, not
pasted together: FilterSQL must parse as one condition in the target's dialect, so it can
neither end the statement nor add another. The cutoff is a literal fixed when a run is
created, so a run resumed after a crash deletes exactly what it set out to.

A column of epoch numbers (``TimeUnit`` SECONDS or MILLISECONDS) is compared with the
cutoff as a number; any other column with the cutoff as ``YYYY-MM-DD HH:MM:SS`` (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.sql.statements import DIALECTS


class CleanupRefused(ValueError):
    """The cleanup item cannot become a safe DELETE; the message says why."""


@dataclass(frozen=True)
class Item:
    table: str
    column: str
    remain_days: int
    time_unit: str | None = None  # SECONDS, MILLISECONDS; None: a date/time column
    filter_sql: str | None = None


def _name(text: str, what: str, dialect: str) -> exp.Table:
    try:
        table = sqlglot.parse_one(text, read=dialect, into=exp.Table)
    except SqlglotError:
        raise CleanupRefused(f"{what} {text[:64]!r} is not a table name") from None
    if not isinstance(table, exp.Table) or not table.name:
        raise CleanupRefused(f"{what} {text[:64]!r} is not a table name")
    for part in table.find_all(exp.Identifier):
        part.set("quoted", True)
    return table


def _filter(text: str, dialect: str) -> exp.Condition:
    """FilterSQL as one condition, or refused."""
    try:
        found = [n for n in sqlglot.parse(text, read=dialect) if n is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0]
        raise CleanupRefused(f"FilterSQL is not a condition: {first}") from None
    if len(found) != 1 or not isinstance(found[0], exp.Condition):
        raise CleanupRefused("FilterSQL must be one condition, as after WHERE")
    if found[0].find(exp.Query, exp.Subquery):
        raise CleanupRefused("FilterSQL may not hold a sub-query")
    return found[0]


def cutoff(item: Item, fired: datetime) -> exp.Expression:
    """The literal rows older than which go: ``RemainDays`` before ``fired`` (UTC)."""
    at = fired - timedelta(days=item.remain_days)
    if item.time_unit is None:
        return exp.Literal.string(f"{at:%Y-%m-%d %H:%M:%S}")
    seconds = int(at.replace(tzinfo=UTC).timestamp())
    return exp.Literal.number(seconds * 1000 if item.time_unit == "MILLISECONDS" else seconds)


def statement(item: Item, engine: str, fired: datetime) -> str:
    """``DELETE FROM table WHERE column < cutoff [AND (FilterSQL)]`` in ``engine``'s SQL."""
    dialect = DIALECTS.get(engine, "mysql")
    table = _name(item.table, "TableName", dialect)
    column = exp.column(item.column, quoted=True)
    condition: exp.Condition = exp.LT(this=column, expression=cutoff(item, fired))
    if item.filter_sql and item.filter_sql.strip():
        condition = exp.and_(condition, exp.paren(_filter(item.filter_sql, dialect)))
    return exp.delete(table).where(condition).sql(dialect=dialect)
