"""Ticket intake and the reads every ticket type shares.

A ticket and its first job (the precheck, for the types that have one) are written in the
caller's one transaction, so a ticket is never accepted without the work that moves it on,
nor the work queued without it.
Who may see a ticket: its committer, its related users, the DBA of an instance it touches
(as ``catalog.dba`` says: named by someone else), whoever was ever asked to approve it, and
administrators. Everyone else gets the answer an unknown id gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, true, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from opendms.catalog import dba, queries
from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.store.models import (
    Attachment,
    Database,
    Instance,
    Job,
    Order,
    OrderDatabase,
    Owner,
    User,
    WorkflowApprover,
    WorkflowInstance,
    WorkflowStep,
    utcnow,
)
from opendms.store.paging import Page
from opendms.store.search import matches
from opendms.store.states import (
    JOB_OPEN,
    TERMINAL,
    DatabaseState,
    JobState,
    OrderStatus,
    StepStatus,
    UserState,
    WorkflowStatus,
)
from opendms.tickets.kind import TicketKind
from opendms.tickets.params import Params, pascal_keys
from opendms.tickets.registry import DATA_CORRECT, data_correct_types, kind_of, params_of

# StatusDesc: each status in words
STATUS_DESC = {
    OrderStatus.NEW: "New",
    OrderStatus.TOAUDIT: "Waiting for approval",
    OrderStatus.APPROVED: "Approved",
    OrderStatus.REJECT: "Rejected",
    OrderStatus.PROCESSING: "Executing",
    OrderStatus.SUCCESS: "Succeeded",
    OrderStatus.CLOSED: "Closed",
}
# ListOrders' OrderStatus: the statuses each of its words takes in (ALL: every one)
STATUS_FILTERS = {
    "FINISHED": TERMINAL,
    "RUNNING": frozenset(OrderStatus) - TERMINAL,
}
SCOPES = ("AS_ADMIN", "AS_COMMITTER", "AS_HANDLER", "AS_OWNER", "AS_Related")
_LAST_SECOND = datetime.max.replace(microsecond=0)
# The statuses in which a ticket can wait on someone (AS_HANDLER)
_HANDLED = (OrderStatus.TOAUDIT, OrderStatus.APPROVED, OrderStatus.PROCESSING)


def parse_params(kind: TicketKind, raw: Any, *, label: str, camel_case: bool) -> Params:
    """The type's parameters, or a business error that names the offending field."""
    data = pascal_keys(raw) if camel_case else raw
    try:
        return kind.params.model_validate(data)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors(include_url=False, include_input=False)[:3]:
            path = ".".join(str(p) for p in err["loc"])
            where = f"{label}.{path}" if path else label
            fields.setdefault(where, str(err["msg"]).removeprefix("Value error, "))
        problems = "; ".join(f"{where}: {why}" for where, why in fields.items())
        raise DmsError(ErrorCode.INVALID_PARAMETER, problems, fields) from None


def _related(s: Session, tid: int, user_ids: Sequence[int]) -> str:
    wanted = list(dict.fromkeys(user_ids))
    if wanted:
        found = set(
            s.scalars(
                select(User.user_id).where(
                    User.user_id.in_(wanted), User.tid == tid, User.state != UserState.DELETE
                )
            )
        )
        missing = [u for u in wanted if u not in found]
        if missing:
            raise DmsError(
                ErrorCode.USER_NOT_FOUND,
                f"RelatedUserList: no user {', '.join(map(str, missing[:5]))} in tenant {tid}.",
            )
    return "," + "".join(f"{u}," for u in wanted)


def _attachment(s: Session, tid: int, key: str, field: str) -> Attachment:
    found = s.get(Attachment, key)
    if found is None or found.tid != tid:
        raise DmsError(ErrorCode.ATTACHMENT_NOT_FOUND, f"{field}: no attachment {key[:64]!r}.")
    return found


def _texts(value: Any) -> list[str]:
    """Every string inside a parameter tree, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def search_text(comment: str, params: Params) -> str:
    """What ListOrders' SearchContent looks through for a ticket."""
    return "\n".join([comment, *_texts(params.wire())])


