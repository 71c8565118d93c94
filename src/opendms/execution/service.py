"""Starting an approved data change and reading how it went (dms-api.md A.3).

A ticket's execution is one ``execute`` job (the wire's ``DBTaskGroupId``) holding one SQL
job per database (``JobId``), each holding one detail per statement (``JobDetailId``). The
statements are the ones the precheck found, so what runs is what was checked and approved.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.execution.backups import NO_BACKUP
from opendms.execution.chunked import HELD as HELD_STATES
from opendms.execution.chunked import ChunkState, Progress
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.imports.options import import_options
from opendms.store.models import (
    ApprovalEvent,
    Database,
    Instance,
    Job,
    Order,
    PrecheckStatement,
    SqlAudit,
    SqlJob,
    SqlJobDetail,
    User,
    utcnow,
)
from opendms.store.paging import Page, paged
from opendms.store.search import matches
from opendms.store.states import (
    SQL_JOB_OVER,
    ApprovalAction,
    JobState,
    OrderStatus,
    SqlJobStatus,
)
from opendms.store.times import LOG_TIME, log_time
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from opendms.tickets.kind import Execution
from opendms.tickets.registry import kind_of, params_of


def execution_of(order: Order) -> Execution | None:
    """How the ticket's kind runs as SQL jobs (``TicketKind.execution``); None: it has none."""
    return kind_of(order.plugin_type).execution


def may_run(order: Order) -> bool:
    """Whether the ticket's execution may go on now: while it is processing, and a staged
    kind's first stage also while the ticket is new (``Execution.staged``)."""
    if order.status_code == OrderStatus.PROCESSING:
        return True
    how = execution_of(order)
    return how is not None and how.staged and order.status_code == OrderStatus.NEW


@dataclass(frozen=True)
class ExecutionPlan:
    """When and how a ticket's execution runs (ExecuteDataCorrect's ``ActionDetail``, the
    command line's ``order execute``, a cleanup's scheduled run); kept as the ``execute``
    job's spec."""

    start: str | None = None  # UTC, YYYY-MM-DD HH:mm:ss (LOG_TIME); None: now
    end: str | None = None  # not started after this
    transaction: bool = False  # each database's statements commit together
    backup: bool = False  # save what the change overwrites first
    by: int | None = None  # who started it (user id)
    # whose access key started it for ``by`` (RealLoginUserUid); the audit names both
    by_user_id: int | None = None

    @property
    def start_at(self) -> datetime | None:
        return datetime.strptime(self.start, LOG_TIME) if self.start else None

    @property
    def end_at(self) -> datetime | None:
        return datetime.strptime(self.end, LOG_TIME) if self.end else None


def checked_time(value: str | None, key: str) -> str | None:
    """``value`` as a plan's time: like 2026-01-31 23:00:00, or None when empty. The message
    names ``key``, the ActionDetail key where an API caller sets it (startTime, endTime)."""
    if value in (None, ""):
        return None
    try:
        datetime.strptime(str(value), LOG_TIME)
    except ValueError:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"ActionDetail.{key}: {str(value)[:64]!r} is not a time like 2026-01-31 23:00:00.",
        ) from None
    return str(value)


def checked_plan(
    *,
    start: str | None = None,
    end: str | None = None,
    transaction: bool = False,
    backup: bool = False,
) -> ExecutionPlan:
    """An ExecutionPlan whose times are checked: each like 2026-01-31 23:00:00 (empty:
    none), the end after the start and not already past. The messages name the ActionDetail
    keys, where an API caller sets them (``actions.data_correct.ExecuteActionDetail`` reads
    the wire's onto this); the command line's --start and --end are the same two."""
    plan = ExecutionPlan(
        start=checked_time(start, "startTime"),
        end=checked_time(end, "endTime"),
        transaction=transaction,
        backup=backup,
    )
    if plan.start_at and plan.end_at and plan.end_at <= plan.start_at:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "ActionDetail.endTime is not after startTime.")
    if plan.end_at and plan.end_at <= utcnow():
        raise DmsError(ErrorCode.INVALID_PARAMETER, "ActionDetail.endTime has already passed.")
    return plan


