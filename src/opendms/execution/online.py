"""Running one DDL statement on a live table without stopping its writers (lock-free DDL).

A ticket's DDL statements run one by one (the ``ddl`` walk); each is an :class:`Alteration`
handed to the online engine of its database's engine, step by step: a step does some of the
work for at most its time budget and hands back its state (JSON, kept in the statement's
``SqlJobDetail.progress`` beside what ``GetOnlineDDLProgress`` shows), so the job runner can
renew its lease, notice a pause or a closed ticket, and resume after a crash from the last
state stored. What must survive a crash exactly once (a copied chunk, a cut-over) is also
recorded on the target in the same transaction as the work (``targets.base.Change``
markers), as chunked changes do: the state in the store can lag the target, never lead it.

How an engine goes about it is its own: the instance's ``DdlOnline`` says how far to go
(0: the statement as written, under a short lock wait and retried; 1: prefer the server's own
online DDL; 2: prefer OpenDMS's shadow copy). :class:`Direct` is mode 0, and the fallback for
engines without an online path (SQLite).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlglot import exp

from opendms.schema.model import Table
from opendms.targets.base import Change, StatementError


class OnlineStatus(StrEnum):
    """``GetOnlineDDLProgress``'s JobStatus (dms-api.md A.10, E.8)."""

    INIT = "INIT"
    RUNNING = "RUNNING"
    WAITING_CUTOVER = "WAITING_CUTOVER"
    RESTARTING = "RESTARTING"
    PAUSE = "PAUSE"
    UNSUPPORTED = "UNSUPPORTED"
    CANCELED = "CANCELED"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    INTERRUPT = "INTERRUPT"


class Strategy(StrEnum):
    """How a statement was (or is being) run."""

    DIRECT = "DIRECT"  # as written, under a short lock wait, retried
    INSTANT = "INSTANT"  # MySQL/MariaDB ALGORITHM=INSTANT: metadata only
    INPLACE = "INPLACE"  # MySQL/MariaDB ALGORITHM=INPLACE, LOCK=NONE
    CONCURRENT = "CONCURRENT"  # PostgreSQL: CONCURRENTLY, NOT VALID then VALIDATE, fast defaults
    SHADOW = "SHADOW"  # a shadow table copied in key order, kept current, swapped in

    def describe(self) -> str:
        return _DESCRIBED[self]


_DESCRIBED = {
    Strategy.DIRECT: "run as written",
    Strategy.INSTANT: "ALGORITHM=INSTANT, metadata only",
    Strategy.INPLACE: "ALGORITHM=INPLACE, LOCK=NONE",
    Strategy.CONCURRENT: "in lock-light steps",
    Strategy.SHADOW: "copied into a shadow table and swapped in",
}


@dataclass(frozen=True)
class CutOver:
    """How a shadow copy is swapped in (``GetOnlineDDLProgress``'s Cutover… fields)."""

    lock_seconds: int = 2  # the longest the swap waits for its locks, each try
    retries: int = 10  # tries before the statement fails
    window_start: str = "00:00:00"  # the swap happens only inside this daily window (server
    window_end: str = "23:59:59"  # time of OpenDMS, HH:MM:SS)
    keep_old: bool = True  # the old table is kept (renamed) until the ticket says drop


@dataclass(frozen=True)
class Alteration:
    """One DDL statement to run on one table of a live database."""

    node: exp.Expr  # the statement as parsed and checked
    text: str  # what runs: ``sql.statements.render(node)``
    table: str  # the table it changes, as written ("t" or "schema.t")
    before: Table | None  # the table's definition before it (None: it does not exist yet)
    engine: str  # the instance type: mysql, mariadb, postgresql, sqlite
    mode: int = 1  # the instance's DdlOnline
    cut_over: CutOver = CutOver()
    key: str = ""  # unique to this statement of this ticket: names its markers and tables


