"""Schema changes: structure sync (TABLE_SYNC, dms-api.md A.1.7, A.11), schema designs (NDDL:
OpenDMS's own actions, as DMS has none on its API) and lock-free DDL progress (A.10)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from opendms.actions.data_correct import PagedOrderRequest
from opendms.actions.orders import CreateWithParamRequest, OrderIdRequest, dedicated
from opendms.approvals import flow
from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.execution.online import CutOver, OnlineProgress
from opendms.execution.service import ExecutionPlan
from opendms.execution.unit import walk_of
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Long, TenantScoped
from opendms.kinds.struct_sync import KIND, StructSync, SyncDatabase
from opendms.store.models import Database, Instance, Order, SqlJobDetail
from opendms.structure import design
from opendms.structure import service as structure
from opendms.tickets.registry import params_of


class AnalyzeResultRequest(PagedOrderRequest):
    compare_type: Literal[structure.COMPARE_TYPES] | None = None  # type: ignore[valid-type]


def get_struct_sync_job_analyze_result(ctx: Context, req: AnalyzeResultRequest) -> Payload:
    found = structure.analysis(
        ctx.session, ctx.caller, req.order_id, req.compare_type, req.page_number, req.page_size
    )
    return {
        "StructSyncJobAnalyzeResult": {
            "SummaryList": [
                {"CompareType": kind, "Count": count} for kind, count in found.summary.items()
            ],
            "ResultList": [
                {
                    "SourceTableName": t["source"],
                    "TargetTableName": t["target"],
                    "Script": _script(t),
                }
                for t in found.page.items
            ],
        }
    }


def _script(table: dict[str, object]) -> str:
    """A table's DDL as the analysis shows it: how it differs, as comments, then the SQL."""
    differences = table.get("differences") or []
    assert isinstance(differences, list)
    notes = [f"/* {str(d).replace('*/', '* /')} */" for d in differences]
    statements = table.get("statements") or []
    assert isinstance(statements, list)
    return "\n".join([*notes, *(f"{st};" for st in statements)])


def get_struct_sync_exec_sql_detail(ctx: Context, req: PagedOrderRequest) -> Payload:
    found = structure.statements(ctx.session, ctx.caller, req.order_id)
    start = (req.page_number - 1) * req.page_size
    page = found[start : start + req.page_size]
    return {
        "StructSyncExecSqlDetail": {
            "TotalSqlCount": len(found),
            "ExecSql": "".join(f"{st};\n" for st in page),
        }
    }


def submit_struct_sync_order_approval(ctx: Context, req: OrderIdRequest) -> Payload:
    structure.plan_of(ctx.session, ctx.caller, req.order_id, KIND.plugin_type)
    started = flow.submit(ctx.session, ctx.caller, req.order_id)
    return {"WorkflowInstanceId": started.workflow_instance_id}


def execute_struct_sync(ctx: Context, req: OrderIdRequest) -> Payload:
    structure.plan_of(ctx.session, ctx.caller, req.order_id, KIND.plugin_type)
    execution.execute(ctx.session, ctx.caller, req.order_id, ExecutionPlan())
    return {}


def _database(ctx: Context, given: SyncDatabase) -> Payload:
    db = ctx.session.get(Database, given.db_id)
    inst = ctx.session.get(Instance, db.instance_id) if db is not None else None
    info: Payload = {"DbId": given.db_id, "Logic": given.logic}
    if db is not None and inst is not None and db.tid == ctx.caller.tid:
        info |= {
            "DbType": inst.instance_type,
            "EnvType": inst.env_type,
            "SearchName": queries.search_name(db, inst),
        }
    return info


def get_struct_sync_order_detail(ctx: Context, req: OrderIdRequest) -> Payload:
    order, _ = structure.plan_of(ctx.session, ctx.caller, req.order_id, KIND.plugin_type)
    params = params_of(order, StructSync)
    source, target = _database(ctx, params.source), _database(ctx, params.target)
    return {
        "StructSyncOrderDetail": {
            "IgnoreError": params.ignore_error,
            "SourceType": "DATABASE",
            "TargetType": "DATABASE",
            "SourceDatabaseInfo": source,
            "TargetDatabaseInfo": target,
            "SourceVersionInfo": {"VersionId": ""},
            "TargetVersionInfo": {"VersionId": ""},
            "TableInfoList": [
                {"SourceTableName": p.source, "TargetTableName": p.target} for p in params.pairs()
            ],
        }
    }


