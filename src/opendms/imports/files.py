"""Reading an import's file as a stream: its encoding, then its records (CSV, XLSX) or its
statements (SQL), each with the line it starts on, in constant memory whatever the size.

A file that cannot be read (bytes not valid in its encoding, a quote never closed, a sheet
that is not a workbook) raises :class:`FileProblem` naming the line.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from zipfile import BadZipFile

from charset_normalizer import from_bytes

from opendms.sql.script import Piece, ScriptError, split_stream

# FileEncoding -> Python codec; AUTO is detected (detect).
ENCODINGS = {"UTF-8": "utf-8-sig", "GBK": "gb18030", "ISO-8859-1": "latin-1"}
SAMPLE = 64 * 1024
CHUNK = 1 << 20
# The codecs AUTO chooses among: GBK's superset, and Windows' Latin-1 superset.
_CANDIDATES = ["utf_8", "gb18030", "cp1252"]
csv.field_size_limit(64 * 1024 * 1024)  # one field may be a large text


class FileProblem(ValueError):
    """The file cannot be read as declared; the message names the line."""


@dataclass(frozen=True)
class Record:
    line: int  # the line of the file it starts on
    values: list[Any]  # CSV: strings; XLSX: the cells' values


def detect(path: Path) -> str:
    """The codec of a text file whose encoding is AUTO: UTF-8 when its start decodes as
    UTF-8 (most files; a BOM is dropped), else the best guess among GBK and Windows-1252
    on a sample cut at a line end (a file with only a little CJK text may be misread)."""
    with path.open("rb") as fh:
        head = fh.read(SAMPLE)
    cut = head[: head.rfind(b"\n") + 1] or head
    try:
        cut.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    best = from_bytes(cut, cp_isolation=_CANDIDATES).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return "utf-8-sig"
    return "gb18030" if best.encoding == "gb18030" else "cp1252"


def codec_for(path: Path, declared: str | None) -> str:
    if declared in (None, "", "AUTO"):
        return detect(path)
    return ENCODINGS[str(declared)]


class _Lines:
    """The decoded text of a binary file, line by line, counting lines: a byte the codec
    cannot read becomes a FileProblem naming its line."""

    def __init__(self, raw: IO[bytes], codec: str, label: str) -> None:
        self.raw, self.label = raw, label
        self.decoder = codecs.getincrementaldecoder(codec)("strict")
        self.codec = codec
        self.pending = ""
        self.line = 0  # lines handed out so far
        self.done = False

    def _fill(self) -> bool:
        if self.done:
            return False
        block = self.raw.read(CHUNK)
        try:
            self.pending += self.decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            good = self.pending + block[: exc.start].decode(self.codec, errors="ignore")
            line = self.line + good.count("\n") + 1
            raise FileProblem(
                f"line {line} of {self.label} is not valid {_codec_name(self.codec)} "
                f"(byte 0x{block[exc.start]:02x}); choose the file's encoding"
            ) from None
        self.done = not block
        return True

    def readline(self) -> str:
        while True:
            end = self.pending.find("\n")
            if end >= 0:
                line, self.pending = self.pending[: end + 1], self.pending[end + 1 :]
                self.line += 1
                return line
            if not self._fill():
                line, self.pending = self.pending, ""
                if line:
                    self.line += 1
                return line

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def chunks(self) -> Iterator[str]:
        """The text in blocks (SQL files), lines counted by the reader."""
        while self._fill():
            if self.pending:
                block, self.pending = self.pending, ""
                yield block
        if self.pending:
            yield self.pending
            self.pending = ""


def _codec_name(codec: str) -> str:
    return {"utf-8-sig": "UTF-8", "gb18030": "GBK", "latin-1": "ISO-8859-1"}.get(codec, codec)


def csv_records(path: Path, codec: str, label: str) -> Iterator[Record]:
    """The CSV file's records (RFC 4180: fields with commas, quotes or line breaks are
    quoted), each with the line it starts on."""
    with path.open("rb") as raw:
        lines = _Lines(raw, codec, label)
        reader = csv.reader(lines, strict=True)
        start = 1
        try:
            for values in reader:
                yield Record(start, values)
                start = lines.line + 1
        except csv.Error as exc:
            raise FileProblem(f"line {start} of {label}: {exc}") from None


def xlsx_records(path: Path, label: str) -> Iterator[Record]:
    """The first sheet's rows, read without loading the workbook (openpyxl's read-only
    mode); trailing empty rows are left out."""
    from openpyxl import load_workbook  # only XLSX imports pay for the import
    from openpyxl.utils.exceptions import InvalidFileException

    with path.open("rb") as raw:  # a file object: the stored file's name has no suffix
        try:
            book = load_workbook(raw, read_only=True, data_only=True)
        except (InvalidFileException, BadZipFile, KeyError, OSError, ValueError) as exc:
            raise FileProblem(f"{label} is not an XLSX workbook: {exc}") from None
        try:
            sheet = book.worksheets[0]
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                values = list(row)
                while values and values[-1] is None:
                    values.pop()
                if values:
                    yield Record(number, values)
        finally:
            book.close()


def sql_statements(path: Path, codec: str, engine: str, label: str) -> Iterator[Piece]:
    """The SQL file's statements, split as the database's client would (sql.script)."""
    with path.open("rb") as raw:
        lines = _Lines(raw, codec, label)
        try:
            yield from split_stream(lines.chunks(), engine)
        except ScriptError as exc:
            raise FileProblem(f"{label}: {exc}") from None
