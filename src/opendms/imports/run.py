"""Running a data import (DC_BIG_FILE): its file, streamed in batches, each batch written in
one target transaction together with the import's position (exactly once).

The position lives in the progress marker on the target (``Change.move``): how many of the
file's records (CSV, XLSX rows after the header) or statements (SQL) are done, the rows
written and the records skipped. A restart, by this runner or another after a crash, reads
it, skips that much of the file, and goes on; a batch that did not commit left no trace.

A batch the database refuses is rolled back and tried again a record at a time, each behind
a savepoint, to find the record at fault: with ``IgnoreError`` it is skipped (and logged with
its line), otherwise the import stops there, naming the line, with nothing of that batch or
after it applied.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.catalog.shapes import CatalogShapes
from opendms.files.storage import FileStore
from opendms.imports.columns import NULL, Column, ColumnProblem, cell_text, match
from opendms.imports.files import (
    CsvFile,
    FileProblem,
    Record,
    codec_for,
    sql_statements,
    xlsx_records,
)
from opendms.imports.options import ImportOptions
from opendms.sql.script import Piece
from opendms.sql.statements import Unreadable, one_statement, render
from opendms.store.models import (
    Attachment,
    Database,
    DbColumn,
    DbTable,
    PrecheckStatement,
)
from opendms.targets.base import Change, RowBlock, StatementError
from opendms.tickets.params import DML

MODES = {"INSERT": "INSERT", "INSERT_IGNORE": "IGNORE", "REPLACE_INTO": "REPLACE"}
MAX_LOGGED = 20  # skipped records named in the log
IDLE_SECONDS = 600.0  # an open file no step asked for this long is closed
_SAVEPOINT = "opendms_import"


class ImportFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Position:
    """Where an import is, as its marker on the target records it."""

    done: int = 0  # records (or statements) of the file consumed
    rows: int = 0  # rows written
    skipped: int = 0
    finished: bool = False

    @classmethod
    def loads(cls, text: str | None) -> Position:
        found = json.loads(text or "{}")
        return cls(**{k: found[k] for k in cls.__dataclass_fields__ if k in found})

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass
class Source:
    """What an import reads and where it writes, gathered from the store."""

    path: Path
    label: str  # the file's name, for messages
    file_type: str  # SQL, CSV, EXCEL
    encoding: str | None
    header: bool
    table: str  # as the database spells it ("" for SQL files)
    catalog: list[DbColumn]
    mode: str  # INSERT, IGNORE, REPLACE
    key: tuple[str, ...]
    ignore_error: bool
    engine: str
    estimate: int | None

    @property
    def sql(self) -> bool:
        return self.file_type == "SQL"


def source_of(
    s: Session, files: FileStore, params: ImportOptions, order_id: int, db: Database, engine: str
) -> Source:
    """What the import of ticket ``order_id`` (its options ``params``) reads, and where it
    writes in ``db``."""
    attachment = s.get(Attachment, params.attachment_name)
    if attachment is None:
        raise ImportFailed("the import's file is gone")
    table, catalog = "", []
    key: tuple[str, ...] = ()
    if params.file_type != "SQL":
        found = s.scalar(
            select(DbTable).where(
                DbTable.db_id == db.db_id,
                func.lower(DbTable.name) == (params.table_name or "").lower(),
            )
        )
        if found is None:
            raise ImportFailed(f"table {params.table_name} is not in the catalog; sync it")
        table = found.name
        catalog = list(s.scalars(select(DbColumn).where(DbColumn.table_id == found.table_id)))
        shape = CatalogShapes(s, [db]).table(table.lower())
        key = shape.walk_key if shape is not None and shape.primary_key else ()
    estimate = s.scalar(
        select(func.sum(PrecheckStatement.affect_rows)).where(
            PrecheckStatement.order_id == order_id
        )
    )
    return Source(
        path=files.path_for(attachment.sha256),
        label=attachment.file_name,
        file_type=params.file_type,
        encoding=params.file_encoding,
        header=bool(params.csv_first_row_is_column_def),
        table=table,
        catalog=catalog,
        mode=MODES[params.insert_type or "INSERT"],
        key=tuple(key),
        ignore_error=bool(params.ignore_error),
        engine=engine,
        estimate=int(estimate) if estimate is not None else None,
    )


# ------------------------------------------------------------------ reading


@dataclass
class Batch:
    """Consecutive items of the file: records' values for the table (or statements), the
    line each starts on, and those that cannot be written, by index, with why."""

    lines: Sequence[int] = field(default_factory=list)
    rows: list[Sequence[str | None]] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def one(self, i: int) -> Batch:
        """Item ``i`` alone."""
        return Batch(
            [self.lines[i]],
            self.rows[i : i + 1],
            self.statements[i : i + 1],
            {0: self.problems[i]} if i in self.problems else {},
        )

    @cached_property
    def block(self) -> RowBlock:
        """The rows that can be written, as the engines' loaders take them."""
        problems = self.problems
        return RowBlock([r for i, r in enumerate(self.rows) if i not in problems])