def create_order(
    s: Session,
    caller: Caller,
    plugin_type: str,
    raw_params: Any,
    *,
    comment: str,
    related_user_ids: Sequence[int] = (),
    attachment_key: str | None = None,
    parent_id: int | None = None,
    camel_case: bool = False,
    label: str = "Param",
) -> Order:
    kind = kind_of(plugin_type)
    params = parse_params(kind, raw_params, label=label, camel_case=camel_case)
    targets = []
    for db_id in kind.databases(params):
        db = queries.get_database(s, caller.tid, db_id)
        if db.state != DatabaseState.NORMAL:
            raise DmsError(
                ErrorCode.DATABASE_NOT_FOUND, f"Database {db_id} is {db.state}; sync it first."
            )
        targets.append(db)
    claimed = {getattr(params, "instance_id", None)} | {
        i.instance_id for i in getattr(params, "db_item_list", None) or []
    }
    claimed.discard(None)
    if claimed and not claimed <= {db.instance_id for db in targets}:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"{label}: InstanceId does not match the database's."
        )
    for key in kind.attachments(params):
        _attachment(s, caller.tid, key, label)
    if attachment_key:
        _attachment(s, caller.tid, attachment_key, "AttachmentKey")
    if parent_id is not None:
        get_order(s, caller, parent_id)
    order = Order(
        tid=caller.tid,
        plugin_type=kind.plugin_type,
        committer_id=caller.user_id,
        comment=comment,
        related_user_ids=_related(s, caller.tid, related_user_ids),
        params=json.dumps(params.wire(), ensure_ascii=False, separators=(",", ":")),
        search_text=search_text(comment, params),
        attachment_key=attachment_key or None,
        parent_id=parent_id,
    )
    s.add(order)
    s.flush()
    s.add_all(
        OrderDatabase(order_id=order.order_id, db_id=db.db_id, instance_id=db.instance_id)
        for db in {d.db_id: d for d in targets}.values()
    )
    if kind.has_precheck:
        s.add(Job(order_id=order.order_id, kind="precheck"))
    s.flush()
    return order


# ------------------------------------------------------------------ visibility


def _is_dba_of(caller: Caller) -> ColumnElement[bool]:
    return exists(
        select(OrderDatabase.order_id)
        .join(Instance, Instance.instance_id == OrderDatabase.instance_id)
        .where(OrderDatabase.order_id == Order.order_id, dba.is_dba_clause(caller.user_id))
    )


def _related_to(caller: Caller) -> ColumnElement[bool]:
    return Order.related_user_ids.contains(f",{caller.user_id},")


def _approvers(*, current: bool) -> Select[Any]:
    """Approver rows of the ticket's workflows; ``current``: active ones of a node in progress."""
    query = (
        select(WorkflowApprover.user_id)
        .join(WorkflowStep, WorkflowStep.step_id == WorkflowApprover.step_id)
        .join(
            WorkflowInstance,
            WorkflowInstance.workflow_instance_id == WorkflowStep.workflow_instance_id,
        )
        .where(WorkflowInstance.order_id == Order.order_id)
    )
    if current:
        query = query.where(
            WorkflowStep.status == StepStatus.AUDITING,
            WorkflowInstance.status == WorkflowStatus.AUDITING,
            WorkflowApprover.active.is_(True),
        )
    return query


def _asked(caller: Caller) -> ColumnElement[bool]:
    return exists(_approvers(current=False).where(WorkflowApprover.user_id == caller.user_id))


def _waiting_on(caller: Caller) -> ColumnElement[bool]:
    """Tickets whose current approval node the caller may act on; for an administrator also
    those whose current node resolved to nobody (they are the ones who can transfer it)."""
    mine = exists(_approvers(current=True).where(WorkflowApprover.user_id == caller.user_id))
    if not caller.is_admin:
        return mine
    stalled = and_(Order.status_code == OrderStatus.TOAUDIT, ~exists(_approvers(current=True)))
    return or_(mine, stalled)


def _visible(caller: Caller) -> ColumnElement[bool]:
    if caller.is_admin:
        return Order.tid == caller.tid
    return and_(
        Order.tid == caller.tid,
        or_(
            Order.committer_id == caller.user_id,
            _related_to(caller),
            _is_dba_of(caller),
            _asked(caller),
        ),
    )


def visible(caller: Caller) -> ColumnElement[bool]:
    """The tickets ``caller`` may see, as a condition on ``Order``: for listings that join
    tickets to what hangs off them (the approval trail)."""
    return _visible(caller)


