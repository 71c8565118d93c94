"""Running a PostgreSQL lock-free DDL plan's steps (``sql.online_postgres``) exactly once.

A ``run`` step is DDL, which PostgreSQL runs in a transaction: its statements and its
marker commit together, so a resumed run sees the marker and skips it. ``CREATE INDEX
CONCURRENTLY`` and ``DROP INDEX CONCURRENTLY`` cannot run in a transaction; their marker
says "started" before they run, and then the catalog says how far they got: an index of
that name that is valid was built (one left invalid by a failed or interrupted build is
dropped and built again), one that is gone was dropped. Without the "started" marker, an
index already there (or missing) is the statement's own business: it runs as written and
fails as PostgreSQL makes it.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass

from opendms.execution.online import OnlineProgress, OnlineStatus, Outcome
from opendms.sql.online_postgres import Step
from opendms.targets.base import Change, StatementError
from opendms.targets.postgres import PostgresChange
from opendms.targets.postgres_catalog import index_valid

DONE, STARTED = "done", "started"
# Steps whose lock stops no writer (SHARE UPDATE EXCLUSIVE: VALIDATE CONSTRAINT, the
# CONCURRENTLY forms) may wait this long for it: a CREATE INDEX CONCURRENTLY also waits for
# every transaction older than its build, and giving up there throws the build away.
QUIET_LOCK_SECONDS = 60


def postgres(change: Change) -> PostgresChange:
    if not isinstance(change, PostgresChange):
        raise TypeError(f"the PostgreSQL online engine was given a {type(change).__name__}")
    return change


def lock_seconds(step: Step, seconds: int) -> int:
    return seconds if step.writers_wait else max(seconds, QUIET_LOCK_SECONDS)


def step_key(key: str, number: int) -> str:
    return f"{key}:step:{number}"


def in_transaction(change: PostgresChange, seconds: float, statements: list[str]) -> None:
    """``statements`` in one transaction whose lock waits give up after ``seconds``."""
    change.begin()
    try:
        change.lock_timeout(seconds)
        for statement in statements:
            change.execute(statement)
        change.commit()
    except BaseException:
        change.rollback()
        raise


def read_marker(change: PostgresChange, key: str) -> str | None:
    change.begin()
    try:
        return change.marker(key)
    finally:
        change.rollback()


def _if_not_exists(statement: str) -> bool:
    return (
        re.match(
            r"\s*CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\b",
            statement,
            re.IGNORECASE,
        )
        is not None
    )


def _set(change: PostgresChange, key: str, value: str) -> None:
    """Record ``value`` under ``key`` in a transaction of its own."""
    change.begin()
    try:
        if change.marker(key) is None:
            change.mark(key, value)
        else:
            change.move(key, value)
        change.commit()
    except BaseException:
        change.rollback()
        raise


def run_step(change: PostgresChange, key: str, step: Step, seconds: int) -> None:
    """Run ``step`` unless its marker says it ran. Raises StatementError."""
    wait = lock_seconds(step, seconds)
    if step.kind == "run":
        change.begin()
        try:
            change.lock_timeout(wait)
            if change.marker(key) is not None:
                change.rollback()
                return
            for statement in step.statements:
                change.execute(statement)
            change.mark(key, DONE)
            change.commit()
        except BaseException:
            change.rollback()
            raise
        return
    found = read_marker(change, key)
    if found == DONE:
        return
    change.begin()
    try:
        state = index_valid(change, step.index)
    finally:
        change.rollback()
    if step.kind == "build_index":
        _build(change, key, step, wait, found, state)
    else:
        _drop(change, key, step, wait, found, state)
    _set(change, key, DONE)


def _build(
    change: PostgresChange, key: str, step: Step, wait: int, found: str | None, state: bool | None
) -> None:
    if found is None:
        if state is not None and _if_not_exists(step.statements[0]):
            return  # there before the statement, which asks for nothing then
        if state is None:
            _set(change, key, STARTED)
    elif state is True:
        return  # built before the run that started it ended
    elif state is False:
        change.outside_transaction(step.undo[0], wait)  # a build cut short: start again
    try:
        change.outside_transaction(step.statements[0], wait)
    except StatementError:
        if found is not None or state is None:
            # the index a failed CONCURRENTLY build leaves behind is invalid, and ours
            _drop_quietly(change, step, wait)
        raise


def _drop(
    change: PostgresChange, key: str, step: Step, wait: int, found: str | None, state: bool | None
) -> None:
    if found is not None and state is None:
        return  # dropped before the run that started it ended
    if found is None and state is not None:
        _set(change, key, STARTED)
    change.outside_transaction(step.statements[0], wait)


def _drop_quietly(change: PostgresChange, step: Step, wait: int) -> None:
    with suppress(StatementError):  # else the next try or the cancel drops it
        change.outside_transaction(step.undo[0], wait)


@dataclass(frozen=True)
class Undone:
    complete: bool  # every step done was undone (or had nothing to undo)
    kept: str = ""  # what stayed, and why


def undo(change: PostgresChange, key: str, steps: tuple[Step, ...], seconds: int) -> Undone:
    """Put back what the steps done so far added, last first, each step's marker removed
    with its undoing (a run that starts again does the step again). Stops at the first
    undo that fails: the markers then still say what is on the target."""
    for number in reversed(range(len(steps))):
        step = steps[number]
        marker = step_key(key, number)
        if read_marker(change, marker) is None:
            continue
        wait = lock_seconds(step, seconds)
        try:
            if step.kind == "build_index":
                change.outside_transaction(step.undo[0], wait)
                in_transaction_forget(change, marker)
            elif step.kind == "drop_index":
                return Undone(False, f"{step.what} stays: a dropped index is not built again")
            else:
                change.begin()
                try:
                    change.lock_timeout(wait)
                    for statement in step.undo:
                        change.execute(statement)
                    change.forget(marker)
                    change.commit()
                except BaseException:
                    change.rollback()
                    raise
        except StatementError as exc:
            return Undone(False, f"{step.what} stays: undoing it failed: {exc.message}")
    return Undone(True)


def in_transaction_forget(change: PostgresChange, key: str) -> None:
    change.begin()
    try:
        change.forget(key)
        change.commit()
    except BaseException:
        change.rollback()
        raise


def lost_fight(progress: OnlineProgress, message: str, retries: int, what: str) -> Outcome | None:
    """A lost lock fight counted: the wait before the next try, or None when it was the
    last one allowed (the caller fails the statement)."""
    tries = int(progress.state.get("lost", 0)) + 1
    progress.state["lost"] = tries
    if tries >= retries:
        return None
    progress.message = f"waiting for a lock to {what} (try {tries} of {retries}): {message}"
    return Outcome(progress, wait_seconds=min(30.0, 0.5 * 2**tries))


def failed(
    progress: OnlineProgress, message: str, status: OnlineStatus = OnlineStatus.FAIL
) -> Outcome:
    progress.status = status
    progress.message = message
    return Outcome(progress, failure=message)
