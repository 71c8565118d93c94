"""The request side of schema-change tickets: what their comparison found, read for the
structure sync actions (each read checks the caller may see the ticket)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.precheck import service as precheck
from opendms.store.models import Job, Order, SchemaPlan, SqlJob, SqlJobDetail
from opendms.store.paging import Page
from opendms.store.states import JobState, OrderStatus, PlanState, SqlJobStatus
from opendms.tickets import service as tickets

COMPARE_TYPES = ("CREATE_TABLE", "ALTER_TABLE", "EQUAL_TABLE", "PASS_TABLE", "NOT_COMPARE")


def plan_of(
    s: Session, caller: Caller, order_id: int, plugin_type: str
) -> tuple[Order, SchemaPlan | None]:
    """The ticket (if the caller may see it and it is of ``plugin_type``) and its plan, if it
    was compared."""
    order = tickets.get_order(s, caller, order_id)
    if order.plugin_type != plugin_type:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"Ticket {order_id} is {order.plugin_type}, not {plugin_type}.",
        )
    plan = s.scalar(select(SchemaPlan).where(SchemaPlan.order_id == order_id))
    return order, plan


@dataclass(frozen=True)
class Analysis:
    summary: dict[str, int]  # tables by compare type
    page: Page


def analysis(
    s: Session, caller: Caller, order_id: int, compare_type: str | None, page: int, size: int
) -> Analysis:
    """Each compared table (of ``compare_type``, if given) with its DDL, paged; the counts by
    compare type."""
    _, plan = plan_of(s, caller, order_id, "TABLE_SYNC")
    tables = plan.tables if plan is not None else []
    summary = Counter(t["compare_type"] for t in tables)
    chosen = [t for t in tables if compare_type is None or t["compare_type"] == compare_type]
    start = (page - 1) * size
    return Analysis(dict(summary), Page(len(chosen), chosen[start : start + size]))


def statements(s: Session, caller: Caller, order_id: int) -> list[str]:
    _, plan = plan_of(s, caller, order_id, "TABLE_SYNC")
    return list(plan.statements) if plan is not None else []


@dataclass(frozen=True)
class SyncJob:
    status: str  # GetStructSyncJobDetail's JobStatus
    message: str
    tables: int
    analyzed: int
    statements: int
    executed: int
    group_id: int | None


def sync_job(s: Session, caller: Caller, order_id: int) -> SyncJob:
    """Where the structure sync stands, in DMS's words (NEW, COMPARING, COMPARE_FINISH,
    NOT_SCRIPTS, SUBMITED_WORKFLOW, WORKFLOW_SUCCESS, SUBMITED_DBTASK, DBTASK_SUCCESS; and
    COMPARE_BREAK, which OpenDMS also reports for a comparison that failed)."""
    order, plan = plan_of(s, caller, order_id, "TABLE_SYNC")
    group = s.scalar(
        select(Job)
        .where(Job.order_id == order_id, Job.kind == "execute")
        .order_by(Job.job_id.desc())
        .limit(1)
    )
    executed = 0
    if group is not None:
        executed = int(
            s.scalar(
                select(func.count())
                .select_from(SqlJobDetail)
                .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
                .where(SqlJob.group_id == group.job_id, SqlJobDetail.status == SqlJobStatus.SUCCESS)
            )
            or 0
        )
    tables = plan.tables if plan is not None else []
    count = len(plan.statements) if plan is not None else 0
    message = plan.message if plan is not None else ""
    checking = tickets.latest_job(s, order_id, "precheck")
    still = checking is not None and checking.state in (JobState.QUEUED, JobState.RUNNING)
    if not still and order.status_code == OrderStatus.NEW and plan is not None:
        # compared, but its DDL's checks (review, permissions) refused it: say why here,
        # where a DMS client looks, rather than only when it submits
        message = message or (precheck.shortfall(s, order) or "")
    return SyncJob(
        _status(order, plan, group, checking=still),
        message,
        len(tables),
        len(tables) if plan is not None and plan.analyzed_at else 0,
        count,
        executed,
        group.job_id if group is not None else None,
    )


def _status(
    order: Order, plan: SchemaPlan | None, group: Job | None, *, checking: bool = False
) -> str:
    """``checking``: the precheck that compares the tables still runs. Its comparison ends
    before its checks of the DDL do, and the ticket is submitted only once they passed: a
    client that submits on COMPARE_FINISH must not be refused for a precheck still going."""
    if group is not None:
        return "DBTASK_SUCCESS" if group.state == JobState.SUCCEEDED else "SUBMITED_DBTASK"
    if order.status_code == OrderStatus.APPROVED:
        return "WORKFLOW_SUCCESS"
    if order.status_code == OrderStatus.TOAUDIT:
        return "SUBMITED_WORKFLOW"
    if plan is None:
        return "NEW"
    if checking and plan.state == PlanState.COMPARED:
        return "COMPARING"
    return {
        PlanState.COMPARING: "COMPARING",
        PlanState.COMPARED: "COMPARE_FINISH",
        PlanState.EQUAL: "NOT_SCRIPTS",
        PlanState.FAILED: "COMPARE_BREAK",
    }[plan.state]