def _last_approver(s: Session, order: Order) -> int | None:
    return s.scalar(
        select(ApprovalEvent.actor_id)
        .where(
            ApprovalEvent.order_id == order.order_id,
            ApprovalEvent.workflow_instance_id == order.workflow_instance_id,
            ApprovalEvent.action == ApprovalAction.AGREE,
        )
        .order_by(ApprovalEvent.event_id.desc())
        .limit(1)
    )


def execute(s: Session, caller: Caller, order_id: int, plan: ExecutionPlan) -> Job:
    """ExecuteDataCorrect: the ticket's ExecMode says who may start it. A paused lock-free
    change is continued in the new window, from where it stopped."""
    order = tickets.get_order(s, caller, order_id, lock=True)
    check_starter(s, caller, order)
    how = execution_of(order)
    # (a scheduled run, continued, keeps the plan its schedule gave it)
    if how is not None and how.walk == "chunks" and not how.scheduled and plan.transaction:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            "ActionDetail.transaction: a lock-free change commits chunk by chunk.",
        )
    job = execute_job(s, order_id)
    if (
        order.status_code == OrderStatus.PROCESSING
        and job is not None
        and job.state == JobState.PAUSED
    ):
        return _continue(s, caller, order, job, plan)
    if plan.backup:
        refuse_backup(s, order)
    started = {"by": caller.user_id, "by_user_id": caller.by_user_id}
    return queue(s, order, ExecutionPlan(**{**asdict(plan), **started}))


def refuse_backup(s: Session, order: Order) -> None:
    """backupData on a ticket whose precheck named a statement that cannot be backed up
    (``NO_BACKUP``): refused here, before anything is queued, naming the statement; the
    ticket stays approved and may run without backupData. Execution would refuse the same
    statement (one verdict, ``execution.backups.plan_for``), only later."""
    found = s.execute(
        select(PrecheckStatement.number, PrecheckStatement.findings, Database.schema_name)
        .join(Database, Database.db_id == PrecheckStatement.db_id)
        .where(PrecheckStatement.order_id == order.order_id)
        .order_by(PrecheckStatement.db_id, PrecheckStatement.number)
    ).all()
    for number, findings, schema in found:
        for finding in findings or []:
            if finding.get("code") == NO_BACKUP:
                raise DmsError(
                    ErrorCode.INVALID_PARAMETER,
                    f"ActionDetail.backupData: statement {number} in {schema}: "
                    f"{finding.get('message', '')} Run the ticket without backupData, or "
                    "file its SQL in a form that can be backed up.",
                )


def starter(s: Session, order: Order) -> tuple[int, str] | None:
    """Who starts the approved ticket, as its ExecMode says: (their user id, who they are in
    words); None for ExecMode AUTO, which starts by itself once approved."""
    mode = tickets.exec_mode(order)
    if mode == "AUTO":
        return None
    last = _last_approver(s, order) if mode == "LAST_AUDITOR" else None
    # a ticket the rules let through without approval has no last approver: its committer
    return (
        (last, "the last approver") if last is not None else (order.committer_id, "the committer")
    )


def starter_refusal(s: Session, caller: Caller, order: Order) -> DmsError | None:
    """Why the caller may not start (or stop, or rerun) the ticket's work; None: they may."""
    order_id = order.order_id
    mode = tickets.exec_mode(order)
    allowed = starter(s, order)
    if allowed is None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} runs by itself once approved (ExecMode AUTO).",
        )
    if caller.user_id != allowed[0]:
        return DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"Ticket {order_id} is started by {allowed[1]} (ExecMode {mode}).",
        )
    return None


