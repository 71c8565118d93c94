"""The executor of ``execute`` jobs: a ticket's statements, database by database, exactly once.

Exactly once rests on the target, not on the metadata store: each statement (or, with
``transaction``, each database's whole set) commits in one target transaction together with
a progress marker in a table OpenDMS owns there (``targets.base.Change``). Before running a
statement the executor looks for its marker; a marker found means the change committed
before a crash or a lost lease, and only its recording is left to do. The metadata store
then records what the target says happened: a detail already recorded is not counted again
(``execution.recording``).

A step reads the SQL job to work on (``execution.unit.Unit``), connects to its database and
walks the ticket's work the way its kind says (``TicketKind.execution.walk``): plain
statements (``run_statements``), a chunked statement (``run_chunks``) or a file imported
(``run_import``), for about ``Means.tuning``'s step seconds, then hands back to the runner,
which stores the checkpoint, renews the lease and notices a closed ticket between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot.errors import SqlglotError

from opendms.catalog.shapes import CatalogShapes
from opendms.errors import DmsError
from opendms.execution import recording
from opendms.execution import service as execution
from opendms.execution.run_chunks import chunk_stride
from opendms.execution.run_ddl import ddl_stride
from opendms.execution.run_import import import_stretch
from opendms.execution.run_statements import all_at_once, one_by_one
from opendms.execution.service import ExecutionPlan, stamp
from opendms.execution.unit import Unit, one_run_of_many, walk_of
from opendms.imports.run import Importer
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.sql.backup import changed_table
from opendms.sql.chunks import ChunkRefused, chunking
from opendms.store.models import (
    Database,
    Instance,
    Job,
    Order,
    PrecheckStatement,
    SqlJob,
    SqlJobDetail,
    utcnow,
)
from opendms.store.states import SQL_JOB_OVER, SqlJobStatus
from opendms.targets.base import Change, TargetError
from opendms.tickets.params import DML
from opendms.tickets.registry import kind_of

HICCUPS = 5  # connection failures in a row before the job gives up


def _quietly(read: Callable[[str, str], str | None], text: str, engine: str) -> str | None:
    """A parse that the precheck already passed; should it fail now, nothing is known."""
    try:
        return read(text, engine)
    except SqlglotError:
        return None


@dataclass
class Execute:
    """The ``execute`` job executor (``runtime.executors``); ``means.tuning`` says how long
    a step runs and how much an import writes at a time."""

    means: Means
    clock: Callable[[], datetime] = utcnow  # the execution window's, not the step's
    importer: Importer = field(init=False)  # keeps an import's file open between steps

    def __post_init__(self) -> None:
        tuning = self.means.tuning
        self.importer = Importer(
            tuning.import_batch_rows,
            tuning.import_batch_statements,
            tuning.import_batch_seconds,
            tuning.import_batch_bytes,
            tuning.import_streams,
        )

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            unit_or_step = self._next(s, work, checkpoint)
        if isinstance(unit_or_step, Step):
            return unit_or_step
        unit = unit_or_step
        if not unit.pending:  # all recorded already: nothing to ask the target
            return Step({}, done=recording.finish_sql_job(work, unit))
        paced = unit.walk in ("chunks", "ddl")  # a chunk or a copy waits briefly for locks
        lock_wait = self.means.pace.lock_wait_seconds if paced else self.means.lock_wait_seconds
        try:
            connector = self.means.connector(unit.inst)
            where = (unit.db.catalog_name, unit.db.schema_name)
            another = partial(self.means.changes.lend, connector, where, lock_wait)
            with another() as change:
                return self._walk(work, unit, change, checkpoint, another)
        except (TargetError, DmsError) as exc:
            return self._hiccup(work, unit, exc.message, checkpoint)

    def _walk(
        self,
        work: Work,
        unit: Unit,
        change: Change,
        checkpoint: Checkpoint,
        another: Callable[[], AbstractContextManager[Change]],
    ) -> Step:
        """The step's work on the target, walked the way the ticket's kind says;
        ``another`` lends a second session to the same database (an import's)."""
        tuning = self.means.tuning
        if unit.walk == "file":
            files, seconds = self.means.files, tuning.import_step_seconds
            return import_stretch(
                work, unit, change, checkpoint, files, self.importer, seconds, another
            )
        if unit.walk == "ddl":
            return ddl_stride(work, unit, change, checkpoint, self.means)
        refused = _refuse_kinds(work, unit)
        if refused is not None:
            return refused
        if unit.walk == "chunks":
            return chunk_stride(work, unit, change, checkpoint, self.means, self.clock)
        if unit.sql_job.transactional:
            return all_at_once(work, unit, change, checkpoint)
        return one_by_one(work, unit, change, checkpoint, tuning.step_seconds)

    # ------------------------------------------------------------ what is next

    def _next(self, s: Session, work: Work, checkpoint: Checkpoint) -> Unit | Step:
        order = s.get(Order, work.order_id, with_for_update=True)
        job = s.get(Job, work.job_id)
        if order is None or job is None or not execution.may_run(order):
            return Step(checkpoint, done=True)  # closed meanwhile
        plan = ExecutionPlan(**job.spec)
        sql_jobs = s.scalars(
            select(SqlJob).where(SqlJob.group_id == job.job_id).order_by(SqlJob.position)
        ).all()
        left = [j for j in sql_jobs if j.status not in SQL_JOB_OVER]
        if not left and one_run_of_many(order):  # a run of its schedule, a stage: the kind
            kind_of(order.plugin_type).run_finished(s, order, job)  # says what follows
            return Step(checkpoint, done=True)
        if not left:
            recording.succeed(s, order)
            return Step(checkpoint, done=True)
        failed = next((j for j in left if j.status == SqlJobStatus.FAIL), None)
        if failed is not None:
            return Step(checkpoint, failure=f"SQL job {failed.sql_job_id} failed.")
        current = next((j for j in left if j.status != SqlJobStatus.PAUSE), None)
        if current is None:  # paused: until RestartDataCorrectSQLJob queues it again
            return Step(checkpoint, paused=True)
        started = any(j.status != SqlJobStatus.INIT for j in sql_jobs)
        chunked = walk_of(order) == "chunks"
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
        first_step = current.last_exec_at is None
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
        unit = Unit(order, plan, current, db, inst, list(pending), first_step=first_step)
        if unit.walk == "chunks":
            self._cut(s, unit)
        if unit.walk in ("chunks", "ddl"):  # a shadow copy is paced as chunks are
            self._limits(s, unit)
        if current.backup:
            shapes = CatalogShapes(s, [db])
            for detail in pending:
                name = _quietly(changed_table, detail.sql_text, inst.instance_type)
                if name:
                    unit.shapes[name] = shapes.table(name)
            if unit.walk == "statements":  # how big each backup will be (its table's engine)
                counted = select(PrecheckStatement.sql_id, PrecheckStatement.affect_rows)
                found = s.execute(counted.where(PrecheckStatement.order_id == order.order_id))
                unit.estimates.update({sql_id: rows for sql_id, rows in found})
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

    def _limits(self, s: Session, unit: Unit) -> None:
        """The instance's throttle, and its replica to watch."""
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


def _refuse_kinds(work: Work, unit: Unit) -> Step | None:
    """Refuse the job before anything runs if any statement is not a data change."""
    for detail in unit.pending:
        # Anything else (DDL commits implicitly on MySQL, SET and COMMIT change the
        # session) would break the one-transaction-per-marker rule, whatever review said.
        if detail.sql_type not in DML:
            message = (
                f"statement {detail.number} is {detail.sql_type}: a data change runs only "
                "INSERT, REPLACE, UPDATE and DELETE."
            )
            recording.record_failure(work, unit, detail, message)
            return Step({}, failure=f"{unit.label}: {message}")
    return None
