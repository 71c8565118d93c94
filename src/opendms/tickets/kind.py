"""What a ticket kind is to the services that run tickets.

Each module of ``opendms.kinds`` makes one ``TicketKind``: it declares the kind's facts (its
DMS PluginType, parameter model, the statement kinds its SQL may hold, the permission its
committer needs, how DMS groups and shows it, how its SQL jobs run) and overrides the hooks
where the kind behaves unlike the default. The services below the kinds (approvals,
precheck, execution, exports, imports) find a ticket's kind through
``opendms.tickets.registry`` and read only this class: a kind imports the services it
drives, a service never imports a kind.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from opendms.identity.caller import Caller
from opendms.sql.review import Finding
from opendms.sql.tables import Catalog
from opendms.store.db import Store
from opendms.store.models import Database, Instance, Job, Order
from opendms.targets.base import Connector
from opendms.tickets.params import Params

# How an execution goes through a ticket's work (``execution.run``): its prechecked
# statements one by one (or, with ActionDetail ``transaction``, a database's all together);
# each statement in key ranges, one short transaction per chunk (``sql.chunks``); or the
# ticket's file streamed into its database (``imports.run``), whose precheck reads the file;
# or DDL statements one by one, each on its live table without stopping its writers
# (``execution.online``).
Walk = Literal["statements", "chunks", "file", "ddl"]


@dataclass(frozen=True)
class SqlTicket:
    """A ticket asked for as one database and the SQL to run (or export) there: the command
    line's ``order create --db --sql`` (``tickets.shortcut``)."""

    db_id: int
    sql: str
    rows: int = 0  # the affected (or exported) rows the submitter expects


def sql_change_param(ask: SqlTicket) -> dict[str, Any]:
    """The Param of a data change given as text on one database (``TicketKind.sql_param``'s
    default)."""
    return {"DbItemList": [{"DbId": ask.db_id}], "SqlType": "TEXT", "ExecSQL": ask.sql}


@dataclass(frozen=True)
class Execution:
    """How an approved ticket of a kind runs as SQL jobs (``execution``)."""

    job_type: str  # its SQL jobs' JobType on the wire
    walk: Walk = "statements"
    # ExecuteDataCorrect may ask for backupData, so the precheck names each statement that
    # could not be backed up (``execution.backups.NO_BACKUP``).
    backup: bool = False
    # Each execution is one run of the ticket's schedule: ExecuteDataCorrect starts none (it
    # only continues a paused run), and a run's end does not end the ticket.
    scheduled: bool = False
    # Each execution is one stage of the ticket (a database of a schema design), started by
    # the kind's own action: its first stage while the ticket is still new, the others once
    # it is approved. A run's end does not end the ticket; ``run_finished`` says whether it
    # is over.
    staged: bool = False