def check_starter(s: Session, caller: Caller, order: Order) -> None:
    refusal = starter_refusal(s, caller, order)
    if refusal is not None:
        raise refusal


def execute_refusal(s: Session, caller: Caller, order: Order) -> DmsError | None:
    """Why ExecuteDataCorrect would refuse the caller on this ticket now, whatever its plan;
    None: it would start it (or continue its paused execution)."""
    refusal = starter_refusal(s, caller, order)
    if refusal is not None:
        return refusal
    job = execute_job(s, order.order_id)
    paused = job is not None and job.state == JobState.PAUSED
    if order.status_code == OrderStatus.PROCESSING and paused:
        return None  # its paused execution goes on (``_continue``)
    return queue_refusal(order)


def _continue(s: Session, caller: Caller, order: Order, job: Job, plan: ExecutionPlan) -> Job:
    """The paused execution of ``order`` again, in ``plan``'s window; the backup setting
    stays what it was (half a change backed up is no backup)."""
    old = ExecutionPlan(**job.spec)
    new = replace(
        old, start=plan.start, end=plan.end, by=caller.user_id, by_user_id=caller.by_user_id
    )
    job.spec = asdict(new)
    for sql_job in s.scalars(select(SqlJob).where(SqlJob.group_id == job.job_id)):
        if sql_job.status == SqlJobStatus.PAUSE:
            sql_job.status = _resumed(sql_job)
            sql_job.log += stamp(
                f"continued by {caller.nick_name or caller.uid}"
                + (f", from {plan.start}" if plan.start else "")
                + (f", not after {plan.end}" if plan.end else "")
            )
    _requeue(job, new.start_at)
    return job


def _resumed(sql_job: SqlJob) -> SqlJobStatus:
    """What a paused or failed SQL job goes on as: INIT if it never started."""
    return SqlJobStatus.INIT if sql_job.last_exec_at is None else SqlJobStatus.RUNNING


def _requeue(job: Job, at: datetime | None = None) -> None:
    job.state = JobState.QUEUED
    job.run_after = at or utcnow()
    job.lease_owner, job.lease_until = None, None
    job.checkpoint = {}
    job.updated_at = utcnow()


def stamp(text: str) -> str:
    """A line for a SQL job's log: now, then ``text``."""
    return f"{log_time(utcnow())} {text}\n"


def start_automatically(s: Session, order: Order) -> Job | None:
    """After the last approval (``TicketKind.approved`` of a kind ExecuteDataCorrect
    starts): an ExecMode AUTO ticket runs now, without backup; another waits."""
    if tickets.exec_mode(order) != "AUTO":
        return None
    return queue(s, order, ExecutionPlan(by=order.committer_id))


def queue_refusal(order: Order) -> DmsError | None:
    """Why ``queue`` would not start the ticket's execution: it is not approved, or its kind
    has no execution to start (a scheduled kind runs when its schedule says)."""
    if order.status_code != OrderStatus.APPROVED:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is {order.status_code}; only an approved ticket executes.",
        )
    how = execution_of(order)
    if how is not None and how.staged:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} runs stage by stage: ExecuteSchemaDesign names the stage.",
        )
    if how is None or how.scheduled:
        return DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"Ticket {order.order_id} is {order.plugin_type}; OpenDMS does not execute that "
            "type yet.",
        )
    return None


def queue(s: Session, order: Order, plan: ExecutionPlan) -> Job:
    """The one gate before a ticket changes a database: only an approved ticket runs, once."""
    refusal = queue_refusal(order)
    if refusal is not None:
        raise refusal
    how = execution_of(order)
    assert how is not None, "queue_refusal lets only a kind with an execution through"
    statements = s.scalars(
        select(PrecheckStatement)
        .where(PrecheckStatement.order_id == order.order_id)
        .order_by(PrecheckStatement.db_id, PrecheckStatement.number)
    ).all()
    by_db: dict[int, list[Statement]] = {}
    for st in statements:
        by_db.setdefault(st.db_id, []).append(
            Statement(st.number, st.sql_text, st.sql_type, st.sql_id)
        )
    if how.walk == "file":  # the file is the one thing to run
        by_db = {db: [imported(order, found)] for db, found in by_db.items()}
    if not by_db:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} has no prechecked statements to run.",
        )
    job = open_execution(s, order, plan, by_db)
    lifecycle.transition(s, order, OrderStatus.PROCESSING)
    s.flush()
    return job


