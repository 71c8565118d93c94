"""A MySQL/MariaDB table changed through a shadow copy, phase by phase (gh-ost's and
pt-online-schema-change's way, with triggers as pt-osc keeps the copy current).

SETUP makes ``_<t>_new`` (``CREATE TABLE … LIKE``, then the statement applied to it) and the
triggers on the table that carry every write there; COPY walks the table's key in chunks,
each one READ COMMITTED transaction that share-locks its source rows, copies those the
triggers have not, and moves the position marker; SWAP waits for the cut-over window,
checks the two tables hold as many rows in one snapshot, and renames both at once under a
short ``lock_wait_timeout``; SWAPPED drops the triggers (and the old table unless kept).
A failure or a cancel drops the triggers first and only then the shadow (a trigger whose
shadow is gone would fail every write), and leaves the table as it was.

Each function takes the step (``Job``) and the record as read, and answers the record moved
on (the step goes on) or an ``Outcome`` (the step hands back).
"""

from __future__ import annotations

import functools
import time
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta
from datetime import time as clock_time

from opendms.execution.online import CutOver, OnlineStatus, Outcome, Strategy
from opendms.execution.online_mysql_plan import Job, Phase, Plan
from opendms.execution.walk import Position, advance_by
from opendms.sql.chunks import Chunking, Key
from opendms.sql.shadow_mysql import (
    WARNINGS_KEPT,
    ShadowCopy,
    auto_increment,
    column_changes,
    copied_columns,
    copy_refusal,
    key_refusal,
    on_shadow,
    refuses_nothing,
    shadow_names,
    statement_refusal,
    unfilled,
    walk_key,
)
from opendms.targets.base import StatementError
from opendms.targets.mysql import MysqlChange
from opendms.targets.mysql_facts import (
    TableFacts,
    exists,
    names_in,
    statement_logging,
    table_facts,
)
from opendms.targets.pace import Sizer

COPY_LOCK_RETRIES = 20  # chunks in a row that may lose a lock fight before the copy fails
WINDOW_NAP_SECONDS = 300.0  # the longest wait for the cut-over window before looking again


def table_refusal(facts: TableFacts) -> str | None:
    """Why this table cannot be copied safely; None when it can."""
    name = facts.table.name
    if facts.kind != "BASE TABLE":
        return f"{name} is a {facts.kind.lower()}, not a table"
    if facts.engine != "innodb":
        return (
            f"{name} is a {facts.engine or 'non-InnoDB'} table; the copy's chunks and their "
            "position markers need InnoDB's transactions and row locks"
        )
    if facts.triggers:
        return (
            f"{name} has triggers ({', '.join(facts.triggers)}): they would stay with the old "
            "table at the swap and the new one would run without them; drop them first, or "
            "use DdlOnline 0 or 1"
        )
    if facts.referenced_by:
        return (
            f"foreign keys of other tables name {name} ({', '.join(facts.referenced_by)}): "
            "InnoDB makes them follow the rename, so after the swap they would check against "
            "the old table; drop them first, or use DdlOnline 0 or 1"
        )
    if facts.references:
        return (
            f"{name} has foreign keys ({', '.join(facts.references)}): CREATE TABLE … LIKE "
            "leaves them out of the shadow, and the old table kept after the swap would go on "
            "checking its parents; drop them first, or use DdlOnline 0 or 1"
        )
    if walk_key(facts.table) is None:
        return (
            f"{name} has neither a primary key nor a unique key of NOT NULL columns, by which "
            "the copy and its triggers find a row"
        )
    return None


def window_wait(cut: CutOver, now: datetime) -> float:
    """Seconds from ``now`` until the daily cut-over window opens; 0 inside it (a window
    whose end is before its start runs past midnight)."""
    start, end = (
        clock_time.fromisoformat(cut.window_start),
        clock_time.fromisoformat(cut.window_end),
    )
    at = now.time()
    inside = start <= at <= end if start <= end else (at >= start or at <= end)
    if inside:
        return 0.0
    opens = datetime.combine(now.date(), start, now.tzinfo)
    if opens <= now:
        opens += timedelta(days=1)
    return (opens - now).total_seconds()


def copy_of(plan: Plan, engine: str) -> ShadowCopy:
    return ShadowCopy(plan.schema, plan.table, plan.shadow, plan.columns, plan.key, engine)


def fail(job: Job, plan: Plan, message: str, status: OnlineStatus = OnlineStatus.FAIL) -> Plan:
    """The run ends: first undo what it left on the table (the step goes on to UNDO)."""
    return job.enter(plan, replace(plan, phase=Phase.UNDO, status=status.value, message=message))


