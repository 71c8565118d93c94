"""Export tickets after intake: run, follow, download (dms-api.md A.4)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field

from opendms.actions.action_detail import ActionDetail, given
from opendms.actions.orders import OrderIdRequest, Params
from opendms.errors import DmsError, ErrorCode
from opendms.exports import service as exports
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Long
from opendms.kinds.data_export import DataExport
from opendms.precheck import service as precheck
from opendms.store.models import PrecheckStatement
from opendms.tickets import service as tickets
from opendms.tickets.registry import params_of


def _transaction(value: object) -> object:
    if not isinstance(value, bool | str):
        raise DmsError(ErrorCode.INVALID_PARAMETER, "ActionDetail.transaction must be a boolean.")
    return value


def _start(value: object) -> str | None:
    return str(value) if value else None


Given = Annotated[str | None, BeforeValidator(given)]


class ExportActionDetail(ActionDetail):
    """ExecuteDataExport's ActionDetail: the file's type and encoding, the mode, and when to
    start (UTC, like 2026-01-31 23:00:00; none: now); their names in any case, checked by
    ``exports.checked_plan``. Every export reads one consistent snapshot, so ``transaction``
    is read and changes nothing."""

    takes: ClassVar[str] = "encoding, fileType, mode, startTime, transaction"

    transaction: Annotated[bool | str, BeforeValidator(_transaction)] = False
    file_type: Given = None
    encoding: Given = None
    mode: Given = None
    start_time: Annotated[str | None, BeforeValidator(_start)] = None

    def plan(self) -> exports.ExportPlan:
        return exports.checked_plan(
            file_type=self.file_type,
            encoding=self.encoding,
            mode=self.mode,
            start=self.start_time,
        )


class ExecuteExportRequest(OrderIdRequest):
    action_detail: Params | None = None


def execute_data_export(ctx: Context, req: ExecuteExportRequest) -> Payload:
    plan = ExportActionDetail.read(req.action_detail).plan()
    exports.execute(ctx.session, ctx.caller, req.order_id, plan)
    return {}


def get_data_export_order_detail(ctx: Context, req: OrderIdRequest) -> Payload:
    s = ctx.session
    order = exports.export_ticket(s, ctx.caller, req.order_id, lock=False)
    params = params_of(order, DataExport)
    (db, inst), *_ = tickets.databases_of(s, order.order_id)
    job, _ = exports.latest(s, order)
    return {
        "DataExportOrderDetail": {
            "KeyInfo": _present(
                {
                    "JobId": job.job_id if job is not None else None,
                    "JobStatus": exports.job_status(s, order),
                    "PreCheckId": _precheck_id(s, order.order_id),
                }
            ),
            "OrderDetail": _present(
                {
                    "ActualAffectRows": precheck.actual_rows(s, order.order_id),
                    "Classify": params.classify,
                    "Database": db.schema_name,
                    "DbId": db.db_id,
                    "EnvType": inst.env_type,
                    "ExeSQL": params.exe_sql,
                    "IgnoreAffectRows": params.ignore_affect_rows,
                    "IgnoreAffectRowsReason": params.ignore_affect_rows_reason,
                    "Logic": False,
                }
            ),
        }
    }


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """Without the fields that have no value (the SDK drops a null)."""
    return {k: v for k, v in fields.items() if v is not None}


def _precheck_id(s: Any, order_id: int) -> int | None:
    job = tickets.latest_job(s, order_id, "precheck")
    return job.job_id if job is not None else None


def get_data_export_pre_check_detail(ctx: Context, req: OrderIdRequest) -> Payload:
    s = ctx.session
    order = exports.export_ticket(s, ctx.caller, req.order_id, lock=False)
    page = precheck.statements(s, order.order_id, None, 1, 1000)
    rows: list[PrecheckStatement] = list(page.items)
    return {
        "PreCheckResult": {
            "IgnoreAffectRows": params_of(order, DataExport).ignore_affect_rows,
            "PreCheckDetailList": {
                "PreCheckDetailList": [
                    {"SQL": st.sql_text, "AffectRows": st.affect_rows} for st in rows
                ]
            },
        }
    }


def get_data_export_download_url(ctx: Context, req: OrderIdRequest) -> Payload:
    found, tip = exports.download_url(ctx.session, ctx.caller, req.order_id)
    url = ""
    if found is not None:
        key = exports.link_key(found.job_id, ctx.caller.user_id)
        signed = ctx.means.links.query(key, ttl=ctx.means.export_link_seconds)
        url = f"{ctx.base_url}/exports/{found.job_id}?user={ctx.caller.user_id}&{signed}"
    return {"DownloadURLResult": {"HasResult": found is not None, "TipMessage": tip, "URL": url}}


class ExportJobRequest(OrderIdRequest):
    job_id: Annotated[Long, Field(ge=1)]


def _stop(ctx: Context, req: ExportJobRequest) -> Payload:
    exports.stop(ctx.session, ctx.caller, req.order_id, req.job_id)
    return {}


def restart_data_export_job(ctx: Context, req: ExportJobRequest) -> Payload:
    exports.restart(ctx.session, ctx.caller, req.order_id, req.job_id)
    return {}


def remove_data_export_job(ctx: Context, req: ExportJobRequest) -> Payload:
    exports.remove(ctx.session, ctx.caller, req.order_id, req.job_id)
    return {}


ACTIONS = (
    Action(
        "ExecuteDataExport",
        ExecuteExportRequest,
        execute_data_export,
        Access.UPDATE,
        "Run an approved export: file type, encoding, start time.",
    ),
    Action(
        "GetDataExportOrderDetail",
        OrderIdRequest,
        get_data_export_order_detail,
        Access.GET,
        "An export ticket: its query, database, export status and masked columns.",
    ),
    Action(
        "GetDataExportPreCheckDetail",
        OrderIdRequest,
        get_data_export_pre_check_detail,
        Access.GET,
        "The export's query as prechecked, with the rows it returns.",
    ),
    Action(
        "GetDataExportDownloadURL",
        OrderIdRequest,
        get_data_export_download_url,
        Access.GET,
        "A link to the export's zip, signed for the caller, expiring.",
    ),
    Action(
        "PauseDataExportJob",
        ExportJobRequest,
        _stop,
        Access.UPDATE,
        "Stop a running export (RestartDataExportJob runs it again from the start).",
    ),
    Action(
        "SuspendDataExportJob",
        ExportJobRequest,
        _stop,
        Access.UPDATE,
        "Stop a running export (RestartDataExportJob runs it again from the start).",
    ),
    Action(
        "RestartDataExportJob",
        ExportJobRequest,
        restart_data_export_job,
        Access.UPDATE,
        "Run a failed or stopped export again.",
    ),
    Action(
        "RemoveDataExportJob",
        ExportJobRequest,
        remove_data_export_job,
        Access.UPDATE,
        "Delete an export's file; the ticket keeps its history.",
    ),
)