def get_order(s: Session, caller: Caller, order_id: int, *, lock: bool = False) -> Order:
    """The ticket, if the caller may see it; ``lock`` holds its row until the transaction
    ends, so state changes of one ticket apply one at a time."""
    query = select(Order).where(Order.order_id == order_id, _visible(caller))
    order = s.scalars(query.with_for_update() if lock else query).first()
    if order is None:
        raise DmsError(ErrorCode.ORDER_NOT_FOUND, f"Ticket {order_id} does not exist.")
    return order


@dataclass(frozen=True)
class OrderFilter:
    scope: str = "AS_COMMITTER"
    status: str | None = None  # ALL, FINISHED, RUNNING
    plugin_type: str | None = None
    search: str | None = None
    date_field: str = "CREATE_TIME"
    start: datetime | None = None
    end: datetime | None = None
    # Beyond ListOrders' wire (the web console's filters; the API never sets them):
    statuses: frozenset[OrderStatus] | None = None  # exactly these statuses
    db_id: int | None = None  # tickets that touch this database


def _scope(caller: Caller, scope: str, *, walking: bool = False) -> ColumnElement[bool]:
    """The tickets of ListOrders' OrderResultType ``scope`` that the caller may see
    (``walking``: for a query that walks the tickets in order, see :func:`_ticket_id`).

    A scope is written so that whatever it takes in is visible to the caller by one of
    :func:`_visible`'s grounds (each says which), or tests :func:`_visible` itself where it
    cannot: testing visibility ticket by ticket costs SQLite correlated subqueries per row,
    hundreds of milliseconds over 100,000 tickets. tests/unit/tickets/test_list_orders.py
    holds every scope, for every person, to an oracle built ticket by ticket from
    :func:`get_order`."""
    if scope == "AS_ADMIN":  # an administrator sees the whole tenant (list_orders says which)
        if not caller.is_admin:
            raise DmsError(ErrorCode.PERMISSION_DENIED, "AS_ADMIN is for administrators.")
        return true()
    if scope == "AS_Related":  # a ground of _visible
        return _related_to(caller)
    if scope == "AS_HANDLER":  # waiting on me: my approval, or execution on instances I run
        return and_(
            # what the two cases below take in, said once more as one condition an index on
            # the status serves: the tickets not in these statuses are never looked at
            Order.status_code.in_(_HANDLED),
            or_(
                # an approver now was asked (_asked); an administrator sees everything
                and_(Order.status_code == OrderStatus.TOAUDIT, _waiting_on(caller)),
                and_(
                    _is_dba_of(caller),  # a ground of _visible
                    Order.status_code.in_((OrderStatus.APPROVED, OrderStatus.PROCESSING)),
                ),
            ),
        )
    if scope == "AS_OWNER":  # on databases I own or instances I run
        # As lists of ids (each read once) rather than a subquery per ticket: most tickets
        # are on neither, and a DBA's are many.
        owned = (
            select(OrderDatabase.order_id)
            .join(
                Owner,
                and_(Owner.resource_type == "DATABASE", Owner.resource_id == OrderDatabase.db_id),
            )
            .where(Owner.user_id == caller.user_id)
        )
        run_by_me = (
            select(OrderDatabase.order_id)
            .join(Instance, Instance.instance_id == OrderDatabase.instance_id)
            .where(dba.is_dba_clause(caller.user_id))
        )
        key = _ticket_id(walking)
        return or_(
            key.in_(run_by_me),  # _is_dba_of, a ground of _visible
            and_(key.in_(owned), _visible(caller)),  # owning is no ground
        )
    return Order.committer_id == caller.user_id  # AS_COMMITTER: a ground of _visible


def _ticket_id(walking: bool) -> ColumnElement[int] | InstrumentedAttribute[int]:
    """The ticket's id, to test against a list of ids. Where a list could lead the query (a
    count: one lookup per id listed), the id itself; in a query that walks the tickets
    newest first, ``order_id + 0``, which no index serves: else SQLite looks up every id
    listed and sorts them all rather than walk the few tickets a page needs."""
    return Order.order_id + 0 if walking else Order.order_id


def list_orders(s: Session, caller: Caller, f: OrderFilter, page: int, size: int) -> Page:
    def query(*, walking: bool) -> Select[Any]:
        found = select(Order).where(
            Order.tid == caller.tid, _scope(caller, f.scope, walking=walking)
        )
        return found.where(*_filters(f, walking=walking))

    return _newest_first(s, query, page, size)


