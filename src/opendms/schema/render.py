"""The DDL that makes a target table match a source table, in the target's dialect.

``sync_statements(source, target, engine)``: the statements, in the order to run them, that
make ``target`` (a table on an ``engine`` database; None: it does not exist) match
``source`` (None: drop the target). The source may come from another engine
(``source_engine``) and go by another name (``name``, TABLE_SYNC's TargetTableName). The
statements are generated from ``compare``'s differences, each read back by sqlglot in the
target's dialect and handed out as sqlglot writes it: what the product reviews and runs.
"""

from __future__ import annotations

from collections.abc import Callable

from opendms.schema.ddl import SyncPlan, Work, Writer
from opendms.schema.diff import Difference, compare
from opendms.schema.model import Table
from opendms.schema.render_mysql import MysqlWriter
from opendms.schema.render_postgres import PostgresWriter
from opendms.schema.render_sqlite import SqliteWriter
from opendms.schema.spelling import family
from opendms.schema.translate import SchemaRefused, prepare

_WRITERS: dict[str, Callable[[str, str], Writer]] = {
    "mysql": MysqlWriter,
    "postgresql": PostgresWriter,
    "sqlite": SqliteWriter,
}


def prepared(
    source: Table | None,
    target: Table | None,
    engine: str,
    *,
    name: str | None = None,
    source_engine: str | None = None,
) -> Table | None:
    """``source`` as ``engine`` will hold it, under the name the target has or will have."""
    if source is None:
        return None
    wanted = name or (target.name if target is not None else None)
    return prepare(source, engine, source_engine=source_engine, name=wanted)


def differences(
    source: Table | None,
    target: Table | None,
    engine: str,
    *,
    name: str | None = None,
    source_engine: str | None = None,
) -> list[Difference]:
    """What ``sync_statements`` would change, for people: ``compare`` of the prepared source
    with the target."""
    return compare(
        prepared(source, target, engine, name=name, source_engine=source_engine), target, engine
    )


def sync_plan(
    source: Table | None,
    target: Table | None,
    engine: str,
    *,
    name: str | None = None,
    source_engine: str | None = None,
) -> SyncPlan:
    """``sync_statements`` in its three phases (foreign keys dropped, the tables' own
    changes, foreign keys added), for running several tables' together."""
    kind = family(engine)
    if kind not in _WRITERS:
        raise SchemaRefused(f"OpenDMS writes no DDL for {engine}")
    mine = prepared(source, target, engine, name=name, source_engine=source_engine)
    if mine is None and target is None:
        return SyncPlan()
    if target is None:
        assert mine is not None
        return _WRITERS[kind](engine, mine.name).create(mine)
    if mine is None:
        return _WRITERS[kind](engine, target.name).drop(target)
    found = compare(mine, target, engine)
    if not found:
        return SyncPlan()
    return _WRITERS[kind](engine, target.name).alter(Work.of(mine, target, found, engine))


def sync_statements(
    source: Table | None,
    target: Table | None,
    engine: str,
    *,
    name: str | None = None,
    source_engine: str | None = None,
) -> list[str]:
    """The DDL, in order, that makes ``target`` (on ``engine``: mysql, mariadb, postgresql,
    sqlite) match ``source``: source None drops the target table, target None creates it
    (named ``name`` when given). Raises :class:`SchemaRefused` for what cannot be carried."""
    return sync_plan(source, target, engine, name=name, source_engine=source_engine).statements
