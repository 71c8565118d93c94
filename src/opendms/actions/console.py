"""The SQL console on the wire: ``ExecuteScript`` (dms-api.md A.10)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from opendms.console import service as console
from opendms.errors import DmsError, ErrorCode
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Bool, Long, TenantScoped


class ExecuteScriptRequest(TenantScoped):
    db_id: Annotated[Long, Field(ge=1)]
    logic: Bool
    script: Annotated[str, Field(min_length=1)]


def execute_script(ctx: Context, req: ExecuteScriptRequest) -> Payload:
    if req.logic:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            "Logic=true: OpenDMS has no logical databases; give a DbId with Logic=false.",
        )
    results = console.execute_script(ctx.session, ctx.means, ctx.caller, req.db_id, req.script)
    return {"Results": [r.wire() for r in results]}


ACTIONS = (
    Action(
        "ExecuteScript",
        ExecuteScriptRequest,
        execute_script,
        Access.UPDATE,
        "Run a script on a database now: reads under QUERY permission (capped, masked), "
        "changes where the rule set allows; every statement audited.",
    ),
)