def get_struct_sync_job_detail(ctx: Context, req: OrderIdRequest) -> Payload:
    found = structure.sync_job(ctx.session, ctx.caller, req.order_id)
    detail: Payload = {
        "JobStatus": found.status,
        "Message": found.message,
        "TableCount": found.tables,
        "TableAnalyzed": found.analyzed,
        "SqlCount": found.statements,
        "ExecuteCount": found.executed,
        "SecurityRule": "WITH_APPROVE",
    }
    if found.group_id is not None:
        detail["DBTaskGroupId"] = found.group_id
    return {"StructSyncJobDetail": detail}


class OnlineDdlProgressRequest(TenantScoped):
    job_detail_id: Annotated[Long, Field(ge=1)]


def get_online_ddl_progress(ctx: Context, req: OnlineDdlProgressRequest) -> Payload:
    detail = ctx.session.get(SqlJobDetail, req.job_detail_id)
    sql_job = execution.sql_job(ctx.session, ctx.caller, detail.sql_job_id) if detail else None
    if detail is None or sql_job is None:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"JobDetailId {req.job_detail_id} does not exist."
        )
    order = ctx.session.get(Order, sql_job.order_id)
    ddl = order is not None and walk_of(order) == "ddl"
    if not ddl and not OnlineProgress.stored(detail.progress):
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"JobDetailId {req.job_detail_id} is no DDL statement run on a live table.",
        )
    progress = OnlineProgress.loads(detail.progress)  # INIT until it starts
    cut = CutOver()  # OpenDMS's cut-over settings: the same for every statement
    return {
        "OnlineDDLTaskDetail": {
            "JobStatus": str(progress.status),
            "StatusDesc": progress.message,
            "CopyTotal": progress.copy_total,
            "CopyCount": progress.copy_count,
            "ProgressRatio": f"{progress.ratio:.4f}",
            "DelaySeconds": int(progress.delay_seconds),
            "CopyChunkMode": "AUTO",
            "CopyChunkSize": progress.chunk_size,
            "CleanStrategy": "NOTHING" if cut.keep_old else "DROP",
            "CutoverLockTimeSeconds": cut.lock_seconds,
            "CutoverFailRetryTimes": cut.retries,
            "CutoverWindowStartTime": cut.window_start,
            "CutoverWindowEndTime": cut.window_end,
        }
    }


# ------------------------------------------------------------------ schema designs (NDDL)


class UpdateSchemaDesignRequest(OrderIdRequest):
    script: Annotated[str, Field(min_length=1, max_length=design.MAX_SCRIPT_BYTES)]


def _findings(found: list[dict[str, object]]) -> list[Payload]:
    return [
        {
            "Rule": f["code"],
            "Level": f["level"],
            "Statement": f["statement"],
            "Line": f["line"],
            "Message": f["message"],
        }
        for f in found
    ]


def update_schema_design(ctx: Context, req: UpdateSchemaDesignRequest) -> Payload:
    saved = design.update_design(ctx.session, ctx.caller, req.order_id, req.script)
    return {"Version": saved.version, "ReviewResults": _findings(saved.findings)}


def _stage(view: design.StageView) -> Payload:
    stage, plan = view.stage, view.plan
    return {
        "Position": stage.position,
        "DbId": stage.db.db_id,
        "SearchName": queries.search_name(stage.db, stage.inst),
        "EnvType": stage.inst.env_type,
        "State": view.state,
        "Message": plan.message if plan is not None else "",
        "Statements": list(plan.statements) if plan is not None else [],
        "Tables": [
            {
                "TableName": t["target"],
                "CompareType": t["compare_type"],
                "Drift": bool(t.get("drift", False)),
                "Differences": list(t.get("differences") or []),
            }
            for t in (plan.tables if plan is not None else [])
        ],
    }


