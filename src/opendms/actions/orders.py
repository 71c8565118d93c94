"""Ticket intake and reads (dms-api.md A.1, A.2.1, A.2.2, A.2.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from opendms.approvals import views
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import (
    WIRE_TIME,
    CommaIds,
    JsonText,
    Long,
    TenantScoped,
    WireTime,
    wire_time,
)
from opendms.identity import service as identity
from opendms.kinds import chunked, cron_clear, data_correct, data_export, data_import
from opendms.store.models import Attachment, Order
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets

CommentText = Annotated[str, Field(min_length=1, max_length=4096)]
Key = Annotated[str, Field(max_length=64)]
Params = Annotated[dict[str, Any], JsonText]
UserIdList = Annotated[
    list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(max_length=100), JsonText
]


class _Create(TenantScoped):
    comment: CommentText
    attachment_key: Key | None = None


class CreateOrderRequest(_Create):
    plugin_type: Annotated[str, Field(min_length=1, max_length=64)]
    plugin_param: Params
    related_user_list: CommaIds | None = None


def create_order(ctx: Context, req: CreateOrderRequest) -> Payload:
    order = tickets.create_order(
        ctx.session,
        ctx.caller,
        req.plugin_type,
        req.plugin_param,
        comment=req.comment,
        related_user_ids=req.related_user_list or [],
        attachment_key=req.attachment_key,
        camel_case=True,
        label="PluginParam",
    )
    return {"CreateOrderResult": {"OrderIds": [order.order_id]}}


class _WithParam(_Create):
    param: Params
    related_user_list: UserIdList | None = None


class CreateWithParamRequest(_WithParam):
    pass


def dedicated(plugin_type: str) -> Any:
    """The handler of a Create…Order call dedicated to one ticket type (Param, not
    PluginParam; the new ticket's id as a list)."""

    def handler(ctx: Context, req: _WithParam) -> Payload:
        order = tickets.create_order(
            ctx.session,
            ctx.caller,
            plugin_type,
            req.param,
            comment=req.comment,
            related_user_ids=req.related_user_list or [],
            attachment_key=req.attachment_key,
        )
        return {"CreateOrderResult": [order.order_id]}

    return handler


class CreateDataExportOrderRequest(_Create):
    plugin_param: Params
    related_user_list: UserIdList | None = None
    parent_id: Long | None = None


def create_data_export_order(ctx: Context, req: CreateDataExportOrderRequest) -> Payload:
    order = tickets.create_order(
        ctx.session,
        ctx.caller,
        data_export.KIND.plugin_type,
        req.plugin_param,
        comment=req.comment,
        related_user_ids=req.related_user_list or [],
        attachment_key=req.attachment_key,
        parent_id=req.parent_id,
        label="PluginParam",
    )
    return {"CreateOrderResult": {"CreateOrderResult": [order.order_id]}}


# ------------------------------------------------------------------ reads


class OrderIdRequest(TenantScoped):
    order_id: Annotated[Long, Field(ge=1)]


def get_order_base_info(ctx: Context, req: OrderIdRequest) -> Payload:
    order = tickets.get_order(ctx.session, ctx.caller, req.order_id)
    related = tickets.related_ids(order)
    people = identity.users_by_id(ctx.session, [order.committer_id, *related])
    committer = people.get(order.committer_id)
    attachment = ctx.session.get(Attachment, order.attachment_key) if order.attachment_key else None
    info: Payload = {
        "OrderId": order.order_id,
        "PluginType": order.plugin_type,
        "Comment": order.comment,
        "Committer": committer.nick_name if committer else "",
        "CommitterId": order.committer_id,
        "CreateTime": wire_time(order.created_at),
        "LastModifyTime": wire_time(order.updated_at),
        "StatusCode": order.status_code,
        "StatusDesc": tickets.status_desc(ctx.session, order),
        "RelatedUserList": {"UserIds": [str(u) for u in related]},
        "RelatedUserNickList": {"UserNicks": [people[u].nick_name for u in related if u in people]},
        "WorkflowInstanceId": order.workflow_instance_id,
        "WorkflowStatusDesc": views.status_line(ctx.session, order),
        "AttachmentKey": order.attachment_key,
        "OriginAttachmentName": attachment.file_name if attachment else None,
    }
    return {"OrderBaseInfo": {k: v for k, v in info.items() if v is not None}}


class ListOrdersRequest(TenantScoped):
    order_result_type: Literal[
        "AS_ADMIN", "AS_COMMITTER", "AS_HANDLER", "AS_OWNER", "AS_Related"
    ] = "AS_COMMITTER"
    order_status: Literal["ALL", "FINISHED", "RUNNING"] | None = None
    plugin_type: Annotated[str, Field(max_length=64)] | None = None
    search_content: Annotated[str, Field(max_length=256)] | None = None
    search_date_type: Literal["CREATE_TIME", "MODIFY_TIME"] | None = None
    start_time: WireTime | None = None
    end_time: WireTime | None = None
    page_number: Annotated[Long, Field(ge=1, le=10**9)] = 1
    page_size: Annotated[Long, Field(ge=1, le=100)] = 10


def _row(order: Order, nick: str, desc: str) -> Payload:
    return {
        "OrderId": order.order_id,
        "PluginType": order.plugin_type,
        "Comment": order.comment,
        "Committer": nick,
        "CommitterId": order.committer_id,
        "CreateTime": wire_time(order.created_at),
        "LastModifyTime": wire_time(order.updated_at),
        "StatusCode": order.status_code,
        "StatusDesc": desc,
    }


def list_orders(ctx: Context, req: ListOrdersRequest) -> Payload:
    found = tickets.list_orders(
        ctx.session,
        ctx.caller,
        tickets.OrderFilter(
            scope=req.order_result_type,
            status=req.order_status,
            plugin_type=req.plugin_type,
            search=req.search_content,
            date_field=req.search_date_type or "CREATE_TIME",
            start=datetime.strptime(req.start_time, WIRE_TIME) if req.start_time else None,
            end=datetime.strptime(req.end_time, WIRE_TIME) if req.end_time else None,
        ),
        req.page_number,
        req.page_size,
    )
    people = identity.users_by_id(ctx.session, [o.committer_id for o in found.items])
    descs = tickets.status_descs(ctx.session, found.items)
    return {
        "TotalCount": found.total,
        "Orders": {
            "Order": [
                _row(
                    o,
                    people[o.committer_id].nick_name if o.committer_id in people else "",
                    descs[o.order_id],
                )
                for o in found.items
            ]
        },
    }


class CloseOrderRequest(OrderIdRequest):
    close_reason: Annotated[str, Field(min_length=1, max_length=4096)]


def close_order(ctx: Context, req: CloseOrderRequest) -> Payload:
    lifecycle.close(ctx.session, ctx.caller, req.order_id, req.close_reason)
    return {}


ACTIONS = (
    Action(
        "CreateOrder",
        CreateOrderRequest,
        create_order,
        Access.CREATE,
        "File a ticket of any supported PluginType (camelCase PluginParam).",
    ),
    Action(
        "CreateDataCorrectOrder",
        CreateWithParamRequest,
        dedicated(data_correct.KIND.plugin_type),
        Access.CREATE,
        "File a regular data change ticket.",
    ),
    Action(
        "CreateFreeLockCorrectOrder",
        CreateWithParamRequest,
        dedicated(chunked.KIND.plugin_type),
        Access.CREATE,
        "File a lock-free batched data change ticket.",
    ),
    Action(
        "CreateDataCronClearOrder",
        CreateWithParamRequest,
        dedicated(cron_clear.KIND.plugin_type),
        Access.CREATE,
        "File a scheduled historical-data cleanup ticket.",
    ),
    Action(
        "CreateDataImportOrder",
        CreateWithParamRequest,
        dedicated(data_import.KIND.plugin_type),
        Access.CREATE,
        "File a data import ticket for an uploaded file.",
    ),
    Action(
        "CreateDataExportOrder",
        CreateDataExportOrderRequest,
        create_data_export_order,
        Access.CREATE,
        "File a query export ticket.",
    ),
    Action(
        "GetOrderBaseInfo",
        OrderIdRequest,
        get_order_base_info,
        Access.GET,
        "A ticket's header, if the caller may see it.",
    ),
    Action(
        "ListOrders",
        ListOrdersRequest,
        list_orders,
        Access.LIST,
        "Tickets by scope, status, type, text and time, paged.",
    ),
    Action(
        "CloseOrder",
        CloseOrderRequest,
        close_order,
        Access.UPDATE,
        "Abandon a ticket that has not finished.",
    ),
)
