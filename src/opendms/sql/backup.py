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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import sqlglot
from sqlglot import exp

from opendms.sql.rows import changed_rows
from opendms.sql.statements import DIALECTS, table_name

Row = Mapping[str, Any]
BACKUP_ENGINES = {"mariadb": "Aria", "mysql": "InnoDB"}  # storage engine of backup tables
# A change expected to back up at most this many rows gets an InnoDB table on MariaDB too
# (``_create`` says why).
FEW_ROWS = 1000


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
        return exp.Literal.string(
            clock_text(value) if isinstance(value, dt.timedelta) else str(value)
        )
    if isinstance(value, dt.datetime):
        return exp.Literal.string(value.isoformat(sep=" "))
    if isinstance(value, dt.date):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return exp.Literal.string(str(value))
    if isinstance(value, float) and not math.isfinite(value):
        return exp.Literal.string(str(value))
    return cast(exp.Expression, exp.convert(value))


def clock_text(value: dt.timedelta) -> str:
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


def _preimage(node: exp.Update | exp.Delete) -> exp.Select:
    """``SELECT <changed table>.*`` over exactly the rows ``node`` changes, in its order.
    Whole rows, not just the columns SET names: triggers and ``ON UPDATE CURRENT_TIMESTAMP``
    change others, and a restore must put those back too."""
    target = node.this
    deleted = node.args.get("tables") if isinstance(node, exp.Delete) else None
    changed = deleted[0] if deleted else target
    alias = changed.args.get("alias")
    name = alias.this if isinstance(alias, exp.TableAlias) else changed.this
    star = exp.Column(this=exp.Star(), table=name.copy())  # keeps its quoting
    return changed_rows(node, star, ordered=True)


@lru_cache(maxsize=4)
def _parsed(statement: str, dialect: str) -> exp.Expression:
    """``statement``'s tree, parsed once for the several questions a backup asks of it (a
    10,000-row INSERT takes 0.6 s to parse here). Shared: never to be changed."""
    return cast(exp.Expression, sqlglot.parse_one(statement, read=dialect))


def _changing(statement: str, engine: str) -> exp.Update | exp.Delete | None:
    node = _parsed(statement, DIALECTS.get(engine, "mysql"))
    if isinstance(node, exp.Update | exp.Delete) and isinstance(node.this, exp.Table):
        return node
    return None


def preimage_query(statement: str, engine: str) -> str | None:
    """``SELECT <target>.* … FOR UPDATE`` over exactly the rows ``statement`` (an UPDATE or
    DELETE) will change; None for other statements."""
    node = _changing(statement, engine)
    if node is None:
        return None
    return _preimage(node).lock(update=True).sql(dialect=DIALECTS.get(engine, "mysql"))


class BackupRefused(Exception):
    """This statement's change cannot be backed up (and so, asked for a backup, not run)."""


@dataclass(frozen=True)
class KeySources:
    """How a target can tell the keys an INSERT created, as its server says
    (``targets.base.InsertKeys``): ``returning``, INSERT … RETURNING gives them back;
    ``consecutive``, the AUTO_INCREMENT keys one statement generates are one run from
    ``LAST_INSERT_ID()`` (InnoDB's ``innodb_autoinc_lock_mode`` 0 or 1); ``why``: why they
    are not, for the message."""

    returning: bool = False
    consecutive: bool = False
    why: str = ""


# The run of keys an INSERT generated, read right after it in its session: its first key,
# how many rows it wrote, and the step between keys (auto_increment_increment).
GENERATED_RUN = "SELECT LAST_INSERT_ID(), ROW_COUNT(), @@SESSION.auto_increment_increment"


@dataclass(frozen=True)
class BackupPlan:
    """How one statement is backed up on its target, in its own transaction.

    UPDATE and DELETE: ``create`` makes an empty table shaped like the changed rows, unless a
    try cut short made it already (before the transaction: DDL commits on MySQL); ``copy``
    fills it with them, locked, just before the change. INSERT: ``returning`` is the
    statement itself giving back the keys it created (or ``keys`` when its VALUES name them,
    or ``generated`` on MySQL: the table and its AUTO_INCREMENT key, whose run of new keys
    ``GENERATED_RUN`` reads after the INSERT), which go into the table ``create`` made.
    """

    kind: str  # UPDATE, DELETE or INSERT
    table: str  # the changed table, as written ("schema.t" or "t")
    create: str
    copy: str | None = None
    returning: str | None = None
    keys: tuple[tuple[Any, ...], ...] | None = None
    key: tuple[str, ...] = ()
    generated: exp.Table | None = None


def _changed_table(node: exp.Update | exp.Delete) -> exp.Table:
    """The table whose rows change; MySQL's ``DELETE o FROM orders o`` names it by alias."""
    deleted = node.args.get("tables") if isinstance(node, exp.Delete) else None
    if not deleted:
        return node.this  # type: ignore[no-any-return]
    named = deleted[0]
    for table in node.find_all(exp.Table):
        if table is not named and table.alias and table.alias == named.name and not named.db:
            return table
    return named  # type: ignore[no-any-return]


