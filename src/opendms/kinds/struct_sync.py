"""TABLE_SYNC: make a target database's tables match a source's (CreateStructSyncOrder).

Its precheck first compares the two live databases (``structure.sync``), then checks the DDL
that comparison wrote as it checks any ticket's SQL: parsed in the target's dialect, reviewed
by the DDL rules, the committer's permission on every table it changes. Approved, it runs that
DDL on the target, each statement on the live table without stopping its writers
(``execution.online``), and only while the target's tables are still as compared."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.catalog.shapes import CatalogShapes
from opendms.execution import service as execution
from opendms.precheck.checks import StepFailed
from opendms.schema.model import Table
from opendms.sql.tables import Catalog, LiveCatalog
from opendms.store.db import Store
from opendms.store.models import Database, Instance, Order, SchemaPlan
from opendms.structure.compare import Pair
from opendms.structure.sync import CompareFailed, SyncAsk, compare_sync
from opendms.targets.base import Connector
from opendms.tickets.kind import Execution, TicketKind
from opendms.tickets.params import Id, Params
from opendms.tickets.registry import params_of

TableName = Annotated[str, Field(min_length=1, max_length=256)]
DDL_KINDS = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "COMMENT"})


class SyncDatabase(Params):
    db_id: Id
    db_search_name: Annotated[str, Field(max_length=512)] | None = None
    logic: bool = False
    version_id: Annotated[str, Field(max_length=256)] | None = None

    @model_validator(mode="after")
    def _supported(self) -> SyncDatabase:
        if self.logic:
            raise ValueError("logical databases are not supported")
        if self.version_id:
            raise ValueError(
                "VersionId: OpenDMS compares the live databases and keeps no schema versions; "
                "leave it out"
            )
        return self


class TableInfo(Params):
    source_table_name: TableName
    target_table_name: TableName | None = None


class StructSync(Params):
    """TABLE_SYNC's parameters (CreateStructSyncOrder's Param)."""

    source: SyncDatabase
    target: SyncDatabase
    table_info_list: Annotated[list[TableInfo], Field(max_length=1000)] | None = None
    ignore_error: bool = False

    @model_validator(mode="after")
    def _distinct(self) -> StructSync:
        if self.source.db_id == self.target.db_id:
            raise ValueError("Source and Target are the same database")
        if self.ignore_error:
            raise ValueError(
                "IgnoreError: OpenDMS stops at the first statement that fails, so that a "
                "target is never left half-synced by skipped statements; leave it false"
            )
        targets = [t.target_table_name or t.source_table_name for t in self.table_info_list or []]
        twice = sorted({n for n in targets if targets.count(n) > 1})
        if twice:
            raise ValueError(f"TableInfoList names target table {', '.join(twice)} twice")
        return self

    def pairs(self) -> tuple[Pair, ...]:
        return tuple(
            Pair(t.source_table_name, t.target_table_name or t.source_table_name)
            for t in self.table_info_list or []
        )


class StructSyncKind(TicketKind):
    plugin_type = "TABLE_SYNC"
    summary = "Structure sync"
    params = StructSync
    has_precheck = True
    statement_kinds = DDL_KINDS
    order_type = "TABLE_SYNC"
    execution = Execution("STRUCT_SYNC", walk="ddl")

    def databases(self, params: Params) -> list[int]:
        """The target: the database it changes (the source is only read)."""
        assert isinstance(params, StructSync)
        return [params.target.db_id]

    def compare(
        self, store: Store, connect: Callable[[Instance], Connector], order: Order, job_id: int
    ) -> None:
        params = params_of(order, StructSync)
        ask = SyncAsk(params.source.db_id, params.target.db_id, params.pairs())
        try:
            compare_sync(store, connect, order.order_id, ask, job_id)
        except CompareFailed as exc:
            raise StepFailed(f"Comparing the structures failed: {exc}") from None

    def precheck_scripts(
        self, s: Session, order: Order, engines: Collection[str]
    ) -> dict[str, str] | None:
        plan = s.scalar(select(SchemaPlan).where(SchemaPlan.order_id == order.order_id))
        if plan is None or not plan.analyzed_at:
            raise StepFailed("The structures were not compared.")
        if not plan.statements:
            raise StepFailed("The target's tables already match the source's: nothing to sync.")
        script = "".join(f"{st.rstrip().rstrip(';')};\n" for st in plan.statements)
        return dict.fromkeys(engines, script)

    def review_catalog(self, s: Session, order: Order, db: Database) -> Catalog | None:
        """The target's tables as the comparison read them, live (the metadata store's
        catalog may not know a table made since it was last synced)."""
        plan = s.scalar(
            select(SchemaPlan).where(
                SchemaPlan.order_id == order.order_id, SchemaPlan.db_id == db.db_id
            )
        )
        if plan is None:
            return None
        read = {n: Table.from_json(d) for n, d in plan.before.items()}
        return LiveCatalog(read, set(plan.desired) | set(plan.before), CatalogShapes(s, [db]))

    def approved(self, s: Session, order: Order) -> None:
        execution.start_automatically(s, order)


KIND = StructSyncKind()
