"""The precheck of a data import (DC_BIG_FILE), in the four steps of every data change.

- ``SQL_PARSE`` reads the whole file as a stream: its encoding, every record's width (CSV,
  XLSX) or every statement (SQL), each parsed and held to the function allowlist in either
  mode, since the import runs what is generated from these parses;
- ``SQL_TYPE_CHECK``: the header names columns of the table and leaves out none it needs;
  values are checked against their columns' types (every one in SAFE_MODE, the first
  SAMPLE records in FAST_MODE); a SQL file holds only data changes;
- ``PERMISSION_CHECK``: CORRECT on every table a statement touches (every statement's, not
  only those kept), as for any data change;
- ``ROW_CHECK``: the rows the file holds (an import states no estimate).

A problem is named by its line. A SQL file's statements are kept (for
ListDataImportSQLPreCheckDetail) up to KEPT, with the first of every kind beyond that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.imports.blocks import PART, CsvBlocks, records_start
from opendms.imports.columns import Column, ColumnProblem, cell_text, match
from opendms.imports.files import FileProblem, codec_for, csv_records, sql_statements, xlsx_records
from opendms.imports.options import import_options
from opendms.imports.run import LONGEST_BLOCK
from opendms.precheck.checks import CheckedDatabase, Found, StepFailed, _Checks, _listing
from opendms.sql import functions
from opendms.sql.statements import Unreadable, describe, one_statement, render
from opendms.store.models import Attachment, DbColumn, DbTable
from opendms.tickets.params import DML
from opendms.tickets.registry import params_of

SAMPLE = 1000  # records (statements) FAST_MODE checks in the precheck
KEPT = 10_000  # statements of a SQL file kept for the precheck's detail
MAX_PROBLEMS = 5


@dataclass
class _Seen:
    records: int = 0
    rows: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)  # each table, its first statement

    def problem(self, text: str) -> None:
        self.problems.append(text)


class ImportChecks(_Checks):
    """The four steps over an import's file (see the module)."""

    def prepare(self, s: Session) -> None:
        params = import_options(params_of(self.order))
        attachment = s.get(Attachment, params.attachment_name)
        if attachment is None:
            raise StepFailed("The import's file is gone.")
        self.params = params
        self.path = self.means.files.path_for(attachment.sha256)
        self.label = attachment.file_name
        self.safe = params.import_mode == "SAFE_MODE"
        self.target: CheckedDatabase = self.targets[0]
        self.catalog: list[DbColumn] = []
        self.table = ""
        if params.file_type != "SQL":
            found = s.scalar(
                select(DbTable).where(
                    DbTable.db_id == self.target.db.db_id,
                    func.lower(DbTable.name) == (params.table_name or "").lower(),
                )
            )
            if found is None:
                raise StepFailed(
                    f"Table {params.table_name} is not in {self.target.label}'s catalog."
                )
            self.table = found.name
            self.catalog = list(
                s.scalars(select(DbColumn).where(DbColumn.table_id == found.table_id))
            )
        self.seen = _Seen()
        self.columns: list[Column] = []

    @property
    def engine(self) -> str:
        return self.target.inst.instance_type

    def _codec(self) -> str:
        try:
            return codec_for(self.path, self.params.file_encoding)
        except OSError:
            raise StepFailed(f"The import's file {self.label} is missing.") from None

    # ------------------------------------------------------------ records

    def _records(self, most: int | None) -> Iterator[tuple[int, Sequence[str]]]:
        """The file's records (the header's included), all or the first ``most``."""
        if self.params.file_type != "EXCEL":
            batch = most if most is not None else 10_000
            yield from islice(csv_records(self.path, self._codec(), self.label, batch=batch), most)
            return
        for record in islice(xlsx_records(self.path, self.label), most):
            yield record.line, [cell_text(v) for v in record.values]

    def _data(self, most: int | None = None) -> Iterator[tuple[int, Sequence[str]]]:
        """The records after the header (all, or the first ``most``), the columns matched
        first."""
        header = self.params.csv_first_row_is_column_def
        records = self._records(None if most is None else most + bool(header))
        names = None
        if header:
            first = next(records, None)
            names = first[1] if first is not None else []
        self._match(names)
        yield from records

    def _match(self, header: Sequence[str] | None) -> None:
        try:
            self.columns = match(header, self.table, self.catalog)
        except ColumnProblem as exc:
            raise StepFailed(f"{self.label}: {exc}.") from None

    def sql_parse(self) -> str:
        if self.params.file_type == "SQL":
            return self._split_sql()
        seen = self.seen
        try:
            if not self._count_blocks():
                self._count(self._data())
        except FileProblem as exc:
            raise StepFailed(f"{exc}.") from None
        if seen.problems:
            raise StepFailed(_listing(seen.problems))
        seen.rows = seen.records
        kind = "REPLACE" if self.params.insert_type == "REPLACE_INTO" else "INSERT"
        text = f"-- import {self.label} into {self.table}"
        self.target.statements = [
            Found(1, 1, text, kind, (self.table.lower(),), rows=seen.records, rows_source="COUNT")
        ]
        names = ", ".join(c.name for c in self.columns)
        return f"{seen.records} record{'s' if seen.records != 1 else ''} read, for {names}."

    def _count(self, records: Iterable[tuple[int, Sequence[str]]]) -> None:
        """Records counted, those of the wrong width named (the columns are matched once
        ``records`` starts)."""
        seen = self.seen
        for line, values in records:
            width = len(self.columns)
            seen.records += 1
            if len(values) != width and len(seen.problems) < MAX_PROBLEMS:
                seen.problem(f"line {line} has {len(values)} fields, not {width}")

    def _count_blocks(self) -> bool:
        """A UTF-8 CSV file's records counted and their widths checked a block at a time
        (imports.blocks), as the import cuts it; Python reads a block only to name a
        problem in it, and every record from the first irregular block on. False when
        the file is Python's to read from its start."""
        if self.params.file_type != "CSV" or self._codec() != "utf-8-sig":
            return False
        found = records_start(self.path, bool(self.params.csv_first_row_is_column_def))
        if found is None:
            return False
        header, offset, line = found
        self._match(header)
        blocks = CsvBlocks(self.path, offset, line, len(self.columns), loading=False)
        try:
            # a part at a time: a count needs no block longer than one examination takes
            while (block := blocks.take(PART, LONGEST_BLOCK)) is not None:
                if not block.data:
                    return True
                if block.layout.widths and (block.data.isascii() or _utf8(block.data)):
                    self.seen.records += block.records
                else:
                    self._count(csv_records(block.data, "utf-8", self.label, line=block.line))
            rest = csv_records(
                self.path, "utf-8", self.label, offset=blocks.offset, line=blocks.line
            )
            self._count(rest)
            return True
        finally:
            blocks.close()

    def sql_type_check(self) -> str:
        if self.params.file_type == "SQL":
            return self._sql_kinds()
        checked = 0
        problems: list[str] = []
        try:
            for line, values in self._data(None if self.safe else SAMPLE):
                checked += 1
                for column, raw in zip(self.columns, values, strict=False):
                    why = column.problem(column.value(raw))
                    if why is not None:
                        problems.append(f"line {line}: {why}")
                        break
                if len(problems) >= MAX_PROBLEMS:
                    break
        except FileProblem as exc:
            raise StepFailed(f"{exc}.") from None
        if problems:
            raise StepFailed(_listing(problems))
        every = "every record" if self.safe else f"the first {checked} records"
        return f"The values of {every} fit their columns."

    def row_check(self) -> str:
        rows = self.seen.rows
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.seen.kinds.items()))
        what = f" ({kinds})" if kinds else ""
        return f"{rows} row{'s' if rows != 1 else ''} to import{what}."

    # ------------------------------------------------------------ SQL files

    def _split_sql(self) -> str:
        """Every statement is parsed, in either mode: what runs is generated from these
        parses, and a statement not read here would run unchecked."""
        seen = self.seen
        kept: list[Found] = []
        try:
            for piece in sql_statements(self.path, self._codec(), self.engine, self.label):
                seen.records += 1
                try:
                    node = one_statement(piece, self.engine)
                except Unreadable as exc:
                    if len(seen.problems) < MAX_PROBLEMS:
                        seen.problem(str(exc))
                    continue
                called = functions.refused(node, self.engine, change=True)
                if called and len(seen.problems) < MAX_PROBLEMS:
                    seen.problem(
                        f"statement {piece.number} (line {piece.line}): "
                        + functions.refusal(called)
                    )
                st = describe(node)
                seen.kinds[st.kind] = seen.kinds.get(st.kind, 0) + 1
                seen.rows += st.literal_rows or 0
                for name in st.tables:
                    seen.tables.setdefault(name, piece.number)
                if len(kept) < KEPT or seen.kinds[st.kind] == 1:
                    kept.append(
                        Found(
                            piece.number,
                            piece.line,
                            render(node, self.engine)[:2000],
                            st.kind,
                            st.tables,
                            st.literal_rows,
                            rows=st.literal_rows,
                            rows_source="LITERAL" if st.literal_rows is not None else "UNKNOWN",
                        )
                    )
        except FileProblem as exc:
            raise StepFailed(f"{exc}.") from None
        if seen.problems:
            raise StepFailed(_listing(seen.problems))
        if not seen.records:
            raise StepFailed(f"{self.label} holds no SQL statement.")
        self.target.statements = kept
        return f"{seen.records} statement{'s' if seen.records != 1 else ''} parsed."

    def tables(self, t: CheckedDatabase) -> Iterator[tuple[str, int]]:
        if self.params.file_type != "SQL":
            yield from super().tables(t)
            return
        yield from self.seen.tables.items()  # every statement's, not only those kept

    def _sql_kinds(self) -> str:
        others = [k for k in self.seen.kinds if k not in DML]
        if others:
            where = [
                f"statement {f.number} (line {f.line}) is {f.kind}"
                for f in self.target.statements
                if f.kind in others
            ]
            for f in self.target.statements:
                if f.kind in others:
                    f.blocked = True
            raise StepFailed(
                "An import runs INSERT, REPLACE, UPDATE and DELETE only: " + _listing(where)
            )
        return "Every statement is a data change."


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
