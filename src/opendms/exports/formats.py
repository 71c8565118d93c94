"""The file formats of an export (``ExecuteDataExport.ActionDetail.fileType``), written a
batch of rows at a time so memory stays flat for any result.

Text formats are written straight into the export's zip entry in the chosen encoding; a
value the encoding cannot hold stops the export (a file that silently lost characters is
worse than none). XLSX is a zip of its own: it is written to a file first, split into
sheets of at most 1,048,575 rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import xlsxwriter

from opendms.exports.values import plain
from opendms.sql.backup import literal
from opendms.targets.base import ENCODINGS

__all__ = ["ENCODINGS", "FILE_TYPES", "SUFFIX"]

FILE_TYPES = ("CSV", "XLSX", "SQL", "JSON", "TXT")
SUFFIX = {"CSV": "csv", "XLSX": "xlsx", "SQL": "sql", "JSON": "json", "TXT": "txt"}
XLSX_ROWS = 1_048_575  # per sheet, under its header row
SQL_ROWS = 500  # rows per INSERT of a SQL export
# Values the csv module writes as the database shows them; anything else goes through plain().
_AS_IS = (str, int, float, decimal.Decimal, dt.datetime, dt.date)


class Writer(ABC):
    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self._odd: set[int] = set()  # result columns whose values need plain()
        self._unseen = set(range(len(self.columns)))  # no non-NULL value seen yet

    def _learn(self, batch: Sequence[tuple[Any, ...]]) -> None:
        """Which columns need converting, from their first non-NULL values: a column's
        values share one type, so one look per column is enough."""
        for i in list(self._unseen):
            for row in batch:
                value = row[i]
                if value is not None:
                    if not isinstance(value, _AS_IS) or isinstance(value, bool):
                        self._odd.add(i)
                    self._unseen.discard(i)
                    break

    def _plain(self, batch: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
        self._learn(batch)
        if not self._odd:
            return batch
        odd = self._odd
        return [
            tuple(plain(v) if i in odd and v is not None else v for i, v in enumerate(row))
            for row in batch
        ]

    @abstractmethod
    def write(self, batch: Sequence[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def finish(self) -> None: ...


class _Text(Writer):
    def __init__(self, columns: Sequence[str], out: IO[bytes], encoding: str) -> None:
        super().__init__(columns)
        self.text = io.TextIOWrapper(
            out, encoding=encoding, errors="strict", newline="", write_through=False
        )

    def finish(self) -> None:
        self.text.flush()
        self.text.detach()


class CsvWriter(_Text):
    """RFC 4180 with a header row and LF line ends (as PostgreSQL's COPY writes them); NULL
    is an empty field."""

    def __init__(self, columns: Sequence[str], out: IO[bytes], encoding: str) -> None:
        super().__init__(columns, out, encoding)
        self.csv = csv.writer(self.text, lineterminator="\n")
        self.csv.writerow(self.columns)

    def write(self, batch: Sequence[tuple[Any, ...]]) -> None:
        self.csv.writerows(self._plain(batch))


def _tsv(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value if isinstance(value, str) else plain(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


class TxtWriter(_Text):
    """Tab-separated with a header, as the MySQL client's batch mode prints: backslash,
    tab and newline escaped, NULL spelled NULL."""

    def __init__(self, columns: Sequence[str], out: IO[bytes], encoding: str) -> None:
        super().__init__(columns, out, encoding)
        self.text.write("\t".join(_tsv(c) for c in self.columns) + "\n")

    def write(self, batch: Sequence[tuple[Any, ...]]) -> None:
        self.text.write("".join("\t".join(map(_tsv, row)) + "\n" for row in batch))


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | dict | list):
        return value
    return plain(value)


class JsonWriter(_Text):
    """One JSON array of objects, one object per line; numbers stay numbers, DECIMAL and
    times are strings (JSON has no exact decimal)."""

    def __init__(self, columns: Sequence[str], out: IO[bytes], encoding: str) -> None:
        super().__init__(columns, out, encoding)
        self.first = True
        self.text.write("[")

    def write(self, batch: Sequence[tuple[Any, ...]]) -> None:
        if not batch:
            return
        names = self.columns
        lines = [
            json.dumps(dict(zip(names, map(_json_value, row), strict=True)), ensure_ascii=False)
            for row in batch
        ]
        self.text.write(("\n" if self.first else ",\n") + ",\n".join(lines))
        self.first = False

    def finish(self) -> None:
        self.text.write("\n]\n")
        super().finish()


def _quote(name: str, engine: str) -> str:
    if engine in ("mysql", "mariadb"):
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any, engine: str) -> str:
    """``value`` as a literal of the target's SQL (strings and numbers without a parser)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if engine == "postgresql" else str(int(value))
    if isinstance(value, int) or (isinstance(value, decimal.Decimal) and value.is_finite()):
        return str(value)
    if isinstance(value, str):
        text = value.replace("'", "''")
        if engine in ("mysql", "mariadb"):
            text = text.replace("\\", "\\\\")
        return f"'{text}'"
    dialect = {"postgresql": "postgres", "sqlite": "sqlite"}.get(engine, "mysql")
    return literal(value, engine).sql(dialect=dialect)


class SqlWriter(_Text):
    """INSERT statements into the table the query reads (or ``export_result``), SQL_ROWS
    rows each, in the source engine's SQL."""

    def __init__(
        self, columns: Sequence[str], out: IO[bytes], encoding: str, table: str, engine: str
    ) -> None:
        super().__init__(columns, out, encoding)
        self.engine = engine
        names = ", ".join(_quote(c, engine) for c in self.columns)
        self.head = f"INSERT INTO {_quote(table, engine)} ({names}) VALUES\n"

    def write(self, batch: Sequence[tuple[Any, ...]]) -> None:
        engine = self.engine
        for start in range(0, len(batch), SQL_ROWS):
            rows = batch[start : start + SQL_ROWS]
            values = ",\n".join(
                "(" + ", ".join(sql_literal(v, engine) for v in row) + ")" for row in rows
            )
            self.text.write(self.head + values + ";\n")


class XlsxWriter(Writer):
    """A workbook written row by row (xlsxwriter's constant-memory mode), a sheet per
    XLSX_ROWS rows."""

    def __init__(self, columns: Sequence[str], path: Path) -> None:
        super().__init__(columns)
        self.book = xlsxwriter.Workbook(
            str(path), {"constant_memory": True, "strings_to_numbers": False}
        )
        self.sheet: Any = None
        self.row = XLSX_ROWS  # a new sheet at the first row

    def _next_sheet(self) -> None:
        self.sheet = self.book.add_worksheet()
        self.sheet.write_row(0, 0, self.columns)
        self.row = 0

    def write(self, batch: Sequence[tuple[Any, ...]]) -> None:
        for row in self._plain(batch):
            if self.row >= XLSX_ROWS:
                self._next_sheet()
            self.row += 1
            self.sheet.write_row(
                self.row, 0, [str(v) if isinstance(v, decimal.Decimal) else v for v in row]
            )

    def finish(self) -> None:
        if self.sheet is None:
            self._next_sheet()
        self.book.close()


def text_writer(
    file_type: str, columns: Sequence[str], out: IO[bytes], encoding: str, table: str, engine: str
) -> Writer:
    if file_type == "CSV":
        return CsvWriter(columns, out, encoding)
    if file_type == "TXT":
        return TxtWriter(columns, out, encoding)
    if file_type == "JSON":
        return JsonWriter(columns, out, encoding)
    if file_type == "SQL":
        return SqlWriter(columns, out, encoding, table, engine)
    raise ValueError(f"{file_type} is not a text format")
