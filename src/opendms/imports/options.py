"""What an import needs of its ticket's parameters. The ticket kind that imports a file
(``opendms.kinds.data_import``) has parameters of this shape; the import's precheck,
execution and run read them through it, never through that kind's model."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable


@runtime_checkable
class ImportOptions(Protocol):
    @property
    def attachment_name(self) -> str: ...
    @property
    def file_type(self) -> Literal["SQL", "CSV", "EXCEL"]: ...
    @property
    def table_name(self) -> str | None: ...
    @property
    def csv_first_row_is_column_def(self) -> bool | None: ...
    @property
    def insert_type(self) -> Literal["INSERT", "INSERT_IGNORE", "REPLACE_INTO"] | None: ...
    @property
    def file_encoding(self) -> Literal["AUTO", "UTF-8", "GBK", "ISO-8859-1"] | None: ...
    @property
    def import_mode(self) -> Literal["FAST_MODE", "SAFE_MODE"] | None: ...
    @property
    def ignore_error(self) -> bool | None: ...


def import_options(params: object) -> ImportOptions:
    """``params`` as an import's options; a ticket whose kind does not import a file has
    none (a mistake of the caller's: TypeError)."""
    if not isinstance(params, ImportOptions):
        raise TypeError(f"{type(params).__name__} are not an import's options")
    return params
