"""Lock-free DDL on PostgreSQL: the :class:`~opendms.execution.online.OnlineEngine` for
instances of type ``postgresql`` (12 and later).

A statement is planned once (``sql.online_postgres``: run as written, lock-light steps, or a
shadow copy), the plan recorded on the target under ``<key>:plan`` before anything runs,
and then walked: each step of a lock-light plan exactly once (``online_postgres_steps``),
a shadow copy stage by stage (``online_postgres_shadow``). Every statement waits for its
locks at most ``CutOver.lock_seconds`` (those whose lock stops no writer somewhat longer),
and a lost lock fight (SQLSTATE 55P03) is tried again after a rest the outcome asks for,
up to ``CutOver.retries`` times.

DdlOnline 0 runs the statement as written; 1 and 2 alike take the lock-light forms, and a
shadow copy for what would rewrite the table: PostgreSQL's own online forms hold no lock a
writer waits on for long and copy nothing, so there is nothing a shadow copy would do
better for them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlglot import exp

from opendms.execution.online import (
    Alteration,
    OnlineProgress,
    OnlineStatus,
    Outcome,
    Strategy,
)
from opendms.execution.online_postgres_shadow import ShadowCopy
from opendms.execution.online_postgres_steps import (
    failed,
    in_transaction_forget,
    lost_fight,
    postgres,
    run_step,
    step_key,
    undo,
)
from opendms.sql.online_postgres import (
    DIRECT,
    Plan,
    Step,
    facts_from,
    facts_wanted,
    plan,
)
from opendms.targets.base import Change, Connector, StatementError
from opendms.targets.pace import Limits, Pace
from opendms.targets.postgres import PostgresChange
from opendms.targets.postgres_catalog import checked_domains, shape, volatility

CANCEL_TRIES = 5  # lock fights a cancel may lose before it says so


class PostgresOnline:
    """Lock-free DDL on PostgreSQL. ``pace``, ``limits`` and ``replica`` pace a shadow copy
    as they pace chunked changes; ``clock`` tells the time the cut-over window is read in."""

    def __init__(
        self,
        pace: Pace | None = None,
        limits: Limits | None = None,
        replica: Connector | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.pace = (pace or Pace()).for_copy()
        self.shadow = ShadowCopy(self.pace, limits or self.pace.limits, replica, clock)

    def plan_for(self, change: PostgresChange, alteration: Alteration) -> Plan:
        """The statement's plan, from the target's record of it (made now if there is
        none, the catalog read for the facts it needs)."""
        key = f"{alteration.key}:plan"
        change.begin()
        try:
            recorded = change.marker(key)
            found = self._planned(change, alteration) if recorded is None else None
        finally:
            change.rollback()
        if found is None:
            return Plan.loads(recorded or "{}")
        if not found.strategy:
            return found  # a refusal: nothing to record, nothing was done
        return Plan.loads(change.claim(key, found.dumps()))

    @staticmethod
    def _planned(change: PostgresChange, alteration: Alteration) -> Plan:
        if alteration.mode == 0:
            return Plan(DIRECT, (Step("run", "run the statement", (alteration.text,)),))
        functions, types = facts_wanted(alteration.node)
        facts = facts_from(volatility(change, functions), checked_domains(change, types))
        before = alteration.before
        node = alteration.node
        if before is None and isinstance(node, exp.Alter) and isinstance(node.this, exp.Table):
            # its column types decide what rewrites
            before = shape(change, node.this.sql(dialect="postgres"))
        return plan(alteration.node, alteration.text, before, facts)

    def step(
        self, change: Change, alteration: Alteration, progress: OnlineProgress, until: float
    ) -> Outcome:
        if progress.status is OnlineStatus.SUCCESS:
            return Outcome(progress, done=True)
        pg = postgres(change)
        try:
            found = self.plan_for(pg, alteration)
        except StatementError as exc:
            return failed(progress, f"planning the statement failed: {exc.message}")
        if not found.strategy:
            return failed(progress, found.refusal, OnlineStatus.UNSUPPORTED)
        progress.strategy = Strategy(found.strategy)
        if found.shadow is not None:
            if found.why and not progress.message:
                progress.message = f"a shadow copy: {found.why}"
            return self.shadow.step(pg, alteration, found.shadow, progress, until)
        return self._steps(pg, alteration, found, progress)

    @staticmethod
    def _steps(
        change: PostgresChange, alteration: Alteration, found: Plan, progress: OnlineProgress
    ) -> Outcome:
        """The plan's steps, from the first the target has no record of; each one that
        finishes is recorded, so a lost lock fight rests and goes on after it."""
        progress.status = OnlineStatus.RUNNING
        total = len(found.steps)
        for number, step in enumerate(found.steps):
            progress.message = f"{step.what} ({number + 1} of {total})"
            try:
                run_step(
                    change, step_key(alteration.key, number), step, alteration.cut_over.lock_seconds
                )
            except StatementError as exc:
                if exc.lost_lock:
                    wait = lost_fight(progress, exc.message, alteration.cut_over.retries, step.what)
                    if wait is not None:
                        return wait
                    why = (
                        f"{step.what} lost {alteration.cut_over.retries} lock fights: {exc.message}"
                    )
                else:
                    why = f"{step.what} failed: {exc.message}"
                return _give_up(change, alteration, found, progress, why)
            progress.state.pop("lost", None)
        progress.status, progress.message = OnlineStatus.SUCCESS, ""
        return Outcome(progress, done=True)

    def cancel(self, change: Change, alteration: Alteration, progress: OnlineProgress) -> None:
        """Undo what the statement left: the shadow, its triggers and function; the indexes
        and constraints its first steps added. A statement done (or swapped in) is left as
        it is. Raises StatementError when the locks to undo it could not be had."""
        pg = postgres(change)
        recorded = _recorded(pg, alteration)
        last: StatementError | None = None
        for _ in range(CANCEL_TRIES):
            try:
                if recorded is None or recorded.shadow is not None:
                    # (no plan: nothing was done, but a failed copy may have left triggers)
                    self.shadow.remove(pg, alteration)
                    return
                if _finished(pg, alteration, recorded):
                    return
                result = undo(pg, alteration.key, recorded.steps, alteration.cut_over.lock_seconds)
                if not result.complete:
                    raise StatementError(result.kept)
                in_transaction_forget(pg, alteration.key)
                return
            except StatementError as exc:
                if not exc.lost_lock:
                    raise
                last = exc
        why = f"cancelling lost {CANCEL_TRIES} lock fights: {last.message if last else ''}"
        if recorded is None or recorded.shadow is not None:
            self.shadow.disarm(pg, alteration)
            why += "; the shadow table was dropped, its triggers now do nothing until dropped"
        raise StatementError(why, lost_lock=True)


def _recorded(change: PostgresChange, alteration: Alteration) -> Plan | None:
    change.begin()
    try:
        found = change.marker(f"{alteration.key}:plan")
    finally:
        change.rollback()
    return None if found is None else Plan.loads(found)


def _finished(change: PostgresChange, alteration: Alteration, recorded: Plan) -> bool:
    if not recorded.steps:
        return True
    change.begin()
    try:
        return change.marker(step_key(alteration.key, len(recorded.steps) - 1)) is not None
    finally:
        change.rollback()


def _give_up(
    change: PostgresChange,
    alteration: Alteration,
    found: Plan,
    progress: OnlineProgress,
    why: str,
) -> Outcome:
    """The statement failed: what its earlier steps added is taken away again, so that the
    table is as it was and a restart begins from the start."""
    try:
        result = undo(change, alteration.key, found.steps, alteration.cut_over.lock_seconds)
    except StatementError as exc:
        return failed(progress, f"{why}; undoing its earlier steps failed: {exc.message}")
    if not result.complete:
        return failed(progress, f"{why}; {result.kept}")
    try:
        in_transaction_forget(change, alteration.key)
    except StatementError as exc:
        return failed(progress, f"{why}; forgetting its markers failed: {exc.message}")
    return failed(progress, why)
