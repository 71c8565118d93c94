"""A step of an ``execute`` job over plain statements (the ``statements`` walk): one by one,
each committed in its own target transaction with its progress marker, or, with
``transaction``, a database's all together under one marker; each with its backup when the
execution asked for one (``execution.backups``).

A statement whose marker is found committed before (a crash, a lost lease) and is only
recorded. A backup's table is made in the change's transaction where DDL rolls back with it
(PostgreSQL), else before it (DDL commits on MySQL), one per attempt; once the marker names
the one that counts, those of attempts cut short are dropped. A statement that loses a
lock fight is tried again later, ``LOCK_RETRIES`` times in all.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from typing import Any

from opendms.execution import recording
from opendms.execution.backups import (
    Backup,
    BackupFailed,
    Swept,
    apply,
    attempt_table,
    plan_for,
    sweep,
)
from opendms.execution.service import stamp
from opendms.execution.unit import Done, Unit
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.sql.backup import BackupRefused, changed_table
from opendms.sql.statements import DIALECTS
from opendms.store.models import SqlJob, SqlJobDetail, utcnow
from opendms.targets.base import Change, StatementError, TargetError

LOCK_RETRIES = 3  # a statement that loses a lock wait or a deadlock is tried this often


def _quiet_rollback(change: Change, *backups: Backup | None) -> None:
    """Undo an attempt that will not commit, with the backup tables it made; a rollback that
    fails too has nothing left to undo (a broken connection rolls back on the server)."""
    with suppress(StatementError):
        change.rollback()
    for backup in filter(None, backups):
        with suppress(StatementError, TargetError):
            change.drop_own_table(backup.name)


def _peek(change: Change, key: str) -> str | None:
    """The marker under ``key``, read in a short transaction of its own."""
    change.begin()
    try:
        return change.marker(key)
    finally:
        change.rollback()


def _together(unit: Unit, change: Change) -> bool:
    """Whether one transaction does it all: without a backup, or where DDL rolls back with
    the transaction, so the backup's table is made in it. Else (DDL commits on MySQL) the
    table is made before it."""
    return change.transactional_ddl or not unit.sql_job.backup


def _opened(unit: Unit, change: Change, key: str, together: bool) -> str | None:
    """The marker under ``key`` before a backup's table is made: read in the change's
    transaction, begun here, when it does it all; else in a look of its own, unless it is
    the SQL job's first step (there can be none)."""
    if together:
        change.begin()
        return change.marker(key)
    return None if unit.first_step else _peek(change, key)


def _swept_note(swept: Swept) -> str | None:
    """The log line for what a sweep of interrupted attempts' backup tables did."""
    notes = []
    if swept.dropped:
        notes.append(
            f"dropped {len(swept.dropped)} backup tables of interrupted attempts: "
            + ", ".join(swept.dropped)
        )
    if swept.left:
        notes.append(
            f"{len(swept.left)} backup tables of interrupted attempts are left on the target: "
            + ", ".join(swept.left)
            + f" (dropping failed: {swept.why})"
        )
    elif swept.why:
        notes.append(f"backup tables of interrupted attempts may be left: {swept.why}")
    return "; ".join(notes) or None


def _lost(
    work: Work,
    unit: Unit,
    detail: SqlJobDetail,
    exc: StatementError,
    checkpoint: Checkpoint,
) -> Step | None:
    """A lost lock fight is tried again later, a few times; None when it is over."""
    if exc.lost_lock and detail.execute_count + 1 < LOCK_RETRIES:
        recording.record_retry(work, detail, exc.message)
        return Step(checkpoint, wait_seconds=2.0 ** (detail.execute_count + 1))
    return None


def one_by_one(
    work: Work, unit: Unit, change: Change, checkpoint: Checkpoint, step_seconds: float
) -> Step:
    """Statements one after another, each in its own transaction, for about
    ``step_seconds``."""
    began = time.monotonic()
    for position, detail in enumerate(unit.pending):
        key, started, t0 = unit.key(detail), utcnow(), time.perf_counter()
        backup: Backup | None = None
        try:
            together = _together(unit, change)
            marked = _opened(unit, change, key, together)
            if marked is None:
                backup = _prepare_backup(unit, change, detail)
                if not together:
                    change.begin()
                    marked = change.marker(key)  # another runner may have been quicker
            if marked is None:
                rows, saved = apply(change, detail.sql_text, backup, unit.engine)
                record = backup.record(saved or 0) if backup else None
                change.mark(key, json.dumps({"rows": rows, "backup": record}))
                change.commit()
                ms = int((time.perf_counter() - t0) * 1000)
                done = Done(rows, started, ms, backup=record)
            else:
                _quiet_rollback(change, backup)
                found = json.loads(marked)
                done = Done(int(found["rows"]), started, 0, True, found.get("backup"))
        except BackupFailed as exc:
            _quiet_rollback(change)
            return recording.fail(work, unit, detail, f"backup failed: {exc}", checkpoint)
        except StatementError as exc:
            _quiet_rollback(change, backup)
            again = _lost(work, unit, detail, exc, checkpoint)
            return again or recording.fail(work, unit, detail, exc.message, checkpoint)
        _sweep(work, unit, change, detail, done.backup)
        more = position + 1 < len(unit.pending)
        over = recording.record(work, unit, [(detail, done)], finish=not more)
        if not more:
            return Step({}, done=over)
        if time.monotonic() - began > step_seconds:
            return Step({})
    return Step({}, done=recording.finish_sql_job(work, unit))  # none were pending


