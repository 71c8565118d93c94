"""A structure sync (TABLE_SYNC) compared: the source's tables read from the live source, the
target's from the live target, and the DDL that makes the target match, kept as the ticket's
plan (``SchemaPlan``) for its precheck to review and its execution to run.

It runs in the ticket's precheck job, off the request path: reading two databases' catalogs
can take seconds. No metadata transaction is open while a target is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.catalog import dba, permissions, queries
from opendms.errors import DmsError
from opendms.identity.roles import Role, parse_roles
from opendms.schema.model import Table
from opendms.store.db import Store
from opendms.store.models import Database, Instance, Order, SchemaPlan, User, utcnow
from opendms.store.states import PlanState
from opendms.structure.compare import Pair, by_name, compare_tables
from opendms.targets.base import Connector, TargetError

Connect = Callable[[Instance], Connector]


class CompareFailed(Exception):
    """The databases could not be compared; the message says why, in words for the ticket."""


@dataclass(frozen=True)
class SyncAsk:
    """What a structure sync compares: the source database, the target, and the tables
    (source name → target name; empty: every table of the source, under its own name)."""

    source_db_id: int
    target_db_id: int
    pairs: tuple[Pair, ...] = ()


def _may_read_source(s: Session, order: Order, db: Database, inst: Instance) -> None:
    committer = s.get(User, order.committer_id)
    if committer is None:
        raise CompareFailed("The committer is no longer a user of this tenant.")
    if Role.ADMIN in parse_roles(committer.roles) or dba.is_instance_dba(inst, committer.user_id):
        return
    for perm in ("QUERY", "CORRECT", "EXPORT"):
        if permissions.holds(s, order.tid, committer.user_id, db.db_id, perm):
            return
    raise CompareFailed(
        f"The committer may not read the source database {db.schema_name}@{inst.alias}: "
        "they need a permission on it (QUERY, CORRECT or EXPORT), or to be its DBA."
    )


def _read(
    connect: Connect, inst: Instance, db: Database, names: Sequence[str] | None
) -> dict[str, Table]:
    where = (db.catalog_name, db.schema_name)
    try:
        return connect(inst).definitions(where, names)
    except (TargetError, DmsError) as exc:
        raise CompareFailed(
            f"Reading {db.schema_name}@{inst.alias} failed: {exc.message}"
        ) from None


def compare_sync(
    store: Store, connect: Connect, order_id: int, ask: SyncAsk, job_id: int
) -> list[str]:
    """Compare and keep the plan; its statements, in order. Raises :class:`CompareFailed`."""
    with store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        try:
            source_db, source_inst = queries.get_database_on(s, order.tid, ask.source_db_id)
            target_db, target_inst = queries.get_database_on(s, order.tid, ask.target_db_id)
        except DmsError as exc:
            raise CompareFailed(exc.message) from None
        _may_read_source(s, order, source_db, source_inst)
        plan = _plan(s, order_id, target_db.db_id)
        plan.source_db_id, plan.state, plan.job_id = source_db.db_id, PlanState.COMPARING, job_id
        plan.message = ""
    try:
        pairs = ask.pairs
        source = _read(connect, source_inst, source_db, [p.source for p in pairs] or None)
        if not pairs:
            pairs = tuple(Pair(name, name) for name in sorted(source))
        missing = [p.source for p in pairs if by_name(source, p.source) is None]
        if missing:
            raise CompareFailed(
                f"The source database {source_db.schema_name} has no table "
                + ", ".join(missing)
                + "."
            )
        pairs = tuple(Pair(by_name(source, p.source) or p.source, p.target) for p in pairs)
        target = _read(connect, target_inst, target_db, [p.target for p in pairs])
        pairs = tuple(Pair(p.source, by_name(target, p.target) or p.target) for p in pairs)
        results, statements = compare_tables(
            pairs,
            source,
            target,
            engine=target_inst.instance_type,
            source_engine=source_inst.instance_type,
        )
    except CompareFailed as exc:
        _failed(store, order_id, target_db.db_id, job_id, str(exc))
        raise
    except ValueError as exc:  # a definition the target's dialect cannot carry
        _failed(store, order_id, target_db.db_id, job_id, str(exc))
        raise CompareFailed(str(exc)) from None
    with store.session() as s:
        plan = _plan(s, order_id, target_db.db_id)
        if plan.job_id != job_id:
            return statements  # a newer comparison took over
        plan.tables = [r.dumps() for r in results]
        plan.before = {p.target: target[p.target].to_json() for p in pairs if p.target in target}
        plan.desired = {p.target: source[p.source].to_json() for p in pairs}
        plan.statements = statements
        plan.state = PlanState.COMPARED if statements else PlanState.EQUAL
        plan.analyzed_at = utcnow()
    return statements


def _plan(s: Session, order_id: int, db_id: int) -> SchemaPlan:
    plan = s.scalar(
        select(SchemaPlan)
        .where(SchemaPlan.order_id == order_id, SchemaPlan.db_id == db_id)
        .with_for_update()
    )
    if plan is None:
        plan = SchemaPlan(order_id=order_id, db_id=db_id)
        s.add(plan)
        s.flush()
    return plan


def _failed(store: Store, order_id: int, db_id: int, job_id: int, message: str) -> None:
    with store.session() as s:
        plan = _plan(s, order_id, db_id)
        if plan.job_id == job_id:
            plan.state, plan.message = PlanState.FAILED, message[:4000]