def get_schema_design_detail(ctx: Context, req: OrderIdRequest) -> Payload:
    view = design.detail(ctx.session, ctx.caller, req.order_id)
    found = view.design
    return {
        "SchemaDesignDetail": {
            "OrderId": view.order.order_id,
            "Script": found.script if found is not None else "",
            "Version": found.version if found is not None else 0,
            "State": str(found.state) if found is not None else "NONE",
            "Message": found.message if found is not None else "",
            "Tables": list(found.tables) if found is not None else [],
            "ReviewResults": _findings(found.findings) if found is not None else [],
            "Stages": [_stage(v) for v in view.stages],
        }
    }


class ExecuteSchemaDesignRequest(OrderIdRequest):
    db_id: Annotated[Long, Field(ge=1)]


def execute_schema_design(ctx: Context, req: ExecuteSchemaDesignRequest) -> Payload:
    job = design.execute_stage(ctx.session, ctx.caller, req.order_id, req.db_id)
    return {"DBTaskGroupId": job.job_id}


def compare_schema_design(ctx: Context, req: OrderIdRequest) -> Payload:
    design.compare_again(ctx.session, ctx.caller, req.order_id)
    return {}


ACTIONS = (
    Action(
        "CreateStructSyncOrder",
        CreateWithParamRequest,
        dedicated(KIND.plugin_type),
        Access.CREATE,
        "File a structure sync ticket: make a target database's tables match a source's.",
    ),
    Action(
        "GetStructSyncJobAnalyzeResult",
        AnalyzeResultRequest,
        get_struct_sync_job_analyze_result,
        Access.GET,
        "How each table of a structure sync compares, and the DDL that makes it match.",
    ),
    Action(
        "GetStructSyncExecSqlDetail",
        PagedOrderRequest,
        get_struct_sync_exec_sql_detail,
        Access.GET,
        "The DDL a structure sync runs, paged.",
    ),
    Action(
        "SubmitStructSyncOrderApproval",
        OrderIdRequest,
        submit_struct_sync_order_approval,
        Access.UPDATE,
        "Send a compared structure sync for approval.",
    ),
    Action(
        "ExecuteStructSync",
        OrderIdRequest,
        execute_struct_sync,
        Access.UPDATE,
        "Run an approved structure sync on its target.",
    ),
    Action(
        "GetStructSyncOrderDetail",
        OrderIdRequest,
        get_struct_sync_order_detail,
        Access.GET,
        "A structure sync's source, target and tables.",
    ),
    Action(
        "GetStructSyncJobDetail",
        OrderIdRequest,
        get_struct_sync_job_detail,
        Access.GET,
        "Where a structure sync stands: compared, approved, executed.",
    ),
    Action(
        "GetOnlineDDLProgress",
        OnlineDdlProgressRequest,
        get_online_ddl_progress,
        Access.GET,
        "How far a DDL statement run on a live table has got (JobDetailId).",
    ),
    Action(
        "UpdateSchemaDesign",
        UpdateSchemaDesignRequest,
        update_schema_design,
        Access.UPDATE,
        "Give a schema design ticket its design (DDL), reviewed at once (OpenDMS extension).",
        extension=True,
    ),
    Action(
        "GetSchemaDesignDetail",
        OrderIdRequest,
        get_schema_design_detail,
        Access.GET,
        "A schema design: its script, review, and what each stage lacks (OpenDMS extension).",
        extension=True,
    ),
    Action(
        "ExecuteSchemaDesign",
        ExecuteSchemaDesignRequest,
        execute_schema_design,
        Access.UPDATE,
        "Run a schema design on one stage's database (OpenDMS extension).",
        extension=True,
    ),
    Action(
        "CompareSchemaDesign",
        OrderIdRequest,
        compare_schema_design,
        Access.UPDATE,
        "Compare a schema design with its stages again (OpenDMS extension).",
        extension=True,
    ),
)
