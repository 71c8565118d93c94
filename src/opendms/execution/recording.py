"""What a step of an ``execute`` job writes to the metadata store: a statement done (with
its audit line), a chunked statement's or an import's progress, a retry, a failure, and the
SQL job, and with the last of them the ticket, succeeded.

Each write is a short transaction of its own, after the target committed, so a crash in
between leaves the statement pending and its marker on the target says what is left to
record (``execution.run``). A statement already recorded, by this runner or another, is not
counted again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.execution.chunked import ChunkState, Progress
from opendms.execution.service import stamp
from opendms.execution.unit import Done, Unit, one_run_of_many
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.store.models import Order, SqlAudit, SqlJob, SqlJobDetail, utcnow
from opendms.store.states import SQL_JOB_OVER, ExecState, OrderStatus, SqlJobStatus
from opendms.telemetry import metrics
from opendms.tickets import lifecycle


def succeed(s: Session, order: Order) -> None:
    """The ticket's work is all done."""
    lifecycle.transition(s, order, OrderStatus.SUCCESS)


def audit(
    s: Session,
    unit: Unit,
    detail: SqlJobDetail,
    state: ExecState,
    rows: int | None,
    ms: int,
    remark: str,
) -> None:
    """The statement's line in the SQL audit (``sql_audits``)."""
    s.add(
        SqlAudit(
            tid=unit.order.tid,
            user_id=unit.plan.by or unit.order.committer_id,
            by_user_id=unit.plan.by_user_id,
            order_id=unit.order.order_id,
            instance_id=unit.inst.instance_id,
            db_id=unit.db.db_id,
            schema_name=unit.db.schema_name,
            sql_text=detail.sql_text,
            sql_type=detail.sql_type,
            affect_rows=rows,
            elapsed_ms=ms,
            exec_state=state,
            remark=remark,
        )
    )


def _rows(row: SqlJobDetail, rows: int) -> int:
    """Set the rows a statement changed so far; returns how many more than were recorded
    (what /metrics counts once the record is committed). A chunked statement's or an
    import's progress recorded some already; a DDL's copy counts none: its end sets 0."""
    more = max(0, rows - (row.affect_rows or 0))
    row.affect_rows = rows
    return more


def record(
    work: Work,
    unit: Unit,
    results: Sequence[tuple[SqlJobDetail, Done]],
    *,
    finish: bool = False,
) -> bool:
    """Statements the target committed, as succeeded, with their rows and backups; the SQL
    job's rows summed again. ``finish``: they were the SQL job's last, which ends in the
    same unit of work (``finish_sql_job``); returns whether the ticket succeeded with it."""
    changed = 0
    with work.store.session() as s:
        # the ticket before its SQL job, locked in the order every other writer takes them
        order = s.get(Order, work.order_id, with_for_update=True) if finish else None
        sql_job = s.get(SqlJob, unit.sql_job.sql_job_id, with_for_update=True)
        assert sql_job is not None
        for detail, done in results:
            row = s.get(SqlJobDetail, detail.detail_id, populate_existing=True)
            if row is None or row.status == SqlJobStatus.SUCCESS:
                continue  # another runner recorded it first
            row.status = SqlJobStatus.SUCCESS
            changed += _rows(row, done.rows)
            row.execute_count += 0 if done.recovered and row.execute_count else 1
            row.started_at = row.started_at or done.started
            row.ended_at = utcnow()
            row.time_ms = done.ms
            if done.backup is not None:
                row.backup = done.backup
            note = "committed before a restart; recorded from its progress marker"
            row.log += stamp(f"{done.rows} rows" + (f" ({note})" if done.recovered else ""))
            audit(
                s,
                unit,
                row,
                ExecState.SUCCESS,
                done.rows,
                done.ms,
                f"ticket {unit.order.order_id}" + (f"; {note}" if done.recovered else ""),
            )
        s.flush()
        sql_job.affect_rows = int(
            s.scalar(
                select(func.coalesce(func.sum(SqlJobDetail.affect_rows), 0)).where(
                    SqlJobDetail.sql_job_id == sql_job.sql_job_id
                )
            )
            or 0
        )
        over = finish and _finish(s, work, order, sql_job)
    metrics.rows_changed(unit.order.plugin_type, changed)
    return over