def _filters(f: OrderFilter, *, walking: bool) -> list[ColumnElement[bool]]:
    """The conditions of ``f`` beyond the scope."""
    where: list[ColumnElement[bool]] = []
    if f.status in STATUS_FILTERS:
        where.append(Order.status_code.in_(STATUS_FILTERS[f.status]))
    if f.statuses is not None:
        where.append(Order.status_code.in_(f.statuses))
    if f.db_id is not None:
        on_db = select(OrderDatabase.order_id).where(OrderDatabase.db_id == f.db_id)
        where.append(_ticket_id(walking).in_(on_db))
    if f.plugin_type == DATA_CORRECT:
        where.append(Order.plugin_type.in_(data_correct_types()))
    elif f.plugin_type:
        where.append(Order.plugin_type == f.plugin_type)
    if f.search:
        found = [matches(f.search, Order.search_text)]
        if f.search.isascii() and f.search.isdigit() and len(f.search) < 19:
            found.append(Order.order_id == int(f.search))
        where.append(or_(*found))
    column = Order.updated_at if f.date_field == "MODIFY_TIME" else Order.created_at
    if f.start is not None:
        where.append(column >= f.start)
    # The wire has whole seconds; stored times have microseconds. The last second there is
    # (9999-12-31 23:59:59) bounds nothing, and has no second after it.
    if f.end is not None and f.end < _LAST_SECOND:
        where.append(column < f.end + timedelta(seconds=1))
    return where


# A listing of at most this many tickets may find its page among their ids (see below).
_FEW = 1000


def _newest_first(s: Session, query: Callable[..., Select[Any]], page: int, size: int) -> Page:
    """A page of the tickets ``query(walking=…)`` selects, newest first, and how many there
    are.

    Asked for the newest 20 of a condition, SQLite walks the tickets from the newest down,
    testing each, until it has them: quick when many match, a walk through the whole table
    when few do (and a sort instead drags every match's text along). So the count comes
    first, and the page is found among ids only: when the matches are few and the walk
    would read more than a quarter of all tickets to reach the page, the matching ids are
    read as the count read them and put in order here; otherwise the database walks. The
    page's tickets are then read by id."""
    ids = query(walking=False).with_only_columns(Order.order_id)
    total = s.scalar(select(func.count()).select_from(ids.subquery())) or 0
    if total == 0:
        return Page(0, [])
    everyone = s.scalar(select(func.max(Order.order_id))) or 0  # about how many tickets exist
    walk = page * size * everyone / total  # tickets read to reach the page, spread evenly
    if total <= _FEW and walk > everyone / 4:
        wanted = sorted(s.scalars(ids), reverse=True)[(page - 1) * size : page * size]
    else:
        walked = query(walking=True).with_only_columns(Order.order_id)
        newest = walked.order_by(Order.order_id.desc()).offset((page - 1) * size).limit(size)
        wanted = list(s.scalars(newest))
    if not wanted:  # a page past the last
        return Page(total, [])
    found = {o.order_id: o for o in s.scalars(select(Order).where(Order.order_id.in_(wanted)))}
    return Page(total, [found[i] for i in wanted if i in found])


def latest_job(s: Session, order_id: int, kind: str) -> Job | None:
    """The ticket's newest job of ``kind`` (its latest precheck run, its execution)."""
    return s.scalars(
        select(Job)
        .where(Job.order_id == order_id, Job.kind == kind)
        .order_by(Job.job_id.desc())
        .limit(1)
    ).first()


def status_desc(s: Session, order: Order) -> str:
    """StatusDesc: the status in words, and for a ticket being executed whether it waits for
    its start time or failed (it then stays ``processing``: DMS has no status for it)."""
    if order.status_code != OrderStatus.PROCESSING:
        return STATUS_DESC.get(order.status_code, order.status_code)
    return _desc(order, latest_job(s, order.order_id, "execute"))


def status_descs(s: Session, orders: Sequence[Order]) -> dict[int, str]:
    """:func:`status_desc` of a page of tickets, by ticket id: the execute jobs of those
    being executed are read in one query, not one per row."""
    executing = [o.order_id for o in orders if o.status_code == OrderStatus.PROCESSING]
    jobs: dict[int | None, Job] = {}
    if executing:
        newest = (
            select(func.max(Job.job_id))
            .where(Job.order_id.in_(executing), Job.kind == "execute")
            .group_by(Job.order_id)
        )
        jobs = {job.order_id: job for job in s.scalars(select(Job).where(Job.job_id.in_(newest)))}
    return {o.order_id: _desc(o, jobs.get(o.order_id)) for o in orders}