def begin(job: Job, plan: Plan) -> Plan:
    """NATIVE refused → SETUP: what makes the table or the statement unfit for a copy is
    checked before anything is made; the names are chosen."""
    change, alteration = job.change, job.alteration
    facts = table_facts(change, plan.schema, plan.table)
    if facts is None:
        return fail(job, plan, f"table {plan.table} does not exist")
    why = statement_refusal(alteration.node) or table_refusal(facts)
    if why is not None:
        return fail(job, plan, f"no shadow copy: {why}", OnlineStatus.UNSUPPORTED)
    tables, triggers = names_in(change, plan.schema)
    names = shadow_names(plan.table, alteration.key, [*tables, *triggers])
    if names is None:
        return fail(job, plan, f"the shadow table's names for {plan.table} are all taken")
    return job.enter(
        plan,
        replace(
            plan,
            phase=Phase.SETUP,
            strategy=Strategy.SHADOW.value,
            shadow=names.shadow,
            old=names.old,
            triggers=names.triggers,
            key=walk_key(facts.table) or (),
            # InnoDB refuses READ COMMITTED writes under a statement-based binary log
            isolation="REPEATABLE READ" if statement_logging(change) else "READ COMMITTED",
            total=facts.rows,
        ),
    )


def setup(job: Job, plan: Plan) -> Plan | Outcome:
    """SETUP → COPY: the shadow in the new shape, then the triggers. A setup cut short (a
    crash, a lost lock fight) is made again from nothing: no row is copied before COPY."""
    change, alteration, lock = job.change, job.alteration, job.cut.lock_seconds
    try:
        _drop(change, plan, lock)
        facts = table_facts(change, plan.schema, plan.table)
        if facts is None:
            return fail(job, plan, f"table {plan.table} does not exist")
        bare = ShadowCopy(plan.schema, plan.table, plan.shadow, (), plan.key)
        change.ddl(f"CREATE TABLE {bare.target} LIKE {bare.source}", lock)
        try:
            change.ddl(
                on_shadow(alteration.node, plan.schema, plan.shadow, alteration.engine), lock
            )
        except StatementError as exc:
            if exc.lost_lock:
                raise
            return fail(job, plan, f"the statement fails on the table's copy: {exc.message}")
        # LIKE starts the counter afresh: the keys of rows deleted at the end stay unused
        counter = auto_increment(facts.create)
        if counter is not None:
            change.ddl(f"ALTER TABLE {bare.target} AUTO_INCREMENT = {counter}", lock)
        shaped = table_facts(change, plan.schema, plan.shadow)
        if shaped is None:
            return fail(job, plan, f"the shadow table {plan.shadow} vanished while it was made")
        renamed, dropped = column_changes(alteration.node)
        columns = copied_columns(facts.table, shaped.table, renamed, dropped)
        why = key_refusal(facts.table, shaped.table, plan.key, columns)
        empty = unfilled(shaped.table, columns)
        if why is None and empty:
            why = (
                f"new column {', '.join(empty)} is NOT NULL without a DEFAULT: ALTER fills it "
                "with the type's implicit value, a copy cannot; give it a DEFAULT"
            )
        if why is not None:
            return fail(job, plan, f"no shadow copy: {why}", OnlineStatus.UNSUPPORTED)
        counted = not refuses_nothing(facts.table, shaped.table, columns)
        copy = copy_of(replace(plan, columns=columns), alteration.engine)
        names = (plan.triggers[0], plan.triggers[1], plan.triggers[2])
        for statement in copy.triggers(names):
            change.ddl(statement, lock)
    except StatementError as exc:
        if not exc.lost_lock:
            return fail(job, plan, f"the shadow table cannot be made: {exc.message}")
        waiting = job.lost(exc, f"making the shadow of {plan.table}")
        with suppress(StatementError):  # writers should not feed a shadow made again anyway
            _drop(change, plan, lock)
        if waiting is None:
            return fail(job, plan, f"the triggers could not be made on {plan.table}: {exc.message}")
        return waiting
    job.progress.message = f"copying {plan.table} into {plan.shadow}"
    return job.enter(
        plan, replace(plan, phase=Phase.COPY, columns=columns, counted=counted), copy=Position()
    )


class Refused(Exception):
    """Rows of a chunk the new shape would not take (a duplicate of a new unique key)."""