@dataclass
class OnlineProgress:
    """What ``GetOnlineDDLProgress`` reports of one statement; stored as JSON with the
    engine's own ``state`` beside it."""

    status: OnlineStatus = OnlineStatus.INIT
    strategy: Strategy = Strategy.DIRECT
    copy_total: int = 0  # rows to copy, the server's estimate (a shadow copy)
    copy_count: int = 0  # rows copied so far
    chunk_size: int = 0  # the current copy chunk's size, in keys
    delay_seconds: float = 0.0  # how far the shadow lags its table (0 with triggers)
    cut_over_tries: int = 0
    message: str = ""  # StatusDesc: what it does now, or why it failed or waits
    old_table: str = ""  # where the table's old shape was kept after the swap
    state: dict[str, Any] = field(default_factory=dict)  # the engine's, to resume from

    @property
    def ratio(self) -> float:
        """ProgressRatio, from 0 to 1: done is 1 whatever was counted."""
        if self.status is OnlineStatus.SUCCESS:
            return 1.0
        return min(1.0, self.copy_count / self.copy_total) if self.copy_total else 0.0

    # Stored under its own key of ``SqlJobDetail.progress``, which holds a chunked
    # statement's progress otherwise (``execution.chunked.Progress``): a reader of one never
    # takes the other for its own.
    KEY = "online"

    def dumps(self) -> dict[str, Any]:
        return {self.KEY: asdict(self)}

    @classmethod
    def loads(cls, found: Mapping[str, Any] | None) -> OnlineProgress:
        """A statement's stored progress; a fresh one where none is stored."""
        mine = (found or {}).get(cls.KEY)
        if not mine:
            return cls()
        known = {k: v for k, v in mine.items() if k in cls.__dataclass_fields__}
        progress = cls(**known)
        progress.status = OnlineStatus(progress.status)
        progress.strategy = Strategy(progress.strategy)
        return progress

    @classmethod
    def stored(cls, found: Mapping[str, Any] | None) -> bool:
        return bool(found) and cls.KEY in (found or {})


@dataclass(frozen=True)
class Outcome:
    """What a step did. ``progress`` is the state to store and resume from; ``done``: the
    statement finished (``progress.status`` SUCCESS); ``failure``: it failed and why (the
    table is as it was, or as the message says); ``wait_seconds``: run the next step no
    sooner (a lost lock fight, a busy target, outside the cut-over window)."""

    progress: OnlineProgress
    done: bool = False
    failure: str | None = None
    wait_seconds: float = 0.0


class OnlineEngine(Protocol):
    def step(
        self, change: Change, alteration: Alteration, progress: OnlineProgress, until: float
    ) -> Outcome:
        """Do the statement's next piece of work until ``time.monotonic()`` reaches
        ``until`` (a chunk in flight finishes first)."""

    def cancel(self, change: Change, alteration: Alteration, progress: OnlineProgress) -> None:
        """Undo what a statement not yet swapped in left on the target (shadow table,
        triggers, markers); the table itself is as it was."""


LOCK_RETRIES = 10  # lost lock fights in a row before a direct statement fails


@dataclass(frozen=True)
class Direct:
    """DdlOnline 0: the statement as written, waiting at most ``CutOver.lock_seconds`` for
    its locks so that it never queues writers behind it for long; a lost lock fight is tried
    again after a rest, up to ``CutOver.retries`` times."""

    def step(
        self, change: Change, alteration: Alteration, progress: OnlineProgress, until: float
    ) -> Outcome:
        progress.strategy = Strategy.DIRECT
        progress.status = OnlineStatus.RUNNING
        try:
            # the marker commits with the DDL (transactional on SQLite, which Direct serves)
            change.begin()
            if change.marker(alteration.key) is None:
                change.execute(alteration.text)
                change.mark(alteration.key, "done")
            change.commit()
        except StatementError as exc:
            with suppress(StatementError):
                change.rollback()
            if not exc.lost_lock:
                progress.status = OnlineStatus.FAIL
                progress.message = exc.message
                return Outcome(progress, failure=exc.message)
            progress.cut_over_tries += 1
            if progress.cut_over_tries >= alteration.cut_over.retries:
                progress.status = OnlineStatus.FAIL
                progress.message = f"it lost {progress.cut_over_tries} lock fights: {exc.message}"
                return Outcome(progress, failure=progress.message)
            progress.message = f"waiting for a lock on {alteration.table}: {exc.message}"
            return Outcome(progress, wait_seconds=min(30.0, 0.5 * 2**progress.cut_over_tries))
        progress.status = OnlineStatus.SUCCESS
        progress.message = ""
        return Outcome(progress, done=True)

    def cancel(self, change: Change, alteration: Alteration, progress: OnlineProgress) -> None:
        """A direct statement leaves nothing behind: it ran or it did not."""
