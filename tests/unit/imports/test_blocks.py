"""Cutting CSV files into blocks (imports.blocks) against Python's csv reader, which reads
what a block does not: every block ends where a record ends, holds the records Python reads
there, and is called regular only when a loader would read it the same way."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opendms.imports.blocks import Block, CsvBlocks, Layout, examine, records_start

FIELD = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\\NLU\u00e9\u4e2d')), max_size=6)
RECORD = st.lists(FIELD, min_size=1, max_size=4)


def python_records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))


def written(records: list[list[str]], quoting: Any, ending: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator=ending).writerows(records)
    return out.getvalue().encode()


def cut(
    path: Path, size: int, width: int, part: int = 1 << 20, *, halves: bool = False
) -> tuple[list[Block], int]:
    """The regular blocks of the file (each examined ``part`` bytes at a time), and the
    offset where Python has to go on."""
    blocks, found = CsvBlocks(path, 0, 1, width, part=part), []
    try:
        while (block := blocks.take(size, 1 << 20, halves=halves)) is not None and block.data:
            found.append(block)
        return found, blocks.offset
    finally:
        blocks.close()


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(RECORD, min_size=1, max_size=30),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    ending=st.sampled_from(["\n", "\r\n"]),
    size=st.integers(1, 64),
    part=st.integers(1, 80),
    halves=st.booleans(),
)
def test_blocks_of_a_written_file_hold_what_python_reads(
    tmp_path_factory: object,
    records: list[list[str]],
    quoting: Any,
    ending: str,
    size: int,
    part: int,
    halves: bool,
) -> None:
    data = written(records, quoting, ending)
    path = Path(str(tmp_path_factory.mktemp("csv"))) / "f.csv"  # type: ignore[attr-defined]
    path.write_bytes(data)
    width = len(records[0])
    blocks, rest = cut(path, size, width, part, halves=halves)
    read = [r for b in blocks for r in python_records(b.data)]
    read += python_records(data[rest:])
    assert read == python_records(data)  # every block ends where a record ends
    lines = 1
    for block in blocks:
        mine = python_records(block.data)
        assert block.records == len(mine)
        assert block.layout.widths == all(len(r) == width for r in mine)
        assert block.line == lines
        assert block.last == (block.end == len(data))  # only the one ending the file
        lines += block.lines
    if "\r" not in "".join(f for r in records for f in r):
        assert rest == len(data)  # a file csv wrote is regular throughout


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list('ab,"\n\r')), max_size=60),
    size=st.integers(1, 32),
    width=st.integers(1, 3),
    part=st.integers(1, 40),
)
def test_any_text_cut_into_regular_blocks_reads_as_python_reads_it(
    tmp_path_factory: object, text: str, size: int, width: int, part: int
) -> None:
    """Hand-made text, quotes anywhere: a block is only what Python reads there, and a
    block a loader is given (loadable, every record ``width`` fields) reads the same when
    quotes may open anywhere (as COPY reads)."""
    data = text.encode()
    path = Path(str(tmp_path_factory.mktemp("csv"))) / "f.csv"  # type: ignore[attr-defined]
    path.write_bytes(data)
    try:
        whole = python_records(data)
    except csv.Error:
        whole = None
    blocks, rest = cut(path, size, width, part)
    for block in blocks:
        mine = python_records(block.data)
        assert block.records == len(mine)
        assert block.layout.widths == all(len(r) == width for r in mine)
        if block.layout.fast:
            assert quote_anywhere(block.data) == mine
    if whole is not None:
        try:
            tail = python_records(data[rest:])
        except csv.Error:
            return
        assert [r for b in blocks for r in python_records(b.data)] + tail == whole


def quote_anywhere(data: bytes) -> list[list[str]]:
    """Records as a reader that starts quoting at any quote (PostgreSQL's COPY) reads them."""
    records: list[list[str]] = []
    field, quoted, i = "", False, 0
    fields: list[str] = []
    text = data.decode()
    started = False  # something read since the last record ended
    while i < len(text):
        c, started = text[i], True
        if quoted:
            if c == '"' and text[i + 1 : i + 2] == '"':
                field, i = field + '"', i + 1
            elif c == '"':
                quoted = False
            else:
                field += c
        elif c == '"':
            quoted = True
        elif c == ",":
            fields, field = [*fields, field], ""
        elif c == "\n" or text[i : i + 2] == "\r\n":
            records.append([*fields, field])
            fields, field, started = [], "", False
            i += c == "\r"
        else:
            field += c
        i += 1
    if started:
        records.append([*fields, field])
    return records


def test_a_quote_inside_an_unquoted_field_ends_the_blocks_before_it(tmp_path: Path) -> None:
    data = b'1,a\n2,b\n3,x"y\n4,d\n'
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    blocks, rest = cut(path, 8, 2)
    assert [b.records for b in blocks] == [2]
    assert data[rest:] == b'3,x"y\n4,d\n'  # Python reads it from here


def test_what_a_loader_must_not_read_as_it_is() -> None:
    plain = examine(b"1,a\n2,b\n", 2)
    assert plain == Layout(2, False, True, True, empties=False, null_word=False)
    assert examine(b"1,a\r\n2,b\r\n", 2) == Layout(2, True, True, True, False, False)
    assert not layout(b"1,a\r\n2,b\n", 2).loadable  # two kinds of line break
    assert not layout(b"1,\\N\n", 2).loadable  # NULL to OpenDMS, text to COPY
    assert layout(b'1,"a\nb"\n', 2) == Layout(1, False, True, True, False, False)
    assert examine(b"1,a\r2,b\n", 2) is None  # a lone CR ends a record for Python
    assert examine(b'1,a"b"c\n', 2) is None  # quotes inside an unquoted field
    assert not layout(b"1,a,b\n2,c\n", 2).widths
    assert not layout(b"\n", 1).widths  # an empty line is no field to Python


def test_empty_fields_and_the_word_null_are_seen() -> None:
    for empty in (b"1,\n", b",a\n", b"1,,a\n", b'1,""\n', b"1,a\n2,"):
        assert layout(empty, 2 + empty.count(b",") - 1).empties, empty
    assert not layout(b'1,"a",b\n2,c,"d"\n', 3).empties
    assert not layout(b'1,"a""b"\n', 2).empties  # a doubled quote: the field is a"b
    assert layout(b"1,NULL\n", 2).null_word


def layout(data: bytes, width: int) -> Layout:
    found = examine(data, width)
    assert found is not None
    return found


def test_the_records_start_after_the_bom_and_the_header(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b'\xef\xbb\xbfid,"the\nname"\n1,a\n')
    assert records_start(path, True) == (["id", "the\nname"], 17, 3)
    assert records_start(path, False) == (None, 3, 1)
    path.write_bytes(b'id,na"me\n1,a\n')
    assert records_start(path, True) is None  # Python reads such a file from its start


def test_a_count_looks_for_nothing_only_a_loader_needs() -> None:
    counted = examine(b'1,"a"\n2,,\n', 3, loading=False)
    assert counted is not None
    assert (counted.records, counted.widths, counted.fast) == (2, False, False)


def test_the_last_two_blocks_halve_what_is_left_when_asked(tmp_path: Path) -> None:
    """Two blocks written at once: the last would be written alone otherwise."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"".join(b"%08d\n" % i for i in range(100)))  # 100 records of 9 bytes
    sizes = [len(b.data) for b in cut(path, 270, 1, part=9, halves=True)[0]]
    assert sizes == [270, 270, 180, 180]  # 360 left: less than two blocks
    assert [len(b.data) for b in cut(path, 270, 1, part=9)[0]] == [270, 270, 270, 90]
    assert [len(b.data) for b in cut(path, 270, 1, part=200, halves=True)[0]] == [
        270,
        270,
        270,
        90,  # what is left is less than two parts
    ]
