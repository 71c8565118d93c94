"""The executor of ``execute`` jobs: a ticket's statements, database by database, exactly once.

Exactly once rests on the target, not on the metadata store: each statement (or, with
``transaction``, each database's whole set) commits in one target transaction together with
a progress marker in a table OpenDMS owns there (``targets.base.Change``). Before running a
statement the executor looks for its marker; a marker found means the change committed
before a crash or a lost lease, and only its recording is left to do. The metadata store
then records what the target says happened: a detail already recorded is not counted again.

A step runs statements for about ``STEP_SECONDS`` and hands back to the runner, which stores
the checkpoint, renews the lease and notices a closed ticket between steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlglot.errors import SqlglotError

from opendms.catalog.shapes import CatalogShapes
from opendms.errors import DmsError
from opendms.execution import service as execution
from opendms.execution.backups import (
    Backup,
    BackupFailed,
    ChunkBackup,
    Swept,
    apply,
    attempt_table,
    plan_for,
    sweep,
)
from opendms.execution.chunked import ChunkState, Progress, stride
from opendms.execution.service import ExecutionPlan as Plan
from opendms.execution.service import stamp
from opendms.imports.options import import_options
from opendms.imports.run import MAX_LOGGED, Importer, ImportFailed, source_of
from opendms.imports.run import STEP_SECONDS as IMPORT_STEP_SECONDS
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.sql.backup import BackupRefused, changed_table
from opendms.sql.chunks import Chunking, ChunkRefused, chunking
from opendms.sql.review import TableShape
from opendms.sql.statements import DIALECTS
from opendms.store.models import (
    Database,
    Instance,
    Job,
    Order,
    PrecheckStatement,
    SqlAudit,
    SqlJob,
    SqlJobDetail,
    utcnow,
)
from opendms.store.states import SQL_JOB_OVER, ExecState, OrderStatus, SqlJobStatus
from opendms.targets.base import Change, StatementError, TargetError
from opendms.targets.pace import Gauge, Limits
from opendms.tickets import lifecycle
from opendms.tickets.kind import Walk
from opendms.tickets.params import DML
from opendms.tickets.registry import kind_of, params_of

STEP_SECONDS = 1.0
LOCK_RETRIES = 3  # a statement that loses a lock wait or a deadlock is tried this often
HICCUPS = 5  # connection failures in a row before the job gives up
CHUNK_LOCK_RETRIES = 20  # lock fights a chunk may lose in a row (waiting longer each time)


@dataclass
class Done:
    """What running one statement did on the target."""

    rows: int
    started: datetime
    ms: int
    recovered: bool = False  # found its marker: it had committed before
    backup: dict[str, Any] | None = None  # where its backup is (SqlJobDetail.backup)


@dataclass
class Unit:
    """The SQL job a step works on, read from the store."""

    order: Order
    plan: Plan
    sql_job: SqlJob
    db: Database
    inst: Instance
    pending: list[SqlJobDetail] = field(default_factory=list)
    shapes: dict[str, TableShape | None] = field(default_factory=dict)  # changed tables
    # DC_CHUNK: how each pending statement is cut (or why it cannot be), by detail id; the
    # precheck's row counts, by sql id; the instance's throttle, and its replica to watch.
    chunkings: dict[int, Chunking | str] = field(default_factory=dict)
    estimates: dict[int, int | None] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    replica: Instance | None = None

    @property
    def walk(self) -> Walk:
        return _walk(self.order)

    @property
    def label(self) -> str:
        return f"{self.db.schema_name}@{self.inst.alias}"

    @property
    def engine(self) -> str:
        return self.inst.instance_type

    def key(self, detail: SqlJobDetail | None) -> str:
        return f"{self.sql_job.token}:{detail.number if detail else 'all'}"

    def backup_name(self, detail: SqlJobDetail) -> str:
        return f"b{self.sql_job.token[:12]}_{detail.number}"


def _quietly(read: Callable[[str, str], str | None], text: str, engine: str) -> str | None:
    """A parse that the precheck already passed; should it fail now, nothing is known."""
    try:
        return read(text, engine)
    except SqlglotError:
        return None


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


def _walk(order: Order) -> Walk:
    how = execution.execution_of(order)
    return how.walk if how is not None else "statements"


def _scheduled(order: Order) -> bool:
    """Whether an execution of ``order`` is one run of its schedule (its end does not end
    the ticket)."""
    how = execution.execution_of(order)
    return how is not None and how.scheduled


def _succeed(s: Session, order: Order) -> None:
    lifecycle.transition(s, order, OrderStatus.SUCCESS)


@dataclass
class Execute:
    means: Means
    clock: Callable[[], datetime] = utcnow
    importer: Importer = field(default_factory=Importer)

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            unit_or_step = self._next(s, work, checkpoint)
        if isinstance(unit_or_step, Step):
            return unit_or_step
        unit = unit_or_step
        if not unit.pending:  # all recorded already: nothing to ask the target
            self._finish_sql_job(work, unit)
            return Step({})
        chunks = unit.walk == "chunks"
        lock_wait = self.means.pace.lock_wait_seconds if chunks else self.means.lock_wait_seconds
        try:
            connector = self.means.connector(unit.inst)
            with connector.change((unit.db.catalog_name, unit.db.schema_name), lock_wait) as change:
                if unit.walk == "file":
                    return self._import(work, unit, change, checkpoint)
                if chunks:
                    return self._chunked(work, unit, change, checkpoint)
                if unit.sql_job.transactional:
                    return self._all_at_once(work, unit, change, checkpoint)
                return self._one_by_one(work, unit, change, checkpoint)
        except (TargetError, DmsError) as exc:
            return self._hiccup(work, unit, exc.message, checkpoint)

    # ------------------------------------------------------------ what is next

    def _next(self, s: Session, work: Work, checkpoint: Checkpoint) -> Unit | Step:
        order = s.get(Order, work.order_id, with_for_update=True)
        job = s.get(Job, work.job_id)
        if order is None or job is None or order.status_code != OrderStatus.PROCESSING:
            return Step(checkpoint, done=True)  # closed meanwhile
        plan = Plan(**job.spec)
        sql_jobs = s.scalars(
            select(SqlJob).where(SqlJob.group_id == job.job_id).order_by(SqlJob.position)
        ).all()
        left = [j for j in sql_jobs if j.status not in SQL_JOB_OVER]
        if not left and _scheduled(order):  # one run of many: the ticket stays on its
            kind_of(order.plugin_type).run_finished(s, order, job)  # schedule
            return Step(checkpoint, done=True)
        if not left:
            _succeed(s, order)
            return Step(checkpoint, done=True)
        failed = next((j for j in left if j.status == SqlJobStatus.FAIL), None)
        if failed is not None:
            return Step(checkpoint, failure=f"SQL job {failed.sql_job_id} failed.")
        current = next((j for j in left if j.status != SqlJobStatus.PAUSE), None)
        if current is None:  # paused: until RestartDataCorrectSQLJob queues it again
            return Step(checkpoint, paused=True)
        started = any(j.status != SqlJobStatus.INIT for j in sql_jobs)
        chunked = _walk(order) == "chunks"
        if plan.end_at is not None and self.clock() > plan.end_at and not started:
            reason = f"Not started: the execution window ended at {plan.end} (UTC)."
            for j in sql_jobs:
                j.status, j.log = SqlJobStatus.FAIL, j.log + stamp(reason)
            return Step(checkpoint, failure=reason)
        if plan.end_at is not None and self.clock() > plan.end_at and chunked:
            for j in left:  # it stops at a chunk boundary; a new window continues
                execution.hold(
                    s,
                    j,
                    f"paused: the execution window ended at {plan.end} (UTC); "
                    "RestartDataCorrectSQLJob goes on, ExecuteDataCorrect goes on in a new window",
                )
            return Step({**checkpoint, "window_ended": True}, paused=True)
        if current.status != SqlJobStatus.RUNNING:
            current.status = SqlJobStatus.RUNNING
            current.log += stamp("started")
        current.last_exec_at = utcnow()
        db = s.get(Database, current.db_id)
        inst = s.get(Instance, db.instance_id) if db is not None else None
        if db is None or inst is None:
            current.status = SqlJobStatus.FAIL
            current.log += stamp("The database is no longer registered.")
            return Step(checkpoint, failure=f"Database {current.db_id} is no longer registered.")
        pending = s.scalars(
            select(SqlJobDetail)
            .where(
                SqlJobDetail.sql_job_id == current.sql_job_id,
                SqlJobDetail.status != SqlJobStatus.SUCCESS,
            )
            .order_by(SqlJobDetail.number)
        ).all()
        unit = Unit(order, plan, current, db, inst, list(pending))
        if unit.walk == "chunks":
            self._cut(s, unit)
        if current.backup:
            shapes = CatalogShapes(s, [db])
            for detail in pending:
                name = _quietly(changed_table, detail.sql_text, inst.instance_type)
                if name:
                    unit.shapes[name] = shapes.table(name)
        return unit

    def _cut(self, s: Session, unit: Unit) -> None:
        """How each pending statement of a DC_CHUNK job is cut, from the catalog's keys; the
        precheck's counts; the instance's throttle."""
        shapes = CatalogShapes(s, [unit.db])
        for detail in unit.pending:
            try:
                unit.chunkings[detail.detail_id] = chunking(
                    detail.sql_text, unit.engine, shapes.walk_key
                )
            except ChunkRefused as exc:
                unit.chunkings[detail.detail_id] = str(exc)
            found = s.get(PrecheckStatement, detail.sql_id)
            unit.estimates[detail.sql_id] = found.affect_rows if found is not None else None
        unit.limits = self.means.pace.limits.over(unit.inst.throttle)
        if unit.limits.replica_instance_id is not None:
            replica = s.get(Instance, unit.limits.replica_instance_id)
            unit.replica = replica if replica is not None and replica.tid == unit.inst.tid else None

    def _hiccup(self, work: Work, unit: Unit, message: str, checkpoint: Checkpoint) -> Step:
        """The target could not be reached or the connection broke: whatever committed has
        its marker, so the step is simply tried again, a few times."""
        tries = int(checkpoint.get("hiccups", 0)) + 1
        with work.store.session() as s:
            sql_job = s.get(SqlJob, unit.sql_job.sql_job_id, with_for_update=True)
            assert sql_job is not None
            if tries < HICCUPS:
                sql_job.log += stamp(f"{message}; trying again ({tries}/{HICCUPS - 1})")
                return Step({**checkpoint, "hiccups": tries}, wait_seconds=2.0**tries)
            sql_job.status = SqlJobStatus.FAIL
            sql_job.log += stamp(message)
        return Step(checkpoint, failure=f"{unit.label}: {message}")

    # ------------------------------------------------------------ running

    def _refuse_kinds(self, work: Work, unit: Unit) -> Step | None:
        """Refuse the job before anything runs if any statement is not a data change."""
        for detail in unit.pending:
            # Anything else (DDL commits implicitly on MySQL, SET and COMMIT change the
            # session) would break the one-transaction-per-marker rule, whatever review said.
            if detail.sql_type not in DML:
                message = (
                    f"statement {detail.number} is {detail.sql_type}: a data change runs only "
                    "INSERT, REPLACE, UPDATE and DELETE."
                )
                self._record_failure(work, unit, detail, message)
                return Step({}, failure=f"{unit.label}: {message}")
        return None

    def _lost(
        self,
        work: Work,
        unit: Unit,
        detail: SqlJobDetail,
        exc: StatementError,
        checkpoint: Checkpoint,
    ) -> Step | None:
        """A lost lock fight is tried again later, a few times; None when it is over."""
        if exc.lost_lock and detail.execute_count + 1 < LOCK_RETRIES:
            self._record_retry(work, detail, exc.message)
            return Step(checkpoint, wait_seconds=2.0 ** (detail.execute_count + 1))
        return None

    def _one_by_one(self, work: Work, unit: Unit, change: Change, checkpoint: Checkpoint) -> Step:
        refused = self._refuse_kinds(work, unit)
        if refused is not None:
            return refused
        began = time.monotonic()
        for position, detail in enumerate(unit.pending):
            key, started, t0 = unit.key(detail), utcnow(), time.perf_counter()
            backup: Backup | None = None
            try:
                # Only a backup needs its table made outside the transaction, and so a look
                # at the marker first; without one, one transaction does it all.
                marked = _peek(change, key) if unit.sql_job.backup else None
                if marked is None:
                    backup = self._prepare_backup(unit, change, detail)
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
                return self._fail(work, unit, detail, f"backup failed: {exc}", checkpoint)
            except StatementError as exc:
                _quiet_rollback(change, backup)
                again = self._lost(work, unit, detail, exc, checkpoint)
                return again or self._fail(work, unit, detail, exc.message, checkpoint)
            self._sweep(work, unit, change, detail, done.backup)
            self._record([(detail, done)], work, unit)
            more = position + 1 < len(unit.pending)
            if more and time.monotonic() - began > STEP_SECONDS:
                return Step({})
        self._finish_sql_job(work, unit)
        return Step({})

    def _all_at_once(self, work: Work, unit: Unit, change: Change, checkpoint: Checkpoint) -> Step:
        refused = self._refuse_kinds(work, unit)
        if refused is not None:
            return refused
        key = unit.key(None)
        results: list[tuple[SqlJobDetail, Done]] = []
        backups: list[Backup] = []
        running: SqlJobDetail | None = None  # the statement an error belongs to
        try:
            marked = _peek(change, key)
            if marked is None:
                for running in unit.pending:
                    backup = self._prepare_backup(unit, change, running)
                    backups += [backup] if backup else []
                running = None
                change.begin()
                marked = change.marker(key)
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
            return self._fail(work, unit, blame, f"backup failed: {exc}", checkpoint)
        except StatementError as exc:
            _quiet_rollback(change, *backups)
            blame = running or unit.pending[0]
            again = self._lost(work, unit, blame, exc, checkpoint)
            if again is not None:
                return again
            done_before = [r for r in results if r[0] is not blame]
            self._record_failure(work, unit, blame, exc.message, undone=done_before)
            return Step(
                checkpoint,
                failure=f"{unit.label}: statement {blame.number}: {exc.message}; nothing of "
                "this database was changed",
            )
        for detail, done in results:
            self._sweep(work, unit, change, detail, done.backup)
        self._record(results, work, unit)
        self._finish_sql_job(work, unit)
        return Step({})

    def _chunked(self, work: Work, unit: Unit, change: Change, checkpoint: Checkpoint) -> Step:
        """One step of a DC_CHUNK statement: chunks for about ``STEP_SECONDS``, then the
        progress recorded; the runner's next step goes on, after a rest when the target was
        busy or a chunk lost a lock fight."""
        refused = self._refuse_kinds(work, unit)
        if refused is not None:
            return refused
        detail = unit.pending[0]
        plan = unit.chunkings.get(detail.detail_id)
        if not isinstance(plan, Chunking):
            return self._fail(work, unit, detail, f"it cannot be run in chunks: {plan}", checkpoint)
        pace = self.means.pace
        progress = Progress.load(detail.progress)
        progress.estimate = unit.estimates.get(detail.sql_id)
        replica = self.means.connector(unit.replica) if unit.replica is not None else None
        until = time.monotonic() + STEP_SECONDS
        if unit.plan.end_at is not None:
            until = min(until, time.monotonic() + (unit.plan.end_at - self.clock()).total_seconds())
        started = utcnow()
        try:
            run = self._chunk_backup(unit, change, detail, plan)
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
            return self._fail(work, unit, detail, f"backup failed: {exc}", checkpoint)
        before, rows_before = progress.state, progress.rows
        progress.add(done)
        if done.failed is not None:  # what committed before it still counts
            self._record_progress(work, detail, progress, None)
            return self._fail(work, unit, detail, done.failed, checkpoint)
        if done.position.done:
            record = run.record(run.saved()) if run is not None else None
            self._record_progress(work, detail, progress, None)
            self._record(
                [(detail, Done(done.position.rows, started, progress.busy_ms, backup=record))],
                work,
                unit,
            )
            if len(unit.pending) == 1:
                self._finish_sql_job(work, unit)
            return Step({})
        note = progress.milestone(rows_before)
        if progress.state not in (before, ChunkState.RUNNING):
            note = progress.why
        self._record_progress(work, detail, progress, note)
        if done.lost:
            if progress.lost_locks >= CHUNK_LOCK_RETRIES:
                message = f"a chunk lost {progress.lost_locks} lock fights in a row: {done.lost}"
                return self._fail(work, unit, detail, message, checkpoint)
            return Step(checkpoint, wait_seconds=min(30.0, 0.25 * 2**progress.lost_locks))
        if done.held:
            return Step(checkpoint, wait_seconds=pace.hold_seconds)
        return Step({})

    def _import(self, work: Work, unit: Unit, change: Change, checkpoint: Checkpoint) -> Step:
        """A stretch of a data import (imports.run): batches for a few seconds, then the
        progress recorded; the runner's next step goes on from the target's marker."""
        detail = unit.pending[0]
        try:
            with work.store.session() as s:
                options = import_options(params_of(unit.order))
                src = source_of(
                    s, self.means.files, options, unit.order.order_id, unit.db, unit.engine
                )
        except ImportFailed as exc:
            return self._fail(work, unit, detail, exc.message, checkpoint)
        progress = Progress.load(detail.progress)
        progress.estimate = src.estimate
        started = utcnow()
        began = time.monotonic()
        done = self.importer.stretch(
            src, change, unit.key(detail), time.monotonic() + IMPORT_STEP_SECONDS
        )
        rows_before, progress.rows = progress.rows, done.position.rows
        progress.chunks += done.batches
        progress.busy_ms += int(done.busy_seconds * 1000)
        progress.wall_ms += int((time.monotonic() - began) * 1000)
        progress.state = ChunkState.DONE if done.finished else ChunkState.RUNNING
        notes = [f"line {line} skipped: {why}" for line, why in done.skipped[:MAX_LOGGED]]
        if len(done.skipped) > MAX_LOGGED:
            notes.append(f"and {len(done.skipped) - MAX_LOGGED} more lines skipped")
        milestone = progress.milestone(rows_before)
        note = "; ".join(filter(None, [*notes, milestone])) or None
        self._record_progress(work, detail, progress, note)
        if done.failure is not None:
            return self._fail(work, unit, detail, done.failure, checkpoint)
        if done.finished:
            rows, skipped = done.position.rows, done.position.skipped
            self._record([(detail, Done(rows, started, progress.busy_ms))], work, unit)
            if skipped:
                self._note(work, detail, f"{skipped} records skipped (IgnoreError)")
            self._finish_sql_job(work, unit)
        return Step({})

    def _note(self, work: Work, detail: SqlJobDetail, text: str) -> None:
        with work.store.session() as s:
            row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
            if row is not None:
                row.log += stamp(text)

    def _chunk_backup(
        self, unit: Unit, change: Change, detail: SqlJobDetail, plan: Chunking
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
                change.insert_keys(),
                transactional=True,
            )
            change.setup(first.create)
        except BackupRefused as exc:
            raise BackupFailed(str(exc)) from exc
        except StatementError as exc:
            raise BackupFailed(f"cannot create the backup table: {exc.message}") from exc
        name = into.sql(dialect=DIALECTS.get(unit.engine, "mysql"))
        return ChunkBackup(change, unit.engine, Backup(first, into, name, detail.detail_id), shape)

    def _prepare_backup(self, unit: Unit, change: Change, detail: SqlJobDetail) -> Backup | None:
        """The statement's backup plan and a table of its own for this attempt, made before
        the change's transaction (DDL commits on MySQL). A table per attempt: on MariaDB it is
        an Aria table, which a rollback does not empty, so an attempt that did not commit must
        leave nothing where the one that does will write; the marker names the table that
        counts."""
        if not unit.sql_job.backup:
            return None
        into = change.own_table(attempt_table(unit.backup_name(detail)))
        try:
            table = changed_table(detail.sql_text, unit.engine)
            if table is None or unit.shapes.get(table) is None:
                raise BackupFailed(f"the table statement {detail.number} changes is not known")
            keys = change.insert_keys()
            plan = plan_for(detail.sql_text, unit.engine, into, unit.shapes[table], keys)
            change.setup(plan.create)
        except BackupRefused as exc:
            raise BackupFailed(str(exc)) from exc
        except StatementError as exc:
            raise BackupFailed(f"cannot create the backup table: {exc.message}") from exc
        dialect = DIALECTS.get(unit.engine, "mysql")
        return Backup(plan, into, into.sql(dialect=dialect), detail.detail_id)

    def _sweep(
        self,
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
        swept = sweep(change, unit.backup_name(detail), kept, unit.engine)
        note = _swept_note(swept)
        if note:
            with work.store.session() as s:
                sql_job = s.get(SqlJob, detail.sql_job_id, with_for_update=True)
                row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
                if row is not None and sql_job is not None:
                    row.log += stamp(note)
                    sql_job.log += stamp(f"statement {row.number}: {note}")

    def _fail(
        self, work: Work, unit: Unit, detail: SqlJobDetail, message: str, checkpoint: Checkpoint
    ) -> Step:
        self._record_failure(work, unit, detail, message)
        return Step(checkpoint, failure=f"{unit.label}: statement {detail.number}: {message}")

    # ------------------------------------------------------------ recording

    def _audit(
        self,
        s: Session,
        unit: Unit,
        detail: SqlJobDetail,
        state: ExecState,
        rows: int | None,
        ms: int,
        remark: str,
    ) -> None:
        s.add(
            SqlAudit(
                tid=unit.order.tid,
                user_id=unit.plan.by or unit.order.committer_id,
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

    def _record(self, results: Sequence[tuple[SqlJobDetail, Done]], work: Work, unit: Unit) -> None:
        with work.store.session() as s:
            sql_job = s.get(SqlJob, unit.sql_job.sql_job_id, with_for_update=True)
            assert sql_job is not None
            for detail, done in results:
                row = s.get(SqlJobDetail, detail.detail_id, populate_existing=True)
                if row is None or row.status == SqlJobStatus.SUCCESS:
                    continue  # another runner recorded it first
                row.status = SqlJobStatus.SUCCESS
                row.affect_rows = done.rows
                row.execute_count += 0 if done.recovered and row.execute_count else 1
                row.started_at = row.started_at or done.started
                row.ended_at = utcnow()
                row.time_ms = done.ms
                if done.backup is not None:
                    row.backup = done.backup
                note = "committed before a restart; recorded from its progress marker"
                row.log += stamp(f"{done.rows} rows" + (f" ({note})" if done.recovered else ""))
                self._audit(
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

    def _record_progress(
        self, work: Work, detail: SqlJobDetail, progress: Progress, note: str | None
    ) -> None:
        with work.store.session() as s:
            row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
            sql_job = s.get(SqlJob, detail.sql_job_id, with_for_update=True)
            if row is None or sql_job is None or row.status == SqlJobStatus.SUCCESS:
                return
            row.status = SqlJobStatus.RUNNING
            row.started_at = row.started_at or utcnow()
            row.affect_rows = progress.rows
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

    def _record_retry(self, work: Work, detail: SqlJobDetail, message: str) -> None:
        with work.store.session() as s:
            row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
            assert row is not None
            row.execute_count += 1
            row.log += stamp(f"{message}; trying again")

    def _record_failure(
        self,
        work: Work,
        unit: Unit,
        detail: SqlJobDetail,
        message: str,
        undone: Sequence[tuple[SqlJobDetail, Done]] = (),
    ) -> None:
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
            self._audit(s, unit, row, ExecState.FAIL, None, 0, message)

    def _finish_sql_job(self, work: Work, unit: Unit) -> None:
        with work.store.session() as s:
            order = s.get(Order, work.order_id, with_for_update=True)
            sql_job = s.get(SqlJob, unit.sql_job.sql_job_id, with_for_update=True)
            assert sql_job is not None
            left = s.scalar(
                select(func.count())
                .select_from(SqlJobDetail)
                .where(
                    SqlJobDetail.sql_job_id == sql_job.sql_job_id,
                    SqlJobDetail.status != SqlJobStatus.SUCCESS,
                )
            )
            if not left and sql_job.status == SqlJobStatus.RUNNING:
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
                # the ticket succeeds with its last SQL job, not a runner step later; a
                # cleanup run's end is the next step's (it stays on its schedule)
                if (
                    not others
                    and order is not None
                    and order.status_code == OrderStatus.PROCESSING
                    and not _scheduled(order)
                ):
                    _succeed(s, order)