def copy_chunk(
    change: MysqlChange,
    key: str,
    copy: ShadowCopy,
    walks: tuple[Chunking, Chunking],
    size: int,
    isolation: str,
    counted: bool = True,
    strict: bool = False,
) -> Position:
    """Copy the next chunk of at most ``size`` keys and move the position marker in the same
    transaction: the source rows share-locked first (by the read that finds the chunk's
    end), then copied (module docstring of ``sql.shadow_mysql``), then, when ``counted``,
    counted on both sides (:class:`Refused` when the shadow lacks some). ``walks``: the key
    ranges over the table and over the shadow. A finished walk is left alone.

    The copy is ``ShadowCopy.copy_fast`` (INSERT IGNORE), whose warnings are read in the
    chunk's transaction: one strict mode would have failed on fails the chunk (a
    StatementError, nothing copied). Should there be more warnings than the server keeps,
    the chunk is rolled back and made again with the strict statement (``strict``)."""
    walk, shadow_walk = walks

    def boundary(after: Key | None, keys: int) -> str:
        return copy.locked(walk.boundary(after, keys))  # the read locks the chunk's rows

    def work(after: Key | None, upto: Key | None) -> int:
        where = walk.where(after, upto)
        # a boundary found ends exactly ``size`` keys; the last chunk's are counted (and
        # were locked by the boundary's read already)
        walked = size if upto is not None else int(change.query(copy.lock(where))[0][0])
        if strict:
            change.execute(copy.copy(where))
        else:
            change.execute(copy.copy_fast(where))
            warnings = change.query("SHOW WARNINGS")
            refusal = copy_refusal(warnings)
            if refusal is not None:
                raise StatementError(refusal)
            if len(warnings) >= WARNINGS_KEPT:  # some may not be shown: copy it strictly
                raise _TooManyWarnings
        if counted:
            table_rows, shadow_rows = change.query(
                copy.check(where, shadow_walk.where(after, upto))
            )[0]
            if int(table_rows) != int(shadow_rows):
                keys = [", ".join(map(str, k)) for k in change.query(copy.missing(where))]
                raise Refused(
                    f"the new shape refuses rows of key ({', '.join(copy.key)}) "
                    f"{'; '.join(keys) or 'in this chunk'}: a duplicate of a new unique key?"
                )
        return walked

    begin = functools.partial(change.begin_isolated, isolation)
    try:
        return advance_by(change, boundary, key, size, work, begin)[0]
    except _TooManyWarnings:  # rolled back: the chunk again, with the strict statement
        return copy_chunk(change, key, copy, walks, size, isolation, counted, strict=True)


class _TooManyWarnings(Exception):
    """A fast copy raised more warnings than the server keeps: some may go unread."""


