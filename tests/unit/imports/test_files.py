"""Reading a CSV file in batches: each record with the line it starts on, and a broken
record named by its own first line wherever in a batch it sits."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendms.imports.files import CsvFile, FileProblem, csv_records


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode())
    return path


def test_records_of_one_line_each_are_numbered_by_line(tmp_path: Path) -> None:
    found = CsvFile(write(tmp_path, "a,b\n1,x\n2,y\n3,z\n"), "utf-8-sig", "f.csv")
    assert found.take(2) == (range(1, 3), [("a", "b"), ("1", "x")])
    lines, rows = found.take(10)
    assert (list(lines), rows) == ([3, 4], [("2", "y"), ("3", "z")])
    assert found.take(10) == (range(5, 5), [])


def test_line_breaks_inside_quoted_fields_move_the_next_records_line(tmp_path: Path) -> None:
    text = 'id,note\n1,"two\nlines"\n2,"three\r\nlines\rhere"\n3,plain\n4,"x"\n'
    assert list(csv_records(write(tmp_path, text), "utf-8-sig", "f.csv")) == [
        (1, ("id", "note")),
        (2, ("1", "two\nlines")),
        (4, ("2", "three\r\nlines\rhere")),
        (7, ("3", "plain")),
        (8, ("4", "x")),
    ]


@pytest.mark.parametrize("size", [1, 2, 100])
def test_a_broken_record_is_named_by_its_first_line_whatever_the_batch(
    tmp_path: Path, size: int
) -> None:
    text = 'id,note\n1,"a\nb"\n2,ok\n3,"never closed\n4,x\n'
    found = CsvFile(write(tmp_path, text), "utf-8-sig", "f.csv")
    with pytest.raises(FileProblem, match=r"^line 5 of f\.csv: "):
        while found.take(size)[1]:
            pass
