"""DC_BIG_FILE: import an uploaded SQL, CSV or Excel file into one database (dms-api.md
A.1.5). Its precheck reads the whole file (``precheck.imports``); its execution streams it
in batches (``imports.run``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy.orm import Session

from opendms.execution import service as execution
from opendms.imports.options import ImportOptions
from opendms.store.models import Order
from opendms.tickets.kind import Execution, TicketKind
from opendms.tickets.params import (
    DML,
    Classify,
    DbItem,
    ExecMode,
    Intent,
    Key,
    Name,
    Rollback,
)


class DataImport(Rollback):
    """DC_BIG_FILE's parameters (the ``imports.options.ImportOptions`` an import reads)."""

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


def _options(params: DataImport) -> ImportOptions:
    return params  # mypy holds the model to the shape the import reads


class DataImportKind(TicketKind):
    plugin_type = "DC_BIG_FILE"
    summary = "Data import from a file"
    params = DataImport
    has_precheck = True
    statement_kinds = DML
    detail_type = "BIG_FILE"
    execution = Execution("BIG_FILE", walk="file")

    def approved(self, s: Session, order: Order) -> None:
        execution.start_automatically(s, order)


KIND = DataImportKind()