def copy_rows(job: Job, plan: Plan) -> Plan | Outcome:
    """COPY → SWAP: chunks until the walk's end or the step's time, paced like a chunked
    change (``targets.pace``): sized to the time budget, holding back on load or lag."""
    progress, pace = job.progress, job.pace
    copy = copy_of(plan, job.alteration.engine)
    walks = (copy.chunking(), copy.shadow_range())
    sizer = Sizer(pace, progress.chunk_size or pace.first_chunk_rows)
    job.change.execute(f"SET SESSION max_error_count = {WARNINGS_KEPT}")
    position = job.record.position()
    progress.copy_count = position.rows  # the target's count, whatever the stored one says
    while not position.done:
        why = job.gauge.hold()
        if why is not None:
            progress.message = f"holding the copy back: {why}"
            return Outcome(progress, wait_seconds=pace.hold_seconds)
        began = time.perf_counter()
        try:
            position = copy_chunk(
                job.change,
                job.record.copy_key,
                copy,
                walks,
                sizer.size,
                plan.isolation,
                plan.counted,
            )
        except Refused as exc:
            return fail(job, plan, str(exc))
        except StatementError as exc:
            if not exc.lost_lock:
                return fail(job, plan, f"a row cannot be copied into the new shape: {exc.message}")
            lost = int(progress.state.get("lost_locks", 0)) + 1
            progress.state["lost_locks"] = lost
            if lost >= COPY_LOCK_RETRIES:
                return fail(job, plan, f"the copy lost {lost} lock fights in a row: {exc.message}")
            sizer.size = max(1, sizer.size // 2)
            progress.chunk_size = sizer.size
            progress.message = f"a copy chunk lost a lock fight, tried again smaller: {exc.message}"
            return Outcome(progress, wait_seconds=min(30.0, 0.25 * 2**lost))
        took = time.perf_counter() - began
        progress.state["lost_locks"] = 0
        progress.copy_count = position.rows
        progress.chunk_size = sizer.took(took)
        if job.time_up() and not position.done:
            return plan
        if pace.rest(took) > 0 and not position.done:
            time.sleep(pace.rest(took))
    progress.copy_count = position.rows
    progress.copy_total = max(progress.copy_total, position.rows)
    progress.message = f"{plan.table} is copied; the swap is due"
    return job.enter(plan, replace(plan, phase=Phase.SWAP))


def _swapped(change: MysqlChange, plan: Plan) -> bool:
    """The swap happened (whatever the record says): the shadow's name is gone and the old
    table's is there."""
    return not exists(change, plan.schema, plan.shadow) and exists(change, plan.schema, plan.old)


def swap(job: Job, plan: Plan) -> Plan | Outcome:
    """SWAP → SWAPPED: inside the window, not held back, the row counts equal, one RENAME."""
    change, progress = job.change, job.progress
    if _swapped(change, plan):  # a swap whose record a crash cut off
        return job.enter(plan, replace(plan, phase=Phase.SWAPPED))
    wait = window_wait(job.cut, job.clock())
    if wait > 0:
        progress.status = OnlineStatus.WAITING_CUTOVER
        progress.message = (
            f"copied; waiting for the cut-over window {job.cut.window_start} to "
            f"{job.cut.window_end} (the triggers keep the copy current)"
        )
        return Outcome(progress, wait_seconds=min(wait, WINDOW_NAP_SECONDS))
    why = job.gauge.hold()
    if why is not None:
        progress.status = OnlineStatus.WAITING_CUTOVER
        progress.message = f"copied; the swap waits: {why}"
        return Outcome(progress, wait_seconds=job.pace.hold_seconds)
    copy = copy_of(plan, job.alteration.engine)
    table_rows = shadow_rows = 0
    if plan.counted:
        change.begin_isolated("REPEATABLE READ", snapshot=True)
        try:
            table_rows, shadow_rows = (int(change.query(q)[0][0]) for q in copy.counts())
        finally:
            change.rollback()
    if table_rows != shadow_rows:
        return fail(
            job,
            plan,
            f"the copy holds {shadow_rows} rows and {plan.table} {table_rows}: a row went "
            "missing (a write duplicating a key the new shape makes unique?); nothing swapped",
        )
    try:
        change.ddl(copy.swap(plan.old), job.cut.lock_seconds)
    except StatementError as exc:
        if not exc.lost_lock:
            return fail(job, plan, f"the swap failed: {exc.message}")
        waiting = job.lost(exc, "the swap")
        if waiting is None:
            return fail(
                job,
                plan,
                f"the swap lost {progress.cut_over_tries} lock fights: {exc.message}; "
                "long transactions on the table hold it",
            )
        return waiting
    return job.enter(plan, replace(plan, phase=Phase.SWAPPED))


def finish(job: Job, plan: Plan) -> Plan | Outcome:
    """SWAPPED → DONE: the triggers, now on the old table, go; so does the old table unless
    it is kept."""
    change, lock = job.change, job.cut.lock_seconds
    copy = copy_of(plan, job.alteration.engine)
    try:
        for statement in copy.drop_triggers((plan.triggers[0], plan.triggers[1], plan.triggers[2])):
            change.ddl(statement, lock)
        if not job.cut.keep_old:
            change.ddl(f"DROP TABLE IF EXISTS {_name(plan, plan.old)}", lock)
    except StatementError as exc:
        if not exc.lost_lock:
            raise
        # the swap is made: what is left is only tidying, tried again however long it takes
        waiting = job.lost(exc, f"dropping the triggers from {plan.old}")
        return waiting or Outcome(job.progress, wait_seconds=30.0)
    job.progress.old_table = plan.old if job.cut.keep_old else ""
    return job.enter(plan, replace(plan, phase=Phase.DONE))


def _name(plan: Plan, name: str) -> str:
    return ShadowCopy(plan.schema, name, "", (), ()).source


def _drop(change: MysqlChange, plan: Plan, lock: int) -> None:
    """Drop the triggers, then the shadow: never the other way round, a trigger whose shadow
    is gone fails every write to the table."""
    copy = ShadowCopy(plan.schema, plan.table, plan.shadow, (), ())
    if plan.triggers:
        for statement in copy.drop_triggers((plan.triggers[0], plan.triggers[1], plan.triggers[2])):
            change.ddl(statement, lock)
    if plan.shadow:
        change.ddl(f"DROP TABLE IF EXISTS {copy.target}", lock)


def undo(job: Job, plan: Plan) -> Plan | Outcome:
    """UNDO → FAILED or CANCELED: what the run made goes, the table stays as it was. A
    swap already made is not undone (the record moves on to finish it instead)."""
    change = job.change
    if plan.shadow and _swapped(change, plan):
        return job.enter(plan, replace(plan, phase=Phase.SWAPPED, status="", message=""))
    try:
        _drop(change, plan, job.cut.lock_seconds)
    except StatementError as exc:
        if not exc.lost_lock:
            raise
        # undoing is never given up: the triggers must go before anything else may
        job.progress.message = f"dropping the shadow's triggers lost a lock fight: {exc.message}"
        return Outcome(job.progress, wait_seconds=2.0)
    end = Phase.CANCELED if plan.status == OnlineStatus.CANCELED.value else Phase.FAILED
    return job.enter(plan, replace(plan, phase=end))
