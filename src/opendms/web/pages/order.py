"""A ticket's page: its parameters and SQL, its precheck, its approval and why it waits, its
execution or export as it goes (an htmx-polled fragment), its files, and the acts the
signed-in user may take on it.

The page reads through the API's actions (``page.call``) and, where their replies fall short
(the params of every kind, each statement's review findings, an execution summed up for a
poll every second, what the caller may do), through the services with the action's RAM check
(``page.read``). Which buttons show is ``opendms.abilities``: each act's own rule, asked
without acting. Every act is a POST carrying a one-time token, so a double click acts once.

A schema design (NDDL) has a design section: the design given (UpdateSchemaDesign), its
review, and each stage with what it lacks (GetSchemaDesignDetail), run stage by stage
(ExecuteSchemaDesign) or compared again (CompareSchemaDesign), polled while a comparison or a
run goes. A structure sync (TABLE_SYNC) shows its analysis: each table compared, how it
differs and its DDL, and the DDL it runs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from opendms import abilities
from opendms.catalog import queries
from opendms.errors import DmsError
from opendms.execution import service as execution
from opendms.exports.formats import ENCODINGS, FILE_TYPES
from opendms.gateway.errors import GatewayError
from opendms.gateway.table import Payload
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.precheck import service as precheck
from opendms.store.models import Attachment
from opendms.store.states import OrderStatus
from opendms.structure import design
from opendms.structure import service as structure
from opendms.tickets import service as tickets
from opendms.tickets.kind import TicketKind
from opendms.tickets.registry import kind_of, params_of
from opendms.web.page import Page
from opendms.web.routing import get, post

SQL_SHOWN = 100_000  # characters of a ticket's SQL highlighted on the page; the rest: its file
STATEMENT_SHOWN = 2_000  # characters of one prechecked statement in the list
STATEMENTS_PER_PAGE = 20
RUNS_SHOWN = 10  # a cleanup's latest runs
TABLES_PER_PAGE = 20  # a structure sync's compared tables
SYNC_STATEMENTS = 1000  # a structure sync's DDL shown at once (the action's largest page)
# A schema design's stage states while the work on it goes on: the design section polls.
STAGES_LIVE = frozenset({"COMPARING", "RUNNING"})
# Params shown in their own places (the SQL, the databases, attachments by file name).
SHOWN_ELSEWHERE = frozenset(
    {
        "ExecSQL",
        "ExeSQL",
        "RollbackSQL",
        "SqlType",
        "RollbackSqlType",
        "DbItemList",
        "DbId",
        "InstanceId",
        "Logic",
        "AttachmentName",
        "RollbackAttachmentName",
        "EstimateAffectRows",  # GetDataCorrectOrderDetail's, beside the rows counted
        "IgnoreAffectRowsReason",
        "ExecMode",
        "Source",  # a structure sync's: its section names them
        "Target",
        "TableInfoList",
    }
)
# A request parameter (GatewayError.field, DmsError.fields, or named in a DmsError's
# message) -> the form field that sets it.
FORM_FIELDS = {
    "Comment": "comment",
    "NewApprover": "new_approver",
    "OldApprover": "old_approver",
    "CloseReason": "reason",
    "Reason": "reason",
    "ActionDetail.startTime": "start",
    "ActionDetail.endTime": "end",
    "ActionDetail.backupData": "backup",
    "ActionDetail.transaction": "transaction",
    "ActionDetail.fileType": "file_type",
    "ActionDetail.encoding": "encoding",
    "Script": "script",
    "DbId": "db",
}
# The acts of a schema design's section, whose refusals are told there.
DESIGN_ACTS = frozenset({"design", "compare", "stage"})
EXPORT_LIVE = ("WAITING_EXPORT", "DOING_EXPORT")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


# ------------------------------------------------------------------ reads through services


@dataclass(frozen=True)
class Database:
    db_id: int
    name: str  # schema@host:port
    engine: str
    env: str


@dataclass(frozen=True)
class Sheet:
    """What the actions' replies do not carry: what the caller may do and what the ticket
    waits for, its params as its kind has them, its databases, precheck steps and attachment
    names."""

    abilities: abilities.Abilities
    waiting: str
    params: dict[str, Any]
    databases: list[Database]
    steps: list[precheck.PrecheckStepView]
    precheck_status: str
    files: dict[str, str]  # attachment key -> file name


def _sheet(s: Session, caller: Caller, order_id: int) -> Sheet:
    order = tickets.get_order(s, caller, order_id)
    kind = kind_of(order.plugin_type)
    params = params_of(order).wire()
    keys = [str(params[k]) for k in ("AttachmentName", "RollbackAttachmentName") if params.get(k)]
    files = {
        key: found.file_name
        for key in keys
        if (found := s.get(Attachment, key)) is not None and found.tid == order.tid
    }
    return Sheet(
        abilities=abilities.of(s, caller, order),
        waiting=abilities.waiting(s, order),
        params=params,
        databases=[
            Database(db.db_id, queries.search_name(db, inst), inst.instance_type, inst.env_type)
            for db, inst in tickets.databases_of(s, order_id)
        ],
        steps=precheck.steps(s, order_id) if kind.has_precheck else [],
        precheck_status=precheck.status(s, order) if kind.has_precheck else "",
        files=files,
    )


@dataclass(frozen=True)
class Statement:
    number: int
    db_id: int
    sql: str
    cut: bool
    sql_type: str
    tables: str
    rows: int | None
    rows_source: str
    review: str
    findings: list[dict[str, Any]] = field(default_factory=list)


def _statements(
    s: Session, caller: Caller, order_id: int, page: int
) -> tuple[list[Statement], int]:
    """The precheck's statements as ListDataCorrectPreCheckSQL lists them, with what review
    found in each (its reply has the verdict, not the reasons)."""
    tickets.get_order(s, caller, order_id)
    found = precheck.statements(s, order_id, None, page, STATEMENTS_PER_PAGE)
    return [
        Statement(
            st.number,
            st.db_id,
            st.sql_text[:STATEMENT_SHOWN],
            len(st.sql_text) > STATEMENT_SHOWN,
            st.sql_type,
            st.table_names,
            st.affect_rows,
            st.rows_source,
            st.review_status,
            list(st.findings or []),
        )
        for st in found.items
    ], found.total


def _names(s: Session, caller: Caller, user_ids: list[int]) -> dict[int, str]:
    """Nick names of users of the caller's tenant (what ListUsers shows them)."""
    return {
        u.user_id: u.nick_name or u.uid
        for u in identity.users_by_id(s, user_ids).values()
        if u.tid == caller.tid
    }


