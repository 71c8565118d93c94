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

A CSV file the database's loader reads is written two blocks at a time, through two
sessions, each block's transaction committing only after the one before it (see Importer):
what the target holds at any moment is still the file's first so many records, and the
rules above hold as they are.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, ExitStack, suppress
from dataclasses import asdict, dataclass, field
from functools import cached_property, partial
from itertools import islice
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.catalog.shapes import CatalogShapes
from opendms.files.storage import FileStore
from opendms.imports.blocks import Block, CsvBlocks, records_start
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
from opendms.targets.base import Change, CsvRecords, RowBlock, StatementError, TargetError
from opendms.tickets.params import DML

log = logging.getLogger("opendms.imports")

MODES = {"INSERT": "INSERT", "INSERT_IGNORE": "IGNORE", "REPLACE_INTO": "REPLACE"}
MAX_LOGGED = 20  # skipped records named in the log
IDLE_SECONDS = 600.0  # an open file no step asked for this long is closed
_SAVEPOINT = "opendms_import"
LONGEST_BLOCK = 128 << 20  # bytes: a record longer than this is read by Python


class ImportFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GaveWay(Exception):
    """A batch written beside the one before it lost a lock (the server chose it in a
    deadlock, or its wait ran out): it is rolled back and written again once that one is
    done, rather than read as a refusal of its records."""


@dataclass
class Position:
    """Where an import is, as its marker on the target records it."""

    done: int = 0  # records (or statements) of the file consumed
    rows: int = 0  # rows written
    skipped: int = 0
    finished: bool = False
    # where the next record starts (byte, line) when the file is cut into blocks
    # (imports.blocks); None when Python's csv reader read the last batch
    offset: int | None = None
    line: int | None = None

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
    line each starts on, and those that cannot be written, by index, with why; or whole
    CSV records as the file holds them (``block``), for the database's loader to parse."""

    lines: Sequence[int] = field(default_factory=list)
    rows: list[Sequence[str | None]] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)
    block: Block | None = None

    def __len__(self) -> int:
        return self.block.records if self.block is not None else len(self.lines)

    def one(self, i: int) -> Batch:
        """Item ``i`` alone."""
        return Batch(
            [self.lines[i]],
            self.rows[i : i + 1],
            self.statements[i : i + 1],
            {0: self.problems[i]} if i in self.problems else {},
        )

    @cached_property
    def row_block(self) -> RowBlock:
        """The rows that can be written, as the engines' loaders take them."""
        problems = self.problems
        return RowBlock([r for i, r in enumerate(self.rows) if i not in problems])


def fields_batch(
    lines: Sequence[int], raw: Sequence[Sequence[str]], columns: Sequence[Column]
) -> Batch:
    """Records' fields as the table's values (imports.columns), those of the wrong width
    named."""
    batch = Batch(lines)
    width = len(columns)
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


def parsed(block: Block, columns: Sequence[Column], label: str) -> Batch:
    """``block``'s records read by Python's csv reader, as every record once was."""
    found = CsvFile(block.data, "utf-8", label, line=block.line)
    try:
        lines, raw = found.take(block.records)
    except FileProblem as exc:
        raise ImportFailed(str(exc)) from None
    finally:
        found.close()
    return fields_batch(lines, raw, columns)


