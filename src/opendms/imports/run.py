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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.catalog.shapes import CatalogShapes
from opendms.files.storage import FileStore
from opendms.imports.columns import Column, ColumnProblem, cell_text, match
from opendms.imports.files import (
    FileProblem,
    Record,
    codec_for,
    csv_records,
    sql_statements,
    xlsx_records,
)
from opendms.sql.script import Piece
from opendms.store.models import (
    Attachment,
    Database,
    DbColumn,
    DbTable,
    Order,
    PrecheckStatement,
)
from opendms.targets.base import Change, StatementError
from opendms.tickets.types import DML, DataImport

MODES = {"INSERT": "INSERT", "INSERT_IGNORE": "IGNORE", "REPLACE_INTO": "REPLACE"}
STEP_SECONDS = 5.0  # batches per runner step, between looks at pause and close
BATCH_ROWS = 20_000
BATCH_STATEMENTS = 500
MAX_LOGGED = 20  # skipped records named in the log
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


def source_of(s: Session, files: FileStore, order: Order, db: Database, engine: str) -> Source:
    params = DataImport.model_validate(json.loads(order.params))
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
            PrecheckStatement.order_id == order.order_id
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
class Item:
    """One unit of the file: a record's values for the table, or a statement."""

    line: int
    values: list[str | None] = field(default_factory=list)
    statement: str = ""
    problem: str = ""  # why it cannot be written (a record of the wrong width…)


class Reader:
    """The file's items from a position on; kept open between a runner's steps."""

    def __init__(self, src: Source, skip: int) -> None:
        self.src = src
        self.columns: list[Column] = []
        self.consumed = skip
        self.items = self._items(skip)

    def _items(self, skip: int) -> Iterator[Item]:
        src = self.src
        if src.sql:
            codec = codec_for(src.path, src.encoding)
            pieces: Iterator[Piece] = sql_statements(src.path, codec, src.engine, src.label)
            for piece in islice(pieces, skip, None):
                yield Item(piece.line, statement=piece.text)
            return
        records: Iterator[Record]
        if src.file_type == "EXCEL":
            records = xlsx_records(src.path, src.label)
        else:
            records = csv_records(src.path, codec_for(src.path, src.encoding), src.label)
        header = None
        if src.header:
            first = next(records, None)
            header = [cell_text(v) for v in first.values] if first is not None else []
        try:
            self.columns = match(header, src.table, src.catalog)
        except ColumnProblem as exc:
            raise ImportFailed(f"{src.label}: {exc}") from None
        width = len(self.columns)
        for record in islice(records, skip, None):
            raw = [cell_text(v) if not isinstance(v, str) else v for v in record.values]
            if len(raw) != width:
                yield Item(
                    record.line,
                    problem=f"it has {len(raw)} fields where {width} are expected",
                )
                continue
            yield Item(record.line, [c.value(v) for c, v in zip(self.columns, raw, strict=True)])

    def take(self, count: int) -> list[Item]:
        try:
            batch = list(islice(self.items, count))
        except FileProblem as exc:
            raise ImportFailed(str(exc)) from None
        self.consumed += len(batch)
        return batch


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

    def _write(self, items: list[Item]) -> int:
        bad = next((i for i in items if i.problem), None)
        if bad is not None:
            raise StatementError(bad.problem)
        if not self.src.sql:
            rows = [i.values for i in items]
            return self.change.write_rows(
                self.src.table, self.names, rows, self.src.mode, self.src.key
            )
        done = 0
        for item in items:
            kind = _kind(item.statement)
            if kind not in DML:
                raise StatementError(
                    f"{kind or 'this'} is not a data change; an import runs INSERT, REPLACE, "
                    "UPDATE and DELETE"
                )
            done += max(self.change.execute(item.statement), 0)
        return done

    def batch(self, items: list[Item]) -> Outcome:
        """``items`` written in the open transaction: at once, or, when the database refuses
        that, one by one behind savepoints to find (and with IgnoreError leave out) the
        records at fault. Raises ImportFailed naming the first one otherwise."""
        self.change.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            return Outcome(self._write(items))
        except StatementError:
            self.change.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        outcome = Outcome()
        for item in items:
            self.change.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                outcome.rows += self._write([item])
            except StatementError as exc:
                self.change.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                what = "statement" if self.src.sql else "record"
                if not self.src.ignore_error:
                    raise ImportFailed(
                        f"line {item.line} of {self.src.label}: the {what} there failed: "
                        f"{exc.message}"
                    ) from None
                outcome.skipped.append((item.line, exc.message))
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


def _peek(change: Change, key: str) -> Position:
    """The import's position, its marker made first if there is none."""
    change.begin()
    try:
        found = change.marker(key)
        if found is None:
            change.mark(key, Position().dumps())
            change.commit()
            return Position()
        change.rollback()
        return Position.loads(found)
    except BaseException:
        change.rollback()
        raise


class Importer:
    """Runs imports a stretch at a time; the file stays open between a runner's steps."""

    def __init__(self) -> None:
        self.readers: dict[str, Reader] = {}

    def stretch(self, src: Source, change: Change, key: str, until: float) -> Stretch:
        position = _peek(change, key)
        if position.finished:
            self.readers.pop(key, None)
            return Stretch(position)
        reader = self.readers.get(key)
        if reader is None or reader.consumed != position.done:
            reader = self.readers[key] = Reader(src, position.done)
        done = Stretch(position)
        size = BATCH_STATEMENTS if src.sql else BATCH_ROWS
        try:
            while True:  # at least one batch a step, however short
                batch = reader.take(size)
                began = time.monotonic()
                change.begin()
                current = Position.loads(change.marker(key))
                if current != position:
                    change.rollback()
                    self.readers.pop(key, None)
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
                    self.readers.pop(key, None)
                    break
                if time.monotonic() >= until:
                    break
        except ImportFailed as exc:
            self.readers.pop(key, None)
            done.failure = exc.message
        except BaseException:
            self.readers.pop(key, None)
            raise
        return done