@dataclass(frozen=True)
class Statement:
    number: int
    sql_text: str
    sql_type: str
    sql_id: int = 0  # the precheck's statement (its row count), where there is one


def imported(order: Order, found: list[Statement]) -> Statement:
    """An import's SQL job runs its file, as one statement: what it is, in words."""
    options = import_options(params_of(order))
    into = f" into {options.table_name}" if options.table_name else ""
    kind = "REPLACE" if options.insert_type == "REPLACE_INTO" else "INSERT"
    text = f"-- import {options.file_type} file {options.attachment_name}{into}"
    return Statement(1, text, kind, found[0].sql_id if found else 0)


def open_execution(
    s: Session, order: Order, plan: ExecutionPlan, by_db: dict[int, list[Statement]]
) -> Job:
    """An ``execute`` job running ``by_db``'s statements: one SQL job per database, one
    detail per statement."""
    how = execution_of(order)
    if how is None:
        raise TypeError(f"{order.plugin_type} tickets have no SQL jobs")
    now = utcnow()
    job = Job(
        order_id=order.order_id,
        kind="execute",
        spec=asdict(plan),
        run_after=plan.start_at or now,
    )
    s.add(job)
    s.flush()
    for position, (db_id, rows) in enumerate(sorted(by_db.items()), start=1):
        sql_job = SqlJob(
            order_id=order.order_id,
            group_id=job.job_id,
            db_id=db_id,
            position=position,
            token=uuid.uuid4().hex,
            job_type=how.job_type,
            transactional=plan.transaction,
            backup=plan.backup,
            log=f"{log_time(now)} queued"
            + (f", to start at {plan.start}" if plan.start else "")
            + (f", not after {plan.end}" if plan.end else "")
            + ".\n",
        )
        s.add(sql_job)
        s.flush()
        s.add_all(
            SqlJobDetail(
                sql_job_id=sql_job.sql_job_id,
                number=st.number,
                sql_id=st.sql_id,
                sql_text=st.sql_text,
                sql_type=st.sql_type,
            )
            for st in rows
        )
    s.flush()
    return job


# ------------------------------------------------------------------ pause and restart


# SQL jobs that Pause stops, and those Restart sets going again.
PAUSABLE = (SqlJobStatus.INIT, SqlJobStatus.RUNNING)
RESTARTABLE = (SqlJobStatus.PAUSE, SqlJobStatus.FAIL)


def steer_refusal(caller: Caller, order: Order, job: Job | None) -> DmsError | None:
    """Why the caller may not pause or restart the ticket's execution ``job``: only an
    executing ticket's, by its committer, whoever started it, an administrator or DBA."""
    order_id = order.order_id
    if order.status_code != OrderStatus.PROCESSING or job is None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} is {order.status_code}; only an executing ticket is paused "
            "or restarted.",
        )
    started_by = ExecutionPlan(**job.spec).by
    steering = {Role.ADMIN, Role.DBA} & set(caller.roles)
    if caller.user_id not in (order.committer_id, started_by) and not steering:
        return DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"Only the committer, whoever started ticket {order_id}, an administrator or a "
            "DBA steers its execution.",
        )
    return None