class TicketKind:
    """A ticket kind: its facts, and the hooks whose defaults it may override."""

    plugin_type: str
    summary: str  # in words, for titles (GetApprovalDetail)
    params: type[Params]
    # A ticket of a kind with a precheck is submitted for approval only once it passed.
    has_precheck: bool = False
    # Statement kinds its SQL may contain (review rule STATEMENT_KIND_NOT_ALLOWED); none: it
    # carries no SQL.
    statement_kinds: frozenset[str] = frozenset()
    # The data permission the committer needs on every table the SQL names.
    permission: str = "CORRECT"
    # What it does with the rows its SQL names: "change" them, or "export" them (read them
    # out: the rules weigh them as export rows, ROW_CHECK holds them to the most the ticket
    # states, and only such a ticket is run by ExecuteDataExport).
    verb: Literal["change", "export"] = "change"
    # GetApprovalDetail's OrderType, DMS's grouping of ticket types; ListOrders' PluginType
    # DATA_CORRECT stands for every kind grouped as DATA_CORRECT.
    order_type: str = "DATA_CORRECT"
    # GetDataCorrectOrderDetail's ConfigDetail.DetailType; None: that call refuses the kind.
    detail_type: str | None = None
    # None: it has no SQL jobs (ExecuteDataCorrect refuses it).
    execution: Execution | None = None

    def databases(self, params: Params) -> list[int]:
        """The DbIds the parameters name (each must be registered and synced)."""
        items = getattr(params, "db_item_list", None)
        if items is not None:
            return [i.db_id for i in items]
        db_id = getattr(params, "db_id", None)
        return [db_id] if db_id is not None else []

    def attachments(self, params: Params) -> list[str]:
        """Attachment keys the parameters refer to (each must exist)."""
        names = ("attachment_name", "rollback_attachment_name")
        return [v for v in (getattr(params, n, None) for n in names) if v]

    # ------------------------------------------------------------ hooks

    def approved(self, s: Session, order: Order) -> None:
        """After the last approval, the ticket ``Approved``: start it, arm its schedule, or
        (the default) leave it for whoever starts it."""

    def run_finished(self, s: Session, order: Order, job: Job) -> None:
        """A run of a scheduled or staged kind (``Execution.scheduled``, ``staged``) succeeded
        on every database (``job`` is its ``execute`` job); the ticket stays on its schedule,
        or moves on if that was its last stage."""

    def submit_refusal(self, s: Session, order: Order) -> str | None:
        """Why a ticket of this kind cannot be submitted yet, beyond its precheck (a schema
        design that has not run on its base); None (the default): it can."""
        return None

    def precheck_scripts(
        self, s: Session, order: Order, engines: Collection[str]
    ) -> dict[str, str] | None:
        """The SQL the precheck checks, by engine among the ticket's databases', for a kind
        that writes it (a cleanup's DELETEs); None (the default): the SQL the ticket carries,
        as text or attachment, the same for every engine. A script that cannot be written
        raises ``precheck.checks.StepFailed``, which fails SQL_PARSE."""
        return None

    def compare(
        self, store: Store, connect: Callable[[Instance], Connector], order: Order, job_id: int
    ) -> None:
        """For a kind whose SQL is what comparing live databases finds (TABLE_SYNC): compare
        them now, at the start of precheck run ``job_id``, before ``precheck_scripts`` reads
        what was found; the default compares nothing. Runs with no metadata transaction
        open; a comparison that fails raises ``precheck.checks.StepFailed``."""

    def review_catalog(self, s: Session, order: Order, db: Database) -> Catalog | None:
        """The tables SQL review reads for one of the ticket's databases, for a kind that
        read them live just now (a structure sync's comparison); None (the default): the
        metadata store's catalog."""
        return None

    def precheck_review(
        self, s: Session, db: Database, inst: Instance, script: str
    ) -> tuple[list[Finding], str]:
        """What SQL_TYPE_CHECK adds for one database beyond SQL review, and a note for the
        step's tip (an export's refusal and masks)."""
        return [], ""

    def sql_param(self, ask: SqlTicket) -> dict[str, Any]:
        """The Param of a ticket of this kind that runs ``ask.sql`` on ``ask.db_id``, spelled
        as the wire's Param so ``tickets.create_order`` checks it as it checks any other, with
        the same messages. The default: a data change given as text (a kind that takes no
        SQL is then refused by its own model)."""
        return sql_change_param(ask)

    def with_reclaim_cadence(self, param: dict[str, Any], every: int) -> dict[str, Any] | None:
        """``param`` (a Param of this kind) also reclaiming space every ``every`` runs
        (OPTIMIZE TABLE, VACUUM); None (the default) when the kind has no such cadence."""
        return None

    def detail_config(self, s: Session, caller: Caller, order: Order) -> dict[str, Any]:
        """What GetDataCorrectOrderDetail's ConfigDetail shows beside its DetailType (times as
        datetimes: the wire writes them, ``gateway.wire.wire_times``)."""
        return {}
