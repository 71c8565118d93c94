"""One interface for every target engine: reach it, and describe its schemas.

Connectors know nothing about tickets or tenants; they take an endpoint and answer plain
dataclasses. Failures are :class:`TargetError` with a message fit to show a user.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlglot import exp

from opendms.hostlist import HostList
from opendms.schema.model import Table


class TargetError(Exception):
    """The target cannot be reached, refused the credentials, or failed a metadata query."""

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.auth = auth


@dataclass(frozen=True)
class Endpoint:
    engine: str  # mysql, mariadb, postgresql, sqlite
    host: str  # a file path for SQLite
    port: int = 0
    user: str = ""
    password: str = ""
    database: str = ""  # PostgreSQL: the database to connect to first
    connect_timeout: int = 10


@dataclass
class ColumnInfo:
    name: str
    position: int
    column_type: str
    nullable: bool = True
    data_length: int | None = None
    data_precision: int | None = None
    data_scale: int | None = None
    auto_increment: bool = False
    default_value: str | None = None
    comment: str = ""


@dataclass
class IndexInfo:
    name: str
    kind: str  # PRIMARY, UNIQUE, NORMAL
    columns: list[str]
    comment: str = ""


@dataclass
class TableInfo:
    name: str
    table_type: str = "BASE TABLE"
    engine: str = ""
    encoding: str = ""
    rows: int = 0
    size_bytes: int = 0
    comment: str = ""
    columns: list[ColumnInfo] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)


@dataclass
class SchemaInfo:
    catalog: str
    schema: str
    encoding: str = ""
    tables: list[TableInfo] = field(default_factory=list)


# Where OpenDMS keeps its own rows on a target (progress markers): a MySQL/MariaDB database or
# a PostgreSQL schema of this name, a table prefix on SQLite. Catalog sync leaves it out.
OWN_SCHEMA = "_opendms"


class StatementError(Exception):
    """The target refused a statement of a change; ``message`` is the database's own error."""

    def __init__(
        self,
        message: str,
        *,
        lost_lock: bool = False,
        code: int | str | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.lost_lock = lost_lock  # a lock wait ran out or a deadlock chose this transaction
        self.code = code  # the engine's own error code, where it gives one
        self.timed_out = timed_out  # the server stopped it at its statement timeout


class TryFailed(TargetError):
    """A statement tried in a scratch space was refused: ``number`` is its place in the
    script (1-based; 0: the setup that made the tables to try it on)."""

    def __init__(self, message: str, number: int) -> None:
        super().__init__(message)
        self.number = number


@dataclass(frozen=True)
class InsertKeys:
    """What a server offers to tell the keys an INSERT created: ``returning``, INSERT …
    RETURNING (PostgreSQL, SQLite 3.35+, MariaDB 10.5+); ``autoinc_lock_mode``, InnoDB's
    ``innodb_autoinc_lock_mode`` (MySQL/MariaDB), on which it depends whether one
    statement's AUTO_INCREMENT keys are one run; ``server``: its name and version."""

    returning: bool = True
    autoinc_lock_mode: int | None = None
    server: str = ""


@dataclass(frozen=True)
class Load:
    """How busy a target is, as a chunked change reads it between chunks."""

    running: int | None = None  # statements running now (Threads_running, active backends)
    lag_seconds: float | None = None  # its replicas' worst replay lag, where it knows it


# The escapes of the tab-separated text PostgreSQL's COPY and MySQL's LOAD DATA both read
# by default (NULL is \N in both).
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class RowBlock:
    """Rows to write (text values; None is NULL), and the same rows as the tab-separated
    text both engines' bulk loaders read by default, made once (an importer makes it ahead,
    on another thread, while the database writes the block before)."""

    def __init__(self, rows: Sequence[Sequence[str | None]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def text(self) -> bytes:
        """Joined as they are, then checked by counting: only if some field holds a tab, a
        line break or a backslash is every field escaped (most files have none)."""
        nulls = 0
        lines = []
        for row in self.rows:
            if None in row:
                nulls += row.count(None)
                lines.append("\t".join(["\\N" if v is None else v for v in row]))
            else:
                lines.append("\t".join(row))  # type: ignore[arg-type]
        block = "\n".join(lines) + "\n" if lines else ""
        width = len(self.rows[0]) if self.rows else 0
        plain = (
            block.count("\t") == len(lines) * (width - 1)
            and block.count("\n") == len(lines)
            and block.count("\\") == nulls
            and "\r" not in block
        )
        if plain:
            return block.encode()
        return "".join(
            "\t".join("\\N" if v is None else v.translate(_TEXT_ESCAPES) for v in row) + "\n"
            for row in self.rows
        ).encode()


@dataclass(frozen=True)
class CsvRecords:
    """Whole records of a UTF-8 CSV file (comma, double quote, RFC 4180) for an engine's own
    loader to parse, found beforehand to read as Python's csv module reads them
    (``imports.blocks``): no quote inside an unquoted field, one kind of line break, no
    ``\\N``. ``empty_is_null``: per column, whether an empty field (quoted or not) is NULL
    (a column that is not text) or the empty string."""

    data: bytes
    records: int
    crlf: bool  # lines end with \r\n
    empty_is_null: tuple[bool, ...]
    empties: bool = True  # some field may be empty (False: none is)
    null_word: bool = True  # the bytes NULL occur in them

    def __len__(self) -> int:
        return self.records


class Change(ABC):
    """A write session on one database of a target, with explicit transactions: what the
    executors change data through. Progress markers live in a table OpenDMS owns there, so a
    marker commits or rolls back with the change it records (exactly once)."""

    # DDL runs inside a transaction and rolls back with it (PostgreSQL): OpenDMS's own tables
    # (a backup's) may be made in the change's transaction rather than before it in one of
    # their own (``setup``), and an attempt that does not commit leaves none behind.
    transactional_ddl: bool = False
    # ``reset`` makes the session as good as new: it may be lent again (``targets.changes``).
    resettable: bool = False
    # Another session may write the same table while this one does (SQLite: one writer).
    concurrent_writes: bool = True

    def reset(self, where: tuple[str, str], lock_wait_seconds: int) -> None:
        """Make this session, lent before, what ``Connector.change(where,
        lock_wait_seconds)`` makes: whatever a ticket's statements left in it (settings a
        function changed, locks held past a transaction, temporary tables, prepared
        statements) is dropped, and the change's own settings are made again. Raises
        TargetError when the connection is gone."""
        raise TargetError(f"a {type(self).__name__} session cannot be reset")

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    def commit_soon(self) -> None:
        """Let the current transaction's commit return before it is on disk, where the
        engine allows that per transaction (PostgreSQL's ``synchronous_commit``): a server
        crash may then undo it, whole, but never half of it, and never once a later
        transaction's commit, waited for, has returned. Elsewhere nothing changes."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def execute(self, statement: str) -> int:
        """Run one statement; the rows it matched (for UPDATE: also those already holding the
        new values, on every engine). Raises :class:`StatementError`."""

    @abstractmethod
    def query(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one statement that returns rows (INSERT … RETURNING) in the current
        transaction; its rows."""

    def insert_keys(self) -> InsertKeys:
        """How this server tells the keys an INSERT created (read outside the change's
        transactions)."""
        return InsertKeys()

    def setup(self, statement: str) -> None:
        """Run ``statement`` (DDL of OpenDMS's own tables) in a transaction of its own,
        before the change's: on MySQL DDL would commit whatever was open."""
        self.begin()
        try:
            self.execute(statement)
            self.commit()
        except BaseException:
            self.rollback()
            raise

    @abstractmethod
    def own_table(self, name: str) -> exp.Table:
        """Table ``name`` in OpenDMS's own space on this target (backups)."""

    def drop_own_table(self, table: str) -> None:
        """Drop ``table`` of OpenDMS's own space (as the target's dialect writes it), in a
        transaction of its own, waiting for its locks no longer than the change's lock
        waits."""
        self.setup(f"DROP TABLE IF EXISTS {table}")

    @abstractmethod
    def own_tables(self, prefix: str) -> list[str]:
        """The names (as ``own_table`` takes them) of the tables in OpenDMS's own space on
        this target that may start with ``prefix``: a superset (``_`` matches any character
        where the engine lists by LIKE), so callers match names exactly. Read between the
        change's transactions, in a short one of its own."""

    @abstractmethod
    def marker(self, key: str) -> str | None:
        """The result recorded under ``key``, read in the current transaction (and locked
        until it ends); None when nothing was recorded."""

    @abstractmethod
    def mark(self, key: str, result: str) -> None:
        """Record ``key`` in the current transaction; a key already recorded (by a runner that
        got there first) raises :class:`StatementError`."""

    def claim(self, key: str, initial: str) -> str:
        """The result recorded under ``key``, recording ``initial`` there first when there
        is none (in a transaction of its own; another runner may get there first, and then
        its record is the one read)."""
        self.begin()
        try:
            found = self.marker(key)
            if found is None:
                self.mark(key, initial)
                # not waited for: undone by a server crash, it is claimed again; a later
                # commit that was waited for holds it too (the log is written in order)
                self.commit_soon()
            self.commit()
        except StatementError:
            self.rollback()
            self.begin()  # another runner made it first: read theirs
            found = self.marker(key)
            self.rollback()
            if found is None:
                raise
        return found if found is not None else initial

    @abstractmethod
    def move(self, key: str, result: str) -> None:
        """Rewrite the result recorded under ``key`` (which ``mark`` made) in the current
        transaction: a chunked change's position, committed with the chunk it ends."""

    def load(self) -> Load:
        """How busy the target is right now (outside any transaction of the change)."""
        return Load()

    def reads_csv(self, rows: CsvRecords) -> bool:
        """Whether write_rows takes ``rows`` as they are, for the engine's loader to parse
        (else they are parsed here and written as a RowBlock)."""
        return False

    @abstractmethod
    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: RowBlock | CsvRecords,
        mode: str,
        key: Sequence[str],
    ) -> int:
        """Write ``rows`` into ``columns`` of ``table`` ("t" or
        "schema.t", as the database spells it) in the current transaction, by the engine's
        bulk path (CsvRecords only where reads_csv says so). ``mode``: INSERT (a duplicate
        key fails), IGNORE (a row whose key exists is left out), REPLACE (it replaces the
        existing row; ``key`` names the primary key where the engine needs it). Returns
        the rows written; raises StatementError."""

    def __enter__(self) -> Change:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ExecuteDataExport encodings (dms-api.md B.5; LATAIN1 is DMS's spelling) -> Python codecs
ENCODINGS = {
    "UTF8": "utf-8",
    "UTF8MB4": "utf-8",
    "GB2312": "gb2312",
    "GBK": "gbk",
    "ISO_8859_1": "latin-1",
    "LATAIN1": "latin-1",
    "CP1252": "cp1252",
}


class Snapshot(ABC):
    """A query's result, read in one read-only, repeatable-read transaction (an export's
    file is one consistent view): its column names, then its rows from a server-side cursor."""

    columns: list[str]
    copied: int = 0  # rows ``csv`` wrote, once it is read to its end

    @abstractmethod
    def batches(self, size: int) -> Iterator[list[tuple[Any, ...]]]: ...

    def csv(self, encoding: str, limit: int) -> Iterator[bytes] | None:
        """At most ``limit`` rows of the result as CSV with a header row, written by the
        database itself (PostgreSQL's COPY), in ``encoding`` (an ``ExecuteDataExport``
        encoding name); None when the engine has no such path."""
        return None


class Connector(ABC):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @abstractmethod
    def ping(self, timeout: float | None = None) -> str:
        """Connect and log in; returns the server's version string. ``timeout``: seconds to
        wait for each answer (a connection being tested: what answers there may be no
        database at all); None for the connector's usual patience."""

    @abstractmethod
    def schemas(self, only: tuple[str, str] | None = None) -> list[SchemaInfo]:
        """Every user schema with its tables, columns and indexes; or just ``(catalog, schema)``."""

    @abstractmethod
    def definitions(
        self, where: tuple[str, str], names: Collection[str] | None = None
    ) -> dict[str, Table]:
        """The definitions of the base tables of ``(catalog, schema)`` (just ``names``, as
        the database spells them, when given; a name it lacks is left out), keyed by table
        name: read in a few queries for the whole schema, not a few per table."""

    @abstractmethod
    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        """Run ``query`` (a ``SELECT COUNT(*)``) read-only in ``(catalog, schema)``; None when it
        did not finish within ``timeout`` seconds."""

    @abstractmethod
    def estimate(self, where: tuple[str, str], statement: str) -> int | None:
        """The planner's estimate of the rows ``statement`` touches (EXPLAIN; nothing runs);
        None when the engine gives none."""

    @abstractmethod
    def read(self, where: tuple[str, str], query: str) -> Iterator[dict[str, Any]]:
        """The rows of ``query`` in ``(catalog, schema)``, streamed (backup tables can be
        large)."""

    @abstractmethod
    def snapshot(
        self, where: tuple[str, str], query: str, timeout: float
    ) -> AbstractContextManager[Snapshot]:
        """``query`` run read-only in ``(catalog, schema)``, each statement it takes cut off
        after ``timeout`` seconds by the server."""

    @abstractmethod
    def reclaim(self, where: tuple[str, str], table: str) -> None:
        """Give the space of deleted rows of ``table`` back (OPTIMIZE TABLE, VACUUM)."""

    def replica_lag(self) -> float | None:
        """This server as a replica: how many seconds it is behind its source (``inf`` when
        replication is stopped); None when it is not a replica."""
        return None

    def insert_keys(self) -> InsertKeys:
        """How this server tells the keys an INSERT created (the precheck asks, read-only)."""
        return InsertKeys()

    @abstractmethod
    def change(self, where: tuple[str, str], lock_wait_seconds: int) -> Change:
        """A write session in ``(catalog, schema)`` whose lock waits give up after
        ``lock_wait_seconds``; creates OpenDMS's progress table there if it is missing."""

    # The SQL console's connections (``targets.console``): pooled, one transaction per
    # script, opened and ended by these hooks.

    @abstractmethod
    def console_connect(self, catalog: str) -> Any:
        """A new DB-API connection to ``catalog`` (PostgreSQL's database; ignored elsewhere)
        for the console's pool: :meth:`console_begin` opens its transactions, and whatever
        runs after an implicit commit (MySQL's at DDL) stays in one until :meth:`console_end`."""

    @abstractmethod
    def console_begin(
        self, conn: Any, where: tuple[str, str], *, read_only: bool, timeout: float
    ) -> None:
        """Open the console's transaction on ``conn``: in schema ``where[1]``, read-only
        unless ``read_only`` is False, each statement (and lock wait) stopped by the server
        itself after ``timeout`` seconds."""

    def console_end(self, conn: Any, *, commit: bool) -> None:
        cur = conn.cursor()
        try:
            cur.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            cur.close()

    @abstractmethod
    def console_failure(self, exc: Exception) -> StatementError | TargetError | None:
        """A driver's exception as the console reports it: the statement's own error
        (``timed_out`` when the server stopped it), a broken connection, or None for an
        exception that is not the driver's."""

    def console_text(self, statement: str) -> Any:
        """The statement as the driver takes it without reading placeholders in it."""
        return statement

    def try_script(
        self,
        where: tuple[str, str],
        setup: Sequence[str],
        script: Sequence[str],
        names: Sequence[str],
    ) -> dict[str, Table]:
        """Run ``setup`` then ``script`` in a scratch space beside ``where`` on this server
        (a schema of its own, never ``where`` itself), read the definitions of the tables
        ``names`` there, and leave nothing behind. A statement the server refuses raises
        :class:`TryFailed`. An engine that has no scratch space raises TargetError."""
        raise TargetError(f"{self.endpoint.engine} cannot try DDL in a scratch space")


class TargetPolicy:
    """Which targets the server may open: a guard against being used to probe a network
    (``OPENDMS_TARGET_HOSTS``: comma-separated CIDRs or host names, ``*`` for any) or to read
    local files (SQLite targets must live under ``sqlite_dir``)."""

    def __init__(
        self,
        spec: str,
        sqlite_dir: Path | None = None,
        *,
        test_connect_seconds: int = 5,
        test_read_seconds: int = 10,
    ) -> None:
        self.sqlite_dir = sqlite_dir.resolve() if sqlite_dir is not None else None
        # How long a connection being tested (register, update, sync) may take to connect,
        # and to answer anything: not the minutes a long statement on a known server may.
        self.test_connect_seconds = test_connect_seconds
        self.test_read_seconds = test_read_seconds
        self.hosts = HostList.parse(spec)

    def refusal(self, endpoint: Endpoint) -> str | None:
        """Why ``endpoint`` may not be opened, or None when it may."""
        if endpoint.engine == "sqlite":
            path = Path(endpoint.host).resolve()
            if self.sqlite_dir is None or not path.is_relative_to(self.sqlite_dir):
                return f"SQLite targets must be files under {self.sqlite_dir}."
            return None
        if not self.allows(endpoint.host):
            return f"This server may not connect to {endpoint.host} (OPENDMS_TARGET_HOSTS)."
        return None

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return self.hosts.names_host(host)
        return self.hosts.holds(address)
