"""A step of an ``execute`` job over a DC_CHUNK statement (the ``chunks`` walk): a stride of
chunks (``execution.chunked``) for about ``Tuning.step_seconds``, or until the execution
window ends, then the progress recorded. The runner's next step goes on, after a rest when
the target was busy or a chunk lost a lock fight; ``CHUNK_LOCK_RETRIES`` lost in a row fail
the statement.

With ``backupData`` one backup table serves all the statement's chunks: made once, before
the first, each chunk copying its own rows there in its own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from opendms.execution import recording
from opendms.execution.backups import Backup, BackupFailed, ChunkBackup, plan_for
from opendms.execution.chunked import ChunkState, Progress, stride
from opendms.execution.unit import Done, Unit
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.sql.backup import BackupRefused, changed_table
from opendms.sql.chunks import Chunking
from opendms.sql.statements import DIALECTS
from opendms.store.models import SqlJobDetail, utcnow
from opendms.targets.base import Change, StatementError
from opendms.targets.pace import Gauge

CHUNK_LOCK_RETRIES = 20  # lock fights a chunk may lose in a row (waiting longer each time)


def chunk_stride(
    work: Work,
    unit: Unit,
    change: Change,
    checkpoint: Checkpoint,
    means: Means,
    clock: Callable[[], datetime],
) -> Step:
    """One step of a DC_CHUNK statement: chunks for about ``Tuning.step_seconds``, then the
    progress recorded; the runner's next step goes on, after a rest when the target was
    busy or a chunk lost a lock fight."""
    detail = unit.pending[0]
    plan = unit.chunkings.get(detail.detail_id)
    if not isinstance(plan, Chunking):
        return recording.fail(work, unit, detail, f"it cannot be run in chunks: {plan}", checkpoint)
    pace = means.pace
    progress = Progress.load(detail.progress)
    progress.estimate = unit.estimates.get(detail.sql_id)
    replica = means.connector(unit.replica) if unit.replica is not None else None
    until = time.monotonic() + means.tuning.step_seconds
    if unit.plan.end_at is not None:
        until = min(until, time.monotonic() + (unit.plan.end_at - clock()).total_seconds())
    started = utcnow()
    try:
        run = _chunk_backup(unit, change, detail, plan)
        done = stride(
            change,
            plan,
            unit.key(detail),
            pace,
            Gauge(change, unit.limits, replica),
            progress.size or pace.first_chunk_rows,
            until,
            run,
        )
    except BackupFailed as exc:
        return recording.fail(work, unit, detail, f"backup failed: {exc}", checkpoint)
    before, rows_before = progress.state, progress.rows
    progress.add(done)
    if done.failed is not None:  # what committed before it still counts
        recording.record_progress(work, unit, detail, progress, None)
        return recording.fail(work, unit, detail, done.failed, checkpoint)
    if done.position.done:
        record = run.record(run.saved()) if run is not None else None
        recording.record_progress(work, unit, detail, progress, None)
        over = recording.record(
            work,
            unit,
            [(detail, Done(done.position.rows, started, progress.busy_ms, backup=record))],
            finish=len(unit.pending) == 1,
        )
        return Step({}, done=over)
    note = progress.milestone(rows_before)
    if progress.state not in (before, ChunkState.RUNNING):
        note = progress.why
    recording.record_progress(work, unit, detail, progress, note)
    if done.lost:
        if progress.lost_locks >= CHUNK_LOCK_RETRIES:
            message = f"a chunk lost {progress.lost_locks} lock fights in a row: {done.lost}"
            return recording.fail(work, unit, detail, message, checkpoint)
        return Step(checkpoint, wait_seconds=min(30.0, 0.25 * 2**progress.lost_locks))
    if done.held:
        return Step(checkpoint, wait_seconds=pace.hold_seconds)
    return Step({})


def _chunk_backup(
    unit: Unit, change: Change, detail: SqlJobDetail, plan: Chunking
) -> ChunkBackup | None:
    """With backupData, one table for all chunks, made once, whose rows commit with each
    chunk: every chunk copies its own rows there first."""
    if not unit.sql_job.backup:
        return None
    shape = unit.shapes.get(changed_table(detail.sql_text, unit.engine) or "")
    if shape is None or not shape.primary_key:
        raise BackupFailed(f"the table statement {detail.number} changes has no primary key")
    into = change.own_table(unit.backup_name(detail))
    try:
        first = plan_for(
            detail.sql_text,
            unit.engine,
            into,
            shape,
            change.insert_keys,
            transactional=True,
        )
        change.setup(first.create)
    except BackupRefused as exc:
        raise BackupFailed(str(exc)) from exc
    except StatementError as exc:
        raise BackupFailed(f"cannot create the backup table: {exc.message}") from exc
    name = into.sql(dialect=DIALECTS.get(unit.engine, "mysql"))
    return ChunkBackup(change, unit.engine, Backup(first, into, name, detail.detail_id), shape)
