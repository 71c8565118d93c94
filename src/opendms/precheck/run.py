"""The precheck of a data-change ticket, run as a job (dms-api.md A.3.2, E.6).

Four steps, in order, each shown as it runs (``precheck_steps``):

- ``SQL_PARSE``: the script splits and every statement parses, in each database's dialect;
- ``SQL_TYPE_CHECK``: SQL review (statement kinds of the ticket type, the catalog, the levels
  of the instance's rule set); an ERROR finding fails it, warnings are listed;
- ``PERMISSION_CHECK``: the committer holds the ticket type's permission (CORRECT; EXPORT for
  an export) on every table touched, or is the instance's DBA (named by someone else:
  ``catalog.dba``), or an administrator;
- ``ROW_CHECK``: the rows each statement changes (or an export reads), counted on the live
  database with its own WHERE under a time limit (the planner's estimate when the count runs
  out of time, and the step says so), against the ticket's ``EstimateAffectRows`` (an
  export's ``AffectRows`` is the most it may read).

A step that fails stops the run: later steps would act on SQL that is wrong or tables the
committer may not touch (a row count is itself something to be allowed to see). The run
reads and never writes the targets, so a run cut short is simply run again. A newer run
(retry, changed SQL) takes the rows over; an older one still going writes nothing more.

This module runs the steps; they are ``precheck.checks`` over a ticket's SQL, and
``precheck.imports`` over the file of a kind that runs one (``Execution.walk`` ``file``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from opendms.errors import DmsError
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.precheck.checks import CheckedDatabase, StepFailed, _Checks
from opendms.precheck.imports import ImportChecks
from opendms.store.models import Attachment, Job, Order, PrecheckStatement, PrecheckStep
from opendms.store.states import JobState, OrderStatus, PrecheckStepStatus, ReviewStatus
from opendms.targets.base import TargetError
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of, params_of

log = logging.getLogger("opendms.precheck")

STEPS = ("SQL_PARSE", "SQL_TYPE_CHECK", "PERMISSION_CHECK", "ROW_CHECK")


def reset(s: Session, order_id: int, job_id: int) -> None:
    """Hand the ticket's step rows to run ``job_id``, all WAITING; drop the old statements."""
    s.execute(delete(PrecheckStep).where(PrecheckStep.order_id == order_id))
    s.execute(delete(PrecheckStatement).where(PrecheckStatement.order_id == order_id))
    s.add_all(
        PrecheckStep(
            order_id=order_id,
            step=step,
            position=i,
            job_id=job_id,
            status=PrecheckStepStatus.WAITING,
        )
        for i, step in enumerate(STEPS, start=1)
    )
    s.flush()


@dataclass
class Precheck:
    """The executor of ``precheck`` jobs."""

    means: Means

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            order = s.get(Order, work.order_id, with_for_update=True)
            newest = s.scalar(
                select(func.max(Job.job_id)).where(
                    Job.order_id == work.order_id, Job.kind == "precheck"
                )
            )
            job = s.get(Job, work.job_id)
            current = job is not None and job.state == JobState.RUNNING and newest == work.job_id
            if order is None or order.status_code != OrderStatus.NEW or not current:
                return Step(checkpoint, done=True)  # moved on, or a newer run took over
            reset(s, order.order_id, work.job_id)
            run = _Run(self.means, work, order.order_id)
        run.go()
        return Step(checkpoint, done=True)