def _running_group(s: Session, caller: Caller, order_id: int) -> tuple[Order, Job]:
    """The ticket's execution, for someone who may steer it (``steer_refusal``)."""
    order = tickets.get_order(s, caller, order_id, lock=True)
    job = execute_job(s, order_id)
    refusal = steer_refusal(caller, order, job)
    if refusal is not None:
        raise refusal
    assert job is not None, "steer_refusal refuses a ticket without an execution"
    return order, job


def steerable(s: Session, caller: Caller, order: Order) -> tuple[bool, bool]:
    """Whether the caller may now pause (Type ALL) the ticket's execution, and whether they
    may restart it: the checks ``pause`` and ``restart`` make, without acting."""
    job = execute_job(s, order.order_id)
    if job is None or steer_refusal(caller, order, job) is not None:
        return False, False
    found = set(s.scalars(select(SqlJob.status).where(SqlJob.group_id == job.job_id)))
    return bool(found & set(PAUSABLE)), bool(found & set(RESTARTABLE))


def _chosen(s: Session, job: Job, kind: str, sql_job_id: int | None) -> list[SqlJob]:
    """``Type`` ALL: every SQL job of the execution; SINGLE: the one ``JobId`` names."""
    query = select(SqlJob).where(SqlJob.group_id == job.job_id).order_by(SqlJob.position)
    if kind == "ALL":
        return list(s.scalars(query))
    if sql_job_id is None:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "JobId is required when Type is SINGLE.")
    found = list(s.scalars(query.where(SqlJob.sql_job_id == sql_job_id)))
    if not found:
        raise DmsError(
            ErrorCode.ORDER_NOT_FOUND, f"SQL job {sql_job_id} is not part of this ticket."
        )
    return found


def pause(
    s: Session, caller: Caller, order_id: int, kind: str, sql_job_id: int | None
) -> list[SqlJob]:
    """Stop SQL jobs that have not finished, between two statements (or two chunks)."""
    _, job = _running_group(s, caller, order_id)
    paused = [j for j in _chosen(s, job, kind, sql_job_id) if j.status in PAUSABLE]
    if not paused:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID, f"Ticket {order_id} has no SQL job left to pause."
        )
    who = caller.nick_name or caller.uid
    for sql_job in paused:
        hold(s, sql_job, f"paused by {who}")
    s.flush()
    return paused


def hold(s: Session, sql_job: SqlJob, why: str) -> None:
    """Mark ``sql_job`` paused, and its chunked statements under way as PAUSED, why."""
    sql_job.status = SqlJobStatus.PAUSE
    sql_job.log += stamp(why)
    for detail in s.scalars(
        select(SqlJobDetail).where(
            SqlJobDetail.sql_job_id == sql_job.sql_job_id,
            SqlJobDetail.status != SqlJobStatus.SUCCESS,
        )
    ):
        progress = Progress.of(detail.progress)
        if progress is not None:
            progress.state, progress.why = ChunkState.PAUSED, why
            detail.progress = progress.dump()


def restart(
    s: Session, caller: Caller, order_id: int, kind: str, sql_job_id: int | None
) -> list[SqlJob]:
    """Go on with paused SQL jobs, or try failed ones again: what committed is not run twice
    (its progress marker on the target says so)."""
    _, job = _running_group(s, caller, order_id)
    again = [j for j in _chosen(s, job, kind, sql_job_id) if j.status in RESTARTABLE]
    if not again:
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} has no paused or failed SQL job to restart.",
        )
    who = caller.nick_name or caller.uid
    for sql_job in again:
        failed = sql_job.status == SqlJobStatus.FAIL
        sql_job.status = _resumed(sql_job)
        sql_job.log += stamp(f"{'retried' if failed else 'restarted'} by {who}")
        for detail in s.scalars(
            select(SqlJobDetail).where(
                SqlJobDetail.sql_job_id == sql_job.sql_job_id,
                SqlJobDetail.status == SqlJobStatus.FAIL,
            )
        ):
            detail.status = SqlJobStatus.INIT
            progress = Progress.of(detail.progress)
            if progress is not None:
                detail.progress = progress.fresh().dump()
    if (job.checkpoint or {}).get("window_ended"):
        # paused by its window's end: restarting it means going on past it
        plan = ExecutionPlan(**job.spec)
        job.spec = asdict(replace(plan, end=None))
        for sql_job in again:
            sql_job.log += stamp(f"the execution window that ended at {plan.end} no longer holds")
    if job.state in (JobState.PAUSED, JobState.FAILED):
        _requeue(job)
    s.flush()
    return again


