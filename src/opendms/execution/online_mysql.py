"""Lock-free DDL on MySQL and MariaDB: :class:`MysqlOnline`, the ``OnlineEngine`` of both.

What the server can do, it is asked, never guessed from its version: the statement is first
tried with ``ALGORITHM=INSTANT`` (metadata only), then, with ``DdlOnline`` 1, with
``ALGORITHM=INPLACE, LOCK=NONE``; a refusal (ER_ALTER_OPERATION_NOT_SUPPORTED and its kin,
the only errors that say "not this way") moves on to the next way, and the last is a shadow
copy (``online_mysql_shadow``). ``DdlOnline`` 2 skips INPLACE: it runs as one statement that
cannot be paused, throttled or watched. ``DdlOnline`` 0, a statement that names its own
ALGORITHM or LOCK, and any statement that is no change of a live table (CREATE TABLE, DROP
TABLE, RENAME …) run as written.

Every DDL statement waits at most ``CutOver.lock_seconds`` for its metadata lock (a DDL
statement queued behind a long transaction queues every later reader and writer of the
table behind itself) and a lost fight is tried again after a rest, up to ``CutOver.retries``
times. A native statement commits by itself, so its record cannot commit with it: the
table's definition digest taken before it tells a resumed step whether it ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlglot import exp

from opendms.execution import online_mysql_shadow as shadow
from opendms.execution.online import (
    Alteration,
    OnlineProgress,
    OnlineStatus,
    Outcome,
    Strategy,
)
from opendms.execution.online_mysql_plan import WRITTEN, Job, Moved, Phase, Plan, Record
from opendms.sql.shadow_mysql import INPLACE, INSTANT, names_algorithm, native, shape_of, target
from opendms.targets.base import Change, Connector, StatementError
from opendms.targets.mysql import MysqlChange
from opendms.targets.mysql_facts import create_text, schema_of
from opendms.targets.pace import Gauge, Limits, Pace

# The errors that refuse an ALGORITHM (or LOCK) rather than the statement. Both servers:
# ER_UNKNOWN_ALTER_ALGORITHM (a server older than INSTANT), ER_ALTER_OPERATION_NOT_SUPPORTED
# and its _REASON form. MySQL 8 alone: ER_INNODB_MAX_ROW_VERSION (a table's instant column
# changes used up), ER_INNODB_INSTANT_ADD_NOT_SUPPORTED_MAX_SIZE and, from 8.0.35/8.4, the
# row-size and column-count limits of instant ADD/DROP COLUMN. MariaDB numbers other errors
# 4092 and up (4092 is ER_UNKNOWN_VIEW there), hence one set per engine.
REFUSALS = {
    "mariadb": frozenset({1800, 1845, 1846}),
    "mysql": frozenset({1800, 1845, 1846, 4092, 4093, 4157, 4158}),
}
# The statuses with which a caller asks for a run again, after seeing it end; with any
# other, a step that finds a run ended reports that end (the caller's state lagged).
_AGAIN = frozenset(
    {
        OnlineStatus.INIT,
        OnlineStatus.RESTARTING,
        OnlineStatus.FAIL,
        OnlineStatus.UNSUPPORTED,
        OnlineStatus.CANCELED,
    }
)
_STRATEGIES = {INSTANT: Strategy.INSTANT, INPLACE: Strategy.INPLACE, WRITTEN: Strategy.DIRECT}


def refused(engine: str, code: int | str | None) -> bool:
    """The server refused the ALGORITHM asked for (not the statement)."""
    return code in REFUSALS.get(engine, REFUSALS["mysql"])


def first_algorithm(alteration: Alteration) -> str:
    """How the statement is first tried: INSTANT, or exactly as written."""
    node = alteration.node
    if alteration.mode == 0 or target(node) is None or names_algorithm(node):
        return WRITTEN
    return INSTANT


def after_refusal(mode: int, algorithm: str) -> str | None:
    """The next algorithm to ask for once ``algorithm`` is refused; None: a shadow copy."""
    return INPLACE if algorithm == INSTANT and mode == 1 else None


class MysqlOnline:
    """The online engine of MySQL and MariaDB instances (``Alteration.engine`` mysql or
    mariadb). ``pace`` sizes and rests the shadow copy's chunks as it does a chunked
    change's; ``limits`` (the instance's throttle, ``pace.limits`` by default) and
    ``replica`` hold the copy and the swap back while the target is busy or a replica lags;
    ``clock`` is OpenDMS's local time, which the cut-over window is read in."""

    def __init__(
        self,
        pace: Pace | None = None,
        *,
        limits: Limits | None = None,
        replica: Connector | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.pace = (pace or Pace()).for_copy()
        self.limits = limits or self.pace.limits
        self.replica = replica
        self.clock = clock

    def step(
        self, change: Change, alteration: Alteration, progress: OnlineProgress, until: float
    ) -> Outcome:
        """Take the statement on from where its record on the target says it stands, until
        ``until`` (``time.monotonic``), its end, or a reason to wait."""
        if not isinstance(change, MysqlChange) or not alteration.key:
            progress.status = OnlineStatus.FAIL
            progress.message = (
                "the MySQL online engine needs a MySQL/MariaDB change and a statement key"
            )
            return Outcome(progress, failure=progress.message)
        job = Job(
            change,
            alteration,
            progress,
            Record(change, alteration.key),
            until,
            self.pace,
            Gauge(change, self.limits, self.replica),
            self.clock,
        )
        try:
            return _run(job)
        except Moved:
            progress.message = "another runner moved this statement on; its record is read again"
            return Outcome(progress, wait_seconds=1.0)
        except StatementError as exc:
            if exc.lost_lock:  # a marker's or a read's lock wait: nothing was half done
                progress.message = f"waiting for a lock: {exc.message}"
                return Outcome(progress, wait_seconds=2.0)
            return _abandon(job, exc.message)

    def cancel(self, change: Change, alteration: Alteration, progress: OnlineProgress) -> None:
        """Drop what the statement made (triggers first, then the shadow) and record it
        canceled. A statement swapped in or finished stays so; a native ALTER running in
        another session is not stopped. Raises StatementError (``lost_lock``) when the
        triggers could not be dropped within the retries: the record says UNDO, and the next
        ``step`` or ``cancel`` goes on dropping them."""
        if not isinstance(change, MysqlChange) or not alteration.key:
            return
        record = Record(change, alteration.key)
        job = Job(
            change,
            alteration,
            progress,
            record,
            0.0,
            self.pace,
            Gauge(change, self.limits),
            self.clock,
        )
        plan = record.read()
        if plan.phase in (Phase.DONE, Phase.SWAPPED, Phase.FAILED, Phase.CANCELED):
            return
        if plan.phase in (Phase.NEW, Phase.NATIVE):
            plan = record.move(plan, replace(plan, phase=Phase.CANCELED))
        elif plan.phase is not Phase.UNDO or plan.status != OnlineStatus.CANCELED.value:
            plan = record.move(
                plan, replace(plan, phase=Phase.UNDO, status=OnlineStatus.CANCELED.value)
            )
        for attempt in range(max(1, alteration.cut_over.retries)):
            if plan.phase is not Phase.UNDO:
                break
            result = shadow.undo(job, plan)
            if isinstance(result, Plan):
                plan = result
            else:
                time.sleep(min(5.0, 0.5 * 2**attempt))
        if plan.phase is Phase.UNDO:
            raise StatementError(
                f"the triggers on {plan.table} could not be dropped: {progress.message}",
                lost_lock=True,
            )
        _show(progress, plan)


def _run(job: Job) -> Outcome:
    plan = job.record.read()
    if plan.phase in (Phase.FAILED, Phase.CANCELED) and job.progress.status in _AGAIN:
        plan = job.enter(plan, Plan())
    while True:
        _show(job.progress, plan)
        if plan.phase is Phase.DONE:
            job.progress.message = ""
            job.progress.old_table = plan.old if job.cut.keep_old else ""
            return Outcome(job.progress, done=True)
        if plan.phase in (Phase.FAILED, Phase.CANCELED):
            return Outcome(job.progress, failure=job.progress.message)
        result = _PHASES[plan.phase](job, plan)
        if isinstance(result, Outcome):
            return result
        plan = result
        if job.time_up() and plan.phase in (Phase.COPY, Phase.SWAP):
            _show(job.progress, plan)
            return Outcome(job.progress)


def _show(progress: OnlineProgress, plan: Plan) -> None:
    """What ``GetOnlineDDLProgress`` shows of the record."""
    progress.state.update(phase=plan.phase.value, shadow=plan.shadow, old=plan.old)
    if plan.strategy:
        progress.strategy = Strategy(plan.strategy)
    if plan.total:
        progress.copy_total = max(plan.total, progress.copy_count)
    if plan.phase is Phase.DONE:
        progress.status = OnlineStatus.SUCCESS
    elif plan.phase is Phase.FAILED:
        progress.status = OnlineStatus(plan.status or OnlineStatus.FAIL.value)
        progress.message = plan.message
    elif plan.phase is Phase.CANCELED:
        progress.status = OnlineStatus.CANCELED
        progress.message = "canceled; the table is as it was"
    elif progress.status is not OnlineStatus.WAITING_CUTOVER or plan.phase is not Phase.SWAP:
        progress.status = OnlineStatus.RUNNING


def _start(job: Job, plan: Plan) -> Plan:
    """NEW → NATIVE: the table, and its definition's digest before anything runs."""
    alteration = job.alteration
    # the live table it changes, else the one it creates or drops (whose existence then
    # tells whether it ran)
    table = target(alteration.node) or alteration.node.find(exp.Table)
    if table is not None and table.name:
        schema, name = table.db, table.name
    else:
        schema, _, name = alteration.table.rpartition(".")
    schema = schema_of(job.change, schema)
    algorithm = first_algorithm(alteration)
    shape = shape_of(create_text(job.change, schema, name)) if name else ""
    return job.enter(
        plan,
        Plan(
            phase=Phase.NATIVE,
            algorithm=algorithm,
            shape=shape,
            strategy=_STRATEGIES[algorithm].value,
            schema=schema,
            table=name,
        ),
    )


def _native(job: Job, plan: Plan) -> Plan | Outcome:
    """NATIVE → DONE, the next algorithm, or the shadow copy's SETUP."""
    change, alteration = job.change, job.alteration
    if plan.table and shape_of(create_text(change, plan.schema, plan.table)) != plan.shape:
        return job.enter(plan, replace(plan, phase=Phase.DONE))  # it ran; a crash hid that
    algorithm = plan.algorithm
    text = (
        alteration.text
        if algorithm == WRITTEN
        else native(alteration.node, alteration.engine, algorithm)
    )
    way = "as written" if algorithm == WRITTEN else f"with ALGORITHM={algorithm}"
    job.progress.message = f"running the statement {way}"
    try:
        change.ddl(text, job.cut.lock_seconds)
    except StatementError as exc:
        if exc.lost_lock:
            waiting = job.lost(exc, f"the statement {way}")
            if waiting is not None:
                return waiting
            return shadow.fail(
                job, plan, f"it lost {job.progress.cut_over_tries} lock fights: {exc.message}"
            )
        if algorithm == WRITTEN or not refused(alteration.engine, exc.code):
            return shadow.fail(job, plan, exc.message)
        job.progress.message = f"the server cannot run it {way}: {exc.message}"
        following = after_refusal(alteration.mode, algorithm)
        if following is not None:
            return job.enter(
                plan,
                replace(plan, algorithm=following, strategy=_STRATEGIES[following].value),
            )
        return shadow.begin(job, plan)
    return job.enter(plan, replace(plan, phase=Phase.DONE))


_PHASES: dict[Phase, Callable[[Job, Plan], Plan | Outcome]] = {
    Phase.NEW: _start,
    Phase.NATIVE: _native,
    Phase.SETUP: shadow.setup,
    Phase.COPY: shadow.copy_rows,
    Phase.SWAP: shadow.swap,
    Phase.SWAPPED: shadow.finish,
    Phase.UNDO: shadow.undo,
}


def _abandon(job: Job, message: str) -> Outcome:
    """An error no phase expected: the run ends, and what it made is dropped if it can be."""
    progress = job.progress
    progress.status, progress.message = OnlineStatus.FAIL, message
    try:
        plan = job.record.read()
        if plan.phase not in (Phase.DONE, Phase.SWAPPED, Phase.FAILED, Phase.CANCELED):
            if plan.phase is not Phase.UNDO:
                plan = shadow.fail(job, plan, message)
            result = shadow.undo(job, plan)
            if isinstance(result, Outcome):
                progress.message = f"{message}; cancel the statement to drop its triggers"
    except (StatementError, Moved) as exc:
        progress.message = f"{message}; undoing it failed too ({exc}): cancel the statement"
    progress.status = OnlineStatus.FAIL
    return Outcome(progress, failure=progress.message)