class Reader:
    """The file's items from a position on; kept open between a runner's steps."""

    def __init__(self, src: Source, skip: int, batch_rows: int) -> None:
        self.src = src
        self.columns: list[Column] = []
        self.consumed = 0
        self.statements: Iterator[Piece] | None = None
        self.csv: CsvFile | None = None
        self.sheet: Iterator[Record] | None = None
        # The next batch, read and made into CSV on a thread of its own while the database
        # writes the one before (the driver lets go of the GIL while it waits).
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="opendms-import")
        self.ahead: Future[Batch] | None = None
        try:
            self._open()
            while self.consumed < skip:  # what the target has: read past it
                passed = len(self._take(min(skip - self.consumed, batch_rows), skipping=True))
                if not passed:
                    break
                self.consumed += passed
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        src = self.src
        if src.sql:
            codec = codec_for(src.path, src.encoding)
            self.statements = sql_statements(src.path, codec, src.engine, src.label)
            return
        header: Sequence[str] | None = None
        if src.file_type == "EXCEL":
            self.sheet = xlsx_records(src.path, src.label)
            if src.header:
                first = next(self.sheet, None)
                header = [cell_text(v) for v in first.values] if first is not None else []
        else:
            self.csv = CsvFile(src.path, codec_for(src.path, src.encoding), src.label)
            if src.header:
                first_rows = self.csv.take(1)[1]
                header = first_rows[0] if first_rows else []
        try:
            self.columns = match(header, src.table, src.catalog)
        except ColumnProblem as exc:
            raise ImportFailed(f"{src.label}: {exc}") from None

    def take(self, count: int) -> Batch:
        """The next ``count`` items (fewer at the end; none past it)."""
        future = self.ahead or self.pool.submit(self._prepared, count)
        self.ahead = None
        batch = future.result()
        self.consumed += len(batch)
        if len(batch):
            self.ahead = self.pool.submit(self._prepared, count)
        return batch

    def _prepared(self, count: int) -> Batch:
        try:
            batch = self._take(count)
        except FileProblem as exc:
            raise ImportFailed(str(exc)) from None
        if not self.src.sql:
            _ = batch.block.text  # made here, off the writing thread
        return batch

    def _take(self, count: int, *, skipping: bool = False) -> Batch:
        if self.statements is not None:
            pieces = list(islice(self.statements, count))
            batch = Batch([p.line for p in pieces])
            if not skipping:
                batch.statements = [self._runnable(batch, i, p) for i, p in enumerate(pieces)]
            return batch
        if self.csv is not None:
            lines, raw = self.csv.take(count)
        else:
            assert self.sheet is not None
            records = list(islice(self.sheet, count))
            lines = [r.line for r in records]
            raw = [tuple(cell_text(v) for v in r.values) for r in records]
        batch = Batch(lines)
        columns, width = self.columns, len(self.columns)
        rows: list[Sequence[str | None]] = []
        for i, values in enumerate(raw):
            row: Sequence[str | None] = values
            if len(values) != width:
                batch.problems[i] = f"it has {len(values)} fields where {width} are expected"
            elif "" in values or NULL in values:  # only then can a field be NULL
                row = tuple(c.value(v) for c, v in zip(columns, values, strict=True))
            rows.append(row)
        batch.rows = rows
        return batch

    def _runnable(self, batch: Batch, i: int, piece: Piece) -> str:
        """What runs for ``piece``: the text generated from its parse, which the precheck
        checked (the file is stored by its hash, so it is the same file), never its own."""
        try:
            return render(one_statement(piece, self.src.engine), self.src.engine)
        except Unreadable as exc:
            batch.problems[i] = str(exc)
            return ""

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.cancel()
        self.pool.shutdown(wait=True)
        if self.csv is not None:
            self.csv.close()


# ------------------------------------------------------------------ writing


@dataclass
class Outcome:
    """A batch written: rows, and the records left out (line, why)."""

    rows: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _kind(statement: str) -> str:
    word = statement.lstrip("( \t\r\n").split(None, 1)
    return word[0].upper() if word else ""


