"""The ticket types in scope and their parameters (dms-api.md A.1, B.5, B.6)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from opendms.tickets import cron
from opendms.tickets.params import (
    DbItem,
    ExecMode,
    Id,
    Intent,
    Key,
    Name,
    Params,
    Rollback,
    SqlText,
    SqlType,
    TicketType,
)

Classify = Annotated[str, Field(max_length=256)]
DML = frozenset({"INSERT", "REPLACE", "UPDATE", "DELETE"})
QUERIES = frozenset({"SELECT"})


class DataCorrect(Rollback):
    """DC_COMMON: a regular data change."""

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


class FreeLockCorrect(Rollback):
    """DC_CHUNK: a batched, lock-free change; SQL as text only."""

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


class CronClearItem(Params):
    table_name: Name
    column_name: Name
    remain_days: Annotated[int, Field(ge=0, le=36500)]
    time_unit: Literal["MILLISECONDS", "SECONDS"] | None = None
    filter_sql: Annotated[str, Field(max_length=65536)] | None = Field(
        default=None, alias="FilterSQL"
    )


class CronClear(Params):
    """DC_CRON_CLEAR: delete rows older than RemainDays, on a schedule."""

    db_item_list: Annotated[list[DbItem], Field(min_length=1, max_length=100)]
    cron_clear_item_list: Annotated[list[CronClearItem], Field(min_length=1, max_length=100)]
    cron_format: Annotated[str, Field(min_length=1, max_length=256)]
    specify_duration: bool = Field(alias="specifyDuration")
    duration_hour: Annotated[int, Field(ge=1, le=24 * 366)] | None = None
    classify: Classify | None = None
    # Reclaim space (OPTIMIZE TABLE, VACUUM) after every N runs; 0 or absent: never. Not in
    # CreateDataCronClearOrder's Param: CreateOrder's PluginParam and the CLI set it.
    optimize_table_after_every_clear_times: Annotated[int, Field(ge=0, le=10_000)] | None = None

    @field_validator("cron_format")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            return cron.validate(value)
        except cron.CronError as exc:
            raise ValueError(f"not a valid DMS cron expression: {exc}") from None

    @model_validator(mode="after")
    def _duration(self) -> CronClear:
        if self.specify_duration and self.duration_hour is None:
            raise ValueError("DurationHour is required when specifyDuration is true")
        return self

    def intent(self) -> Intent:
        return Intent(
            kinds=frozenset({"DELETE"}),
            tables=tuple(i.table_name for i in self.cron_clear_item_list),
        )


class DataImport(Rollback):
    """DC_BIG_FILE: import an uploaded SQL or CSV file into one database."""

    db_item_list: Annotated[list[DbItem], Field(min_length=1, max_length=1)]
    attachment_name: Key
    # EXCEL (an XLSX workbook; XLSX is read as EXCEL): what the console offers beside the
    # API's SQL and CSV (dms-api.md A.1.5)
    file_type: Literal["SQL", "CSV", "EXCEL"]
    table_name: Name | None = None
    csv_first_row_is_column_def: bool | None = None
    insert_type: Literal["INSERT", "INSERT_IGNORE", "REPLACE_INTO"] | None = None
    file_encoding: Literal["AUTO", "UTF-8", "GBK", "ISO-8859-1"] | None = None
    import_mode: Literal["FAST_MODE", "SAFE_MODE"] | None = None
    ignore_error: bool | None = None
    exec_mode: ExecMode | None = None
    classify: Classify | None = None

    @field_validator("file_type", mode="before")
    @classmethod
    def _excel(cls, value: object) -> object:
        return "EXCEL" if isinstance(value, str) and value.upper() == "XLSX" else value

    @model_validator(mode="after")
    def _rows_need_a_table(self) -> DataImport:
        if self.file_type != "SQL" and not self.table_name:
            raise ValueError(f"TableName is required when FileType={self.file_type}")
        return self

    def intent(self) -> Intent:
        # The rows are in the file, which the import's precheck reads; until then unknown.
        kind = "REPLACE" if self.insert_type == "REPLACE_INTO" else "INSERT"
        if self.file_type == "SQL":
            return Intent(complete=False)
        return Intent(kinds=frozenset({kind}), tables=(self.table_name or "",), complete=False)


class Watermark(Params):
    watermark_types: list[Literal["DATA", "FILE"]] | None = None
    data_watermark: Annotated[str, Field(max_length=256)] | None = None
    file_watermark: Annotated[str, Field(max_length=256)] | None = None
    column_name: Name | None = None
    keys: list[Name] | None = None


class DataExport(Params):
    """DATA_EXPORT: export the result of one SELECT."""

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


class SchemaDesign(Params):
    """NDDL: a schema design ticket on one base database."""

    title: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=4096)] | None = None
    db_id: Id
    logic: bool = False
    related_ids: list[Id] | None = None

    @model_validator(mode="after")
    def _physical(self) -> SchemaDesign:
        if self.logic:
            raise ValueError("logical databases are not supported")
        return self


TICKET_TYPES: dict[str, TicketType] = {
    t.plugin_type: t
    for t in (
        TicketType(
            "DC_COMMON",
            DataCorrect,
            "Regular data change",
            has_precheck=True,
            statement_kinds=DML,
        ),
        TicketType(
            "DC_CHUNK",
            FreeLockCorrect,
            "Lock-free batched data change",
            has_precheck=True,
            statement_kinds=DML,
            chunked=True,
        ),
        TicketType(
            "DC_CRON_CLEAR",
            CronClear,
            "Scheduled historical-data cleanup",
            has_precheck=True,
            statement_kinds=frozenset({"DELETE"}),
            chunked=True,
        ),
        TicketType(
            "DC_BIG_FILE",
            DataImport,
            "Data import from a file",
            has_precheck=True,
            statement_kinds=DML,
            imports=True,
        ),
        TicketType(
            "DATA_EXPORT",
            DataExport,
            "Export of a query's result",
            has_precheck=True,
            statement_kinds=QUERIES,
            permission="EXPORT",
            exports=True,
        ),
        TicketType("NDDL", SchemaDesign, "Schema design"),
    )
}
# ListOrders accepts this umbrella for every data-change type (dms-api.md B.1).
DATA_CORRECT_TYPES = ("DC_COMMON", "DC_CHUNK", "DC_CRON_CLEAR", "DC_BIG_FILE", "DC_PROC")