# ------------------------------------------------------------------ reads


def execute_job(s: Session, order_id: int) -> Job | None:
    return tickets.latest_job(s, order_id, "execute")


def group_status(s: Session, group_id: int) -> SqlJobStatus:
    """One status for all of a ticket's SQL jobs: a failure shows, then work going on, then
    success only when every database succeeded."""
    found = set(s.scalars(select(SqlJob.status).where(SqlJob.group_id == group_id)))
    for state in (SqlJobStatus.FAIL, SqlJobStatus.PAUSE, SqlJobStatus.RUNNING):
        if state in found:
            return state
    if found and found <= SQL_JOB_OVER:
        return SqlJobStatus.SUCCESS if SqlJobStatus.SUCCESS in found else SqlJobStatus.DELETE
    return SqlJobStatus.INIT


def detail_status(s: Session, order: Order, precheck_status: str) -> str:
    """GetDataCorrectOrderDetail's ``Status`` (dms-api.md B.2)."""
    if order.status_code == OrderStatus.NEW:
        return precheck_status
    if order.status_code == OrderStatus.PROCESSING:
        job = execute_job(s, order.order_id)
        if job is not None and job.state == JobState.QUEUED and job.attempts == 0:
            return "waiting"
    return order.status_code


def sql_jobs(s: Session, caller: Caller, group_id: int, page: int, size: int) -> Page:
    job = s.get(Job, group_id)
    if job is None or job.kind != "execute" or job.order_id is None:
        raise DmsError(ErrorCode.ORDER_NOT_FOUND, f"No SQL task group {group_id}.")
    tickets.get_order(s, caller, job.order_id)  # visibility
    query = (
        select(SqlJob, Database)
        .join(Database, Database.db_id == SqlJob.db_id)
        .where(SqlJob.group_id == group_id)
        .order_by(SqlJob.position)
    )
    return paged(s, query, page, size)


def sql_job(s: Session, caller: Caller, sql_job_id: int) -> SqlJob:
    found = s.get(SqlJob, sql_job_id)
    if found is None:
        raise DmsError(ErrorCode.ORDER_NOT_FOUND, f"No SQL job {sql_job_id}.")
    try:
        tickets.get_order(s, caller, found.order_id)
    except DmsError:
        raise DmsError(ErrorCode.ORDER_NOT_FOUND, f"No SQL job {sql_job_id}.") from None
    return found


def sql_job_details(s: Session, caller: Caller, sql_job_id: int, page: int, size: int) -> Page:
    sql_job(s, caller, sql_job_id)
    query = (
        select(SqlJobDetail)
        .where(SqlJobDetail.sql_job_id == sql_job_id)
        .order_by(SqlJobDetail.number)
    )
    return paged(s, query, page, size)


def chunk_progress(s: Session, group_id: int) -> list[Progress]:
    """The progress of each chunked statement of an execution (none for other changes, nor
    for a scheduled run, one of many)."""
    job = s.get(Job, group_id)
    order = s.get(Order, job.order_id) if job is not None and job.order_id is not None else None
    how = execution_of(order) if order is not None else None
    if how is None or how.walk != "chunks" or how.scheduled:
        return []
    return [
        Progress.load(found)
        for found in s.scalars(
            select(SqlJobDetail.progress)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(SqlJob.group_id == group_id)
        )
    ]


