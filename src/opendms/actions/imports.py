"""Import tickets' precheck, as DMS shows it (dms-api.md A.5); they run and report through
the data-change actions (ExecuteDataCorrect, ListDBTaskSQLJob…)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from opendms.actions.orders import OrderIdRequest
from opendms.errors import DmsError, ErrorCode
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Int
from opendms.kinds import data_import
from opendms.precheck import service as precheck
from opendms.store.models import Order
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of

Kind = Annotated[str, Field(max_length=32)]


def _import_ticket(ctx: Context, order_id: int) -> Order:
    order = tickets.get_order(ctx.session, ctx.caller, order_id)
    if kind_of(order.plugin_type) is not data_import.KIND:
        raise DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"Ticket {order_id} is {order.plugin_type}, not a data import (DC_BIG_FILE).",
        )
    return order


def list_data_import_sql_type(ctx: Context, req: OrderIdRequest) -> Payload:
    _import_ticket(ctx, req.order_id)
    return {"SqlTypeResult": precheck.import_kinds(ctx.session, req.order_id)}


class ImportDetailRequest(OrderIdRequest):
    page_numer: Annotated[Int, Field(ge=1, le=10**9)] = 1  # DMS spells it so (A.5)
    page_size: Annotated[Int, Field(ge=1, le=1000)] = 20
    sql_type: Kind | None = None
    status_code: Kind | None = None


def list_data_import_sql_pre_check_detail(ctx: Context, req: ImportDetailRequest) -> Payload:
    _import_ticket(ctx, req.order_id)
    found = precheck.import_statements(
        ctx.session, req.order_id, req.sql_type, req.status_code, req.page_numer, req.page_size
    )
    return {
        "PreCheckSQLDetailList": [
            {
                "SqlId": st.sql_id,
                "SqlType": st.sql_type,
                "StatusCode": precheck.IMPORT_STATUS[st.review_status],
                "Skip": False,
            }
            for st in found.items
        ],
        "TotalCount": found.total,
    }


ACTIONS = (
    Action(
        "ListDataImportSQLType",
        OrderIdRequest,
        list_data_import_sql_type,
        Access.LIST,
        "The kinds of statement an import's file holds.",
    ),
    Action(
        "ListDataImportSQLPreCheckDetail",
        ImportDetailRequest,
        list_data_import_sql_pre_check_detail,
        Access.LIST,
        "An import's statements as prechecked, by kind or status.",
    ),
)