# ------------------------------------------------------------------ the page


def _order_id(page: Page) -> int:
    return int(page.request.path_params["order_id"])


@dataclass
class Problem:
    """An act that was refused: which form, why, and beside which of its fields."""

    act: str
    message: str
    where: str = ""  # the form field at fault, if one is
    typed: dict[str, str] = field(default_factory=dict)


async def _reply(page: Page, action: str, key: str, **params: object) -> Payload:
    """The part ``key`` of an action's reply."""
    found: Payload = (await page.call(action, **params))[key]
    return found


async def _info(page: Page, order_id: int) -> Payload:
    return await _reply(page, "GetOrderBaseInfo", "OrderBaseInfo", OrderId=order_id)


async def _optional(page: Page, action: str, **params: object) -> Payload | None:
    """An action whose refusal leaves a part of the page out rather than the whole page
    (a file the ticket does not have, a reply a custom RAM policy withholds)."""
    try:
        return await page.call(action, **params)
    except (DmsError, GatewayError):
        return None


async def _people(page: Page, user_ids: list[int]) -> dict[int, str]:
    try:
        return await page.read("ListUsers", _names, sorted({u for u in user_ids if u}))
    except GatewayError:  # a policy that denies ListUsers: the page shows user ids
        return {}


def _ids(values: Any) -> list[int]:
    out = []
    for v in values or []:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return out


