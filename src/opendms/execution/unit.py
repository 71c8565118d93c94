"""What one step of an ``execute`` job works on (``Unit``: a SQL job, its database and its
statements still to do, read from the store) and what running a statement did (``Done``),
shared by the executor (``execution.run``) and the ways it walks a ticket's work
(``run_statements``, ``run_chunks``, ``run_import``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opendms.execution import service as execution
from opendms.execution.service import ExecutionPlan
from opendms.sql.chunks import Chunking
from opendms.sql.review import TableShape
from opendms.store.models import Database, Instance, Order, SqlJob, SqlJobDetail
from opendms.targets.pace import Limits
from opendms.tickets.kind import Walk


@dataclass
class Done:
    """What running one statement did on the target."""

    rows: int
    started: datetime
    ms: int
    recovered: bool = False  # found its marker: it had committed before
    backup: dict[str, Any] | None = None  # where its backup is (SqlJobDetail.backup)


@dataclass
class Unit:
    """The SQL job a step works on, read from the store."""

    order: Order
    plan: ExecutionPlan
    sql_job: SqlJob
    db: Database
    inst: Instance
    pending: list[SqlJobDetail] = field(default_factory=list)
    shapes: dict[str, TableShape | None] = field(default_factory=dict)  # changed tables
    # DC_CHUNK: how each pending statement is cut (or why it cannot be), by detail id; the
    # precheck's row counts, by sql id; the instance's throttle, and its replica to watch.
    chunkings: dict[int, Chunking | str] = field(default_factory=dict)
    estimates: dict[int, int | None] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    replica: Instance | None = None
    # The SQL job's first step: nothing of it can have reached the target before (a step
    # that crashed, lost its lease or waited left its time in ``SqlJob.last_exec_at``), so
    # there is no progress marker to look for before a backup is made, nor an earlier
    # attempt's backup table to sweep. Exactly once never rests on it: the change's own
    # transaction reads the marker again before it writes.
    first_step: bool = False

    @property
    def walk(self) -> Walk:
        return walk_of(self.order)

    @property
    def label(self) -> str:
        return f"{self.db.schema_name}@{self.inst.alias}"

    @property
    def engine(self) -> str:
        return self.inst.instance_type

    def key(self, detail: SqlJobDetail | None) -> str:
        return statement_key(self.sql_job, detail)

    def backup_name(self, detail: SqlJobDetail) -> str:
        return f"b{self.sql_job.token[:12]}_{detail.number}"


def statement_key(sql_job: SqlJob, detail: SqlJobDetail | None) -> str:
    """What names a statement's progress markers on the target (``None``: the SQL job's
    statements run as one)."""
    return f"{sql_job.token}:{detail.number if detail else 'all'}"


def walk_of(order: Order) -> Walk:
    """How the ticket's kind goes through its work (``TicketKind.execution.walk``)."""
    how = execution.execution_of(order)
    return how.walk if how is not None else "statements"


def one_run_of_many(order: Order) -> bool:
    """Whether an execution of ``order`` is one run of its schedule or one of its stages: its
    end does not end the ticket (``TicketKind.run_finished`` says what it does)."""
    how = execution.execution_of(order)
    return how is not None and (how.scheduled or how.staged)