def _create(
    into: exp.Table, select: exp.Select, engine: str, transactional: bool, rows: int | None
) -> str:
    empty = select.copy().where(exp.false(), append=False)
    for part in ("order", "limit"):
        empty.set(part, None)
    # MariaDB's Aria copies rows at twice InnoDB's speed (bench/data_correct.py); it does not
    # roll back, which a table per attempt makes harmless
    # (execution.run_statements._prepare_backup).
    # A chunked change fills one table chunk by chunk, so its copy must roll back with the
    # chunk: InnoDB.
    # But making an Aria table costs more than an InnoDB one (two files made and synced,
    # not one), and so does writing a row into it: its faster copy pays that back only past
    # a few thousand rows (docs/performance.md, "Fixed cost per job"). Most changes touch a
    # few rows: one the precheck expects to copy at most FEW_ROWS gets InnoDB.
    few = rows is not None and rows <= FEW_ROWS
    inno = (transactional or few) and engine in BACKUP_ENGINES
    storage = "InnoDB" if inno else BACKUP_ENGINES.get(engine)
    properties = (
        exp.Properties(expressions=[exp.EngineProperty(this=exp.var(storage))]) if storage else None
    )
    create = exp.Create(
        kind="TABLE", this=into.copy(), exists=True, expression=empty, properties=properties
    )
    return _render(create, engine)


def _literal_keys(
    node: exp.Insert, key: Sequence[str], auto: str
) -> tuple[tuple[Any, ...], ...] | None:
    """The keys an INSERT … VALUES names itself, when every one is a plain literal (and, for
    an AUTO_INCREMENT key ``auto``, not 0, which MySQL reads as "make one")."""
    schema = node.this
    values = node.expression
    if not isinstance(schema, exp.Schema) or not isinstance(values, exp.Values):
        return None
    columns = [c.name.lower() for c in schema.expressions]
    if not all(k in columns for k in key):
        return None
    at = [columns.index(k) for k in key]
    out = []
    for row in values.expressions:
        items = row.expressions
        if len(items) != len(columns) or not all(isinstance(items[i], exp.Literal) for i in at):
            return None
        keys = tuple(items[i].to_py() for i in at)
        if auto and any(k == auto and v in (0, "0") for k, v in zip(key, keys, strict=True)):
            return None
        out.append(keys)
    return tuple(out)


def _names_key(node: exp.Insert, key: Sequence[str]) -> bool:
    """Whether the INSERT's column list names any key column (no list names them all)."""
    schema = node.this
    if not isinstance(schema, exp.Schema) or not schema.expressions:
        return True
    columns = {c.name.lower() for c in schema.expressions}
    return any(k.lower() in columns for k in key)


def _generated(
    node: exp.Insert, target: exp.Table, key: Sequence[str], auto: str, sources: KeySources
) -> exp.Table:
    """The table whose AUTO_INCREMENT key's run (``GENERATED_RUN``) tells the keys ``node``
    created, or why there is no such exact run."""
    ask = "list the key columns with literal values, or run without backup"
    if node.args.get("ignore"):
        raise BackupRefused(
            "an INSERT IGNORE may skip rows, and without INSERT … RETURNING which ones "
            f"cannot be told; {ask}"
        )
    if len(key) != 1 or key[0].lower() != auto or _names_key(node, key):
        raise BackupRefused(
            "the server has no INSERT … RETURNING, and the keys this INSERT creates are not "
            f"an AUTO_INCREMENT primary key it leaves to the server; {ask}"
        )
    if not sources.consecutive:
        raise BackupRefused(f"the server has no INSERT … RETURNING, and {sources.why}; {ask}")
    return target


def changed_table(statement: str, engine: str) -> str | None:
    """The table whose rows ``statement`` changes ("schema.t" or "t", lower-cased), for an
    UPDATE, DELETE or INSERT; None otherwise."""
    node = _parsed(statement, DIALECTS.get(engine, "mysql"))
    if isinstance(node, exp.Update | exp.Delete) and isinstance(node.this, exp.Table):
        return table_name(_changed_table(node))
    if isinstance(node, exp.Insert):
        target = node.this.this if isinstance(node.this, exp.Schema) else node.this
        return table_name(target) if isinstance(target, exp.Table) else None
    return None


