"""How far a ticket's work has got, read from the store: its execution (per statement, with
the progress a chunked statement or an import keeps, and the backups it saved) or its
export. The command line's ``order show`` and ``--follow`` read it; the wire has its own
actions (GetDataCorrectTaskDetail, ListDBTaskSQLJobDetail, GetDataExportOrderDetail) over
the same services.

A job is over when it succeeded, failed, was cancelled (the ticket closed) or paused (it
waits for someone to restart it): following it further would only wait."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.execution import service as execution
from opendms.execution.chunked import ChunkState, Progress
from opendms.exports import service as exports
from opendms.identity.caller import Caller
from opendms.store.models import Job, Order, utcnow
from opendms.store.states import JobState, SqlJobStatus
from opendms.tickets import service as tickets

OVER = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.PAUSED})
PAGE = 1000  # statements shown per SQL job; a ticket's SQL is capped well below in practice


@dataclass(frozen=True)
class Statement:
    """One statement of an execution and how it went."""

    sql_job_id: int
    db_id: int
    number: int
    sql: str
    status: SqlJobStatus
    rows: int | None
    progress: Progress | None  # a chunked statement's or an import's; None for a plain one


@dataclass(frozen=True)
class Backup:
    """Where an executed statement's overwritten rows were saved on the target."""

    sql_job_id: int
    number: int
    table: str
    of: str
    rows: int


@dataclass(frozen=True)
class Underway:
    """A ticket's latest execution or export job and what it has done."""

    kind: str  # "execute" or "export"
    job_id: int
    state: JobState
    status: str  # execute: the SQL jobs' (execution.group_status); export: DMS's JobStatus
    rows: int  # changed, imported or exported so far
    failure: str = ""
    statements: list[Statement] = field(default_factory=list)
    backups: list[Backup] = field(default_factory=list)
    estimate: int | None = None  # rows expected, when every long statement has a count

    @property
    def over(self) -> bool:
        return self.state in OVER

    @property
    def succeeded(self) -> bool:
        finished = (SqlJobStatus.SUCCESS, exports.JOB_STATUS[JobState.SUCCEEDED])
        return self.state == JobState.SUCCEEDED and self.status in finished

    @property
    def rows_per_second(self) -> float:
        return sum(p.rows_per_second for p in self._progress())

    @property
    def eta_seconds(self) -> int | None:
        etas = [p.eta_seconds for p in self._progress() if p.state != ChunkState.DONE]
        return None if not etas or None in etas else sum(e or 0 for e in etas)

    def _progress(self) -> list[Progress]:
        return [st.progress for st in self.statements if st.progress is not None]

    def shown(self) -> dict[str, Any]:
        """As ``order show`` prints it (PascalCase, as the rest of its JSON)."""
        found: dict[str, Any] = {
            "Kind": self.kind,
            "JobId": self.job_id,
            "State": self.state,
            "Status": self.status,
            "Rows": self.rows,
        }
        if self.estimate is not None:
            found["EstimateRows"] = self.estimate
        if self.failure:
            found["Failure"] = self.failure
        if self.statements:
            found["Statements"] = [_statement(st) for st in self.statements]
        if self.kind == "execute":
            found["Backups"] = [
                {
                    "JobId": b.sql_job_id,
                    "Statement": b.number,
                    "Table": b.table,
                    "Of": b.of,
                    "Rows": b.rows,
                }
                for b in self.backups
            ]
            found["RollbackAvailable"] = bool(self.backups)
        return found


def _statement(st: Statement) -> dict[str, Any]:
    row: dict[str, Any] = {
        "JobId": st.sql_job_id,
        "DbId": st.db_id,
        "Number": st.number,
        "Status": st.status,
        "Rows": st.rows,
        "SQL": st.sql[:200],
    }
    p = st.progress
    if p is not None:
        row["Progress"] = {
            "Rows": p.rows,
            "Estimate": p.estimate,
            "Chunks": p.chunks,
            "State": p.state,
            "Why": p.why,
            "RowsPerSecond": round(p.rows_per_second, 1),
            "EtaSeconds": p.eta_seconds,
        }
    return row


def _failure(job: Job) -> str:
    if job.state not in (JobState.FAILED, JobState.CANCELLED):
        return ""
    return str((job.checkpoint or {}).get("failure") or "")


def _execution(s: Session, caller: Caller, job: Job) -> Underway:
    statements: list[Statement] = []
    backups: list[Backup] = []
    for sql_job, _db in execution.sql_jobs(s, caller, job.job_id, 1, PAGE).items:
        found = execution.sql_job_details(s, caller, sql_job.sql_job_id, 1, PAGE)
        for d in found.items:
            statements.append(
                Statement(
                    sql_job.sql_job_id,
                    sql_job.db_id,
                    d.number,
                    d.sql_text,
                    d.status,
                    d.affect_rows,
                    Progress.of(d.progress),
                )
            )
            if d.backup:
                saved = d.backup
                backups.append(
                    Backup(
                        sql_job.sql_job_id,
                        d.number,
                        str(saved.get("table", "")),
                        str(saved.get("of", "")),
                        int(saved.get("rows") or 0),
                    )
                )
    long = [st.progress for st in statements if st.progress is not None]
    estimate = (
        sum(p.estimate or 0 for p in long)
        if long and all(p.estimate is not None for p in long)
        else None
    )
    # a long statement's progress counts its rows as they go; a plain one's, once it ran
    rows = sum(st.progress.rows if st.progress else (st.rows or 0) for st in statements)
    return Underway(
        "execute",
        job.job_id,
        job.state,
        execution.group_status(s, job.job_id),
        rows,
        _failure(job),
        statements,
        backups,
        estimate,
    )


def _export(s: Session, order: Order, job: Job) -> Underway:
    _, found = exports.latest(s, order)
    rows = found.rows if found is not None else 0
    return Underway(
        "export",
        job.job_id,
        job.state,
        exports.job_status(s, order),
        rows,
        exports.failure(job),
    )


def underway(s: Session, caller: Caller, order: Order) -> Underway | None:
    """The ticket's latest execution or export; None before it has one (the caller has
    been shown the ticket: ``tickets.get_order``)."""
    job = tickets.latest_job(s, order.order_id, "execute")
    if job is not None:
        return _execution(s, caller, job)
    job = tickets.latest_job(s, order.order_id, exports.EXPORT)
    if job is not None:
        return _export(s, order, job)
    return None


def waiting_unclaimed(s: Session, job_id: int) -> bool:
    """Whether the job is due and queued while no job at all is held by a runner: a sign
    that no runner is running (one that is runs a due job within a second or so)."""
    now = utcnow()
    job = s.get(Job, job_id)
    if job is None or job.state != JobState.QUEUED or job.run_after > now:
        return False
    live = s.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.state == JobState.RUNNING, Job.lease_until >= now)
    )
    return not live
