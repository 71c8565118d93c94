"""Reading a query's whole result out of MySQL/MariaDB for an export, through asyncmy.

PyMySQL spends about 6 µs of Python per row, five times what the native client takes for a
whole row (bench/transfer.py; asyncmy is the same protocol code compiled with Cython). The
async driver runs on an event loop of its own, one per export, so to its callers this is
as synchronous as the rest of the connectors.

The CSV path has the server write each row's line (``CONCAT_WS`` over the columns, strings
quoted, binary as hex), so the client handles one string per row instead of one object per
value: as fast as the native client, where the typed path is three times slower.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncmy
from asyncmy.cursors import Cursor, SSCursor
from asyncmy.errors import MySQLError

from opendms.targets.base import ENCODINGS, Endpoint, Snapshot, TargetError

# OpenDMS runs SQL it generated from what its parser read (sql.statements.render), and the
# parser reads MySQL's default lexing: backslash escapes in strings, double quotes around
# strings. A server whose sql_mode says otherwise (NO_BACKSLASH_ESCAPES, ANSI_QUOTES, or
# ANSI, which brings ANSI_QUOTES) would read the same text differently, so every session
# drops those modes and keeps the rest of the server's.
LEXING_MODES = (
    "SET SESSION sql_mode = TRIM(BOTH ',' FROM "
    "REPLACE(REPLACE(REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), "
    "',NO_BACKSLASH_ESCAPES,', ','), ',ANSI_QUOTES,', ','), ',ANSI,', ','))"
)

T = TypeVar("T")
_DUPLICATE_COLUMN = 1060
_BINARY = 63  # the charset number of binary strings
# Types the server prints the way the native client does: numbers, dates and times.
_AS_PRINTED = {0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 246}
_TEXT = {15, 245, 247, 248, 249, 250, 251, 252, 253, 254}


def _error_text(exc: MySQLError) -> str:
    args = exc.args
    return f"({args[0]}) {args[1]}" if len(args) > 1 else str(exc) or type(exc).__name__


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _csv_field(name: str, type_code: int, charset: int) -> str:
    """The SQL that prints one column as a CSV field: NULL empty, strings quoted (so an
    empty string is ``""``), binary as 0x-hex like the other export formats."""
    column = f"opendms_export.{_quoted(name)}"
    if type_code in _AS_PRINTED:
        return f"IFNULL({column}, '')"
    if type_code in _TEXT and charset != _BINARY:
        return f"IFNULL(CONCAT('\"', REPLACE({column}, '\"', '\"\"'), '\"'), '')"
    return f"IFNULL(CONCAT('0x', HEX({column})), '')"


class MysqlSnapshot(Snapshot):
    def __init__(
        self,
        endpoint: Endpoint,
        database: str,
        query: str,
        timeout: float,
        ssl: Any,
    ) -> None:
        self.query = query
        self.loop = asyncio.new_event_loop()
        self.fields: list[tuple[str, int, int]] | None = None  # name, type, charset
        self.pending: Cursor | None = None  # the query, already running (see _describe)
        try:
            self.conn = self._connect(endpoint, database, ssl)
        except MySQLError as exc:
            self.loop.close()
            raise TargetError(
                f"cannot connect to {endpoint.engine} at {endpoint.host}:{endpoint.port}: "
                f"{_error_text(exc)}"
            ) from exc
        try:
            self._begin(timeout)
            self._describe()
        except BaseException:
            self.close()
            raise

    def _connect(self, endpoint: Endpoint, database: str, ssl: Any) -> asyncmy.Connection:
        """TLS when the server offers it, as PyMySQL's default: asyncmy insists on TLS once
        given a context, so a server without it is asked again in the clear."""
        settings: dict[str, Any] = {
            "host": endpoint.host,
            "port": endpoint.port or 3306,
            "user": endpoint.user,
            "password": endpoint.password,
            "database": database,
            "charset": "utf8mb4",
            "connect_timeout": endpoint.connect_timeout,
            "autocommit": True,
            "init_command": LEXING_MODES,
        }
        try:
            return self.loop.run_until_complete(asyncmy.connect(**settings, ssl=ssl))
        except MySQLError as exc:
            if "SSL" not in str(exc):
                raise
        return self.loop.run_until_complete(asyncmy.connect(**settings))

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            return self.loop.run_until_complete(work)
        except MySQLError as exc:
            raise TargetError(f"exporting failed: {_error_text(exc)}") from exc

    def _statements(self, *statements: str) -> list[tuple[Any, ...]]:
        async def run() -> list[tuple[Any, ...]]:
            found: list[tuple[Any, ...]] = []
            async with self.conn.cursor() as cur:
                for statement in statements:
                    await cur.execute(statement)
                    found = list(await cur.fetchall())
            return found

        return self._run(run())

    def _begin(self, timeout: float) -> None:
        (version,) = self._statements("SELECT VERSION()")
        limit = (
            f"SET SESSION max_statement_time = {float(timeout)}"
            if "mariadb" in str(version[0]).lower()
            else f"SET SESSION max_execution_time = {int(timeout * 1000)}"
        )
        self._statements(
            limit,
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        )

    def _describe(self) -> None:
        """The result's columns, from the query as a derived table read for no row; a result
        with two columns of one name cannot be a derived table, so then the query starts
        now and its cursor says (and such a result has no CSV path)."""

        async def describe() -> None:
            async with self.conn.cursor() as cur:
                described = f"SELECT * FROM (\n{self.query}\n) AS opendms_export LIMIT 0"  # noqa: S608
                await cur.execute(described)
                # the column descriptions carry the charset (binary or text) as well
                fields = cur._result.fields  # type: ignore[attr-defined]
                self.fields = [(f.name, f.type_code, f.charsetnr) for f in fields]
                self.columns = [f.name for f in fields]

        async def start() -> None:
            cur = self.conn.cursor(SSCursor)
            await cur.execute(self.query)
            self.pending = cur
            self.columns = [d[0] for d in cur.description or ()]

        try:
            self.loop.run_until_complete(describe())
        except MySQLError as exc:
            if not exc.args or exc.args[0] != _DUPLICATE_COLUMN:
                raise TargetError(f"exporting failed: {_error_text(exc)}") from exc
            self._run(start())

    def batches(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        cur = self.pending
        if cur is None:
            cur = self.conn.cursor(SSCursor)
            self._run(cur.execute(self.query))
        self.pending = None
        try:
            while batch := self._run(cur.fetchmany(size)):
                yield list(batch)
        finally:
            self._run(cur.close())

    def csv(self, encoding: str, limit: int) -> Iterator[bytes] | None:
        if self.fields is None:
            return None
        return self._csv(ENCODINGS.get(encoding, "utf-8"), limit, self.fields)

    def _csv(self, codec: str, limit: int, fields: list[tuple[str, int, int]]) -> Iterator[bytes]:
        line = ", ".join(_csv_field(*f) for f in fields)
        query = (
            f"SELECT CONCAT_WS(',', {line}) FROM (\n{self.query}\n) AS opendms_export "  # noqa: S608
            f"LIMIT {int(limit)}"
        )
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(self.columns)
        yield header.getvalue().encode(codec)
        cur = self.conn.cursor(SSCursor)
        self._run(cur.execute(query))
        copied = 0
        try:
            while batch := self._run(cur.fetchmany(10_000)):
                copied += len(batch)
                yield ("\n".join([r[0] for r in batch]) + "\n").encode(codec)
        finally:
            self._run(cur.close())
        self.copied = copied

    def close(self) -> None:
        """Drop the connection (and a result not read to its end with it). The transport
        closes on the loop: it runs once more, or the socket, and the snapshot's metadata
        locks, would stay until the garbage collector came by."""
        try:
            if hasattr(self, "conn"):
                self.conn.close()
                self.loop.run_until_complete(asyncio.sleep(0))
        finally:
            self.loop.close()