def task_affected_rows(s: Session, group_id: int) -> int:
    return int(
        s.scalar(select(func.sum(SqlJob.affect_rows)).where(SqlJob.group_id == group_id)) or 0
    )


# An execution's work is over when it succeeded, failed, was called off or paused (it then
# waits for someone to restart it): watching it further would only wait.
OVER = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.PAUSED})


@dataclass(frozen=True)
class SqlJobProgress:
    """One SQL job (one database) of an execution, and the end of its log."""

    sql_job_id: int
    database: str
    status: SqlJobStatus
    rows: int
    log: list[str]  # its last lines
    left_out: int  # lines before those


@dataclass(frozen=True)
class ExecutionProgress:
    """How far a ticket's latest execution has got, summed over its statements in a few
    queries, whatever their number (the console reads it every second while it runs)."""

    job_id: int
    state: JobState
    status: SqlJobStatus  # group_status
    statements: int
    done: int  # statements that succeeded
    failed: int
    rows: int  # changed so far (a chunked statement's or an import's as it goes)
    estimate: int | None  # rows the precheck counted, when it counted every statement
    rows_per_second: float
    eta_seconds: int | None
    held: str  # why a chunked statement holds back (busy target, lost lock), if one does
    failure: str
    waits_until: datetime | None  # queued, not started yet, to start at this time
    started_at: datetime | None
    jobs: list[SqlJobProgress]
    more_jobs: int  # SQL jobs beyond those in ``jobs``

    @property
    def over(self) -> bool:
        return self.state in OVER

    @property
    def percent(self) -> float:
        """Rows against the precheck's count where it counted some, else statements."""
        if self.state == JobState.SUCCEEDED and self.status == SqlJobStatus.SUCCESS:
            return 100.0
        if self.estimate:
            return min(100.0, 100.0 * self.rows / self.estimate)
        return 100.0 * self.done / self.statements if self.statements else 0.0