def _desc(order: Order, job: Job | None) -> str:
    """The status in words, given the ticket's newest execute job if it is being executed."""
    if order.status_code == OrderStatus.PROCESSING and job is not None:
        if job.state == JobState.FAILED:
            failure = (job.checkpoint or {}).get("failure", "")
            return f"Execution failed: {failure}" if failure else "Execution failed"
        if job.state == JobState.QUEUED and job.attempts == 0:
            return f"Scheduled for {job.run_after:%Y-%m-%d %H:%M:%S} (UTC)"
        if job.state == JobState.PAUSED:
            return "Execution paused"
    return STATUS_DESC.get(order.status_code, order.status_code)


# The job that takes back what DDL run on a live table left half-way (shadow tables,
# triggers) once its ticket will not go on: ``execution.run_ddl.OnlineCancel``.
ONLINE_CANCEL = "online_cancel"


def cancel_jobs(s: Session, order_id: int) -> None:
    """Work not yet done for a ticket that will not go on; a ticket whose DDL was running on
    a live table gets a job that takes back what it left half-way."""
    stopped = (
        s.execute(
            update(Job)
            .where(Job.order_id == order_id, Job.state.in_(JOB_OPEN))
            .values(state=JobState.CANCELLED, updated_at=utcnow())
            .returning(Job.kind)
        )
        .scalars()
        .all()
    )
    order = s.get(Order, order_id)
    how = kind_of(order.plugin_type).execution if order is not None else None
    if "execute" in stopped and how is not None and how.walk == "ddl":
        s.add(Job(order_id=order_id, kind=ONLINE_CANCEL))


def exec_mode(order: Order) -> str:
    """Who starts an approved ticket: COMMITOR (default), AUTO or LAST_AUDITOR."""
    # ExecMode is a parameter of the kinds that execute (tickets.params.ExecMode)
    mode = getattr(params_of(order), "exec_mode", None)
    return str(mode) if mode else "COMMITOR"


def is_dba_of_ticket(s: Session, caller: Caller, order_id: int) -> bool:
    """Whether the caller is a DBA of an instance the ticket touches (as ``catalog.dba``
    says: named by someone else)."""
    return bool(s.scalar(select(_is_dba_of(caller)).where(Order.order_id == order_id)))


def databases_of(s: Session, order_id: int) -> list[tuple[Database, Instance]]:
    """The ticket's databases with their instances, in instance then database order."""
    rows = s.execute(
        select(Database, Instance)
        .join(OrderDatabase, OrderDatabase.db_id == Database.db_id)
        .join(Instance, Instance.instance_id == Database.instance_id)
        .where(OrderDatabase.order_id == order_id)
        .order_by(Instance.instance_id, Database.db_id)
    ).all()
    return [(db, inst) for db, inst in rows]


@dataclass(frozen=True)
class DatabaseName:
    """What a list shows of a ticket's database."""

    db_id: int
    catalog_name: str
    schema_name: str
    instance_alias: str


def database_names(s: Session, order_ids: Sequence[int]) -> dict[int, list[DatabaseName]]:
    """The databases of a page of tickets (as :func:`databases_of` orders them), by ticket
    id, in one query of the few columns a list shows."""
    found: dict[int, list[DatabaseName]] = {i: [] for i in order_ids}
    if not order_ids:
        return found
    rows = s.execute(
        select(
            OrderDatabase.order_id,
            Database.db_id,
            Database.catalog_name,
            Database.schema_name,
            func.coalesce(func.nullif(Instance.alias, ""), Instance.host),
        )
        .join(Database, Database.db_id == OrderDatabase.db_id)
        .join(Instance, Instance.instance_id == Database.instance_id)
        .where(OrderDatabase.order_id.in_(order_ids))
        .order_by(Instance.instance_id, Database.db_id)
    ).all()
    for order_id, *name in rows:
        found[order_id].append(DatabaseName(*name))
    return found


def related_ids(order: Order) -> list[int]:
    return [int(x) for x in order.related_user_ids.split(",") if x]
