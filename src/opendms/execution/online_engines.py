"""Which online engine runs a DDL statement on a live table (``execution.online``): the
engine's own where there is one, else the statement as written (``Direct``)."""

from __future__ import annotations

from opendms.execution.online import Direct, OnlineEngine
from opendms.execution.online_mysql import MysqlOnline
from opendms.execution.online_postgres import PostgresOnline
from opendms.targets.base import Connector
from opendms.targets.pace import Limits, Pace


def engine_for(
    engine: str,
    mode: int,
    *,
    pace: Pace | None = None,
    limits: Limits | None = None,
    replica: Connector | None = None,
) -> OnlineEngine:
    """The engine for a statement on an ``engine`` database under DdlOnline ``mode``, its
    shadow copies paced like chunked changes (``pace``, the instance's ``limits``, the
    replica whose lag it watches)."""
    # each engine runs DdlOnline 0 ("as written") itself, under its short lock waits
    if engine == "postgresql":
        return PostgresOnline(pace, limits, replica)
    if engine in ("mysql", "mariadb"):
        return MysqlOnline(pace, limits=limits, replica=replica)
    return Direct()