def progress(
    s: Session, caller: Caller, order_id: int, *, jobs: int = 20, log_lines: int = 40
) -> ExecutionProgress | None:
    """The ticket's latest execution (a scheduled cleanup's latest run), if it has one: the
    first ``jobs`` SQL jobs with the last ``log_lines`` lines of each log."""
    order = tickets.get_order(s, caller, order_id)
    job = execute_job(s, order_id)
    if job is None:
        return None
    in_group = SqlJob.group_id == job.job_id
    counts: dict[str, int] = {
        status: int(n)
        for status, n in s.execute(
            select(SqlJobDetail.status, func.count())
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(in_group)
            .group_by(SqlJobDetail.status)
        )
    }
    summed, started, ended = s.execute(
        select(
            func.coalesce(func.sum(SqlJobDetail.affect_rows), 0),
            func.min(SqlJobDetail.started_at),
            func.max(SqlJobDetail.ended_at),
        )
        .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
        .where(in_group)
    ).one()
    rows = int(summed or 0)
    statements = sum(counts.values())
    how = execution_of(order)
    walks = (
        [  # what a chunked statement or an import keeps as it goes
            Progress.load(found)
            for found in s.scalars(
                select(SqlJobDetail.progress)
                .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
                .where(in_group)
            )
        ]
        if how is not None and how.walk in ("chunks", "file")
        else []
    )
    # the rows the precheck counted, unless a walk knows better (an import counts its file)
    counted, known, total = s.execute(
        select(
            func.count(),
            func.count(PrecheckStatement.affect_rows),
            func.coalesce(func.sum(PrecheckStatement.affect_rows), 0),
        )
        .select_from(SqlJobDetail)
        .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
        .join(PrecheckStatement, PrecheckStatement.sql_id == SqlJobDetail.sql_id, isouter=True)
        .where(in_group)
    ).one()
    estimate = int(total or 0) if counted and known == counted else None
    if walks and all(p.estimate is not None for p in walks):
        estimate = sum(p.estimate or 0 for p in walks)
    over = job.state in OVER
    going = [p for p in walks if p.state not in (ChunkState.DONE, ChunkState.PAUSED)]
    rate, eta = 0.0, None
    if going and not over:  # the walks' own pace, rests between chunks included
        rate = sum(p.rows_per_second for p in going)
        etas = [p.eta_seconds for p in going]
        eta = None if None in etas else sum(e or 0 for e in etas)
    elif started is not None:
        spent = ((ended if over and ended else utcnow()) - started).total_seconds()
        rate = rows / spent if spent > 0 else 0.0
        if not over and estimate and rate:
            eta = max(0, int((estimate - rows) / rate))
    held = next((p.why for p in going if p.state in HELD_STATES and p.why), "")
    shown = s.execute(
        select(SqlJob, Database, Instance)
        .join(Database, Database.db_id == SqlJob.db_id)
        .join(Instance, Instance.instance_id == Database.instance_id)
        .where(in_group)
        .order_by(SqlJob.position)
        .limit(jobs)
    ).all()
    total_jobs = s.scalar(select(func.count()).select_from(SqlJob).where(in_group)) or 0
    views = []
    for sql_job, db, inst in shown:
        lines = sql_job.log.splitlines()
        views.append(
            SqlJobProgress(
                sql_job.sql_job_id,
                queries.search_name(db, inst),
                sql_job.status,
                sql_job.affect_rows,
                lines[-log_lines:],
                max(0, len(lines) - log_lines),
            )
        )
    waits = job.state == JobState.QUEUED and job.attempts == 0 and job.run_after > utcnow()
    return ExecutionProgress(
        job_id=job.job_id,
        state=job.state,
        status=group_status(s, job.job_id),
        statements=statements,
        done=counts.get(SqlJobStatus.SUCCESS, 0),
        failed=counts.get(SqlJobStatus.FAIL, 0),
        rows=rows,
        estimate=estimate,
        rows_per_second=rate,
        eta_seconds=eta,
        held=held,
        failure=str((job.checkpoint or {}).get("failure") or "")
        if job.state in (JobState.FAILED, JobState.CANCELLED)
        else "",
        waits_until=job.run_after if waits else None,
        started_at=started,
        jobs=views,
        more_jobs=max(0, total_jobs - len(views)),
    )


# ------------------------------------------------------------------ audit


@dataclass(frozen=True)
class AuditFilter:
    start: datetime
    end: datetime
    exec_state: str | None = None
    user_name: str | None = None
    search: str | None = None  # schema or instance name
    sql_type: str | None = None


AUDITORS = frozenset({Role.ADMIN, Role.SECURITY_ADMIN, Role.DBA})


def audit_log(s: Session, caller: Caller, f: AuditFilter, page: int, size: int) -> Page:
    """The SQL audit log of the tenant for administrators, security administrators and DBAs;
    everyone else sees what ran on their own behalf."""
    query = (
        select(SqlAudit, User, Instance)
        .join(User, User.user_id == SqlAudit.user_id)
        .join(Instance, Instance.instance_id == SqlAudit.instance_id, isouter=True)
        .where(
            SqlAudit.tid == caller.tid,
            SqlAudit.op_time >= f.start,
            SqlAudit.op_time <= f.end,
        )
    )
    if not AUDITORS & set(caller.roles):
        query = query.where(SqlAudit.user_id == caller.user_id)
    if f.exec_state:
        query = query.where(SqlAudit.exec_state == f.exec_state)
    if f.sql_type:
        query = query.where(SqlAudit.sql_type == f.sql_type.upper())
    if f.user_name:
        query = query.where(User.nick_name == f.user_name)
    if f.search:
        query = query.where(matches(f.search, SqlAudit.schema_name, Instance.alias))
    return paged(s, query.order_by(SqlAudit.op_time.desc(), SqlAudit.audit_id.desc()), page, size)
