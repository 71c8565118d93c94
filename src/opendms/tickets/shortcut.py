"""A ticket's Param from a few typed values, for callers that do not speak the wire: one
database and its SQL (the command line's ``order create --db --sql``), and a cleanup's
reclaim cadence (``--optimize-every``).

What comes out is spelled as the ticket type's Param, so ``tickets.create_order`` checks it
as it checks any other, with the same messages. Which keys a type takes is said here and
nowhere else outside the type's own parameter model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SqlTicket:
    """A ticket asked for as one database and the SQL to run (or export) there."""

    db_id: int
    sql: str
    rows: int = 0  # the affected (or exported) rows the submitter expects


def sql_param(plugin_type: str, ask: SqlTicket) -> dict[str, Any]:
    """The Param of a ``plugin_type`` ticket that runs ``ask.sql`` on ``ask.db_id``: an
    export's query, or a data change given as text (DC_COMMON also states its rows)."""
    if plugin_type == "DATA_EXPORT":
        return {
            "DbId": ask.db_id,
            "ExeSQL": ask.sql,
            "Classify": "cli",
            "AffectRows": ask.rows,
            "IgnoreAffectRows": False,
        }
    param: dict[str, Any] = {
        "DbItemList": [{"DbId": ask.db_id}],
        "SqlType": "TEXT",
        "ExecSQL": ask.sql,
    }
    if plugin_type == "DC_COMMON":
        param["EstimateAffectRows"] = ask.rows
    return param


def with_reclaim_cadence(plugin_type: str, param: Any, every: int) -> dict[str, Any] | None:
    """A cleanup's Param that also reclaims space (OPTIMIZE TABLE, VACUUM) every ``every``
    runs; None when the type has no such cadence (only DC_CRON_CLEAR has) or ``param`` is
    not an object."""
    if plugin_type != "DC_CRON_CLEAR" or not isinstance(param, dict):
        return None
    return {**param, "OptimizeTableAfterEveryClearTimes": every}