class Writer:
    """Writes batches of one import through one change session."""

    def __init__(self, src: Source, change: Change, columns: list[Column]) -> None:
        self.src, self.change = src, change
        self.names = [c.name for c in columns]

    def _write(self, batch: Batch) -> int:
        if batch.problems:
            raise StatementError(next(iter(batch.problems.values())))
        if not self.src.sql:
            return self.change.write_rows(
                self.src.table, self.names, batch.block, self.src.mode, self.src.key
            )
        done = 0
        for statement in batch.statements:
            kind = _kind(statement)
            if kind not in DML:
                raise StatementError(
                    f"{kind or 'this'} is not a data change; an import runs INSERT, REPLACE, "
                    "UPDATE and DELETE"
                )
            done += max(self.change.execute(statement), 0)
        return done

    def batch(self, batch: Batch) -> Outcome:
        """``batch`` written in the open transaction: at once, or, when the database
        refuses that, an item at a time behind savepoints to find (and with IgnoreError
        leave out) those at fault. Raises ImportFailed naming the first one otherwise."""
        self.change.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            return Outcome(self._write(batch))
        except StatementError:
            self.change.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        outcome = Outcome()
        for i in range(len(batch)):
            self.change.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                outcome.rows += self._write(batch.one(i))
            except StatementError as exc:
                self.change.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                what = "statement" if self.src.sql else "record"
                line = batch.lines[i]
                if not self.src.ignore_error:
                    raise ImportFailed(
                        f"line {line} of {self.src.label}: the {what} there failed: {exc.message}"
                    ) from None
                outcome.skipped.append((line, exc.message))
        return outcome


# ------------------------------------------------------------------ stepping


@dataclass
class Stretch:
    """What one runner step of an import did."""

    position: Position
    batches: int = 0
    busy_seconds: float = 0.0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    failure: str | None = None
    moved_on: bool = False  # another runner moved the position: read it again

    @property
    def finished(self) -> bool:
        return self.position.finished


class Importer:
    """Runs imports a stretch at a time; the file stays open between a runner's steps, and
    is closed once no step asked for it for IDLE_SECONDS (a ticket closed meanwhile). Each
    transaction writes ``batch_rows`` records of a CSV or XLSX file, or runs
    ``batch_statements`` statements of a SQL file (``means.Tuning``)."""

    def __init__(self, batch_rows: int, batch_statements: int) -> None:
        self.batch_rows, self.batch_statements = batch_rows, batch_statements
        self.readers: dict[str, Reader] = {}
        self.used: dict[str, float] = {}

    def _drop(self, key: str) -> None:
        reader = self.readers.pop(key, None)
        self.used.pop(key, None)
        if reader is not None:
            reader.close()

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, at in list(self.used.items()) if now - at > IDLE_SECONDS]:
            self._drop(key)

    def stretch(self, src: Source, change: Change, key: str, until: float) -> Stretch:
        self._forget_idle(time.monotonic())
        self.used[key] = time.monotonic()
        position = Position.loads(change.claim(key, Position().dumps()))
        if position.finished:
            self._drop(key)
            return Stretch(position)
        reader = self.readers.get(key)
        if reader is None or reader.consumed != position.done:
            self._drop(key)
            reader = self.readers[key] = Reader(src, position.done, self.batch_rows)
        done = Stretch(position)
        size = self.batch_statements if src.sql else self.batch_rows
        try:
            while True:  # at least one batch a step, however short
                batch = reader.take(size)
                began = time.monotonic()
                change.begin()
                current = Position.loads(change.marker(key))
                if current != position:
                    change.rollback()
                    self._drop(key)
                    return Stretch(current, moved_on=True)
                try:
                    outcome = (
                        Writer(src, change, reader.columns).batch(batch) if batch else Outcome()
                    )
                except ImportFailed:
                    change.rollback()
                    raise
                position.done += len(batch)
                position.rows += outcome.rows
                position.skipped += len(outcome.skipped)
                position.finished = not batch
                change.move(key, position.dumps())
                change.commit()
                done.batches += 1
                done.busy_seconds += time.monotonic() - began
                done.skipped += outcome.skipped
                if position.finished:
                    self._drop(key)
                    break
                if time.monotonic() >= until:
                    break
        except ImportFailed as exc:
            self._drop(key)
            done.failure = exc.message
        except BaseException:
            self._drop(key)
            raise
        return done
