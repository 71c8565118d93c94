"""Historical-data cleanup tickets (DC_CRON_CLEAR) once approved: a schedule that fires
runs, each run a chunked DELETE per table and database, and the history of those runs
(dms-api.md A.1.4, A.5, E.9).

The schedule is one ``cron`` job per ticket, asleep until its next fire time. Woken, it
looks at the last fire time at or before now: if no run has that key yet, it creates one.
A run is keyed by (ticket, fire time) in ``cron_runs``, so a second scheduler or a lease
taken over mid-step cannot start it twice, and fire times missed while no server ran fold
into the latest one: it runs once. A run is an ``execute`` job like a data change's, its
DELETEs written with the cutoff of its fire time and walked in chunks by the same executor;
``specifyDuration`` gives it an execution window, whose end pauses it at a chunk boundary.
The next run starts from the table as that one left it. While a run is still going, a fire
time is recorded as skipped rather than piling a second run onto the same rows.

The kind itself (its parameters, and the hooks that arm the schedule on approval and write
the precheck's DELETEs) is ``opendms.kinds.cron_clear``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.execution.service import ExecutionPlan, Statement, stamp
from opendms.identity.caller import Caller
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.sql.cleanup import Item, statement
from opendms.store.models import (
    CronRun,
    Database,
    DbColumn,
    DbTable,
    Job,
    Order,
    PrecheckStatement,
    SqlJob,
    utcnow,
)
from opendms.store.states import SQL_JOB_OVER, JobState, OrderStatus, SqlJobStatus
from opendms.store.times import log_time
from opendms.targets.base import TargetError
from opendms.tickets import cron, lifecycle
from opendms.tickets import service as tickets
from opendms.tickets.registry import params_of

SCHEDULE = "cron"
RECLAIM = "reclaim"


class ClearItem(Protocol):
    @property
    def table_name(self) -> str: ...
    @property
    def column_name(self) -> str: ...
    @property
    def remain_days(self) -> int: ...
    @property
    def time_unit(self) -> str | None: ...
    @property
    def filter_sql(self) -> str | None: ...


@runtime_checkable
class CleanupOptions(Protocol):
    """What a cleanup needs of its ticket's parameters. The kind that clears on a schedule
    (``opendms.kinds.cron_clear``) has parameters of this shape; this module reads them
    through it, never through that kind's model."""

    @property
    def cron_format(self) -> str: ...
    @property
    def cron_clear_item_list(self) -> Sequence[ClearItem]: ...
    @property
    def specify_duration(self) -> bool: ...
    @property
    def duration_hour(self) -> int | None: ...
    @property
    def optimize_table_after_every_clear_times(self) -> int | None: ...


def _params(order: Order) -> CleanupOptions:
    params = params_of(order)
    if not isinstance(params, CleanupOptions):
        raise TypeError(f"ticket {order.order_id} is {order.plugin_type}, not a cleanup")
    return params


def items_of(order: Order) -> list[Item]:
    return [
        Item(i.table_name, i.column_name, i.remain_days, i.time_unit, i.filter_sql)
        for i in _params(order).cron_clear_item_list
    ]


def zoned(s: Session, db_id: int, item: Item) -> bool:
    """Whether ``item``'s column is a MySQL/MariaDB TIMESTAMP in database ``db_id`` (its
    cutoff is then an instant: ``sql.cleanup.cutoff``)."""
    schema, _, table = item.table.lower().rpartition(".")
    if schema:  # another schema of the same instance
        home = s.get(Database, db_id)
        db_id = (
            s.scalar(
                select(Database.db_id).where(
                    Database.instance_id == home.instance_id,
                    func.lower(Database.schema_name) == schema,
                )
            )
            if home is not None
            else None
        ) or 0
    found = s.scalar(
        select(DbColumn.column_type)
        .join(DbTable, DbTable.table_id == DbColumn.table_id)
        .where(
            DbTable.db_id == db_id,
            func.lower(DbTable.name) == table,
            func.lower(DbColumn.name) == item.column.lower(),
        )
    )
    return str(found or "").lower().startswith("timestamp")


def statements(s: Session, order: Order, db_id: int, engine: str, fired: datetime) -> list[str]:
    """The DELETEs a run fired at ``fired`` runs in database ``db_id``, one per item."""
    return [statement(item, engine, fired, zoned(s, db_id, item)) for item in items_of(order)]