class Reader:
    """The file's items from a position on; kept open between a runner's steps.

    A UTF-8 CSV file is cut into blocks of whole records (imports.blocks) that the
    database's own loader parses; from the first block that is not regular on, and for
    every other file, Python reads the records."""

    def __init__(self, src: Source, at: Position, batch_rows: int) -> None:
        self.src = src
        self.columns: list[Column] = []
        self.consumed = 0
        self.statements: Iterator[Piece] | None = None
        self.blocks: CsvBlocks | None = None
        self.csv: CsvFile | None = None
        self.sheet: Iterator[Record] | None = None
        # The next batch, read (and checked, or made into text) on a thread of its own while
        # the database writes the one before (the driver lets go of the GIL while it waits).
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="opendms-import")
        self.ahead: deque[Future[Batch]] = deque()
        # Two blocks are written at once (Importer): two are read ahead, and the file's last
        # two are as long as each other (the last would be written alone otherwise).
        self.paired = False
        try:
            if at.offset is not None and at.line is not None:
                resumed = self._open_blocks((at.offset, at.line))
            else:
                resumed = not at.done and self._open_blocks(None)
            if resumed:
                self.consumed = at.done
            else:
                self._open()
                while self.consumed < at.done:  # what the target has: read past it
                    want = min(at.done - self.consumed, batch_rows)
                    passed = len(self._take(want, 0, skipping=True))
                    if not passed:
                        break
                    self.consumed += passed
        except BaseException:
            self.close()
            raise

    def _open_blocks(self, at: tuple[int, int] | None) -> bool:
        """Cut the file into blocks from ``at`` (byte, line; None: its first record)."""
        src = self.src
        if src.file_type != "CSV" or codec_for(src.path, src.encoding) != "utf-8-sig":
            return False
        found = records_start(src.path, src.header)
        if found is None:
            return False
        header, offset, line = found
        self._match(header)
        if at is not None:
            offset, line = at
        self.blocks = CsvBlocks(self.src.path, offset, line, len(self.columns))
        return True

    def _match(self, header: Sequence[str] | None) -> None:
        try:
            self.columns = match(header, self.src.table, self.src.catalog)
        except ColumnProblem as exc:
            raise ImportFailed(f"{self.src.label}: {exc}") from None

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
        self._match(header)

    def take(self, count: int, size: int, then: int | None = None) -> Batch:
        """The next ``count`` items, or block of about ``size`` bytes (fewer at the end;
        none past it); the one after (two, ``paired``) is read meanwhile, of about ``then``
        bytes (default ``size``). A block read ahead is as long as it was asked for when
        it was."""
        ahead = self.ahead
        batch = (
            ahead.popleft() if ahead else self.pool.submit(self._prepared, count, size)
        ).result()
        self.consumed += len(batch)
        while len(batch) and len(ahead) < 1 + self.paired:
            ahead.append(self.pool.submit(self._prepared, count, then or size))
        return batch

    def _prepared(self, count: int, size: int) -> Batch:
        try:
            batch = self._take(count, size)
        except FileProblem as exc:
            raise ImportFailed(str(exc)) from None
        if not self.src.sql and batch.block is None:
            _ = batch.row_block.text  # made here, off the writing thread
        return batch

    def _take(self, count: int, size: int, *, skipping: bool = False) -> Batch:
        if self.blocks is not None:
            block = self.blocks.take(size, LONGEST_BLOCK, halves=self.paired)
            if block is not None:
                return Batch(block=block)
            # not regular from here on: Python reads the rest
            where = self.blocks.offset, self.blocks.line
            self.blocks.close()
            self.blocks = None
            self.csv = CsvFile(
                self.src.path, "utf-8", self.src.label, offset=where[0], line=where[1]
            )
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
        return fields_batch(lines, raw, self.columns)

    def _runnable(self, batch: Batch, i: int, piece: Piece) -> str:
        """What runs for ``piece``: the text generated from its parse, which the precheck
        checked (the file is stored by its hash, so it is the same file), never its own."""
        try:
            return render(one_statement(piece, self.src.engine), self.src.engine)
        except Unreadable as exc:
            batch.problems[i] = str(exc)
            return ""

    def close(self) -> None:
        for future in self.ahead:
            future.cancel()
        self.pool.shutdown(wait=True)
        if self.blocks is not None:
            self.blocks.close()
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


def begun(change: Change) -> None:
    """The savepoint a batch rolls back to when the database refuses it as a whole."""
    change.execute(f"SAVEPOINT {_SAVEPOINT}")


