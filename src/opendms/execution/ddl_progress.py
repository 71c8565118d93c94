"""What an execution's DDL statements (the ``ddl`` walk) show as they run on live tables:
each one's strategy, its online status, rows copied of the server's estimate, the message
of its engine, and for a copy under way the time left at the pace it has kept.

The numbers are those ``GetOnlineDDLProgress`` reports (``execution.online.OnlineProgress``,
kept in ``SqlJobDetail.progress``); this module only reads them, for many statements at
once, and adds the time left where the timestamps allow an honest one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from opendms.execution.online import OnlineProgress, OnlineStatus, Strategy
from opendms.store.models import SqlJob, SqlJobDetail
from opendms.store.states import SqlJobStatus

SQL_SHOWN = 300  # characters of a statement's text


@dataclass(frozen=True)
class DdlStatement:
    """One DDL statement of an execution, as far as it has got."""

    detail_id: int  # GetOnlineDDLProgress's JobDetailId
    db_id: int
    number: int
    sql: str  # cut at SQL_SHOWN characters
    status: SqlJobStatus  # the statement's, as the SQL-job reads say it
    online: OnlineStatus
    strategy: Strategy | None  # None: not begun
    how: str  # the strategy in words
    copy_count: int
    copy_total: int
    ratio: float  # 0 to 1
    message: str
    started_at: datetime | None
    eta_seconds: int | None

    @property
    def copies(self) -> bool:
        """Whether it copies rows (a shadow copy): its counts mean something."""
        return self.copy_total > 0 or self.copy_count > 0


def eta_seconds(
    progress: OnlineProgress, started_at: datetime | None, now: datetime, going: bool
) -> int | None:
    """Seconds left of a copy at the pace it kept since its statement started; None when that
    would be a guess: the statement is not copying now (``going``: its SQL job runs), nothing
    is copied yet, the server gave no estimate, or more was copied than it estimated. The
    time since the start includes the copy's preparation and its rests, so the figure errs
    long rather than short."""
    if not going or progress.status is not OnlineStatus.RUNNING or started_at is None:
        return None
    done, total = progress.copy_count, progress.copy_total
    if done <= 0 or total <= done:
        return None
    spent = (now - started_at).total_seconds()
    if spent <= 0:
        return None
    return int((total - done) * spent / done)


def statements(
    s: Session, group_id: int, now: datetime, limit: int = 20
) -> tuple[list[DdlStatement], int]:
    """The statements of execution ``group_id`` (at most ``limit``: those running or failed
    first, then in order), in the order they run; and how many more it has."""
    busy = case((SqlJobDetail.status.in_((SqlJobStatus.RUNNING, SqlJobStatus.FAIL)), 0), else_=1)
    rows = s.execute(
        select(SqlJobDetail, SqlJob.db_id, SqlJob.status, SqlJob.position)
        .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
        .where(SqlJob.group_id == group_id)
        .order_by(busy, SqlJob.position, SqlJobDetail.number)
        .limit(limit)
    ).all()
    total = (
        s.scalar(
            select(func.count())
            .select_from(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(SqlJob.group_id == group_id)
        )
        or 0
    )
    shown = []
    for detail, db_id, job_status, _ in sorted(rows, key=lambda r: (r[3], r[0].number)):
        begun = OnlineProgress.stored(detail.progress)
        progress = OnlineProgress.loads(detail.progress)
        going = job_status == SqlJobStatus.RUNNING and detail.status == SqlJobStatus.RUNNING
        shown.append(
            DdlStatement(
                detail_id=detail.detail_id,
                db_id=db_id,
                number=detail.number,
                sql=detail.sql_text[:SQL_SHOWN],
                status=detail.status,
                online=progress.status,
                strategy=progress.strategy if begun else None,
                how=progress.strategy.describe() if begun else "",
                copy_count=progress.copy_count,
                copy_total=progress.copy_total,
                ratio=progress.ratio,
                message=progress.message,
                started_at=detail.started_at,
                eta_seconds=eta_seconds(progress, detail.started_at, now, going),
            )
        )
    return shown, max(0, total - len(shown))
