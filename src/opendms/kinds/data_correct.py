"""DC_COMMON: a regular data change: SQL as text or an attachment, run statement by
statement once approved, with a backup when ExecuteDataCorrect asks for one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from opendms.execution import service as execution
from opendms.store.models import Order
from opendms.tickets.kind import Execution, SqlTicket, TicketKind, sql_change_param
from opendms.tickets.params import (
    DML,
    Classify,
    DbItem,
    ExecMode,
    Intent,
    Key,
    Rollback,
    SqlText,
    SqlType,
)


class DataCorrect(Rollback):
    """DC_COMMON's parameters."""

    db_item_list: Annotated[list[DbItem], Field(min_length=1, max_length=100)]
    estimate_affect_rows: Annotated[int, Field(ge=0)]
    sql_type: SqlType
    exec_sql: SqlText | None = Field(default=None, alias="ExecSQL")
    attachment_name: Key | None = None
    exec_mode: ExecMode | None = None
    classify: Classify | None = None

    @model_validator(mode="after")
    def _sql_present(self) -> DataCorrect:
        if self.sql_type == "TEXT" and not self.exec_sql:
            raise ValueError("ExecSQL is required when SqlType=TEXT")
        if self.sql_type == "ATTACHMENT" and not self.attachment_name:
            raise ValueError("AttachmentName is required when SqlType=ATTACHMENT")
        return self

    def intent(self) -> Intent:
        if self.exec_sql and self.sql_type == "TEXT":
            return Intent(sql=(self.exec_sql,))
        return Intent(complete=False)  # the SQL is in an attachment, read by the precheck

    def expected_rows(self) -> int | None:
        return self.estimate_affect_rows


class DataCorrectKind(TicketKind):
    plugin_type = "DC_COMMON"
    summary = "Regular data change"
    params = DataCorrect
    has_precheck = True
    statement_kinds = DML
    detail_type = "COMMON"
    execution = Execution("DATA_CORRECT", backup=True)

    def approved(self, s: Session, order: Order) -> None:
        execution.start_automatically(s, order)

    def sql_param(self, ask: SqlTicket) -> dict[str, Any]:
        """Given as text, stating the rows it changes."""
        return {**sql_change_param(ask), "EstimateAffectRows": ask.rows}


KIND = DataCorrectKind()