async def _render(
    page: Page, order_id: int, *, status: int = 200, problem: Problem | None = None
) -> Response:
    info = await _info(page, order_id)
    kind = kind_of(str(info["PluginType"]))
    # The live parts first (the work's progress, a design's stages, a sync's comparison),
    # the ticket and what may be done with it after: work seen over has moved the ticket
    # already, so the page never shows the ticket, its status or its buttons as they were
    # before work that ended (with nothing asking again); work seen going is asked about
    # again, and the page reloads when it ends.
    progress = await _progress_context(page, order_id, kind, info)
    schema_design = await _design(page, order_id) if kind.plugin_type == design.PLUGIN_TYPE else {}
    sync = await _sync(page, order_id) if kind.plugin_type == "TABLE_SYNC" else {}
    info = await _info(page, order_id)
    sheet = await page.read("GetOrderBaseInfo", _sheet, order_id)
    detail: Payload = {}
    if kind.detail_type is not None:
        detail = (await page.call("GetDataCorrectOrderDetail", OrderId=order_id))[
            "DataCorrectOrderDetail"
        ]
    export: Payload = {}
    if kind.verb == "export":
        export = (await page.call("GetDataExportOrderDetail", OrderId=order_id))[
            "DataExportOrderDetail"
        ]
    order_detail = detail.get("OrderDetail") or export.get("OrderDetail") or {}
    sql_text = str(order_detail.get("ExeSQL") or "")
    rollback_text = str(order_detail.get("RbSQL") or "")
    statements: list[Statement] = []
    statement_total = 0
    number = _page_number(page)
    if kind.has_precheck and sheet.precheck_status not in ("", OrderStatus.NEW):
        statements, statement_total = await page.read(
            "ListDataCorrectPreCheckSQL", _statements, order_id, number
        )
    approval: Payload = {}
    events: list[Payload] = []
    wf = info.get("WorkflowInstanceId")
    if wf:
        approval = (await page.call("GetApprovalDetail", WorkflowInstanceId=wf))["ApprovalDetail"]
        events = (await page.call("ListApprovalEvents", WorkflowInstanceId=wf))["ApprovalEvents"]
    files = await _files(page, order_id, kind, info)
    schedule: Payload = {}
    runs: list[Payload] = []
    if kind.execution is not None and kind.execution.scheduled:
        found = await _optional(page, "GetDataCronClearConfig", OrderId=order_id)
        schedule = found["DataCronClearConfig"] if found else {}
        history = await _optional(
            page, "GetDataCronClearTaskDetailList", OrderId=order_id, PageSize=RUNS_SHOWN
        )
        runs = history["DataCronClearTaskDetailList"] if history else []
    users: list[Payload] = []
    if sheet.abilities.transfer:
        listed = await _optional(page, "ListUsers", PageSize=100, UserState="NORMAL")
        users = listed["UserList"]["User"] if listed else []
    mentioned = [int(info["CommitterId"])]
    for node in (approval.get("WorkflowNodes") or {}).get("WorkflowNode", []):
        mentioned += _ids((node.get("AuditUserIdList") or {}).get("AuditUserIds"))
        mentioned += _ids([node.get("OperatorId")])
    for event in events:
        mentioned += _ids([event.get("OperatorId"), event.get("ByUserId"), event.get("OnBehalfOf")])
    mentioned += list(sheet.abilities.transfer_for)
    return page.render(
        "order.html",
        status=status,
        id=order_id,
        info=info,
        kind=kind,
        sheet=sheet,
        may=await _design_may(page, sheet.abilities) if schema_design else sheet.abilities,
        params=[
            (_label(k), _shown(v)) for k, v in sheet.params.items() if k not in SHOWN_ELSEWHERE
        ],
        detail=detail,
        export=export,
        order_detail=order_detail,
        dialect=sheet.databases[0].engine if sheet.databases else "",
        sql_text=sql_text[:SQL_SHOWN],
        sql_length=len(sql_text),
        rollback_text=rollback_text[:SQL_SHOWN],
        rollback_length=len(rollback_text),
        statements=statements,
        statement_total=statement_total,
        statement_page=number,
        statement_size=STATEMENTS_PER_PAGE,
        approval=approval,
        events=events,
        people=await _people(page, mentioned),
        files=files,
        schedule=schedule,
        runs=runs,
        users=users,
        problem=problem,
        errors=_errors(problem),
        typed=problem.typed if problem else {},
        file_types=FILE_TYPES,
        encodings=tuple(ENCODINGS),
        design=schema_design,
        design_live=_design_live(schema_design),
        design_acts=DESIGN_ACTS,
        sync=sync,
        **progress,
    )


