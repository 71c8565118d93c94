"""Reading an import's file as a stream: its encoding, then its records (CSV, XLSX) or its
statements (SQL), each with the line it starts on, in constant memory whatever the size.

A file that cannot be read (bytes not valid in its encoding, a quote never closed, a sheet
that is not a workbook) raises :class:`FileProblem` naming the line.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
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


class _Blocks:
    """The decoded text of a binary file in blocks of about a megabyte (SQL files)."""

    def __init__(self, raw: IO[bytes], codec: str, label: str) -> None:
        self.raw, self.codec, self.label = raw, codec, label
        self.decoder = codecs.getincrementaldecoder(codec)("strict")

    def __iter__(self) -> Iterator[str]:
        while True:
            block = self.raw.read(CHUNK)
            try:
                text = self.decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                self.raw.seek(0)
                raise _undecodable(self.raw, self.codec, self.label) from None
            if text:
                yield text
            if not block:
                return


def _undecodable(raw: IO[bytes], codec: str, label: str, first_line: int = 1) -> FileProblem:
    """The first line of ``raw`` (read from where it starts, on ``first_line``) that does not
    decode, found line by line (no codec offered here puts a newline byte inside a
    character)."""
    for number, line in enumerate(raw, start=first_line):
        try:
            line.decode(codec)
        except UnicodeDecodeError as exc:
            return FileProblem(
                f"line {number} of {label} is not valid {_codec_name(codec)} "
                f"(byte 0x{line[exc.start]:02x}); choose the file's encoding"
            )
    return FileProblem(f"{label} ends inside a character: it is cut short")


def _codec_name(codec: str) -> str:
    return {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "gb18030": "GBK", "latin-1": "ISO-8859-1"}.get(
        codec, codec
    )


class CsvFile:
    """A CSV file read a batch of records at a time (RFC 4180: fields with commas, quotes
    or line breaks are quoted), each record with the line it starts on: the file at
    ``source`` from byte ``offset`` (a record's start, on line ``line``), or records held
    in memory (``source`` as bytes)."""

    def __init__(
        self, source: Path | bytes, codec: str, label: str, *, offset: int = 0, line: int = 1
    ) -> None:
        self.source, self.offset, self.first_line = source, offset, line
        self.codec, self.label = codec, label
        self.raw = self._open()
        self.reader = self._reader(self.raw)
        self.next_line = line
        self.records = 0  # taken so far

    def _open(self) -> IO[bytes]:
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source)
        raw = self.source.open("rb")
        raw.seek(self.offset)
        return raw

    def _reader(self, raw: IO[bytes]) -> Any:
        text = io.TextIOWrapper(raw, encoding=self.codec, errors="strict", newline="")
        return csv.reader(text, strict=True)

    def take(self, count: int) -> tuple[Sequence[int], list[tuple[str, ...]]]:
        """Up to ``count`` more records: where each starts, and its fields.

        Read in one pass of C code (a Python loop per record cost a third more), as
        tuples: a tuple of strings drops out of the garbage collector's sight at its first
        pass, while a batch of 100,000 live lists made every pass walk them all (that was
        half of an import's time)."""
        first = self.next_line
        try:
            rows = list(map(tuple, islice(self.reader, count)))
        except csv.Error as exc:
            raise FileProblem(
                f"line {self._start_of_broken_record()} of {self.label}: {exc}"
            ) from None
        except UnicodeDecodeError:
            with self._open() as raw:
                raise _undecodable(raw, self.codec, self.label, self.first_line) from None
        self.records += len(rows)
        self.next_line = self.first_line + self.reader.line_num
        if self.next_line - first == len(rows):  # one line each: no quoted line breaks
            return range(first, self.next_line), rows
        starts, line = [], first
        for row in rows:  # a line break inside a field is \n, \r or \r\n, as lines go
            starts.append(line)
            line += 1 + sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)
        return starts, rows

    def _start_of_broken_record(self) -> int:
        """The line where the record the reader failed on starts, found by reading the file
        again up to it (a broken file ends the import; only then is this paid)."""
        with self._open() as raw:
            reader = self._reader(raw)
            deque(islice(reader, self.records), maxlen=0)
            start = int(reader.line_num)
            with suppress(csv.Error, UnicodeDecodeError):
                for _ in reader:
                    start = int(reader.line_num)
        return self.first_line + start

    def close(self) -> None:
        self.raw.close()


def csv_records(
    source: Path | bytes,
    codec: str,
    label: str,
    *,
    offset: int = 0,
    line: int = 1,
    batch: int = 10_000,
) -> Iterator[tuple[int, tuple[str, ...]]]:
    """The CSV file's records (see CsvFile), one at a time, each with the line it starts
    on; read ``batch`` at a time (fewer when only the first few are wanted)."""
    found = CsvFile(source, codec, label, offset=offset, line=line)
    try:
        while True:
            lines, rows = found.take(batch)
            if not rows:
                return
            yield from zip(lines, rows, strict=True)
    finally:
        found.close()


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
        try:
            yield from split_stream(_Blocks(raw, codec, label), engine)
        except ScriptError as exc:
            raise FileProblem(f"{label}: {exc}") from None