class _Run:
    def __init__(self, means: Means, work: Work, order_id: int) -> None:
        self.means, self.work, self.order_id = means, work, order_id

    @contextmanager
    def _mine(self) -> Iterator[Session | None]:
        """A transaction in which this run still owns the ticket's precheck rows (None when a
        newer run took them over, or the ticket moved on)."""
        with self.work.store.session() as s:
            order = s.get(Order, self.order_id, with_for_update=True)
            owner = s.scalar(
                select(func.max(PrecheckStep.job_id)).where(PrecheckStep.order_id == self.order_id)
            )
            yield s if order is not None and owner == self.work.job_id else None

    def _set(
        self,
        step: str,
        status: PrecheckStepStatus,
        tip: str = "",
        *,
        waivable: bool = False,
        then: Sequence[tuple[str, PrecheckStepStatus, str]] = (),
    ) -> bool:
        """``step``'s status, and those of the steps ``then`` (step, status, tip), in one
        transaction; False when this run no longer owns the ticket's precheck."""
        with self._mine() as s:
            if s is None:
                return False
            updates = [(step, status, tip, waivable), *((n, st, t, False) for n, st, t in then)]
            for name, state, text, waive in updates:
                s.execute(
                    update(PrecheckStep)
                    .where(PrecheckStep.order_id == self.order_id, PrecheckStep.step == name)
                    .values(status=state, user_tip=text[:4000], waivable=waive)
                )
            return True

    def _fail(self, step: str, tip: str, *, waivable: bool = False) -> None:
        """``step`` failed; the steps after it do not run."""
        later = STEPS[STEPS.index(step) + 1 :]
        not_run = [(name, PrecheckStepStatus.WAITING, f"Not run: {step} failed.") for name in later]
        self._set(step, PrecheckStepStatus.FAIL, tip, waivable=waivable, then=not_run)

    def go(self) -> None:
        # Each step reads the store in a transaction of its own and none is open while a
        # target is asked anything: on SQLite a transaction holds the write lock.
        if not self._compare():
            return
        with self.work.store.session() as s:
            order = s.get(Order, self.order_id)
            assert order is not None
            targets = _targets(s, order)
            try:
                checks = self._checks(s, order, targets)
                problem = ""
            except StepFailed as exc:
                checks, problem = None, str(exc)
        if checks is None:
            self._fail("SQL_PARSE", problem)
            return
        if not self._set(STEPS[0], PrecheckStepStatus.RUNNING):
            return
        for step, following in zip(STEPS, [*STEPS[1:], None], strict=True):
            try:
                tip = checks.run(step)
            except StepFailed as exc:
                self._fail(step, str(exc), waivable=exc.waivable)
                return
            except (TargetError, DmsError) as exc:
                self._fail(step, exc.message)
                return
            finally:
                if step in ("SQL_TYPE_CHECK", "ROW_CHECK"):
                    self._store(targets)
            # the next step is marked running as this one succeeds, in one transaction
            then = [(following, PrecheckStepStatus.RUNNING, "")] if following else []
            if not self._set(step, PrecheckStepStatus.SUCCESS, tip, then=then):
                return

    def _compare(self) -> bool:
        """A kind whose SQL is what comparing databases finds compares them first (a failure
        is SQL_PARSE's); False when that failed and the run is over."""
        with self.work.store.session() as s:
            order = s.get(Order, self.order_id)
            assert order is not None
        try:
            kind_of(order.plugin_type).compare(
                self.work.store, self.means.connector, order, self.work.job_id
            )
        except StepFailed as exc:
            self._fail("SQL_PARSE", str(exc))
            return False
        return True

    def _checks(self, s: Session, order: Order, targets: list[CheckedDatabase]) -> _Checks:
        """The steps for this ticket: over its file for a kind that runs one, over its SQL
        otherwise."""
        execution = kind_of(order.plugin_type).execution
        if execution is not None and execution.walk == "file":
            checks: _Checks = ImportChecks(self.work.store, self.means, order, targets, {})
            checks.prepare(s)
            return checks
        engines = {t.inst.instance_type for t in targets}
        scripts = _scripts(s, self.means, order, engines)
        return _Checks(self.work.store, self.means, order, targets, scripts)

    def _store(self, targets: Sequence[CheckedDatabase]) -> None:
        """The statements as found so far: written whole, so a reader sees one run's view."""
        with self._mine() as s:
            if s is None:
                return
            s.execute(delete(PrecheckStatement).where(PrecheckStatement.order_id == self.order_id))
            rows = [
                {
                    "order_id": self.order_id,
                    "db_id": t.db.db_id,
                    "number": f.number,
                    "line": f.line,
                    "sql_text": f.text,
                    "sql_type": f.kind,
                    "table_names": ",".join(f.tables),
                    "affect_rows": f.rows,
                    "rows_source": f.rows_source,
                    "review_status": ReviewStatus.BLOCK if f.blocked else ReviewStatus.PASS,
                    "findings": f.findings,
                }
                for t in targets
                for f in t.statements
            ]
            if rows:
                s.execute(insert(PrecheckStatement), rows)


def _targets(s: Session, order: Order) -> list[CheckedDatabase]:
    return [CheckedDatabase(db, inst) for db, inst in tickets.databases_of(s, order.order_id)]


def _scripts(s: Session, means: Means, order: Order, engines: set[str]) -> dict[str, str]:
    """The ticket's SQL for each engine among its databases': written for each by a kind
    that writes it (a cleanup's DELETEs, as they would run now), else the SQL the ticket
    carries, the same for all."""
    written = kind_of(order.plugin_type).precheck_scripts(s, order, engines)
    if written is not None:
        return written
    script = _script(s, means, order)
    return dict.fromkeys(engines, script)


def _script(s: Session, means: Means, order: Order) -> str:
    """The ticket's SQL: as its parameters carry it, or the text of its attachment."""
    params = params_of(order)
    given = params.intent().sql
    if given:
        return "\n".join(given)
    attachment = s.get(Attachment, str(getattr(params, "attachment_name", "")))
    if attachment is None:
        raise StepFailed("The SQL attachment is gone.")
    path = means.files.path_for(attachment.sha256)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise StepFailed(f"The SQL attachment {attachment.file_name} is missing.") from None
    except UnicodeDecodeError as exc:
        raise StepFailed(
            f"The SQL attachment {attachment.file_name} is not UTF-8 text "
            f"(byte {exc.start} is not valid)."
        ) from None
