"""DATA_EXPORT: export the result of one read-only query (dms-api.md A.4, B.5). Once
approved, ExecuteDataExport runs it as an ``export`` job (``exports``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from opendms.catalog import sensitive
from opendms.exports import masks
from opendms.sql.export import ExportRefused, export_query
from opendms.sql.review import Finding
from opendms.store.models import Database, Instance
from opendms.tickets.kind import SqlTicket, TicketKind
from opendms.tickets.params import QUERIES, Classify, Id, Intent, Name, Params, SqlText


class Watermark(Params):
    watermark_types: list[Literal["DATA", "FILE"]] | None = None
    data_watermark: Annotated[str, Field(max_length=256)] | None = None
    file_watermark: Annotated[str, Field(max_length=256)] | None = None
    column_name: Name | None = None
    keys: list[Name] | None = None


class DataExport(Params):
    """DATA_EXPORT's parameters."""

    db_id: Id
    logic: bool = False
    instance_id: Id | None = None
    exe_sql: SqlText = Field(alias="ExeSQL")
    classify: Classify
    affect_rows: Annotated[int, Field(ge=0)]
    ignore_affect_rows: bool
    ignore_affect_rows_reason: Annotated[str, Field(max_length=1024)] | None = None
    watermark: Watermark | None = None

    @model_validator(mode="after")
    def _reason(self) -> DataExport:
        if self.logic:
            raise ValueError("logical databases are not supported")
        if self.ignore_affect_rows and not self.ignore_affect_rows_reason:
            raise ValueError("IgnoreAffectRowsReason is required when IgnoreAffectRows is true")
        return self

    def intent(self) -> Intent:
        return Intent(sql=(self.exe_sql,))

    def expected_rows(self) -> int | None:
        return self.affect_rows

    def rows_waiver(self) -> str | None:
        return self.ignore_affect_rows_reason if self.ignore_affect_rows else None


class DataExportKind(TicketKind):
    plugin_type = "DATA_EXPORT"
    summary = "Export of a query's result"
    params = DataExport
    has_precheck = True
    statement_kinds = QUERIES
    permission = "EXPORT"
    verb = "export"
    order_type = "DATA_EXPORT"

    def sql_param(self, ask: SqlTicket) -> dict[str, Any]:
        """The query, on its database, with the rows it is expected to export."""
        return {
            "DbId": ask.db_id,
            "ExeSQL": ask.sql,
            "Classify": "cli",
            "AffectRows": ask.rows,
            "IgnoreAffectRows": False,
        }

    def precheck_review(
        self, s: Session, db: Database, inst: Instance, script: str
    ) -> tuple[list[Finding], str]:
        """An export's SQL must be the one read-only query it runs (sql.export); and what of
        its result the export will mask, for the approvers to read."""
        try:
            query = export_query(script, inst.instance_type)
        except ExportRefused as exc:
            refused = Finding("EXPORT_REFUSED", "ERROR", 1, 1, 1, f"It cannot be exported: {exc}.")
            return [refused], ""
        schema = sensitive.columns_of(s, db.db_id, query.tables)
        found, traced = masks.plan(
            query.node, inst.instance_type, schema, sensitive.masks_of(s, db.db_id)
        )
        if not traced:
            return [], " The export masks every column: they cannot be traced to their tables."
        shown = [f"{m.column} ({m.mask}, from {', '.join(m.sources)})" for m in found]
        return [], f" The export masks {', '.join(shown)}." if shown else ""


KIND = DataExportKind()