def _label(key: str) -> str:
    """A parameter's name for people: ``CronClearItemList`` -> ``Cron clear item list``."""
    words = _WORDS.findall(key)
    text = " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)
    return text[:1].upper() + text[1:]


def _shown(value: Any) -> Any:
    """A parameter's value with its nested names for people too."""
    if isinstance(value, dict):
        return {_label(k): _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _page_number(page: Page) -> int:
    text = page.field("page", "1")
    return max(1, min(int(text), 10**6)) if text.isascii() and text.isdigit() else 1


def _errors(problem: Problem | None) -> dict[str, str]:
    if problem is None:
        return {}
    return {f"{problem.act}-{problem.where or 'form'}": problem.message}


async def _files(page: Page, order_id: int, kind: TicketKind, info: Payload) -> dict[str, Any]:
    """Download links: the SQL filed, the rollback SQL given, the rollback scripts written
    from an execution's backups, an export's file (each link signed by its action)."""
    found: dict[str, Any] = {}
    if kind.detail_type is not None:
        for name, action in (
            ("sql", "GetDataCorrectSQLFile"),
            ("rollback", "GetDataCorrectRollbackFile"),
        ):
            reply = await _optional(page, action, OrderId=order_id)
            if reply and reply.get("FileUrl"):
                found[name] = reply["FileUrl"]
        if kind.execution is not None and kind.execution.backup:
            reply = await _optional(page, "GetDataCorrectBackupFiles", OrderId=order_id)
            urls = ((reply or {}).get("DataCorrectBackupFiles") or {}).get("FileUrl") or []
            if urls:
                found["backups"] = list(urls)
    return found


async def show(page: Page) -> Response:
    return await _render(page, _order_id(page))


# ------------------------------------------------------------------ schema changes


async def _design(page: Page, order_id: int) -> Payload:
    """A schema design's script, review and stages, as GetSchemaDesignDetail has them."""
    found: Payload = (await page.call("GetSchemaDesignDetail", OrderId=order_id))[
        "SchemaDesignDetail"
    ]
    return found


def _design_live(found: Payload) -> bool:
    """Whether a comparison or a stage's run is going: the stages are asked for again."""
    if not found:
        return False
    states = {str(stage.get("State")) for stage in found.get("Stages") or []}
    return found.get("State") == "COMPARING" or bool(states & STAGES_LIVE)


def _tables_page(page: Page) -> int:
    text = page.field("tables_page", "1")
    return max(1, min(int(text), 10**6)) if text.isascii() and text.isdigit() else 1


async def _sync(page: Page, order_id: int) -> dict[str, Any]:
    """A structure sync's source and target, where its comparison stands, each table it
    compared (the reply has each table's DDL; its compare type and differences apart come
    from the service GetStructSyncJobAnalyzeResult calls), and the DDL it runs."""
    detail = (await page.call("GetStructSyncOrderDetail", OrderId=order_id))[
        "StructSyncOrderDetail"
    ]
    job = (await page.call("GetStructSyncJobDetail", OrderId=order_id))["StructSyncJobDetail"]
    number = _tables_page(page)
    analysis = await page.read(
        "GetStructSyncJobAnalyzeResult",
        structure.analysis,
        order_id,
        None,
        number,
        TABLES_PER_PAGE,
    )
    ddl = (
        await page.call(
            "GetStructSyncExecSqlDetail", OrderId=order_id, PageNumber=1, PageSize=SYNC_STATEMENTS
        )
    )["StructSyncExecSqlDetail"]
    pages = max(1, -(-analysis.page.total // TABLES_PER_PAGE))
    return {
        "detail": detail,
        "job": job,
        "summary": analysis.summary,
        "tables": analysis.page.items,
        "total": analysis.page.total,
        "page": number,
        "pages": pages,
        "ddl": str(ddl.get("ExecSql") or "")[:SQL_SHOWN],
        "ddl_count": int(ddl.get("TotalSqlCount") or 0),
        "ddl_shown": min(int(ddl.get("TotalSqlCount") or 0), SYNC_STATEMENTS),
    }


async def _design_may(page: Page, may: abilities.Abilities) -> abilities.Abilities:
    """A design's acts as ``may`` has them, less those the user's RAM policy denies (the
    service rule says whose ticket it is; the policy, which actions they call at all)."""
    return replace(
        may,
        design=may.design and await page.may("UpdateSchemaDesign"),
        compare=may.compare and await page.may("CompareSchemaDesign"),
        run_stages=may.run_stages if await page.may("ExecuteSchemaDesign") else (),
    )


def _design_sheet(s: Session, caller: Caller, order_id: int) -> tuple[abilities.Abilities, str]:
    """What the caller may do with the design now, and its base database's engine."""
    order = tickets.get_order(s, caller, order_id)
    return abilities.of(s, caller, order), design.base_of(s, order)[1].instance_type


async def design_fragment(page: Page) -> Response:
    """A schema design's stages, polled by htmx while a comparison or a stage's run goes;
    once nothing goes, the page is reloaded (its status, Submit and the stages' buttons
    come with it)."""
    order_id = _order_id(page)
    found = await _design(page, order_id)
    live = _design_live(found)
    if not live and page.request.headers.get("hx-request"):
        return Response(status_code=286, headers={"hx-refresh": "true"})
    info = await _info(page, order_id)
    may, dialect = await page.read("GetOrderBaseInfo", _design_sheet, order_id)
    may = await _design_may(page, may)
    return page.render(
        "_order_design_stages.html",
        id=order_id,
        info=info,
        design=found,
        design_live=live,
        may=may,
        dialect=dialect,
    )


# ------------------------------------------------------------------ live fragments


async def _progress_context(
    page: Page, order_id: int, kind: TicketKind, info: Payload
) -> dict[str, Any]:
    """What the progress fragment shows, and whether (and how often) it asks again."""
    status = str(info["StatusCode"])
    if kind.verb == "export":
        export = (await page.call("GetDataExportOrderDetail", OrderId=order_id))[
            "DataExportOrderDetail"
        ]
        key = export.get("KeyInfo") or {}
        job_status = str(key.get("JobStatus") or "")
        download: Payload = {}
        if key.get("JobId") and job_status not in EXPORT_LIVE:
            found = await _optional(page, "GetDataExportDownloadURL", OrderId=order_id)
            download = (found or {}).get("DownloadURLResult") or {}
        live = status == OrderStatus.PROCESSING and job_status in EXPORT_LIVE
        return {
            "run": None,
            "export_job": key,
            "download": download,
            "live": live,
            "every": "1s",
        }
    if kind.execution is None:
        return {"run": None, "export_job": {}, "download": {}, "live": False, "every": ""}
    run = await page.read("GetDataCorrectTaskDetail", execution.progress, order_id)
    going = run is not None and not run.over
    scheduled = kind.execution.scheduled and status == OrderStatus.PROCESSING
    # a run waiting for its start time, or a schedule between runs, is asked less often
    every = "1s" if going and run is not None and run.waits_until is None else "5s"
    return {
        "run": run,
        "export_job": {},
        "download": {},
        "live": going or scheduled,
        "every": every,
    }


async def progress_fragment(page: Page) -> Response:
    """The progress fragment, polled by htmx while the work goes on. Once it is over, the
    answer stops the polling (HTTP 286) and reloads the page, whose buttons, status and
    downloads changed with it."""
    order_id = _order_id(page)
    info = await _info(page, order_id)
    kind = kind_of(str(info["PluginType"]))
    context = await _progress_context(page, order_id, kind, info)
    polled = bool(page.request.headers.get("hx-request"))
    if polled and not context["live"]:
        return Response(status_code=286, headers={"hx-refresh": "true"})
    return page.render("_order_progress.html", id=order_id, kind=kind, info=info, **context)


def _precheck_state(s: Session, caller: Caller, order_id: int) -> tuple[str, list[Any]]:
    order = tickets.get_order(s, caller, order_id)
    return precheck.status(s, order), precheck.steps(s, order_id)


async def precheck_fragment(page: Page) -> Response:
    """The precheck's steps while it runs; once it ended, the page is reloaded (its
    statements, its verdict and the Submit button come with it)."""
    order_id = _order_id(page)
    state, steps = await page.read("GetDataCorrectOrderDetail", _precheck_state, order_id)
    if state != "precheck" and page.request.headers.get("hx-request"):
        return Response(status_code=286, headers={"hx-refresh": "true"})
    return page.render("_order_steps.html", id=order_id, steps=steps, running=state == "precheck")


# ------------------------------------------------------------------ acts

Act = Callable[[Page, int, Payload], Awaitable[str]]


def _when(text: str) -> str | None:
    """A datetime-local value (2026-01-31T23:00) as the API's time (2026-01-31 23:00:00);
    anything else as typed, for the action to say what is wrong with it."""
    text = text.strip()
    if not text:
        return None
    text = text.replace("T", " ", 1)
    return f"{text}:00" if len(text) == 16 else text


def _workflow(info: Payload) -> int:
    return int(info.get("WorkflowInstanceId") or 0)


async def _approve(page: Page, order_id: int, info: Payload, how: str, comment: str) -> None:
    await page.call(
        "ApproveOrder",
        WorkflowInstanceId=_workflow(info) or None,
        ApprovalType=how,
        Comment=comment,
    )


async def _submit(page: Page, order_id: int, info: Payload) -> str:
    await page.call("SubmitOrderApproval", OrderId=order_id)
    return "Submitted for approval."


async def _agree(page: Page, order_id: int, info: Payload) -> str:
    await _approve(page, order_id, info, "AGREE", page.field("comment"))
    return "Approved."


async def _reject(page: Page, order_id: int, info: Payload) -> str:
    await _approve(page, order_id, info, "REJECT", page.field("comment"))
    return "Rejected."


async def _withdraw(page: Page, order_id: int, info: Payload) -> str:
    await _approve(page, order_id, info, "CANCEL", page.field("comment"))
    return "Withdrawn from approval; it is new again."


async def _transfer(page: Page, order_id: int, info: Payload) -> str:
    await page.call(
        "ApproveOrder",
        WorkflowInstanceId=_workflow(info) or None,
        ApprovalType="TRANSFER",
        NewApprover=page.field("new_approver").strip() or None,
        OldApprover=page.field("old_approver").strip() or None,
        Comment=page.field("comment"),
    )
    return "Transferred."


async def _execute(page: Page, order_id: int, info: Payload) -> str:
    if kind_of(str(info["PluginType"])).verb == "export":
        detail = {
            "fileType": page.field("file_type") or None,
            "encoding": page.field("encoding") or None,
            "startTime": _when(page.field("start")),
        }
        await page.call(
            "ExecuteDataExport",
            OrderId=order_id,
            ActionDetail={k: v for k, v in detail.items() if v is not None},
        )
        return "Export started."
    plan: dict[str, Any] = {
        "backupData": page.field("backup") == "on",
        "transaction": page.field("transaction") == "on",
    }
    for key, name in (("startTime", "start"), ("endTime", "end")):
        if (value := _when(page.field(name))) is not None:
            plan[key] = value
    await page.call("ExecuteDataCorrect", OrderId=order_id, ActionDetail=plan)
    return "Execution started." if "startTime" not in plan else "Execution scheduled."


async def _export_job(page: Page, order_id: int) -> object:
    detail = (await page.call("GetDataExportOrderDetail", OrderId=order_id))[
        "DataExportOrderDetail"
    ]
    return (detail.get("KeyInfo") or {}).get("JobId")


async def _pause(page: Page, order_id: int, info: Payload) -> str:
    if kind_of(str(info["PluginType"])).verb == "export":
        job = await _export_job(page, order_id)
        await page.call("PauseDataExportJob", OrderId=order_id, JobId=job)
        return "Export stopped."
    await page.call("PauseDataCorrectSQLJob", OrderId=order_id, Type="ALL")
    return "Paused: it stops between two statements (or two chunks)."


async def _resume(page: Page, order_id: int, info: Payload) -> str:
    if kind_of(str(info["PluginType"])).verb == "export":
        job = await _export_job(page, order_id)
        await page.call("RestartDataExportJob", OrderId=order_id, JobId=job)
        return "Export started again."
    await page.call("RestartDataCorrectSQLJob", OrderId=order_id, Type="ALL")
    return "Resumed."


async def _close(page: Page, order_id: int, info: Payload) -> str:
    await page.call("CloseOrder", OrderId=order_id, CloseReason=page.field("reason"))
    return "Closed."


async def _recheck(page: Page, order_id: int, info: Payload) -> str:
    await page.call("RetryDataCorrectPreCheck", OrderId=order_id)
    return "The precheck runs again."


async def _waive(page: Page, order_id: int, info: Payload) -> str:
    await page.call("SkipDataCorrectRowCheck", OrderId=order_id, Reason=page.field("reason"))
    return "The row check is waived."


def _script(page: Page) -> str:
    # Browsers send a textarea's lines ending in CR LF; the user typed LF.
    return page.field("script").replace("\r\n", "\n")


async def _give_design(page: Page, order_id: int, info: Payload) -> str:
    saved = await page.call("UpdateSchemaDesign", OrderId=order_id, Script=_script(page))
    noted = len(saved.get("ReviewResults") or [])
    review = f" Review noted {noted} thing{'s' if noted != 1 else ''} below." if noted else ""
    return (
        f"Design version {saved['Version']} saved: it is being compared with each stage." + review
    )


async def _compare(page: Page, order_id: int, info: Payload) -> str:
    await page.call("CompareSchemaDesign", OrderId=order_id)
    return "The design is being compared with each stage again."


async def _run_stage(page: Page, order_id: int, info: Payload) -> str:
    db = page.field("db").strip()
    await page.call("ExecuteSchemaDesign", OrderId=order_id, DbId=db or None)
    return f"The design runs on database {db}: it runs only what that database lacks."


ACTS: dict[str, Act] = {
    "submit": _submit,
    "approve": _agree,
    "reject": _reject,
    "withdraw": _withdraw,
    "transfer": _transfer,
    "execute": _execute,
    "pause": _pause,
    "resume": _resume,
    "close": _close,
    "recheck": _recheck,
    "waive": _waive,
    "design": _give_design,
    "compare": _compare,
    "stage": _run_stage,
}
TYPED = (
    "comment",
    "reason",
    "new_approver",
    "old_approver",
    "start",
    "end",
    "file_type",
    "encoding",
    "script",
    "db",
)


def _field_of(exc: DmsError | GatewayError) -> str:
    named = [exc.field] if isinstance(exc, GatewayError) else list(exc.fields)
    for name in named:
        if name in FORM_FIELDS:
            return FORM_FIELDS[name]
    for name, form_field in FORM_FIELDS.items():  # a business rule names its parameter
        if "." in name and name in exc.message:
            return form_field
    return ""


def _act(name: str) -> Callable[[Page], Awaitable[Response]]:
    run = ACTS[name]

    async def handler(page: Page) -> Response:
        order_id = _order_id(page)
        back = f"/orders/{order_id}"
        if not await page.once():
            # a double click's second request, a form sent again: nothing is done twice
            return page.redirect(back, notice="Already sent: it was done once, not twice.")
        info = await _info(page, order_id)  # not visible: the error page says not found
        try:
            notice = await run(page, order_id, info)
        except (DmsError, GatewayError) as exc:
            if isinstance(exc, DmsError) and exc.code.endswith("NotFound"):
                raise
            problem = Problem(
                name,
                f"{exc.code}: {exc.message}",
                _field_of(exc),
                {k: page.field(k).replace("\r\n", "\n") for k in TYPED if page.field(k)},
            )
            status = exc.status if isinstance(exc, GatewayError) else 400
            return await _render(page, order_id, status=status, problem=problem)
        return page.redirect(back, notice=notice)

    handler.__name__ = f"act_{name}"
    return handler


ROUTES = [
    get("/orders/{order_id:int}", show),
    get("/orders/{order_id:int}/progress", progress_fragment),
    get("/orders/{order_id:int}/precheck", precheck_fragment),
    get("/orders/{order_id:int}/stages", design_fragment),
    *(post(f"/orders/{{order_id:int}}/{name}", _act(name)) for name in ACTS),
]
