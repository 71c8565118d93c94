"""A step of an ``execute`` job over DDL statements (the ``ddl`` walk): the SQL job's next
statement handed to the online engine of its database's engine (``execution.online``) for
about ``Tuning.step_seconds``, its progress stored where ``GetOnlineDDLProgress`` reads it.

A ticket whose statements came from comparing the database (``SchemaPlan``: a structure
sync, a schema design's stage) runs them only on the tables it compared: before the first
statement the tables are read again, and a database that changed since fails the job,
saying how, instead of running DDL written for another shape.

Each engine keeps its own progress on the target with its work (``execution.online``), so a
step resumed after a crash neither repeats nor skips a piece, whatever the store recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import sqlglot
from sqlalchemy import select
from sqlglot.errors import SqlglotError

from opendms.errors import DmsError
from opendms.execution import recording
from opendms.execution.online import (
    Alteration,
    CutOver,
    OnlineProgress,
    OnlineStatus,
)
from opendms.execution.online_engines import engine_for
from opendms.execution.service import stamp
from opendms.execution.unit import Done, Unit, statement_key
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.schema import diff
from opendms.schema.model import Table
from opendms.sql.ddl_tables import ddl_table
from opendms.sql.statements import DIALECTS
from opendms.store.models import Database, Instance, SchemaPlan, SqlJob, SqlJobDetail, utcnow
from opendms.store.states import SqlJobStatus
from opendms.targets.base import Change, TargetError

# What the ddl walk runs; anything else is refused before it runs, whatever review said.
DDL = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "COMMENT"})


def _plan(work: Work, unit: Unit) -> SchemaPlan | None:
    with work.store.session() as s:
        return s.scalar(
            select(SchemaPlan).where(
                SchemaPlan.order_id == unit.order.order_id, SchemaPlan.db_id == unit.db.db_id
            )
        )


def _read(means: Means, unit: Unit, names: list[str]) -> dict[str, Table]:
    where = (unit.db.catalog_name, unit.db.schema_name)
    return means.connector(unit.inst).definitions(where, names)


def _planned(plan: SchemaPlan) -> list[str]:
    """The tables the plan compared: those it found and those it should leave."""
    return sorted(set(plan.before) | set(plan.desired))


def drift(plan: SchemaPlan, live: dict[str, Table], engine: str) -> list[str]:
    """How the database's tables differ from what ``plan`` compared; empty: not at all. A
    table already as the plan wants it is no drift: a run cut short after its statement
    committed (the engine's record on the target says so) finds it that way."""
    found: list[str] = []
    for name in _planned(plan):
        now = live.get(name)
        if _same(plan.before.get(name), now, engine) or _same(plan.desired.get(name), now, engine):
            continue
        before = plan.before.get(name)
        if before is None:
            found.append(f"table {name} exists now")
        elif now is None:
            found.append(f"table {name} is gone")
        else:
            found += [
                f"{name}: {d.text}" for d in diff.compare(Table.from_json(before), now, engine)
            ]
    return found


def _same(stored: dict[str, Any] | None, now: Table | None, engine: str) -> bool:
    if stored is None or now is None:
        return stored is None and now is None
    return not diff.compare(Table.from_json(stored), now, engine)


def _store_progress(work: Work, detail: SqlJobDetail, progress: OnlineProgress) -> None:
    with work.store.session() as s:
        row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
        if row is None or row.status == SqlJobStatus.SUCCESS:
            return
        row.status = SqlJobStatus.RUNNING
        row.started_at = row.started_at or utcnow()
        row.affect_rows = progress.copy_count
        row.progress = progress.dumps()


def ddl_stride(
    work: Work, unit: Unit, change: Change, checkpoint: Checkpoint, means: Means
) -> Step:
    """The SQL job's next DDL statements, for about ``Tuning.step_seconds``: a statement that
    ends within it is followed by the next in the same step, on the same connection (a
    structure sync's quick statements, an ADD COLUMN before a CREATE INDEX, do not each
    wait for the runner's next turn and a connection of their own)."""
    until = time.monotonic() + means.tuning.step_seconds
    while True:
        step, finished = _statement(work, unit, change, checkpoint, means, until)
        if not finished or len(unit.pending) == 1 or time.monotonic() >= until:
            return step
        unit = replace(unit, pending=unit.pending[1:])


def _statement(
    work: Work, unit: Unit, change: Change, checkpoint: Checkpoint, means: Means, until: float
) -> tuple[Step, bool]:
    """The SQL job's first pending statement, until ``until``; and whether it finished."""
    detail = unit.pending[0]
    if detail.sql_type not in DDL:
        message = f"statement {detail.number} is {detail.sql_type}: a schema change runs only DDL."
        return recording.fail(work, unit, detail, message, checkpoint), False
    dialect = DIALECTS.get(unit.engine, "mysql")
    try:
        node = sqlglot.parse_one(detail.sql_text, read=dialect)
    except SqlglotError as exc:
        return recording.fail(work, unit, detail, f"it no longer parses: {exc}", checkpoint), False
    table = ddl_table(node)
    plan = _plan(work, unit)
    progress = OnlineProgress.loads(detail.progress)
    try:
        names = _planned(plan) if plan is not None else ([table] if table else [])
        # read for the drift check and the statement's plan, both made at its start; a
        # statement under way asks its engine's record on the target, not the catalog
        fresh = progress.status is OnlineStatus.INIT or (plan is not None and not _started(unit))
        live = _read(means, unit, names) if names and fresh else {}
    except (TargetError, DmsError) as exc:
        raise TargetError(f"reading the tables failed: {exc.message}") from exc
    if plan is not None and not _started(unit):
        changed = drift(plan, live, unit.engine)
        if changed:
            message = (
                "the database changed since it was compared ("
                + "; ".join(changed[:5])
                + (f"; and {len(changed) - 5} more" if len(changed) > 5 else "")
                + "): compare it anew (RetryDataCorrectPreCheck; CompareSchemaDesign for a "
                "schema design) before running it"
            )
            return recording.fail(work, unit, detail, message, checkpoint), False
    started, t0 = utcnow(), time.perf_counter()
    alteration = Alteration(
        node=node,
        text=detail.sql_text,
        table=table or "",
        before=live.get(table) if table else None,
        engine=unit.engine,
        mode=unit.inst.ddl_online,
        cut_over=CutOver(),
        key=unit.key(detail),
    )
    if progress.status is OnlineStatus.INIT:
        recording.log_note(work, detail, f"started on {table or 'the database'}")
    replica = means.connector(unit.replica) if unit.replica is not None else None
    engine = engine_for(
        unit.engine, alteration.mode, pace=means.pace, limits=unit.limits, replica=replica
    )
    outcome = engine.step(change, alteration, progress, until)
    _store_progress(work, detail, outcome.progress)
    if outcome.failure is not None:
        return recording.fail(work, unit, detail, outcome.failure, checkpoint), False
    if outcome.done:
        ms = int((time.perf_counter() - t0) * 1000)
        return _done(work, unit, detail, outcome.progress, Done(0, started, ms)), True
    return Step({}, wait_seconds=outcome.wait_seconds), False


def _started(unit: Unit) -> bool:
    """Whether any statement of the SQL job ran or began: the drift check is made once,
    before the first."""
    return unit.pending[0].number != 1 or any(
        d.status != SqlJobStatus.INIT or d.progress for d in unit.pending
    )


def _done(
    work: Work, unit: Unit, detail: SqlJobDetail, progress: OnlineProgress, done: Done
) -> Step:
    kept = f"; the old table is kept as {progress.old_table}" if progress.old_table else ""
    recording.log_note(work, detail, f"done ({progress.strategy.describe()}){kept}")
    last = len(unit.pending) == 1
    return Step({}, done=recording.record(work, unit, [(detail, done)], finish=last))


@dataclass
class OnlineCancel:
    """The ``online_cancel`` job executor: a ticket closed while its DDL ran on live tables
    gets back every table it had not swapped in as it was (shadow tables and triggers
    dropped, through each statement's own engine). A target out of reach is tried again."""

    means: Means

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            found = s.execute(
                select(SqlJobDetail, SqlJob, Database, Instance)
                .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
                .join(Database, Database.db_id == SqlJob.db_id)
                .join(Instance, Instance.instance_id == Database.instance_id)
                .where(
                    SqlJob.order_id == work.order_id,
                    SqlJobDetail.status != SqlJobStatus.SUCCESS,
                )
            ).all()
        left = []
        for detail, sql_job, db, inst in found:
            progress = OnlineProgress.loads(detail.progress or None)
            if progress.status in (OnlineStatus.INIT, OnlineStatus.SUCCESS, OnlineStatus.CANCELED):
                continue
            try:
                self._cancel(detail, sql_job, db, inst, progress)
            except (TargetError, DmsError, SqlglotError) as exc:
                left.append(f"statement {detail.number} in {db.schema_name}@{inst.alias}: {exc}")
                continue
            progress.status = OnlineStatus.CANCELED
            progress.message = "taken back: the ticket was closed"
            _store_cancelled(work, detail, progress)
        tries = int(checkpoint.get("tries", 0)) + 1
        if left and tries < CANCEL_TRIES:
            return Step({"tries": tries}, wait_seconds=min(300.0, 5.0 * 2**tries))
        if left:
            return Step({}, failure="could not take back: " + "; ".join(left))
        return Step({}, done=True)

    def _cancel(
        self,
        detail: SqlJobDetail,
        sql_job: SqlJob,
        db: Database,
        inst: Instance,
        progress: OnlineProgress,
    ) -> None:
        engine = inst.instance_type
        node = sqlglot.parse_one(detail.sql_text, read=DIALECTS.get(engine, "mysql"))
        table = ddl_table(node) or ""
        alteration = Alteration(
            node=node,
            text=detail.sql_text,
            table=table,
            before=None,
            engine=engine,
            mode=inst.ddl_online,
            key=statement_key(sql_job, detail),
        )
        where = (db.catalog_name, db.schema_name)
        with self.means.connector(inst).change(where, self.means.lock_wait_seconds) as change:
            engine_for(engine, inst.ddl_online, pace=self.means.pace).cancel(
                change, alteration, progress
            )


CANCEL_TRIES = 8


def _store_cancelled(work: Work, detail: SqlJobDetail, progress: OnlineProgress) -> None:
    with work.store.session() as s:
        row = s.get(SqlJobDetail, detail.detail_id, with_for_update=True)
        if row is not None:
            row.progress = progress.dumps()
            row.log += stamp(progress.message)