def script(s: Session, order: Order, engine: str, fired: datetime) -> str:
    """The DELETEs as one script for the ticket's databases on ``engine`` (the precheck's)."""
    dbs = [
        db.db_id
        for db, inst in tickets.databases_of(s, order.order_id)
        if inst.instance_type == engine
    ]
    return "".join(f"{one};\n" for one in statements(s, order, dbs[0] if dbs else 0, engine, fired))


def optimize_every(order: Order) -> int:
    return _params(order).optimize_table_after_every_clear_times or 0


def duration_hours(order: Order) -> int | None:
    params = _params(order)
    return params.duration_hour if params.specify_duration else None


# ------------------------------------------------------------------ the schedule


def arm(s: Session, order: Order) -> Job:
    """After the last approval: the ticket runs on its schedule from now on."""
    lifecycle.transition(s, order, OrderStatus.PROCESSING)
    expression = _params(order).cron_format
    job = Job(order_id=order.order_id, kind=SCHEDULE, run_after=cron.next_run(expression, utcnow()))
    s.add(job)
    s.flush()
    return job


def schedule_job(s: Session, order_id: int) -> Job | None:
    return tickets.latest_job(s, order_id, SCHEDULE)


@dataclass
class Schedule:
    """The executor of ``cron`` jobs: fires the run that is due, then sleeps until the next
    fire time."""

    clock: Callable[[], datetime] = utcnow

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            order = s.get(Order, work.order_id, with_for_update=True)
            job = s.get(Job, work.job_id)
            if order is None or job is None or order.status_code != OrderStatus.PROCESSING:
                return Step(checkpoint, done=True)  # closed: the schedule ends
            expression = _params(order).cron_format
            now = self.clock()
            fire = cron.previous_run(expression, now)
            if fire >= job.created_at.replace(microsecond=0):  # not before it was armed
                self._fire(s, order, fire, now)
            upcoming = cron.next_run(expression, now)
        return Step(checkpoint, wait_seconds=max(0.5, (upcoming - now).total_seconds()))

    def _fire(self, s: Session, order: Order, fire: datetime, now: datetime) -> None:
        going = s.scalar(
            select(func.count())
            .select_from(SqlJob)
            .where(
                SqlJob.order_id == order.order_id,
                SqlJob.status.in_((SqlJobStatus.INIT, SqlJobStatus.RUNNING)),
            )
        )
        run = CronRun(order_id=order.order_id, fire_at=fire)
        try:
            with s.begin_nested():
                s.add(run)
                s.flush()
        except IntegrityError:
            return  # this fire time has its run already (another scheduler, a restart)
        if going:
            run.note = "skipped: the previous run is still going"
            return
        hours = duration_hours(order)
        # the window opens when the run does: a fire time caught up late gets all of it
        end = max(fire, now) + timedelta(hours=hours) if hours else None
        plan = ExecutionPlan(end=log_time(end) if end else None, by=order.committer_id)
        counted = {
            (p.db_id, p.number): p.sql_id
            for p in s.scalars(
                select(PrecheckStatement).where(PrecheckStatement.order_id == order.order_id)
            )
        }
        by_db: dict[int, list[Statement]] = {}
        for db, inst in tickets.databases_of(s, order.order_id):
            written = statements(s, order, db.db_id, inst.instance_type, fire)
            by_db[db.db_id] = [
                Statement(number, text, "DELETE", counted.get((db.db_id, number), 0))
                for number, text in enumerate(written, start=1)
            ]
        run.job_id = execution.open_execution(s, order, plan, by_db).job_id
        s.flush()


def run_finished(s: Session, order: Order, job: Job) -> None:
    """A run's every SQL job succeeded: every N successful runs, space is reclaimed."""
    every = optimize_every(order)
    if not every:
        return
    unfinished = select(SqlJob.group_id).where(SqlJob.status.not_in(SQL_JOB_OVER))
    succeeded = s.scalar(  # runs whose group_status is SUCCESS, counted in one query
        select(func.count())
        .select_from(CronRun)
        .where(
            CronRun.order_id == order.order_id,
            CronRun.job_id.in_(
                select(SqlJob.group_id).where(SqlJob.status == SqlJobStatus.SUCCESS)
            ),
            CronRun.job_id.not_in(unfinished),
        )
    )
    if succeeded and succeeded % every == 0:
        s.add(Job(order_id=order.order_id, kind=RECLAIM, spec={"group": job.job_id}))