def all_at_once(work: Work, unit: Unit, change: Change, checkpoint: Checkpoint) -> Step:
    """The database's statements in one transaction, under one marker: all or nothing."""
    key = unit.key(None)
    results: list[tuple[SqlJobDetail, Done]] = []
    backups: list[Backup] = []
    running: SqlJobDetail | None = None  # the statement an error belongs to
    try:
        together = _together(unit, change)
        marked = _opened(unit, change, key, together)
        if marked is None:
            for running in unit.pending:
                backup = _prepare_backup(unit, change, running)
                backups += [backup] if backup else []
            running = None
            if not together:
                change.begin()
                marked = change.marker(key)  # another runner may have been quicker
        if marked is not None:
            _quiet_rollback(change, *backups)
            found = json.loads(marked)
            records = found.get("backups") or [None] * len(unit.pending)
            for d, r, record in zip(unit.pending, found["rows"], records, strict=True):
                results.append((d, Done(int(r), utcnow(), 0, True, record)))
        else:
            by_detail = {b.detail_id: b for b in backups}
            for running in unit.pending:
                started, t0 = utcnow(), time.perf_counter()
                backup = by_detail.get(running.detail_id)
                count, saved = apply(change, running.sql_text, backup, unit.engine)
                ms = int((time.perf_counter() - t0) * 1000)
                record = backup.record(saved or 0) if backup else None
                results.append((running, Done(count, started, ms, backup=record)))
            running = None
            change.mark(
                key,
                json.dumps(
                    {
                        "rows": [d.rows for _, d in results],
                        "backups": [d.backup for _, d in results],
                    }
                ),
            )
            change.commit()
    except BackupFailed as exc:
        _quiet_rollback(change, *backups)
        blame = running or unit.pending[0]
        return recording.fail(work, unit, blame, f"backup failed: {exc}", checkpoint)
    except StatementError as exc:
        _quiet_rollback(change, *backups)
        blame = running or unit.pending[0]
        again = _lost(work, unit, blame, exc, checkpoint)
        if again is not None:
            return again
        done_before = [r for r in results if r[0] is not blame]
        recording.record_failure(work, unit, blame, exc.message, undone=done_before)
        return Step(
            checkpoint,
            failure=f"{unit.label}: statement {blame.number}: {exc.message}; nothing of "
            "this database was changed",
        )
    for detail, done in results:
        _sweep(work, unit, change, detail, done.backup)
    return Step({}, done=recording.record(work, unit, results, finish=True))


def _prepare_backup(unit: Unit, change: Change, detail: SqlJobDetail) -> Backup | None:
    """The statement's backup plan and a table of its own for this attempt, made in the
    change's transaction where DDL rolls back with it, else before it (DDL commits on
    MySQL). A table per attempt: on MariaDB it may be an Aria table, which a rollback does
    not empty, so an attempt that did not commit must leave nothing where the one that does
    will write; the marker names the table that counts."""
    if not unit.sql_job.backup:
        return None
    into = change.own_table(attempt_table(unit.backup_name(detail)))
    try:
        table = changed_table(detail.sql_text, unit.engine)
        if table is None or unit.shapes.get(table) is None:
            raise BackupFailed(f"the table statement {detail.number} changes is not known")
        rows = unit.estimates.get(detail.sql_id)
        plan = plan_for(
            detail.sql_text, unit.engine, into, unit.shapes[table], change.insert_keys, rows=rows
        )
        if change.transactional_ddl:
            change.execute(plan.create)
        else:
            change.setup(plan.create)
    except BackupRefused as exc:
        raise BackupFailed(str(exc)) from exc
    except StatementError as exc:
        raise BackupFailed(f"cannot create the backup table: {exc.message}") from exc
    dialect = DIALECTS.get(unit.engine, "mysql")
    return Backup(plan, into, into.sql(dialect=dialect), detail.detail_id)


def _sweep(
    work: Work,
    unit: Unit,
    change: Change,
    detail: SqlJobDetail,
    record: dict[str, Any] | None,
) -> None:
    """Once a statement's marker is known (this attempt committed it, or an earlier one
    did), the backup tables of attempts cut short before it are dropped, and the SQL
    job's log says so, or names those that stay. Before the statement is recorded: a
    crash in between leaves it pending, and its next attempt, finding the marker, sweeps
    again."""
    kept = record.get("table") if record else None
    if not unit.sql_job.backup or not isinstance(kept, str):
        return  # no marker names a table: nothing is known to be spare
    if unit.first_step:
        return  # no earlier attempt left a table
    swept = sweep(change, unit.backup_name(detail), kept, unit.engine)
    note = _swept_note(swept)
    if note:
        with work.store.session() as s:
            sql_job = s.get(SqlJob, detail.sql_job_id, with_for_update=True)
            row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
            if row is not None and sql_job is not None:
                row.log += stamp(note)
                sql_job.log += stamp(f"statement {row.number}: {note}")
