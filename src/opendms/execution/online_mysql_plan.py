"""Where one statement's online run on a MySQL/MariaDB target stands, recorded on the target.

The record is a progress marker (``targets.base.Change``) on the target beside the work it
describes: a phase is moved on in a transaction of its own right after the work it names
(DDL commits by itself, so the two cannot share one), and a step that finds the record
behind the target tells from the target which way it went (the table's definition digest
for a native ALTER, which of the shadow's and the old table's names exist for the swap).
The copy's position is a second marker moved in the very transaction of each chunk. The
JSON the job runner stores (``OnlineProgress``) may lag both; these markers never do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum

from opendms.execution.online import Alteration, CutOver, OnlineProgress, Outcome
from opendms.execution.walk import Position
from opendms.targets.base import Change, StatementError
from opendms.targets.mysql import MysqlChange
from opendms.targets.pace import Gauge, Pace


class Phase(StrEnum):
    NEW = "NEW"  # nothing done yet
    NATIVE = "NATIVE"  # the server runs the statement itself (``algorithm``)
    SETUP = "SETUP"  # the shadow table and its triggers are being made (names chosen)
    COPY = "COPY"  # the triggers keep the shadow current; existing rows are being copied
    SWAP = "SWAP"  # all copied: the swap is due (and retried, within its window)
    SWAPPED = "SWAPPED"  # the shadow is the table; triggers (and the old table) to drop
    UNDO = "UNDO"  # ending (``status``): the triggers, then the shadow, are being dropped
    DONE = "DONE"
    FAILED = "FAILED"  # ended, nothing left behind on the table; a new run starts over
    CANCELED = "CANCELED"


ENDED = frozenset({Phase.DONE, Phase.FAILED, Phase.CANCELED})
WRITTEN = "WRITTEN"  # the native "algorithm" of a statement run exactly as written


@dataclass(frozen=True)
class Plan:
    phase: Phase = Phase.NEW
    algorithm: str = ""  # NATIVE: INSTANT, INPLACE or WRITTEN
    shape: str = ""  # NATIVE: the table's definition digest before the statement ran
    strategy: str = ""  # how it ran (``online.Strategy``): what DONE reports
    schema: str = ""  # the table's database, resolved
    table: str = ""
    shadow: str = ""
    old: str = ""
    triggers: tuple[str, ...] = ()  # after DELETE, UPDATE, INSERT
    columns: tuple[tuple[str, str], ...] = ()  # (old name, new name) copied
    key: tuple[str, ...] = ()  # the walked key, old names
    isolation: str = "READ COMMITTED"  # of the copy's chunks
    total: int = 0  # the table's rows, the server's estimate when the copy began
    # the row counts are compared after each chunk and before the swap: the new shape may
    # refuse a row for a duplicate (``sql.shadow_mysql.refuses_nothing``)
    counted: bool = True
    status: str = ""  # FAILED: FAIL or UNSUPPORTED
    message: str = ""  # FAILED: why

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Plan:
        found = json.loads(text)
        known = {k: v for k, v in found.items() if k in cls.__dataclass_fields__}
        plan = cls(**known)
        return replace(
            plan,
            phase=Phase(plan.phase),
            triggers=tuple(plan.triggers),
            columns=tuple((str(o), str(n)) for o, n in plan.columns),
            key=tuple(plan.key),
        )


class Moved(Exception):
    """Another runner moved the record on since this one read it."""


class Record:
    """The markers of one statement (``Alteration.key``): its plan, and its copy's position."""

    def __init__(self, change: Change, key: str) -> None:
        self.change = change
        self.key = f"{key}:mysql"
        self.copy_key = f"{key}:mysql:copy"

    def read(self) -> Plan:
        return Plan.loads(self.change.claim(self.key, Plan().dumps()))

    def move(self, was: Plan, now: Plan, *, copy: Position | None = None) -> Plan:
        """Record ``now`` where ``was`` is recorded (and reset the copy's position to
        ``copy`` with it); :class:`Moved` when the record is no longer ``was``."""
        if copy is not None:
            self.change.claim(self.copy_key, copy.dumps())
        change = self.change
        change.begin()
        try:
            found = change.marker(self.key)
            if found is None or Plan.loads(found) != was:
                raise Moved(self.key)
            if copy is not None:
                change.move(self.copy_key, copy.dumps())
            change.move(self.key, now.dumps())
            change.commit()
        except BaseException:
            change.rollback()
            raise
        return now

    def position(self) -> Position:
        return Position.loads(self.change.claim(self.copy_key, Position().dumps()))


@dataclass
class Job:
    """One step of one statement: where it runs, what it is, what it reports, its time."""

    change: MysqlChange
    alteration: Alteration
    progress: OnlineProgress
    record: Record
    until: float  # time.monotonic() at which the step hands back
    pace: Pace
    gauge: Gauge
    clock: Callable[[], datetime]  # OpenDMS's local time, for the cut-over window

    @property
    def cut(self) -> CutOver:
        return self.alteration.cut_over

    def time_up(self) -> bool:
        return time.monotonic() >= self.until

    def enter(self, was: Plan, now: Plan, *, copy: Position | None = None) -> Plan:
        """Move the record to ``now``; a new phase starts its lock fights afresh."""
        moved = self.record.move(was, now, copy=copy)
        if now.phase is not was.phase:
            self.progress.cut_over_tries = 0
        return moved

    def lost(self, exc: StatementError, what: str) -> Outcome | None:
        """A lost lock fight (``exc``) while ``what``: the outcome that waits before the next
        try, longer each time; None once ``CutOver.retries`` fights are lost."""
        self.progress.cut_over_tries += 1
        if self.progress.cut_over_tries >= self.cut.retries:
            return None
        self.progress.message = f"{what} lost a lock fight, tried again soon: {exc.message}"
        return Outcome(self.progress, wait_seconds=min(30.0, 0.5 * 2**self.progress.cut_over_tries))