def record_progress(
    work: Work, unit: Unit, detail: SqlJobDetail, progress: Progress, note: str | None
) -> None:
    """A chunked statement's or an import's progress so far (``note``: a line for the logs);
    a statement paused meanwhile shows as PAUSED, why it was."""
    with work.store.session() as s:
        row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
        sql_job = s.get(SqlJob, detail.sql_job_id, with_for_update=True)
        if row is None or sql_job is None or row.status == SqlJobStatus.SUCCESS:
            return
        row.status = SqlJobStatus.RUNNING
        row.started_at = row.started_at or utcnow()
        changed = _rows(row, progress.rows)
        paused = sql_job.status == SqlJobStatus.PAUSE
        if paused and progress.state != ChunkState.DONE:  # paused meanwhile
            stored = Progress.load(row.progress)
            progress.state, progress.why = ChunkState.PAUSED, stored.why
        row.progress = progress.dump()
        if note:
            row.log += stamp(note)
            sql_job.log += stamp(f"statement {row.number}: {note}")
        sql_job.affect_rows = progress.rows + int(
            s.scalar(
                select(func.coalesce(func.sum(SqlJobDetail.affect_rows), 0)).where(
                    SqlJobDetail.sql_job_id == sql_job.sql_job_id,
                    SqlJobDetail.detail_id != detail.detail_id,
                )
            )
            or 0
        )
    metrics.rows_changed(unit.order.plugin_type, changed)


def record_retry(work: Work, detail: SqlJobDetail, message: str) -> None:
    """An attempt that lost a lock fight: counted, and the next one waited for."""
    with work.store.session() as s:
        row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
        assert row is not None
        row.execute_count += 1
        row.log += stamp(f"{message}; trying again")


def record_failure(
    work: Work,
    unit: Unit,
    detail: SqlJobDetail,
    message: str,
    undone: Sequence[tuple[SqlJobDetail, Done]] = (),
) -> None:
    """The statement failed, and its SQL job with it; ``undone``: statements of the same
    transaction it took back with it."""
    with work.store.session() as s:
        sql_job = s.get(SqlJob, unit.sql_job.sql_job_id, with_for_update=True)
        row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
        assert sql_job is not None and row is not None
        row.status = SqlJobStatus.FAIL
        row.execute_count += 1
        row.ended_at = utcnow()
        row.log += stamp(message)
        for earlier, _ in undone:
            other = s.get(SqlJobDetail, earlier.detail_id)
            if other is not None:
                other.log += stamp(
                    f"rolled back: statement {detail.number} failed in the same transaction"
                )
        sql_job.status = SqlJobStatus.FAIL
        sql_job.log += stamp(f"statement {detail.number} failed: {message}")
        audit(s, unit, row, ExecState.FAIL, None, 0, message)


def fail(
    work: Work, unit: Unit, detail: SqlJobDetail, message: str, checkpoint: Checkpoint
) -> Step:
    """The statement failed: recorded, and the step that ends the job saying so."""
    record_failure(work, unit, detail, message)
    return Step(checkpoint, failure=f"{unit.label}: statement {detail.number}: {message}")


def log_note(work: Work, detail: SqlJobDetail, text: str) -> None:
    """A line in the statement's log."""
    with work.store.session() as s:
        row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
        if row is not None:
            row.log += stamp(text)


def finish_sql_job(work: Work, unit: Unit) -> bool:
    """The SQL job succeeds once every statement did; the ticket, with its last SQL job.
    Returns whether the ticket succeeded: the job's work is over."""
    with work.store.session() as s:
        order = s.get(Order, work.order_id, with_for_update=True)
        sql_job = s.get(SqlJob, unit.sql_job.sql_job_id, with_for_update=True)
        assert sql_job is not None
        return _finish(s, work, order, sql_job)


def _finish(s: Session, work: Work, order: Order | None, sql_job: SqlJob) -> bool:
    left = s.scalar(
        select(func.count())
        .select_from(SqlJobDetail)
        .where(
            SqlJobDetail.sql_job_id == sql_job.sql_job_id,
            SqlJobDetail.status != SqlJobStatus.SUCCESS,
        )
    )
    if left or sql_job.status != SqlJobStatus.RUNNING:
        return False
    sql_job.status = SqlJobStatus.SUCCESS
    sql_job.log += stamp(f"succeeded: {sql_job.affect_rows} rows")
    s.flush()
    others = s.scalar(
        select(func.count())
        .select_from(SqlJob)
        .where(
            SqlJob.group_id == work.job_id,
            SqlJob.status.not_in(SQL_JOB_OVER),
        )
    )
    # the ticket succeeds with its last SQL job, not a runner step later; a cleanup run's
    # end is the next step's (it stays on its schedule)
    if (
        others
        or order is None
        or order.status_code != OrderStatus.PROCESSING
        or one_run_of_many(order)
    ):
        return False
    succeed(s, order)
    return True