def plan_backup(
    statement: str,
    engine: str,
    into: exp.Table,
    key: Sequence[str],
    *,
    transactional: bool = False,
    sources: KeySources | Callable[[], KeySources] = KeySources(),
    auto: str = "",
    rows: int | None = None,
) -> BackupPlan:
    """How to back up ``statement`` into table ``into``; ``key``: the changed table's primary
    key (lower-cased), what restoring updated rows and removing inserted ones goes by;
    ``transactional``: the table's rows must roll back with the change's; ``sources``: how
    the server tells an INSERT's new keys (asked only for an INSERT, when a function: it
    may take a round trip to the server); ``auto``: the table's AUTO_INCREMENT column
    (lower-cased), if any; ``rows``: how many rows the change is expected to copy, if
    known. The one place that decides what can be backed up: the precheck
    asks it too, so execution refuses nothing the precheck did not name first."""
    node = _parsed(statement, DIALECTS.get(engine, "mysql"))
    if isinstance(node, exp.Update | exp.Delete):
        if not isinstance(node.this, exp.Table):
            raise BackupRefused("the statement's target is not a table")
        table = _changed_table(node)
        if isinstance(node, exp.Update) and not key:
            raise BackupRefused(
                f"table {table_name(table)} has no primary key, so updated rows cannot be "
                "restored one by one"
            )
        select = _preimage(node)
        return BackupPlan(
            kind="UPDATE" if isinstance(node, exp.Update) else "DELETE",
            table=table_name(table),
            create=_create(into, select, engine, transactional, rows),
            copy=_render(exp.insert(select.lock(update=True), into.copy()), engine),
            key=tuple(key),
        )
    if isinstance(node, exp.Insert):
        target = node.this.this if isinstance(node.this, exp.Schema) else node.this
        if not isinstance(target, exp.Table):
            raise BackupRefused("the statement's target is not a table")
        overwrites = str(node.args.get("alternative") or "").upper() == "REPLACE"  # SQLite
        if overwrites or any(node.args.get(a) for a in ("conflict", "replace", "overwrite")):
            raise BackupRefused(
                "an INSERT that may overwrite existing rows (ON DUPLICATE KEY / ON CONFLICT / "
                "REPLACE) cannot be backed up row by row"
            )
        if not key:
            raise BackupRefused(
                f"table {table_name(target)} has no primary key, so inserted rows cannot be "
                "found again"
            )
        columns = exp.select(*(exp.column(k, quoted=True) for k in key)).from_(target.copy())
        keys = _literal_keys(node, key, auto)
        if callable(sources):  # asked only where it matters: keys not named, or IGNORE
            sources = sources() if keys is None or node.args.get("ignore") else KeySources()
        returning = generated = None
        if keys is not None and node.args.get("ignore") and not sources.returning:
            raise BackupRefused(
                "an INSERT IGNORE may skip rows whose keys exist already, and deleting those "
                "keys would remove rows it did not create; run without backup"
            )
        if keys is None and not sources.returning:
            generated = _generated(node, target, key, auto, sources)
        elif keys is None:
            # ``statement`` is the generated text of one INSERT (sql.statements.render), so
            # the clause goes at its end; rendering a 10,000-row tree again would cost a second
            returning = f"{statement} " + _render(
                exp.Returning(expressions=[exp.column(k, quoted=True) for k in key]), engine
            )
        return BackupPlan(
            kind="INSERT",
            table=table_name(target),
            create=_create(into, columns, engine, transactional, rows),
            returning=returning,
            keys=keys,
            key=tuple(key),
            generated=generated,
        )
    raise BackupRefused(f"a {type(node).__name__.upper()} statement is not backed up")


def fill_keys(
    into: exp.Table, key: Sequence[str], rows: Sequence[Sequence[Any]], engine: str
) -> str:
    """The INSERT that records the keys an INSERT created into its backup table."""
    insert = exp.Insert(
        this=exp.Schema(
            this=into.copy(), expressions=[exp.to_identifier(k, quoted=True) for k in key]
        ),
        expression=exp.values([exp.tuple_(*(literal(v, engine) for v in row)) for row in rows]),
    )
    return _render(insert, engine)


def copy_generated(
    into: exp.Table, table: exp.Table, key: str, first: int, last: int, step: int, engine: str
) -> str:
    """The INSERT that records the run of keys an INSERT generated (``first`` … ``last``,
    ``step`` apart) into its backup table, copied on the server. Every key of the run was
    given to that INSERT alone, in its own uncommitted transaction, so the rows holding
    them are exactly its rows."""
    column = exp.column(key, quoted=True)
    offset = exp.Paren(this=exp.Sub(this=column.copy(), expression=exp.convert(first)))
    where = exp.and_(
        exp.Between(this=column, low=exp.convert(first), high=exp.convert(last)),
        exp.EQ(this=exp.Mod(this=offset, expression=exp.convert(step)), expression=exp.convert(0)),
    )
    select = exp.select(column.copy()).from_(table.copy()).where(where)
    insert = exp.Insert(
        this=exp.Schema(this=into.copy(), expressions=[exp.to_identifier(key, quoted=True)]),
        expression=select,
    )
    return _render(insert, engine)


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
