"""Historical-data cleanup tickets after approval: their schedule and run history
(dms-api.md A.5)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from opendms.actions.orders import OrderIdRequest
from opendms.execution import cleanup
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Int, wire_time, wire_times
from opendms.kinds.cron_clear import config_fields

PageNumber = Annotated[Int, Field(ge=1, le=10**9)]
PageSize = Annotated[Int, Field(ge=1, le=1000)]


def get_data_cron_clear_config(ctx: Context, req: OrderIdRequest) -> Payload:
    found = cleanup.config(ctx.session, ctx.caller, req.order_id)
    shown = {
        **wire_times(config_fields(found)),
        "CronCallTimes": str(found.call_times),
        "Duration": str(found.duration_hours),
        "OptimizeTableAfterEveryClearTimes": found.optimize_every,
        "CurrentClearTaskCount": found.reclaims,
    }
    return {"DataCronClearConfig": {k: v for k, v in shown.items() if v is not None}}


class HistoryRequest(OrderIdRequest):
    page_number: PageNumber = 1
    page_size: PageSize = 20


def get_data_cron_clear_task_detail_list(ctx: Context, req: HistoryRequest) -> Payload:
    runs, total = cleanup.history(
        ctx.session, ctx.caller, req.order_id, req.page_number, req.page_size
    )
    return {
        "DataCronClearTaskDetailList": [
            {
                "DBTaskGroupId": r.run.job_id,
                "jobStatus": r.status,
                "ActualAffectRows": r.rows,
                "CreateTime": wire_time(r.run.created_at),
            }
            for r in runs
        ],
        "TotalCount": total,
    }


ACTIONS = (
    Action(
        "GetDataCronClearConfig",
        OrderIdRequest,
        get_data_cron_clear_config,
        Access.GET,
        "A cleanup ticket's schedule: cron, status, runs so far, next run, window, OPTIMIZE.",
    ),
    Action(
        "GetDataCronClearTaskDetailList",
        HistoryRequest,
        get_data_cron_clear_task_detail_list,
        Access.LIST,
        "A cleanup ticket's runs, newest first: task group, status, rows deleted, time.",
    ),
)