@dataclass
class Reclaim:
    """The executor of ``reclaim`` jobs: OPTIMIZE TABLE (MySQL, MariaDB) or VACUUM
    (PostgreSQL) on each table the cleanup deletes from, in each of its databases."""

    means: Means

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            order = s.get(Order, work.order_id)
            job = s.get(Job, work.job_id)
            if order is None or job is None:
                return Step(checkpoint, done=True)
            group = int(job.spec["group"])
            places = [(db, inst) for db, inst in tickets.databases_of(s, order.order_id)]
            tables = [item.table for item in items_of(order)]
        notes: list[tuple[int, str]] = []
        for db, inst in places:
            for table in tables:
                try:
                    self.means.connector(inst).reclaim((db.catalog_name, db.schema_name), table)
                    notes.append((db.db_id, f"space reclaimed in {table}"))
                except (TargetError, DmsError) as exc:
                    notes.append((db.db_id, f"reclaiming space in {table} failed: {exc.message}"))
        with work.store.session() as s:
            for sql_job in s.scalars(select(SqlJob).where(SqlJob.group_id == group)):
                for db_id, note in notes:
                    if db_id == sql_job.db_id:
                        sql_job.log += stamp(note)
        return Step(checkpoint, done=True)


# ------------------------------------------------------------------ reads


@dataclass(frozen=True)
class RunView:
    run: CronRun
    status: SqlJobStatus  # the run's jobStatus; DELETE for a fire time skipped
    rows: int


def _runs(order_id: int) -> Select[CronRun]:
    """The ticket's fire times, newest first."""
    return select(CronRun).where(CronRun.order_id == order_id).order_by(CronRun.fire_at.desc())


def _view(s: Session, run: CronRun) -> RunView:
    if run.job_id is None:
        return RunView(run, SqlJobStatus.DELETE, 0)
    group = run.job_id
    return RunView(run, execution.group_status(s, group), execution.task_affected_rows(s, group))


def _cleanup(s: Session, caller: Caller, order_id: int) -> Order:
    order = tickets.get_order(s, caller, order_id)
    if not isinstance(params_of(order), CleanupOptions):
        raise DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"Ticket {order_id} is {order.plugin_type}, not a historical-data cleanup.",
        )
    return order


def history(
    s: Session, caller: Caller, order_id: int, page: int, size: int
) -> tuple[list[RunView], int]:
    """GetDataCronClearTaskDetailList: every fire time, newest first."""
    _cleanup(s, caller, order_id)
    total = s.scalar(select(func.count()).select_from(CronRun).where(CronRun.order_id == order_id))
    shown = s.scalars(_runs(order_id).offset((page - 1) * size).limit(size))
    return [_view(s, r) for r in shown], int(total or 0)


class CronStatus(StrEnum):
    """GetDataCronClearConfig's ``CronStatus``: how the latest run went."""

    NEVER_RAN = ""
    WAITING = "WAITING"  # going, or waiting for its turn
    PAUSE = "PAUSE"  # paused, or the schedule ended (the ticket was closed)
    SUCCESS = "SUCCESS"


@dataclass(frozen=True)
class Config:
    cron_format: str
    status: CronStatus
    call_times: int
    last_call: datetime | None
    next_call: datetime | None
    duration_hours: int
    optimize_every: int
    reclaims: int  # how often space was reclaimed (OPTIMIZE TABLE, VACUUM)


def config(s: Session, caller: Caller, order_id: int) -> Config:
    """GetDataCronClearConfig: the schedule and where it stands."""
    order = _cleanup(s, caller, order_id)
    ran = _runs(order_id).where(CronRun.job_id.is_not(None))
    calls = s.scalar(select(func.count()).select_from(ran.subquery()))
    last = s.scalars(ran.limit(1)).first()
    latest = _view(s, last) if last is not None else None
    job = schedule_job(s, order_id)
    armed = (
        job is not None
        and job.state in (JobState.QUEUED, JobState.RUNNING)
        and order.status_code == OrderStatus.PROCESSING
    )
    if latest is None:
        status = CronStatus.NEVER_RAN
    elif latest.status == SqlJobStatus.SUCCESS:
        status = CronStatus.SUCCESS
    elif latest.status == SqlJobStatus.PAUSE or not armed:
        status = CronStatus.PAUSE
    else:
        status = CronStatus.WAITING
    return Config(
        cron_format=_params(order).cron_format,
        status=status,
        call_times=int(calls or 0),
        last_call=latest.run.created_at if latest else None,
        next_call=job.run_after if armed and job is not None else None,
        duration_hours=duration_hours(order) or 0,
        optimize_every=optimize_every(order),
        reclaims=int(
            s.scalar(
                select(func.count())
                .select_from(Job)
                .where(
                    Job.order_id == order_id, Job.kind == RECLAIM, Job.state == JobState.SUCCEEDED
                )
            )
            or 0
        ),
    )
