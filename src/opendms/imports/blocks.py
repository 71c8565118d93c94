"""A UTF-8 CSV file cut into blocks of whole records, each checked to read the same through
a database's own loader (PostgreSQL ``COPY … (FORMAT csv)``, MariaDB ``LOAD DATA``) as
through Python's csv module, which the precheck and the record-by-record path read it with.

Every decision over a block is made by bytes methods over the whole of it (find, count,
split, join, translate), never a Python step per record: reading and checking a block
costs a few percent of what the database spends loading it.

What Python's csv module (and RFC 4180) reads: a field that starts with a double quote runs
to the next lone double quote, ``""`` inside it standing for one, commas and line breaks
inside it being data; a quote anywhere else (``a"b``) is data. The loaders agree on the
first and not on the second (COPY starts quoting at any quote), so a block is *regular*
only when every quote opens a field or closes one (or is doubled inside one) and every line
break outside quotes is ``\\n`` or ``\\r\\n`` (Python also ends a record at a lone
``\\r``). The first irregular block ends the fast reading: from there on the file is read
by Python (``imports.files.CsvFile``), as every file once was.

A regular block may still be one no loader should take as it is: ``\\N`` (NULL by OpenDMS's
rule, text to a loader in CSV mode), or both kinds of line break (a loader takes one). Its
records are then read by Python, that block only.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BOM = b"\xef\xbb\xbf"
# Each byte outside quotes as a number: a quote's place (NUL) 1, a separator 0, others 2.
_SIDES = bytes(1 if b == 0 else 0 if b in b",\n" else 2 for b in range(256))
_NOT_LAYOUT = bytes(b for b in range(256) if b not in b",\n")
PART = 1 << 20  # bytes examined in one go (see CsvBlocks._examine)
_SEPARATORS = bytes(ord(",") if b in b",\n" else ord("a") for b in range(256))


@dataclass(frozen=True)
class Layout:
    """What a block of whole records holds, as far as loading it goes (see the module)."""

    records: int
    crlf: bool  # its lines end with \r\n
    loadable: bool  # a loader reads it as Python would
    widths: bool  # every record has the width asked for (False: read it to name which)
    empties: bool  # some field may be empty (False: none is)
    null_word: bool  # the bytes NULL occur in it

    @property
    def fast(self) -> bool:
        """Whether the database's loader may take it as it is."""
        return self.loadable and self.widths


@dataclass(frozen=True)
class Block:
    """Whole records of the file: its bytes from ``offset``, starting on line ``line``."""

    data: bytes
    offset: int
    line: int
    lines: int  # line breaks in it: the next block starts on line + lines
    layout: Layout
    last: bool = False  # it ends the file

    @property
    def records(self) -> int:
        return self.layout.records

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


def record_end(buf: bytes, final: bool) -> int:
    """Where the last whole record in ``buf`` (read from a record's start) ends: just
    after the last line break with an even number of quotes before it; 0 when there is
    none. ``final``: ``buf`` ends the file, so its end ends a record too."""
    odd = buf.count(b'"') % 2  # of the quotes before ``end``
    if final and buf and not odd:
        return len(buf)
    end = len(buf)
    while (at := buf.rfind(b"\n", 0, end)) >= 0:
        odd ^= buf.count(b'"', at, end) % 2
        if not odd:
            return at + 1
        end = at
    return 0


def _quote_beside_a_field(outside: bytes) -> bool:
    """Whether a quote's place (NUL) in the text outside quotes has a byte of a field
    beside it: a quote that neither opens nor closes a field. Worked on one integer a byte
    a place (_SIDES: a quote's place 1, a separator 0, a field's byte 2): added to itself
    moved one place on and times four (a shift by 6 bits), each place holds 4 x the one
    before + itself, 6 for a quote before a field's byte and 9 for one after. Searching the
    text for those two pairs instead costs twice as long: it is mostly field bytes, and a
    pair search steps byte by byte through those."""
    sides = int.from_bytes(outside.translate(_SIDES), "big")
    pairs = (sides + (sides >> 6)).to_bytes(len(outside), "big")
    return b"\x06" in pairs or b"\x09" in pairs


def examine(data: bytes, width: int, *, loading: bool = True) -> Layout | None:
    """The layout of ``data`` (whole records; ``width``: the fields each should have);
    None when it is not regular. Without ``loading`` (a count, not a load) what only a
    loader needs is not looked for: the block is not loadable."""
    if not data:
        return Layout(0, False, True, True, False, False)
    if b"\x00" in data or data.endswith(b"\r"):  # (a CR at the end ends a record alone)
        return None
    if not data.endswith(b"\n"):  # the file's last record, with no line break
        data += b"\n"
    pieces = data.split(b'"') if b'"' in data else [data]
    if len(pieces) % 2 == 0:  # an odd number of quotes: a record is not whole
        return None
    outside = b"\x00".join(pieces[::2])  # the text outside quotes, NUL where a quote was
    crlfs = 0
    if b"\r" in outside:
        crlfs = outside.count(b"\r\n")
        if outside.count(b"\r") != crlfs:  # a CR alone ends a record for Python
            return None
        outside = outside.replace(b"\r\n", b"\n")
    if _quote_beside_a_field(outside):  # a quote inside a field
        return None
    records = outside.count(b"\n")
    widths = outside.translate(None, _NOT_LAYOUT) == (b"," * (width - 1) + b"\n") * records
    if width == 1 and (outside.startswith(b"\n") or b"\n\n" in outside):
        widths = False  # an empty line is no field to Python, not an empty one
    if not loading:
        return Layout(records, crlfs > 0, False, widths, True, True)
    # Separators side by side, or an empty quoted part (an empty field or a doubled quote).
    seps = outside.translate(_SEPARATORS)
    empties = seps.startswith(b",") or b",," in seps or b"" in pieces[1::2]
    return Layout(
        records,
        crlf=crlfs == records > 0,
        loadable=crlfs in (0, records) and (b"\\" not in data or b"\\N" not in data),
        widths=widths,
        empties=empties,
        null_word=b"NULL" in data,
    )


