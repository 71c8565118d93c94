"""DC_CHUNK: a lock-free data change: each statement walked in key ranges, one short
transaction per chunk, paced by the target's load."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from sqlalchemy.orm import Session

from opendms.execution import service as execution
from opendms.store.models import Order
from opendms.tickets.kind import Execution, TicketKind
from opendms.tickets.params import DML, Classify, DbItem, ExecMode, Intent, Rollback, SqlText


class FreeLockCorrect(Rollback):
    """DC_CHUNK's parameters: SQL as text only."""

    db_item_list: Annotated[list[DbItem], Field(min_length=1, max_length=100)]
    sql_type: Literal["TEXT"]
    exec_sql: SqlText = Field(alias="ExecSQL")
    exec_mode: ExecMode | None = None
    classify: Classify | None = None

    @field_validator("sql_type", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        if value == "ATTACHMENT":
            raise ValueError("lock-free changes take their SQL as TEXT, not as an attachment")
        return value

    def intent(self) -> Intent:
        return Intent(sql=(self.exec_sql,))


class ChunkedKind(TicketKind):
    plugin_type = "DC_CHUNK"
    summary = "Lock-free batched data change"
    params = FreeLockCorrect
    has_precheck = True
    statement_kinds = DML
    detail_type = "CHUNK_DML"
    execution = Execution("FREE_LOCK_DML", walk="chunks", backup=True)

    def approved(self, s: Session, order: Order) -> None:
        execution.start_automatically(s, order)


KIND = ChunkedKind()
