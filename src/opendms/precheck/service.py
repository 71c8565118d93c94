"""The precheck as the API sees it: its steps and statements, its verdict, and the acts that
run it again (RetryDataCorrectPreCheck, ModifyDataCorrectExecSQL) or waive its row check
(SkipDataCorrectRowCheck)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.precheck.run import STEPS, reset
from opendms.store.models import (
    Database,
    Job,
    Order,
    PrecheckStatement,
    PrecheckStep,
    utcnow,
)
from opendms.store.paging import Page, paged
from opendms.store.states import JobState, OrderStatus, PrecheckStepStatus, ReviewStatus
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of, params_of


@dataclass(frozen=True)
class PrecheckStepView:
    """One precheck step as a ticket's reads show it: its status, its tip, and whether its
    finding may be waived."""

    step: str
    status: PrecheckStepStatus
    tip: str
    waivable: bool = False


def steps(s: Session, order_id: int) -> list[PrecheckStepView]:
    """The four steps of the latest run, WAITING where nothing ran yet."""
    found = {
        p.step: p for p in s.scalars(select(PrecheckStep).where(PrecheckStep.order_id == order_id))
    }
    return [
        PrecheckStepView(step, found[step].status, found[step].user_tip, found[step].waivable)
        if step in found
        else PrecheckStepView(step, PrecheckStepStatus.WAITING, "")
        for step in STEPS
    ]


def shortfall(s: Session, order: Order) -> str | None:
    """Why the ticket has not passed its precheck; None when the latest run finished with
    every step a SUCCESS."""
    job = tickets.latest_job(s, order.order_id, "precheck")
    if job is None:
        return "it has not been prechecked"
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        return "its precheck is still running"
    failed = [v for v in steps(s, order.order_id) if v.status != PrecheckStepStatus.SUCCESS]
    if job.state != JobState.SUCCEEDED:
        return "its precheck could not finish"
    if failed:
        return f"{failed[0].step} failed: {failed[0].tip}" if failed[0].tip else failed[0].step
    return None


def status(s: Session, order: Order) -> str:
    """GetDataCorrectOrderDetail's ``Status`` while the ticket is ``new`` (dms-api.md B.2;
    the spelling of a failure is ``precheck_fail``, DESIGN-NOTES)."""
    job = tickets.latest_job(s, order.order_id, "precheck")
    if job is None:
        return OrderStatus.NEW
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        return "precheck"
    return "precheck_success" if shortfall(s, order) is None else "precheck_fail"


def statements(s: Session, order_id: int, db_id: int | None, page: int, size: int) -> Page:
    query = select(PrecheckStatement).where(PrecheckStatement.order_id == order_id)
    if db_id is not None:
        query = query.where(PrecheckStatement.db_id == db_id)
    return paged(s, query.order_by(PrecheckStatement.db_id, PrecheckStatement.number), page, size)


def databases(s: Session, order_id: int, page: int, size: int) -> Page:
    """Per database of the ticket: its name and how many statements the precheck found."""
    query = (
        select(Database, func.count(PrecheckStatement.sql_id))
        .join(PrecheckStatement, PrecheckStatement.db_id == Database.db_id)
        .where(PrecheckStatement.order_id == order_id)
        .group_by(Database.db_id)
        .order_by(Database.db_id)
    )
    return paged(s, query, page, size)


def actual_rows(s: Session, order_id: int) -> int | None:
    total = s.scalar(
        select(func.sum(PrecheckStatement.affect_rows)).where(
            PrecheckStatement.order_id == order_id
        )
    )
    return int(total) if total is not None else None


# ------------------------------------------------------------------ acts


def own_new_refusal(caller: Caller, order: Order, what: str) -> DmsError | None:
    """Why the caller may not rerun the ticket's precheck, change its SQL or waive its row
    check (``what``, in words); None: it is theirs (or they administer), and not submitted."""
    order_id = order.order_id
    if not kind_of(order.plugin_type).has_precheck:
        return DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"Ticket {order_id} is {order.plugin_type}, which has no data-change precheck.",
        )
    if order.committer_id != caller.user_id and not caller.is_admin:
        return DmsError(
            ErrorCode.PERMISSION_DENIED, f"Only the committer or an administrator {what}."
        )
    if order.status_code != OrderStatus.NEW:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} is {order.status_code}; only a ticket not yet submitted "
            "is prechecked.",
        )
    return None


def _own_new_ticket(s: Session, caller: Caller, order_id: int, what: str) -> Order:
    order = tickets.get_order(s, caller, order_id, lock=True)
    refusal = own_new_refusal(caller, order, what)
    if refusal is not None:
        raise refusal
    return order


def queue(s: Session, order: Order) -> Job:
    """A new precheck run; one still waiting or going is called off (its results would be
    about the SQL as it was)."""
    s.execute(
        update(Job)
        .where(
            Job.order_id == order.order_id,
            Job.kind == "precheck",
            Job.state.in_((JobState.QUEUED, JobState.RUNNING)),
        )
        .values(state=JobState.CANCELLED, updated_at=utcnow())
    )
    job = Job(order_id=order.order_id, kind="precheck")
    s.add(job)
    s.flush()
    reset(s, order.order_id, job.job_id)
    return job


def retry(s: Session, caller: Caller, order_id: int) -> Job:
    order = _own_new_ticket(s, caller, order_id, "runs its precheck again")
    return queue(s, order)


def row_check_waivable(s: Session, order_id: int) -> bool:
    """Whether the latest precheck finished with ROW_CHECK the one step failed, on a count
    that differs from the estimate (what SkipDataCorrectRowCheck waives)."""
    job = tickets.latest_job(s, order_id, "precheck")
    views = {v.step: v for v in steps(s, order_id)}
    others_ok = all(
        views[st].status == PrecheckStepStatus.SUCCESS for st in STEPS if st != "ROW_CHECK"
    )
    row_failed = (
        views["ROW_CHECK"].status == PrecheckStepStatus.FAIL and views["ROW_CHECK"].waivable
    )
    return job is not None and job.state == JobState.SUCCEEDED and others_ok and row_failed


def skip_row_check(s: Session, caller: Caller, order_id: int, reason: str) -> Order:
    """Waive a row-count mismatch: only when ROW_CHECK is the one step that failed."""
    order = _own_new_ticket(s, caller, order_id, "waives its row check")
    views = {v.step: v for v in steps(s, order_id)}
    if not row_check_waivable(s, order_id):
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id}: only a row count that differs from the estimate is waived, "
            "when every other precheck step passed.",
        )
    who = caller.nick_name or caller.uid
    order.row_check_waived_by = caller.user_id
    order.row_check_waiver = f"{who}: {reason}"
    order.updated_at = utcnow()
    s.execute(
        update(PrecheckStep)
        .where(PrecheckStep.order_id == order_id, PrecheckStep.step == "ROW_CHECK")
        .values(
            status=PrecheckStepStatus.SUCCESS,
            user_tip=f"{views['ROW_CHECK'].tip} Waived by {who}: {reason}"[:4000],
        )
    )
    s.flush()
    return order


def modify_sql(s: Session, caller: Caller, order_id: int, sql: str) -> Order:
    """Replace the ticket's SQL (as TEXT) and precheck it afresh; a waiver given for the old
    SQL does not carry over."""
    order = _own_new_ticket(s, caller, order_id, "changes its SQL")
    current = params_of(order)
    if not hasattr(current, "exec_sql"):
        raise DmsError(ErrorCode.UNSUPPORTED_PLUGIN_TYPE, f"Ticket {order_id} carries no ExecSQL.")
    params = {**current.wire(), "ExecSQL": sql, "SqlType": "TEXT"}
    params.pop("AttachmentName", None)
    checked = tickets.parse_params(
        kind_of(order.plugin_type), params, label="ExecSQL", camel_case=False
    )
    order.params = json.dumps(checked.wire(), ensure_ascii=False, separators=(",", ":"))
    order.search_text = tickets.search_text(order.comment, checked)
    order.row_check_waived_by, order.row_check_waiver = None, None
    order.updated_at = utcnow()
    queue(s, order)
    return order


# ------------------------------------------------------------------ imports

# precheck_statements.review_status -> the import precheck's StatusCode (dms-api.md A.5)
IMPORT_STATUS = {
    ReviewStatus.WAITING: "INIT",
    ReviewStatus.PASS: "SUCCESS",
    ReviewStatus.BLOCK: "FAIL",
}


def import_kinds(s: Session, order_id: int) -> list[str]:
    """The kinds of statement an import's file holds (ListDataImportSQLType)."""
    return list(
        s.scalars(
            select(PrecheckStatement.sql_type)
            .where(PrecheckStatement.order_id == order_id)
            .distinct()
            .order_by(PrecheckStatement.sql_type)
        )
    )


def import_statements(
    s: Session, order_id: int, sql_type: str | None, status: str | None, page: int, size: int
) -> Page:
    """An import's statements as the precheck kept them, of one kind or status."""
    query = select(PrecheckStatement).where(PrecheckStatement.order_id == order_id)
    if sql_type:
        query = query.where(PrecheckStatement.sql_type == sql_type.upper())
    if status:
        wanted = [k for k, v in IMPORT_STATUS.items() if v == status.upper()]
        query = query.where(PrecheckStatement.review_status.in_(wanted))
    return paged(s, query.order_by(PrecheckStatement.number), page, size)
