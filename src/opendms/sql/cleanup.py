"""The DELETE a historical-data cleanup runs for one table (dms-api.md B.6, E.9).

Rows whose time column is older than ``RemainDays`` before the run's fire time go, and only
those the optional ``FilterSQL`` also matches. The statement is built as a syntax tree, not
pasted together: FilterSQL must parse as one condition in the target's dialect, so it can
neither end the statement nor add another. The cutoff is a literal fixed when a run is
created, so a run resumed after a crash deletes exactly what it set out to.

A column of epoch numbers (``TimeUnit`` SECONDS or MILLISECONDS) is compared with the
cutoff as a number; a column of instants (``timestamptz``, MySQL ``TIMESTAMP``) with the
instant, whatever the session's time zone; a DATETIME with the UTC wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.sql import functions
from opendms.sql.script import ScriptError, split
from opendms.sql.statements import DIALECTS, render


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


def _filter(text: str, engine: str) -> exp.Condition:
    """FilterSQL as one condition that calls only allowed functions, or refused."""
    dialect = DIALECTS.get(engine, "mysql")
    try:
        split(text, engine)  # refuses code hidden in MySQL comments, as for any script
    except ScriptError as exc:
        raise CleanupRefused(f"FilterSQL: {exc.reason}") from None
    try:
        found = [n for n in sqlglot.parse(text, read=dialect) if n is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0]
        raise CleanupRefused(f"FilterSQL is not a condition: {first}") from None
    if len(found) != 1 or not isinstance(found[0], exp.Condition):
        raise CleanupRefused("FilterSQL must be one condition, as after WHERE")
    if found[0].find(exp.Query, exp.Subquery):
        raise CleanupRefused("FilterSQL may not hold a sub-query")
    called = functions.refused(found[0], engine, change=False)
    if called:
        raise CleanupRefused(f"FilterSQL: {functions.refusal(called)}")
    return found[0]


def cutoff(item: Item, fired: datetime, engine: str, zoned: bool = False) -> exp.Expression:
    """What rows older than go: the instant ``RemainDays`` before ``fired`` (UTC).

    Epoch columns get the number. A column that holds instants gets that instant whatever
    the session's time zone: PostgreSQL reads a string with a ``+00:00`` offset as such for
    ``timestamptz`` (and ignores it for ``timestamp``), MySQL's ``FROM_UNIXTIME`` gives it in
    the session's zone, as a ``TIMESTAMP`` column is compared (``zoned``). A plain DATETIME
    is compared with the UTC wall-clock time."""
    at = fired - timedelta(days=item.remain_days)
    seconds = int(at.replace(tzinfo=UTC).timestamp())
    if item.time_unit is not None:
        return exp.Literal.number(seconds * 1000 if item.time_unit == "MILLISECONDS" else seconds)
    if engine == "postgresql":
        return exp.Literal.string(f"{at:%Y-%m-%d %H:%M:%S}+00:00")
    if zoned:
        return exp.Anonymous(this="FROM_UNIXTIME", expressions=[exp.Literal.number(seconds)])
    return exp.Literal.string(f"{at:%Y-%m-%d %H:%M:%S}")


def statement(item: Item, engine: str, fired: datetime, zoned: bool = False) -> str:
    """``DELETE FROM table WHERE column < cutoff [AND (FilterSQL)]`` in ``engine``'s SQL;
    ``zoned``: the column is a MySQL/MariaDB TIMESTAMP."""
    dialect = DIALECTS.get(engine, "mysql")
    table = _name(item.table, "TableName", dialect)
    column = exp.column(item.column, quoted=True)
    condition: exp.Condition = exp.LT(this=column, expression=cutoff(item, fired, engine, zoned))
    if item.filter_sql and item.filter_sql.strip():
        condition = exp.and_(condition, exp.paren(_filter(item.filter_sql, engine)))
    return render(exp.delete(table).where(condition), engine)
