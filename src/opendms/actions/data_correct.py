"""Data-change tickets after intake: precheck, execution and their results (dms-api.md A.3,
A.10's ListSQLExecAuditLog)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from opendms.actions.action_detail import ActionDetail, given
from opendms.actions.orders import OrderIdRequest, Params
from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.execution import files as ticket_files
from opendms.execution import service as execution
from opendms.execution.chunked import HELD, ChunkState, Progress
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import (
    WIRE_TIME,
    Int,
    Long,
    TenantScoped,
    WireTime,
    wire_time,
    wire_times,
)
from opendms.identity import service as identity
from opendms.precheck import service as precheck
from opendms.store.models import (
    Instance,
    PrecheckStatement,
    SqlJobDetail,
    User,
)
from opendms.tickets import service as tickets
from opendms.tickets.params import MAX_SQL_BYTES
from opendms.tickets.registry import kind_of, params_of

PageNumber = Annotated[Int, Field(ge=1, le=10**9)]
PageSize = Annotated[Int, Field(ge=1, le=1000)]
Reason = Annotated[str, Field(min_length=1, max_length=4096)]


# ------------------------------------------------------------------ the ticket's detail


def _order_detail(params: dict[str, Any], actual: int | None, waiver: str | None) -> Payload:
    detail = {
        "ActualAffectRows": actual,
        "IgnoreAffectRows": waiver is not None,  # SkipDataCorrectRowCheck
        "IgnoreAffectRowsReason": waiver,
        "AttachmentName": params.get("AttachmentName"),
        "Classify": params.get("Classify"),
        "EstimateAffectRows": params.get("EstimateAffectRows"),
        "ExeSQL": params.get("ExecSQL"),
        "RbAttachmentName": params.get("RollbackAttachmentName"),
        "RbSQL": params.get("RollbackSQL"),
        "RbSQLType": params.get("RollbackSqlType"),
        "SqlType": params.get("SqlType"),
    }
    return {k: v for k, v in detail.items() if v is not None}


def get_data_correct_order_detail(ctx: Context, req: OrderIdRequest) -> Payload:
    s = ctx.session
    order = tickets.get_order(s, ctx.caller, req.order_id)
    kind = kind_of(order.plugin_type)
    if kind.detail_type is None:
        raise DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"Ticket {order.order_id} is {order.plugin_type}, not a data change.",
        )
    params = params_of(order).wire()
    dbs = tickets.databases_of(s, order.order_id)
    config: Payload = {"DetailType": kind.detail_type}
    config |= wire_times(kind.detail_config(s, ctx.caller, order))
    return {
        "DataCorrectOrderDetail": {
            "Status": execution.detail_status(s, order, precheck.status(s, order)),
            "ExecMode": tickets.exec_mode(order),
            "ConfigDetail": config,
            "DatabaseList": {
                "Database": [
                    {
                        "DbId": db.db_id,
                        "DbType": inst.instance_type,
                        "EnvType": inst.env_type,
                        "Logic": False,
                        "SearchName": queries.search_name(db, inst),
                    }
                    for db, inst in dbs
                ]
            },
            "OrderDetail": _order_detail(
                params, precheck.actual_rows(s, order.order_id), order.row_check_waiver
            ),
            "PreCheckDetail": {
                "TaskCheckDO": [
                    {"CheckStep": v.step, "CheckStatus": v.status, "UserTip": v.tip}
                    for v in precheck.steps(s, order.order_id)
                ]
            },
        }
    }


# ------------------------------------------------------------------ precheck


class PreCheckSqlRequest(OrderIdRequest):
    db_id: Long | None = None
    page_number: PageNumber = 1
    page_size: PageSize = 20


def _statement(st: PrecheckStatement) -> Payload:
    return {
        "SQLReviewQueryKey": str(st.sql_id),
        "CheckSQL": st.sql_text,
        "SqlType": st.sql_type,
        "TableNames": st.table_names,
        "AffectRows": st.affect_rows,
        "DbId": st.db_id,
        "SqlReviewStatus": st.review_status,
    }


def list_data_correct_pre_check_sql(ctx: Context, req: PreCheckSqlRequest) -> Payload:
    tickets.get_order(ctx.session, ctx.caller, req.order_id)
    found = precheck.statements(
        ctx.session, req.order_id, req.db_id, req.page_number, req.page_size
    )
    return {"PreCheckSQLList": [_statement(st) for st in found.items]}


class PagedOrderRequest(OrderIdRequest):
    page_number: PageNumber = 1
    page_size: PageSize = 20


def list_data_correct_pre_check_db(ctx: Context, req: PagedOrderRequest) -> Payload:
    s = ctx.session
    tickets.get_order(s, ctx.caller, req.order_id)
    found = precheck.databases(s, req.order_id, req.page_number, req.page_size)
    out = []
    for db, count in found.items:
        inst = s.get(Instance, db.instance_id)
        out.append(
            {
                "DbId": db.db_id,
                "SearchName": queries.search_name(db, inst) if inst else db.schema_name,
                "SqlNum": count,
            }
        )
    return {"PreCheckDBList": out}


def retry_data_correct_pre_check(ctx: Context, req: OrderIdRequest) -> Payload:
    precheck.retry(ctx.session, ctx.caller, req.order_id)
    return {}


class SkipRowCheckRequest(OrderIdRequest):
    reason: Reason


def skip_data_correct_row_check(ctx: Context, req: SkipRowCheckRequest) -> Payload:
    precheck.skip_row_check(ctx.session, ctx.caller, req.order_id, req.reason)
    return {}


class ModifyExecSqlRequest(OrderIdRequest):
    exec_sql: Annotated[str, Field(min_length=1, max_length=MAX_SQL_BYTES)] = Field(alias="ExecSQL")


def modify_data_correct_exec_sql(ctx: Context, req: ModifyExecSqlRequest) -> Payload:
    precheck.modify_sql(ctx.session, ctx.caller, req.order_id, req.exec_sql)
    return {}


# ------------------------------------------------------------------ execution


def _plan_time(key: str) -> Any:
    """A time of the plan (startTime, endTime), checked before the flags are."""
    return BeforeValidator(lambda value: execution.checked_time(given(value), key))


def _flag(key: str) -> Any:
    """true or false, as JSON or as text in any case."""

    def read(value: object) -> bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise DmsError(
                ErrorCode.INVALID_PARAMETER, f"ActionDetail.{key} must be true or false."
            )
        return value

    return BeforeValidator(read)


class ExecuteActionDetail(ActionDetail):
    """ExecuteDataCorrect's ActionDetail: when (UTC, like 2026-01-31 23:00:00; no start: now;
    an end: not started after it) and how (the statements of a database in one transaction;
    a backup of what the change overwrites)."""

    takes: ClassVar[str] = "startTime, endTime, transaction and backupData"

    start_time: Annotated[str | None, _plan_time("startTime")] = None
    end_time: Annotated[str | None, _plan_time("endTime")] = None
    transaction: Annotated[bool, _flag("transaction")] = False
    backup_data: Annotated[bool, _flag("backupData")] = False

    def plan(self) -> execution.ExecutionPlan:
        return execution.checked_plan(
            start=self.start_time,
            end=self.end_time,
            transaction=self.transaction,
            backup=self.backup_data,
        )


class ExecuteRequest(OrderIdRequest):
    action_detail: Params | None = None


def execute_data_correct(ctx: Context, req: ExecuteRequest) -> Payload:
    plan = ExecuteActionDetail.read(req.action_detail).plan()
    execution.execute(ctx.session, ctx.caller, req.order_id, plan)
    return {}


def get_data_correct_task_detail(ctx: Context, req: OrderIdRequest) -> Payload:
    s = ctx.session
    tickets.get_order(s, ctx.caller, req.order_id)
    job = execution.execute_job(s, req.order_id)
    if job is None:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID, f"Ticket {req.order_id} has not been executed."
        )
    detail: Payload = {
        "DBTaskGroupId": job.job_id,
        "CreateTime": wire_time(job.created_at),
        "ActualAffectRows": execution.task_affected_rows(s, job.job_id),
        "jobStatus": execution.group_status(s, job.job_id),
    }
    chunked = execution.chunk_progress(s, job.job_id)
    if chunked:  # a lock-free change: how far, how fast, and whether it holds back
        held = next((p for p in chunked if p.state in HELD), None)
        etas = [p.eta_seconds for p in chunked]
        detail.update(
            {
                "EstimateAffectRows": sum(p.estimate or 0 for p in chunked),
                "ChunkCount": sum(p.chunks for p in chunked),
                "EtaSeconds": None if None in etas else sum(e or 0 for e in etas),
                "ThrottleState": held.state if held else ChunkState.RUNNING,
                "ThrottleReason": held.why if held else "",
            }
        )
    return {"DataCorrectTaskDetail": detail}


class TaskGroupRequest(TenantScoped):
    db_task_group_id: Annotated[Long, Field(ge=1)] = Field(alias="DBTaskGroupId")
    page_number: PageNumber = 1
    page_size: PageSize = 20


def list_db_task_sql_job(ctx: Context, req: TaskGroupRequest) -> Payload:
    s = ctx.session
    found = execution.sql_jobs(s, ctx.caller, req.db_task_group_id, req.page_number, req.page_size)
    out = []
    for job, db in found.items:
        inst = s.get(Instance, db.instance_id)
        out.append(
            {
                "JobId": job.sql_job_id,
                "DbTaskGroupId": job.group_id,
                "DbId": job.db_id,
                "DbSearchName": queries.search_name(db, inst) if inst else db.schema_name,
                "Logic": False,
                "JobType": job.job_type,
                "Status": job.status,
                "Transactional": job.transactional,
                "Comment": f"backup {'on' if job.backup else 'off'}",
                "CreateTime": wire_time(job.created_at),
                "LastExecTime": wire_time(job.last_exec_at),
            }
        )
    return {"DBTaskSQLJobList": out, "TotalCount": found.total}


class SqlJobRequest(TenantScoped):
    job_id: Annotated[Long, Field(ge=1)]


class PagedSqlJobRequest(SqlJobRequest):
    page_number: PageNumber = 1
    page_size: PageSize = 20


def _detail(d: SqlJobDetail, db_id: int) -> Payload:
    row = {
        "JobDetailId": d.detail_id,
        "JobId": d.sql_job_id,
        "SqlId": d.sql_id,
        "DbId": db_id,
        "Logic": False,
        "CurrentSql": d.sql_text,
        "SqlType": d.sql_type,
        "Status": d.status,
        "AffectRows": d.affect_rows,
        "ExecuteCount": d.execute_count,
        "TimeDelay": d.time_ms,
        "StartTime": wire_time(d.started_at),
        "EndTime": wire_time(d.ended_at),
        "Log": d.log,
        "Skip": False,
    }
    progress = Progress.of(d.progress)
    if progress is not None:  # a chunked statement
        row.update(chunk_fields(progress))
    return {k: v for k, v in row.items() if v is not None}


def chunk_fields(progress: Progress) -> Payload:
    """What the SQL-job reads add to a chunked statement."""
    return {
        "ChunkState": progress.state,
        "ChunkStateReason": progress.why,
        "ChunkCount": progress.chunks,
        "ChunkSize": progress.size,
        "CurrentKey": json.dumps(progress.after, default=str) if progress.after else "",
        "EstimateAffectRows": progress.estimate,
        "RowsPerSecond": round(progress.rows_per_second, 1),
        "EtaSeconds": progress.eta_seconds,
        "P99ChunkMs": progress.p99_ms,
        "MaxChunkMs": progress.max_chunk_ms,
    }


def list_db_task_sql_job_detail(ctx: Context, req: PagedSqlJobRequest) -> Payload:
    s = ctx.session
    job = execution.sql_job(s, ctx.caller, req.job_id)
    found = execution.sql_job_details(s, ctx.caller, req.job_id, req.page_number, req.page_size)
    return {
        "DBTaskSQLJobDetailList": [_detail(d, job.db_id) for d in found.items],
        "TotalCount": found.total,
    }


def get_db_task_sql_job_log(ctx: Context, req: SqlJobRequest) -> Payload:
    return {"Log": execution.sql_job(ctx.session, ctx.caller, req.job_id).log}


class PauseRequest(OrderIdRequest):
    type: Literal["ALL", "SINGLE"]
    job_id: Annotated[Long, Field(ge=1)] | None = None


def pause_data_correct_sql_job(ctx: Context, req: PauseRequest) -> Payload:
    execution.pause(ctx.session, ctx.caller, req.order_id, req.type, req.job_id)
    return {}


def restart_data_correct_sql_job(ctx: Context, req: PauseRequest) -> Payload:
    execution.restart(ctx.session, ctx.caller, req.order_id, req.type, req.job_id)
    return {}


# ------------------------------------------------------------------ files


def _link(ctx: Context, kind: str, ident: int) -> str:
    return f"{ctx.base_url}/downloads/{kind}/{ident}?{ctx.means.links.query(f'{kind}:{ident}')}"


class BackupFilesRequest(OrderIdRequest):
    action_detail: Params | None = None  # accepted and unused, as DMS documents it


def get_data_correct_backup_files(ctx: Context, req: BackupFilesRequest) -> Payload:
    jobs = ticket_files.backup_jobs(ctx.session, ctx.caller, req.order_id)
    return {
        "DataCorrectBackupFiles": {"FileUrl": [_link(ctx, "backup", j.sql_job_id) for j in jobs]}
    }


def _ticket_file(kind: str) -> Any:
    def handler(ctx: Context, req: OrderIdRequest) -> Payload:
        found = ticket_files.has_file(ctx.session, ctx.means.files, ctx.caller, req.order_id, kind)
        return {"FileUrl": _link(ctx, kind, req.order_id) if found else ""}

    return handler


# ------------------------------------------------------------------ audit

AUDIT_WINDOW = timedelta(days=31)


class AuditLogRequest(TenantScoped):
    start_time: WireTime
    end_time: WireTime
    exec_state: Literal["FAIL", "NOEXE", "RUNNING", "CANCEL", "SUCCESS"] | None = None
    op_user_name: Annotated[str, Field(max_length=256)] | None = None
    search_name: Annotated[str, Field(max_length=256)] | None = None
    sql_type: Annotated[str, Field(max_length=64)] | None = None
    page_number: PageNumber = 1
    page_size: Annotated[Int, Field(ge=1, le=100)] = 10


def _remark(remark: str, by: User | None) -> str:
    """The audit row's remark, naming whose access key made the call when it acted for the
    row's user (RealLoginUserUid): the SDK's audit row has no field of its own for that."""
    if by is None:
        return remark
    called = f"called by {by.nick_name or by.uid} (UserId {by.user_id}) with RealLoginUserUid"
    return f"{remark}; {called}" if remark else called


def list_sql_exec_audit_log(ctx: Context, req: AuditLogRequest) -> Payload:
    start = datetime.strptime(req.start_time, WIRE_TIME)
    end = datetime.strptime(req.end_time, WIRE_TIME)
    if end < start:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "EndTime is before StartTime.")
    if end - start > AUDIT_WINDOW:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "StartTime to EndTime spans more than 31 days.")
    found = execution.audit_log(
        ctx.session,
        ctx.caller,
        execution.AuditFilter(
            start=start,
            end=end,
            exec_state=req.exec_state,
            user_name=req.op_user_name,
            search=req.search_name,
            sql_type=req.sql_type,
        ),
        req.page_number,
        req.page_size,
    )
    callers = identity.users_by_id(ctx.session, [a.by_user_id or 0 for a, _, _ in found.items])
    rows = []
    for audit, user, inst in found.items:
        rows.append(
            {
                "UserId": user.user_id,
                "UserName": user.nick_name,
                "InstanceId": audit.instance_id,
                "InstanceName": inst.alias if inst else "",
                "DbId": audit.db_id,
                "SchemaName": audit.schema_name,
                "Logic": False,
                "OpTime": wire_time(audit.op_time),
                "SQL": audit.sql_text,
                "SQLType": audit.sql_type,
                "AffectRows": audit.affect_rows if audit.affect_rows is not None else 0,
                "ElapsedTime": audit.elapsed_ms,
                "ExecState": audit.exec_state,
                "Remark": _remark(audit.remark, callers.get(audit.by_user_id or 0)),
            }
        )
    return {"SQLExecAuditLogList": {"SQLExecAuditLog": rows}, "TotalCount": found.total}


ACTIONS = (
    Action(
        "GetDataCorrectOrderDetail",
        OrderIdRequest,
        get_data_correct_order_detail,
        Access.GET,
        "A data-change ticket: its SQL, databases, precheck steps and fine-grained status.",
    ),
    Action(
        "ListDataCorrectPreCheckSQL",
        PreCheckSqlRequest,
        list_data_correct_pre_check_sql,
        Access.LIST,
        "The statements the precheck found, with kind, tables, rows and review verdict.",
    ),
    Action(
        "ListDataCorrectPreCheckDB",
        PagedOrderRequest,
        list_data_correct_pre_check_db,
        Access.LIST,
        "The ticket's databases and how many statements each runs.",
    ),
    Action(
        "RetryDataCorrectPreCheck",
        OrderIdRequest,
        retry_data_correct_pre_check,
        Access.UPDATE,
        "Run a data-change ticket's precheck again.",
    ),
    Action(
        "SkipDataCorrectRowCheck",
        SkipRowCheckRequest,
        skip_data_correct_row_check,
        Access.UPDATE,
        "Waive a ROW_CHECK mismatch between counted and estimated rows, with a reason.",
    ),
    Action(
        "ModifyDataCorrectExecSQL",
        ModifyExecSqlRequest,
        modify_data_correct_exec_sql,
        Access.UPDATE,
        "Replace a ticket's SQL before submission; the precheck runs again.",
    ),
    Action(
        "ExecuteDataCorrect",
        ExecuteRequest,
        execute_data_correct,
        Access.UPDATE,
        "Start an approved data change, now or in a window, with backup and transaction.",
    ),
    Action(
        "GetDataCorrectTaskDetail",
        OrderIdRequest,
        get_data_correct_task_detail,
        Access.GET,
        "A ticket's execution: its task group, status and rows changed.",
    ),
    Action(
        "ListDBTaskSQLJob",
        TaskGroupRequest,
        list_db_task_sql_job,
        Access.LIST,
        "The SQL jobs (one per database) of a ticket's execution.",
    ),
    Action(
        "ListDBTaskSQLJobDetail",
        PagedSqlJobRequest,
        list_db_task_sql_job_detail,
        Access.LIST,
        "Each statement of a SQL job: rows, time, attempts, status and log.",
    ),
    Action(
        "GetDBTaskSQLJobLog",
        SqlJobRequest,
        get_db_task_sql_job_log,
        Access.GET,
        "The log of one SQL job.",
    ),
    Action(
        "PauseDataCorrectSQLJob",
        PauseRequest,
        pause_data_correct_sql_job,
        Access.UPDATE,
        "Pause a ticket's SQL jobs (Type ALL) or one (SINGLE, JobId) between statements or chunks.",
    ),
    Action(
        "RestartDataCorrectSQLJob",
        PauseRequest,
        restart_data_correct_sql_job,
        Access.UPDATE,
        "Go on with paused SQL jobs, or retry failed ones; nothing committed runs twice.",
    ),
    Action(
        "GetDataCorrectBackupFiles",
        BackupFilesRequest,
        get_data_correct_backup_files,
        Access.GET,
        "Signed links to rollback scripts written from the execution's backups.",
    ),
    Action(
        "GetDataCorrectRollbackFile",
        OrderIdRequest,
        _ticket_file("rollback"),
        Access.GET,
        "A signed link to the rollback SQL the committer gave (empty when none).",
    ),
    Action(
        "GetDataCorrectSQLFile",
        OrderIdRequest,
        _ticket_file("sql"),
        Access.GET,
        "A signed link to the SQL the ticket was filed with.",
    ),
    Action(
        "ListSQLExecAuditLog",
        AuditLogRequest,
        list_sql_exec_audit_log,
        Access.LIST,
        "Every statement run on a target: who, when, where, SQL, rows, time, result.",
    ),
)
