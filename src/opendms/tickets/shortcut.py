"""A ticket's Param from a few typed values, for callers that do not speak the wire: one
database and its SQL (the command line's ``order create --db --sql``), and a cleanup's
reclaim cadence (``--optimize-every``).

Each kind says how its Param takes them (``TicketKind.sql_param``,
``TicketKind.with_reclaim_cadence``). What comes out is spelled as the kind's Param, so
``tickets.create_order`` checks it as it checks any other, with the same messages; a type no
kind has gets a data change's Param, and ``create_order`` then refuses the type as it
always does."""

from __future__ import annotations

from typing import Any

from opendms.tickets.kind import SqlTicket, sql_change_param
from opendms.tickets.registry import find

__all__ = ["SqlTicket", "sql_param", "with_reclaim_cadence"]


def sql_param(plugin_type: str, ask: SqlTicket) -> dict[str, Any]:
    """The Param of a ``plugin_type`` ticket that runs ``ask.sql`` on ``ask.db_id``."""
    kind = find(plugin_type)
    return kind.sql_param(ask) if kind is not None else sql_change_param(ask)


def with_reclaim_cadence(plugin_type: str, param: Any, every: int) -> dict[str, Any] | None:
    """A Param that also reclaims space every ``every`` runs; None when the type has no such
    cadence or ``param`` is not an object."""
    kind = find(plugin_type)
    if kind is None or not isinstance(param, dict):
        return None
    return kind.with_reclaim_cadence(param, every)