def combined(layouts: list[Layout]) -> Layout:
    """The layout of consecutive parts (each of whole records) as one block."""
    if len(layouts) == 1:
        return layouts[0]
    records = sum(p.records for p in layouts)
    crlf = [p.crlf for p in layouts if p.records]
    return Layout(
        records,
        crlf=bool(crlf) and all(crlf),
        loadable=all(p.loadable for p in layouts) and len(set(crlf)) <= 1,
        widths=all(p.widths for p in layouts),
        empties=any(p.empties for p in layouts),
        null_word=any(p.null_word for p in layouts),
    )


class CsvBlocks:
    """The file's records from ``offset`` (a record's start, on line ``line``) on, a block
    of about ``size`` bytes at a time; ``width``: the fields a record should have;
    ``loading``: for a loader (see examine)."""

    def __init__(
        self,
        path: Path,
        offset: int,
        line: int,
        width: int,
        *,
        loading: bool = True,
        part: int = PART,
    ) -> None:
        self.raw: IO[bytes] = path.open("rb")
        self.size = os.fstat(self.raw.fileno()).st_size  # a stored file never changes
        self.raw.seek(offset)
        self.offset, self.line, self.width, self.loading = offset, line, width, loading
        self.part = part
        self.rest = False  # the next block is the rest of the file

    def take(self, size: int, most: int, *, halves: bool = False) -> Block | None:
        """The next block: about ``size`` bytes of whole records, more when one record is
        longer (up to ``most``). An empty block at the end; None when what follows is not
        regular (or a record is longer than ``most``): read it with Python from
        ``self.offset``, on ``self.line``. ``halves``: when less than two blocks are left
        (and two parts at least), half of what is left, then the rest."""
        left = self.size - self.offset
        if self.rest:
            size = max(size, left + 1)  # (one more than is left: the read says it is the end)
        elif halves and 2 * self.part <= left < 2 * size:
            size, self.rest = (left + 1) // 2, True
        buf = self.raw.read(size)
        final = len(buf) < size
        end = record_end(buf, final)
        while not end and not final and len(buf) < most:
            more = self.raw.read(len(buf))
            final = len(more) < len(buf)
            buf += more
            end = record_end(buf, final)
        data = buf[:end]
        layout = self._examine(data)
        if (buf and not end) or layout is None:
            return None
        self.raw.seek(self.offset + end)
        last = self.offset + end == self.size
        block = Block(data, self.offset, self.line, data.count(b"\n"), layout, last)
        self.offset, self.line = block.end, self.line + block.lines
        return block

    def _examine(self, data: bytes) -> Layout | None:
        """``data``'s layout, examined a part of whole records at a time: each bytes call
        then holds the GIL for a few milliseconds, so the threads beside it (the one feeding
        the database's loader the block before, a server's request handlers during a
        precheck) are never kept waiting for long."""
        layouts: list[Layout] = []
        at = 0
        while at < len(data):
            cut = (
                at + record_end(data[at : at + self.part], False)
                if len(data) - at > self.part
                else 0
            )
            cut = cut if cut > at else len(data)  # the rest, or a record longer than a part
            found = examine(data[at:cut], self.width, loading=self.loading)
            if found is None:
                return None
            layouts.append(found)
            at = cut
        return combined(layouts)

    def close(self) -> None:
        self.raw.close()


def first_record(path: Path) -> tuple[bytes, int] | None:
    """The first record of the file (its BOM dropped) and the offset just after it; None
    when it is not regular or longer than a megabyte."""
    with path.open("rb") as raw:
        head = raw.read(1 << 20)
    start = len(BOM) if head.startswith(BOM) else 0
    at = head.find(b"\n", start)
    while at >= 0 and head.count(b'"', start, at) % 2:
        at = head.find(b"\n", at + 1)
    end = at + 1 if at >= 0 else len(head) if len(head) < (1 << 20) else 0
    first = head[start:end]
    if not end or examine(first, 1) is None:
        return None
    return first, end


def records_start(path: Path, header: bool) -> tuple[list[str] | None, int, int] | None:
    """Where the records of a UTF-8 CSV file start (byte, line): after its BOM, and its
    header when it has one, whose fields come first (None without one). None when the
    file is to be read by Python alone (its first record is not regular, or not UTF-8)."""
    found = first_record(path)
    if found is None:
        return None
    first, end = found
    if not header:
        return None, end - len(first), 1
    try:
        (names,) = csv.reader(io.StringIO(first.decode("utf-8"), newline=""), strict=True)
    except (UnicodeDecodeError, csv.Error, ValueError):
        return None  # Python names the problem
    return names, end, 1 + first.count(b"\n")