class Writer:
    """Writes batches of one import through one change session; ``beside``: while another
    session writes the batch before (a lost lock raises GaveWay)."""

    def __init__(
        self, src: Source, change: Change, columns: list[Column], *, beside: bool = False
    ) -> None:
        self.src, self.change, self.columns, self.beside = src, change, columns, beside
        self.names = [c.name for c in columns]

    def _refused(self, exc: StatementError) -> None:
        """Rolled back to the batch's (or record's) savepoint, unless the refusal is a lock
        lost beside the batch before: the server may have ended the whole transaction."""
        if self.beside and exc.lost_lock:
            raise GaveWay(exc.message) from None
        self.change.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")

    def _write(self, batch: Batch) -> int:
        if batch.problems:
            raise StatementError(next(iter(batch.problems.values())))
        if not self.src.sql:
            return self.change.write_rows(
                self.src.table, self.names, batch.row_block, self.src.mode, self.src.key
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

    def _loaded(self, block: Block) -> int | None:
        """``block`` parsed and written by the database's own loader, when it reads it as
        Python would; None when it does not or refused it (rolled back)."""
        layout = block.layout
        if not layout.fast:
            return None
        records = CsvRecords(
            block.data,
            layout.records,
            layout.crlf,
            tuple(c.kind != "text" for c in self.columns),
            layout.empties,
            layout.null_word,
        )
        if not self.change.reads_csv(records):
            return None
        try:
            return self.change.write_rows(
                self.src.table, self.names, records, self.src.mode, self.src.key
            )
        except StatementError as exc:
            self._refused(exc)
            return None

    def batch(self, batch: Batch) -> Outcome:
        """``batch`` written in the open transaction, just after the savepoint (``begun``)
        set: at once, or, when the database refuses that, an item at a time behind
        savepoints to find (and with IgnoreError leave out) those at fault. Raises
        ImportFailed naming the first one otherwise. A block of CSV records goes to the
        database's loader first; what it does not take, Python reads, and it is written
        as any other batch."""
        if batch.block is not None:
            loaded = self._loaded(batch.block)
            if loaded is not None:
                return Outcome(loaded)
            batch = parsed(batch.block, self.columns, self.src.label)
        try:
            return Outcome(self._write(batch))
        except StatementError as exc:
            self._refused(exc)
        outcome = Outcome()
        for i in range(len(batch)):
            self.change.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                outcome.rows += self._write(batch.one(i))
            except StatementError as exc:
                self._refused(exc)
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


def next_size(size: int, seconds: float, aim: float, sizes: tuple[int, int]) -> int:
    """The bytes of the next block, when one of ``size`` took ``seconds`` to write: what
    would take ``aim``, growing at most fourfold at a time, within ``sizes``."""
    scale = 4.0 if seconds <= 0 else min(4.0, aim / seconds)
    return max(sizes[0], min(sizes[1], int(size * scale)))


@dataclass
class Written:
    """A batch committed: what it held, what was written, the seconds writing took and the
    import's position with it."""

    batch: Batch
    outcome: Outcome
    seconds: float
    position: Position


def advanced(position: Position, batch: Batch, outcome: Outcome) -> Position:
    """``position`` moved past ``batch`` (written as ``outcome`` says)."""
    block = batch.block
    return Position(
        done=position.done + len(batch),
        rows=position.rows + outcome.rows,
        skipped=position.skipped + len(outcome.skipped),
        # a block that ends the file finishes the import in its own transaction
        finished=not batch or (block is not None and block.last),
        offset=block.end if block is not None else None,
        line=block.line + block.lines if block is not None else None,
    )


def committed(
    change: Change, key: str, batch: Batch, outcome: Outcome, seconds: float, position: Position
) -> Written:
    """The open transaction, which wrote ``batch`` from ``position`` (its marker locked),
    committed with the position moved past it."""
    moved = advanced(position, batch, outcome)
    change.move(key, moved.dumps())
    if not moved.finished:
        # Only the last commit is waited for: a server crash may undo the batches after
        # the last one on disk, each whole with its position, and the import goes on from
        # there; success is said only once everything is on disk.
        change.commit_soon()
    change.commit()
    return Written(batch, outcome, seconds, moved)


@dataclass(frozen=True)
class Importing:
    """What every batch of one import is written with."""

    src: Source
    key: str  # of its position's marker
    columns: list[Column]


Landed = Written | Position | None  # what writing a batch came to (Importer._beside)
RETRIES = 3  # times a batch that gave way is written again beside the next before waiting
# Blocks of one import that gave way before the rest is written a block at a time: they
# fight over the same rows (a file holding keys twice; a trigger updating one row), and two
# at a time would then be slower than one.
GIVE_WAYS = 2


def _on_a_thread(work: Callable[[], Landed]) -> Future[Landed]:
    """``work`` run on a thread of its own: a batch written beside another never waits for
    a pool's free thread (the one it waits for may hold it)."""
    future: Future[Landed] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 (the future carries it to its reader)
                future.set_exception(exc)

    threading.Thread(target=run, name="opendms-import-beside", daemon=True).start()
    return future


def _given(batch: Batch) -> Callable[[], Batch]:
    return lambda: batch


def _done(found: Landed) -> Future[Landed]:
    future: Future[Landed] = Future()
    future.set_result(found)
    return future


class Importer:
    """Runs imports a stretch at a time; the file stays open between a runner's steps, and
    is closed once no step asked for it for IDLE_SECONDS (a ticket closed meanwhile).

    Each transaction writes a block of a CSV file the database's loader reads, sized so
    that it takes about ``batch_seconds`` (between ``batch_bytes``); ``batch_rows``
    records of a CSV file read by Python or an XLSX sheet; or ``batch_statements``
    statements of a SQL file (``means.Tuning``).

    With ``streams`` 2 (and a second session lent), the blocks of a file of two blocks or
    more are written two at a time, each through a session of its own (the server loads
    them on two cores): a block's transaction commits only once the one before it has,
    moving the same marker, so the target holds the file's first so many records, whole,
    and nothing else, whenever it is read. Where the two touch the same key, the later
    waits on the earlier's lock, or, when the earlier waits on the later's, the later gives
    way (``_beside``): either way the rows are those of the file read in order, for
    REPLACE and IGNORE too. Once GIVE_WAYS blocks of an import gave way, the rest of it is
    written a block at a time. A table with an AUTO_INCREMENT (serial, identity) column is
    written a block at a time, its keys given in the file's order."""

    def __init__(
        self,
        batch_rows: int,
        batch_statements: int,
        batch_seconds: float = 0.5,
        batch_bytes: tuple[int, int] = (1 << 20, 32 << 20),
        streams: int = 2,
    ) -> None:
        self.batch_rows, self.batch_statements = batch_rows, batch_statements
        self.batch_seconds, self.batch_bytes = batch_seconds, batch_bytes
        self.streams = streams
        self.gave_way: dict[str, int] = {}  # blocks of each import that did
        self.readers: dict[str, Reader] = {}
        self.sizes: dict[str, int] = {}  # of each import's next block
        self.used: dict[str, float] = {}

    def _drop(self, key: str) -> None:
        reader = self.readers.pop(key, None)
        self.used.pop(key, None)
        self.gave_way.pop(key, None)
        self.sizes.pop(key, None)
        if reader is not None:
            reader.close()

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, at in list(self.used.items()) if now - at > IDLE_SECONDS]:
            self._drop(key)

    def stretch(
        self,
        src: Source,
        change: Change,
        key: str,
        until: float,
        second: Callable[[], AbstractContextManager[Change]] | None = None,
    ) -> Stretch:
        """Batches of the import ``key`` until ``until`` (at least one); ``second`` lends
        another session to the same database, for writing two blocks at a time."""
        self._forget_idle(time.monotonic())
        self.used[key] = time.monotonic()
        position = Position.loads(change.claim(key, Position().dumps()))
        if position.finished:
            self._drop(key)
            return Stretch(position)
        reader = self.readers.get(key)
        if reader is None or reader.consumed != position.done:
            self._drop(key)
            reader = self.readers[key] = Reader(src, position, self.batch_rows)
        done = Stretch(position)
        try:
            with ExitStack() as lent:
                sessions, tried = [change], False

                def pair() -> bool:
                    nonlocal tried
                    if not self._may_pair(src, key, change, reader, second):
                        return False
                    if not tried:
                        assert second is not None
                        tried = True
                        try:
                            sessions.append(lent.enter_context(second()))
                        except TargetError as exc:  # (max_connections, say): one will do
                            log.info("import %s: one session only: %s", key, exc.message)
                    return len(sessions) == 2

                self._run(src, key, until, reader, done, sessions, pair)
        except ImportFailed as exc:
            done.failure = exc.message
        except BaseException:
            self._drop(key)
            raise
        if done.finished or done.moved_on or done.failure is not None:
            self._drop(key)
        return done

    def _may_pair(
        self,
        src: Source,
        key: str,
        change: Change,
        reader: Reader,
        second: Callable[[], AbstractContextManager[Change]] | None,
    ) -> bool:
        """Whether the blocks to come may be written two at a time (see the class)."""
        blocks = reader.blocks
        return (
            second is not None
            and self.streams > 1
            and change.concurrent_writes
            and blocks is not None
            and blocks.size - blocks.offset > 2 * self.batch_bytes[0]  # two blocks at least
            and not any(c.auto_increment for c in src.catalog)
            and self._calm(key)
        )

    def _calm(self, key: str) -> bool:
        """Whether fewer than GIVE_WAYS blocks of import ``key`` gave way."""
        return self.gave_way.get(key, 0) < GIVE_WAYS

    def _take(self, reader: Reader, key: str, src: Source) -> Callable[[], Batch]:
        known = self.sizes.get(key)
        size = known or self.batch_bytes[0]
        # the block read ahead of the first: as long as the first may let it grow
        then = known or next_size(size, 0.0, self.batch_seconds, self.batch_bytes)
        count = self.batch_statements if src.sql else self.batch_rows
        return partial(reader.take, count, size, then)

    def _run(
        self,
        src: Source,
        key: str,
        until: float,
        reader: Reader,
        done: Stretch,
        sessions: list[Change],
        pair: Callable[[], bool],
    ) -> None:
        """The stretch's batches: when ``pair`` lends a second session, each block beside
        the one before it (written through the other session), the one after read
        meanwhile; else, and once Python reads the file, one at a time."""
        into = Importing(src, key, reader.columns)
        flying: deque[Future[Landed]] = deque()  # written beside, not yet noted, in order
        pending: Batch | None = None  # taken, not written
        try:
            while True:
                if pending is None and pair():
                    reader.paired = True
                    # what the first block follows: the position as claimed
                    flying.append(_done(Written(Batch(), Outcome(), 0.0, done.position)))
                    # the first is written as one alone would be, its position locked first
                    # (another runner's stale stretch waits for it), the rest beside
                    write, turn, first = self._after, 0, True
                    batch = self._take(reader, key, src)()
                    while batch.block is not None:
                        work = partial(write, into, sessions[turn], batch, flying[-1])
                        flying.append(_on_a_thread(work))
                        write, turn = self._beside, 1 - turn
                        more = (
                            not batch.block.last
                            and time.monotonic() < until
                            and self._calm(key)  # else: one at a time
                        )
                        following = self._take(reader, key, src)() if more else None
                        # the one before ends before its session writes the next
                        before = flying.popleft().result()
                        if not (first or self._noted(key, before, done)):
                            return
                        first = False
                        if following is None:
                            break
                        batch = following
                    else:
                        pending = batch  # read by Python from here: one at a time
                    last = flying.popleft().result()
                    if not (first or self._noted(key, last, done)):
                        return
                    if pending is None and (done.finished or time.monotonic() >= until):
                        return
                take = _given(pending) if pending is not None else self._take(reader, key, src)
                pending = None
                found = self._write(into, sessions[0], take, done.position)
                if not self._noted(key, found, done) or time.monotonic() >= until:
                    return
        finally:
            for future in flying:  # a failure: what is written beside ends (or gives way)
                with suppress(BaseException):
                    future.result()

    def _noted(self, key: str, found: Landed, done: Stretch) -> bool:
        """``found`` added to the stretch; whether it goes on."""
        if not isinstance(found, Written):
            if found is not None:  # another runner moved the position: read it again
                done.position, done.moved_on = found, True
            return False
        done.position = found.position
        block = found.batch.block
        if block is not None:
            self.sizes[key] = next_size(
                len(block.data), found.seconds, self.batch_seconds, self.batch_bytes
            )
        done.batches += 1
        done.busy_seconds += found.seconds
        done.skipped += found.outcome.skipped
        return not found.position.finished

    @staticmethod
    def _write(
        into: Importing,
        change: Change,
        take: Callable[[], Batch],
        position: Position,
        *,
        beside: bool = False,
    ) -> Written | Position:
        """The next batch (``take``) written in one transaction with ``position`` moved past
        it; the target's position instead when another runner moved it meanwhile.

        The batch is taken once the position is locked and the savepoint set: taking it
        sets the reader on the next one, whose examination holds the GIL in stretches, and
        a round trip then would wait out the interpreter's switch interval behind it (while
        the load runs, the driver waits on the database without the GIL)."""
        change.begin()
        current = Position.loads(change.marker(into.key))
        if current != position:
            change.rollback()
            return current
        try:
            begun(change)
            batch = take()
            began = time.monotonic()
            writer = Writer(into.src, change, into.columns, beside=beside)
            outcome = writer.batch(batch) if batch else Outcome()
        except (ImportFailed, GaveWay):
            change.rollback()
            raise
        return committed(change, into.key, batch, outcome, time.monotonic() - began, position)

    def _beside(
        self, into: Importing, change: Change, batch: Batch, before: Future[Landed]
    ) -> Landed:
        """``batch`` written through ``change`` while the batch before it (``before``) may
        still be written through the other session; committed once that one has, from the
        position it left. The target's position when another runner moved it; None when
        the one before did not commit (its failure is what the stretch reports).

        Should the one before wait for a lock this one holds while this one waits for it
        to commit, neither would end: after waiting twice as long as a batch aims to take
        (or as this one took, if longer), this one gives way, as it does when the server
        picks it in a deadlock, and is written again after the one before."""
        change.begin()
        try:
            begun(change)
            began = time.monotonic()
            outcome = Writer(into.src, change, into.columns, beside=True).batch(batch)
            seconds = time.monotonic() - began
        except GaveWay as exc:
            change.rollback()
            self._gave_way(into, batch, f"it lost a lock: {exc}")
            return self._after(into, change, batch, before)
        except BaseException:
            with suppress(StatementError):
                change.rollback()
            raise
        waited = 2 * max(self.batch_seconds, seconds)
        try:
            prior = before.result(timeout=waited)
        except FutureTimeout:
            change.rollback()
            self._gave_way(into, batch, f"the one before it was not done {waited:.1f} s after it")
            return self._after(into, change, batch, before)
        except BaseException:  # noqa: BLE001 (the one before failed: the stretch says how)
            change.rollback()
            return None
        if not isinstance(prior, Written):
            change.rollback()
            return None
        current = Position.loads(change.marker(into.key))
        if current != prior.position:
            change.rollback()
            return current
        return committed(change, into.key, batch, outcome, seconds, current)

    def _gave_way(self, into: Importing, batch: Batch, why: str) -> None:
        key = into.key
        self.gave_way[key] = times = self.gave_way.get(key, 0) + 1
        line = batch.block.line if batch.block is not None else "?"
        log.info(
            "import %s: the block from line %s gave way to the one before it: %s", key, line, why
        )
        if times == GIVE_WAYS:
            log.info(
                "import %s: %d blocks gave way: the rest is written a block at a time", key, times
            )

    def _after(
        self, into: Importing, change: Change, batch: Batch, before: Future[Landed]
    ) -> Landed:
        """``batch`` written once the batch before it is done (the first of a stretch, or
        one that gave way), its position locked first; should it lose a lock (to the batch
        after it), the same again; the last time as if it were alone."""
        try:
            prior = before.result()
        except BaseException:  # noqa: BLE001 (the one before failed: the stretch says how)
            return None
        if not isinstance(prior, Written):
            return None
        for attempt in range(RETRIES):
            try:
                return self._write(
                    into, change, _given(batch), prior.position, beside=attempt < RETRIES - 1
                )
            except GaveWay:
                continue
        raise AssertionError("the last attempt does not give way")
