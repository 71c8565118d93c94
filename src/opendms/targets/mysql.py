"""MySQL and MariaDB targets through PyMySQL; metadata from information_schema in a few bulk
queries per instance rather than a query per table."""

from __future__ import annotations

import re
import ssl
import struct
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from functools import cache
from typing import Any

import pymysql
import pymysql.converters
import pymysql.cursors
import pymysql.protocol
from pymysql.constants import CLIENT, FIELD_TYPE
from sqlglot import exp

from opendms.schema.model import Table
from opendms.targets.base import (
    OWN_SCHEMA,
    Change,
    ColumnInfo,
    Connector,
    CsvRecords,
    IndexInfo,
    InsertKeys,
    Load,
    RowBlock,
    SchemaInfo,
    Snapshot,
    StatementError,
    TableInfo,
    TargetError,
)
from opendms.targets.mysql_definitions import read_definitions
from opendms.targets.mysql_export import LEXING_MODES, MysqlSnapshot
from opendms.targets.scratch import try_mysql

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys", OWN_SCHEMA)
# Server error codes that mean "who you are" rather than "where you are".
_AUTH_ERRORS = {1044, 1045, 1049, 1698}
# max_statement_time (MariaDB) and max_execution_time (MySQL) ran out.
_TIMED_OUT = {1969, 3024}
# Lock wait timeout, deadlock.
_LOST_LOCK = {1205, 1213}
_LOST_CONNECTION = 2013  # CR_SERVER_LOST
_PROGRESS = f"`{OWN_SCHEMA}`.`progress`"
_ISOLATIONS = frozenset({"READ COMMITTED", "REPEATABLE READ"})


def _error_text(exc: pymysql.err.MySQLError) -> str:
    if len(exc.args) > 1:
        return f"({exc.args[0]}) {exc.args[1]}"
    return str(exc) or type(exc).__name__


@contextmanager
def _asking(what: str) -> Iterator[None]:
    """A read's failure (a table dropped since the catalog saw it…) as a TargetError."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        raise TargetError(f"{what} failed: {_error_text(exc)}") from exc


@contextmanager
def _guarded() -> Iterator[None]:
    """Driver errors as the executors read them: a broken connection (client-side codes,
    2000 and up) leaves the outcome to the progress marker; anything else is the statement's."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        if isinstance(exc, pymysql.err.InterfaceError) or code >= 2000:
            raise TargetError(f"the connection to the database broke: {_error_text(exc)}") from exc
        raise StatementError(_error_text(exc), lost_lock=code in _LOST_LOCK, code=code) from exc


@cache
def _preferred_tls() -> ssl.SSLContext:
    """The context of PyMySQL's default TLS mode (tried, not required, not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Connection(pymysql.connections.Connection):
    """A PyMySQL connection whose default TLS context is built once per process: PyMySQL
    builds one per connection, loading the system's CA certificates each time (about 65 ms,
    most of what opening a connection costs here).

    ``LOAD DATA LOCAL INFILE`` is answered from memory, and only for the name this process
    asked for (``infile``): PyMySQL would open whatever file the server names, which lets a
    hostile server read this machine's files."""

    infile: tuple[bytes, bytes] | None = None  # (the name asked for, the data)

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if sslp == {}:
            return _preferred_tls()
        return super()._create_ssl_ctx(sslp)  # type: ignore[misc,no-any-return]

    def _read_query_result(self, unbuffered: bool = False) -> int:
        # PyMySQL's own, with the result class that answers LOCAL INFILE requests from memory
        self._result = None
        result = _Result(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return int(result.affected_rows or 0)


class _Result(pymysql.connections.MySQLResult):
    def _read_load_local_packet(self, first_packet: Any) -> None:
        conn: Any = self.connection
        asked = pymysql.protocol.LoadLocalPacketWrapper(first_packet).filename
        infile = getattr(conn, "infile", None)
        try:
            if infile is not None and asked == infile[0]:
                data, step = infile[1], 1 << 20
                for at in range(0, len(data), step):
                    conn.write_packet(data[at : at + step])
        finally:
            conn.write_packet(b"")  # the end of the data (none, for a name not asked for)
            ok = conn._read_packet()
        if not ok.is_ok_packet():
            raise pymysql.err.OperationalError(2014, "Commands out of sync")
        self._read_ok_packet(ok)  # type: ignore[attr-defined]


# LOCAL INFILE turned off on the server (MariaDB, MySQL 8) or the client
_NO_LOCAL_INFILE = {1148, 3948, 4166, 2068}
_INFILE = b"opendms-rows"
_COUNTS = re.compile(r"(Records|Duplicates|Deleted|Skipped|Warnings): (\d+)")


def _csv_fields(columns: Sequence[str], rows: CsvRecords) -> str:
    """How LOAD DATA reads CSV records as Python's csv module does: quotes enclose,
    doubled inside; no escape character; an empty field NULL in a column that is not
    text (through a variable, NULLIF: costly, so only where a field may be empty), the
    empty string in one that is."""
    read, nulls = [], []
    for i, (column, null) in enumerate(zip(columns, rows.empty_is_null, strict=True)):
        if null and rows.empties:
            read.append(f"@f{i}")
            nulls.append(f"{_quote(column)} = NULLIF(@f{i}, '')")
        else:
            read.append(_quote(column))
    ending = "\\r\\n" if rows.crlf else "\\n"
    fields = (
        "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '' "
        f"LINES TERMINATED BY '{ending}' ({', '.join(read)})"
    )
    return fields + (f" SET {', '.join(nulls)}" if nulls else "")


def _datetime_text(text: str) -> str:
    """A DATETIME/TIMESTAMP as the server wrote it, spelled as Python writes the datetime
    PyMySQL would have made (``str(value)``: six fraction digits, none when they are all
    zero), without making it: what the console returns and masks is the same text an
    export's value gives."""
    whole, dot, fraction = text.partition(".")
    if not dot or not fraction.strip("0"):
        return whole
    return f"{whole}.{fraction.ljust(6, '0')}"


def _decimal_text(text: str) -> str:
    """A DECIMAL's text as an export writes its value (``str(Decimal)``: 1E-7, not
    0.0000001), so that a masked one hashes alike."""
    return str(Decimal(text))


# The console's results go out as JSON text: DECIMAL and DATETIME values are read into the
# text an export writes of them, not into objects to be written out again.
_CONSOLE_TYPES = {
    **pymysql.converters.conversions,
    FIELD_TYPE.DECIMAL: _decimal_text,
    FIELD_TYPE.NEWDECIMAL: _decimal_text,
    FIELD_TYPE.DATETIME: _datetime_text,
    FIELD_TYPE.TIMESTAMP: _datetime_text,
}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MysqlChange(Change):
    def __init__(self, conn: pymysql.connections.Connection[Any]) -> None:
        self.conn = conn
        self.cur = conn.cursor()
        self.local_infile = True  # until the server refuses it
        self._insert_keys: InsertKeys | None = None

    def reads_csv(self, rows: CsvRecords) -> bool:
        # An unquoted NULL is NULL to LOAD DATA (with ENCLOSED BY); OpenDMS reads text there.
        return self.local_infile and not rows.null_word

    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: RowBlock | CsvRecords,
        mode: str,
        key: Sequence[str],
    ) -> int:
        """LOAD DATA LOCAL INFILE of the rows (RowBlock's text, or the CSV records
        themselves) where the server allows it (answered from memory, see _Connection),
        multi-row INSERT otherwise. LOCAL turns errors into warnings (the server cannot stop
        the client's upload), so any warning but a skipped duplicate under IGNORE fails the
        rows."""
        name = ".".join(_quote(part) for part in table.split("."))
        names = ", ".join(_quote(c) for c in columns)
        if self.local_infile:
            verb = {"INSERT": "", "IGNORE": "IGNORE ", "REPLACE": "REPLACE "}[mode]
            load = f"LOAD DATA LOCAL INFILE '{_INFILE.decode()}' {verb}INTO TABLE {name} "
            if isinstance(rows, CsvRecords):
                statement = load + _csv_fields(columns, rows)
            else:
                statement = load + (
                    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
                    f"LINES TERMINATED BY '\\n' ({names})"
                )
            self.conn.infile = (_INFILE, rows.data if isinstance(rows, CsvRecords) else rows.text)  # type: ignore[attr-defined]
            try:
                return self._counted(statement, mode, len(rows))
            except StatementError as exc:
                if exc.code not in _NO_LOCAL_INFILE:
                    raise
                self.local_infile = False
                if isinstance(rows, CsvRecords):
                    raise  # parsed here and written by INSERT instead
            finally:
                self.conn.infile = None  # type: ignore[attr-defined]
        assert isinstance(rows, RowBlock), "reads_csv says no once LOCAL INFILE is refused"
        verb = {"INSERT": "INSERT", "IGNORE": "INSERT IGNORE", "REPLACE": "REPLACE"}[mode]
        written = 0
        for at in range(0, len(rows), 1000):
            part = rows.rows[at : at + 1000]
            values = ",".join(
                "(" + ",".join(self.conn.escape(v) for v in row) + ")" for row in part
            )
            written += self._counted(
                f"{verb} INTO {name} ({names}) VALUES {values}", mode, len(part)
            )
        return written

    def _counted(self, statement: str, mode: str, rows: int) -> int:
        with _guarded():
            affected = int(self.cur.execute(statement))
        result = getattr(self.conn, "_result", None)
        message = getattr(result, "message", b"") or b""
        text = message.decode() if isinstance(message, bytes) else str(message)
        counts = {k: int(v) for k, v in _COUNTS.findall(text)}
        skipped = counts.get("Skipped", counts.get("Duplicates", 0)) if mode == "IGNORE" else 0
        if counts.get("Warnings", 0) > skipped:
            with _guarded():
                self.cur.execute("SHOW WARNINGS LIMIT 1")
                found = self.cur.fetchone()
            problem = f"({found[1]}) {found[2]}" if found else "the server reported warnings"
            raise StatementError(problem)
        return rows if mode == "REPLACE" else affected

    def begin(self) -> None:
        with _guarded():
            self.conn.begin()

    def commit(self) -> None:
        with _guarded():
            self.conn.commit()

    def rollback(self) -> None:
        with _guarded():
            self.conn.rollback()

    def close(self) -> None:
        with suppress(pymysql.err.MySQLError):
            self.conn.close()

    def execute(self, statement: str) -> int:
        with _guarded():
            return int(self.cur.execute(statement))

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        with _guarded():
            self.cur.execute(statement)
            return list(self.cur.fetchall())

    # What an online schema change (execution.online_mysql) needs beyond the base change:
    # reads between transactions, DDL that gives up its lock wait soon, a chosen isolation.

    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a read (``%s`` placeholders for ``args``) in a short transaction of its
        own, between the change's transactions."""
        with _guarded():
            try:
                self.cur.execute(statement, tuple(args) or None)
                return list(self.cur.fetchall())
            finally:
                self.conn.rollback()

    def ddl(self, statement: str, lock_seconds: int) -> None:
        """Run one DDL statement (it commits by itself) waiting at most ``lock_seconds`` for
        its metadata locks: DDL queued behind a long transaction holds every later reader and
        writer of the table behind it, so it gives up soon (StatementError, ``lost_lock``:
        MDL waits fail with 1205 too) and is tried again later."""
        with _guarded():
            self.cur.execute("SET SESSION lock_wait_timeout = %s", (max(1, int(lock_seconds)),))
        try:
            with _guarded():
                self.cur.execute(statement)
        finally:
            with _guarded():
                self.cur.execute("SET SESSION lock_wait_timeout = DEFAULT")

    def begin_isolated(self, level: str, *, snapshot: bool = False) -> None:
        """Begin a transaction at ``level`` (READ COMMITTED, REPEATABLE READ) for this
        transaction only; ``snapshot``: its read view is taken at once (WITH CONSISTENT
        SNAPSHOT), so that reads of several tables see one moment."""
        if level not in _ISOLATIONS:
            raise ValueError(f"unknown isolation level {level!r}")
        with _guarded():
            self.cur.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
            self.cur.execute(
                "START TRANSACTION WITH CONSISTENT SNAPSHOT" if snapshot else "START TRANSACTION"
            )

    def own_table(self, name: str) -> exp.Table:
        return exp.Table(
            this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(OWN_SCHEMA, quoted=True)
        )

    def insert_keys(self) -> InsertKeys:
        if self._insert_keys is None:
            with _guarded():
                self._insert_keys = _insert_keys(self.cur)
                self.conn.rollback()
        return self._insert_keys

    def drop_own_table(self, table: str) -> None:
        # DDL waits for the table's metadata lock for lock_wait_timeout (a day on MariaDB,
        # a year on MySQL), not innodb_lock_wait_timeout: a session reading the table
        # would hold the executor that long.
        with _guarded():
            self.cur.execute("SET SESSION lock_wait_timeout = @@SESSION.innodb_lock_wait_timeout")
        try:
            super().drop_own_table(table)
        finally:
            with _guarded():
                self.cur.execute("SET SESSION lock_wait_timeout = DEFAULT")

    def own_tables(self, prefix: str) -> list[str]:
        with _guarded():
            self.cur.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME LIKE %s",
                (OWN_SCHEMA, prefix + "%"),
            )
            found = [str(r[0]) for r in self.cur.fetchall()]
            self.conn.rollback()
        return found

    def marker(self, key: str) -> str | None:
        with _guarded():
            self.cur.execute(
                f"SELECT result FROM {_PROGRESS} WHERE run_key = %s FOR UPDATE", (key,)
            )
            row = self.cur.fetchone()
        return str(row[0]) if row else None

    def mark(self, key: str, result: str) -> None:
        with _guarded():
            try:
                self.cur.execute(
                    f"INSERT INTO {_PROGRESS} (run_key, result, done_at) VALUES (%s, %s, NOW(6))",
                    (key, result),
                )
            except pymysql.err.IntegrityError as exc:
                raise StatementError(f"progress marker {key} is already recorded") from exc

    def move(self, key: str, result: str) -> None:
        with _guarded():
            self.cur.execute(
                f"UPDATE {_PROGRESS} SET result = %s, done_at = NOW(6) WHERE run_key = %s",
                (result, key),
            )

    def load(self) -> Load:
        with _guarded():
            self.cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_running'")
            row = self.cur.fetchone()
            self.conn.commit()
        return Load(running=int(row[1]) if row else None)


def _insert_keys(cur: Any) -> InsertKeys:
    """RETURNING from MariaDB 10.5 on (MySQL has none); and InnoDB's autoinc lock mode."""
    cur.execute("SELECT VERSION(), @@GLOBAL.innodb_autoinc_lock_mode")
    found = cur.fetchall()
    version, mode = (str(found[0][0]), found[0][1]) if found else ("", None)
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    returning = "mariadb" in version.lower() and numbers >= (10, 5)
    name = f"{'MariaDB' if 'mariadb' in version.lower() else 'MySQL'} {version}"
    return InsertKeys(returning, int(mode) if mode is not None else None, name)


def _limit_statements(cur: Any, timeout: float) -> None:
    """Cut the session's statements off after ``timeout`` seconds (MariaDB and MySQL name
    and scale the setting differently)."""
    cur.execute("SELECT VERSION()")
    version = cur.fetchall()  # all of it: an unbuffered cursor must finish a result
    if "mariadb" in str(version[0][0] if version else "").lower():
        cur.execute("SET SESSION max_statement_time = %s", (timeout,))
    else:
        cur.execute("SET SESSION max_execution_time = %s", (int(timeout * 1000),))


class MysqlConnector(Connector):
    def connect(
        self, database: str | None = None, **options: Any
    ) -> pymysql.connections.Connection[Any]:
        ep = self.endpoint
        settings: dict[str, Any] = {
            "read_timeout": 300,
            "autocommit": True,
            "init_command": LEXING_MODES,
            **options,
        }
        try:
            return _Connection(
                host=ep.host,
                port=ep.port or 3306,
                user=ep.user,
                password=ep.password,
                database=database,
                connect_timeout=ep.connect_timeout,
                charset="utf8mb4",
                **settings,
            )
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            text = str(exc.args[1] if len(exc.args) > 1 else exc)
            if code == _LOST_CONNECTION:  # connected, but no MySQL handshake came
                waited = settings.get("read_timeout")
                text = (
                    f"no answer within {waited:g} s"
                    if "timed out" in text and waited
                    else "the server closed the connection"
                ) + f"; is a {ep.engine} server listening there? ({text})"
            raise TargetError(
                f"cannot connect to {ep.engine} at {ep.host}:{ep.port}: {text}",
                auth=code in _AUTH_ERRORS,
            ) from exc
        except (pymysql.err.MySQLError, struct.error, ValueError, LookupError) as exc:
            # PyMySQL read something that is no MySQL handshake (another service's greeting)
            raise TargetError(
                f"cannot connect to {ep.engine} at {ep.host}:{ep.port}: the server there does "
                f"not speak the MySQL protocol ({type(exc).__name__}: {exc})"
            ) from exc

    def console_connect(self, catalog: str) -> pymysql.connections.Connection[Any]:
        # Not in autocommit mode: MySQL commits the console's transaction at a DDL statement,
        # and in autocommit mode every statement after it would commit at once too, beyond
        # the rollback of a script that fails later.
        return self.connect(None, read_timeout=None, autocommit=False, conv=_CONSOLE_TYPES)

    def console_begin(
        self, conn: Any, where: tuple[str, str], *, read_only: bool, timeout: float
    ) -> None:
        with conn.cursor() as cur:
            # the session's schema and timeouts stay set on a pooled connection (the console
            # runs no USE or SET): set again only when this script's differ, a round trip each
            state = (where[1], timeout)
            if getattr(conn, "console_state", None) != state:
                conn.console_state = None
                cur.execute(f"USE {_quote(where[1])}")
                if "mariadb" in str(conn.server_version).lower():
                    cur.execute("SET SESSION max_statement_time = %s", (timeout,))
                else:  # MySQL stops only SELECTs at its max_execution_time
                    cur.execute("SET SESSION max_execution_time = %s", (int(timeout * 1000),))
                cur.execute(
                    "SET SESSION innodb_lock_wait_timeout = %s",
                    (max(1, min(int(timeout), 3600)),),
                )
                conn.console_state = state
            cur.execute("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")

    def console_failure(self, exc: Exception) -> StatementError | TargetError | None:
        if not isinstance(exc, pymysql.err.MySQLError):
            return None
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        if isinstance(exc, pymysql.err.InterfaceError) or code >= 2000:
            return TargetError(f"the connection to the database broke: {_error_text(exc)}")
        return StatementError(
            _error_text(exc), code=code, lost_lock=code in _LOST_LOCK, timed_out=code in _TIMED_OUT
        )

    def ping(self, timeout: float | None = None) -> str:
        waits: dict[str, Any] = {}
        if timeout is not None:
            waits = {"read_timeout": timeout, "write_timeout": timeout}
        with self.connect(**waits) as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            row = cur.fetchone()
            return str(row[0]) if row else ""

    def insert_keys(self) -> InsertKeys:
        with _asking("reading the server's version"), self.connect() as conn, conn.cursor() as cur:
            return _insert_keys(cur)

    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        with _asking("counting rows"), self.connect(where[1]) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            _limit_statements(cur, timeout)
            try:
                cur.execute(query)
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in _TIMED_OUT:
                    return None
                raise
            row = cur.fetchone()
            return int(row[0]) if row else 0

    def estimate(self, where: tuple[str, str], statement: str) -> int | None:
        # EXPLAIN runs nothing (and MariaDB refuses EXPLAIN UPDATE in a read-only
        # transaction); the driver sends one statement per call, so nothing can ride along.
        with _asking("EXPLAIN"), self.connect(where[1]) as conn, conn.cursor() as cur:
            cur.execute(f"EXPLAIN {statement}")
            names = [d[0].lower() for d in cur.description or ()]
            if "rows" not in names:
                return None
            rows = [r[names.index("rows")] for r in cur.fetchall()]
            known = [int(r) for r in rows if r is not None]
            return max(known) if known else None

    def read(self, where: tuple[str, str], query: str) -> Iterator[dict[str, Any]]:
        conn = self.connect(where[1], cursorclass=pymysql.cursors.SSDictCursor)
        try:
            with _asking("reading"), conn.cursor() as cur:
                cur.execute(query)
                yield from cur
        finally:
            conn.close()

    @contextmanager
    def snapshot(self, where: tuple[str, str], query: str, timeout: float) -> Iterator[Snapshot]:
        snap = MysqlSnapshot(self.endpoint, where[1], query, timeout, _preferred_tls())
        try:
            yield snap
        finally:
            snap.close()

    def reclaim(self, where: tuple[str, str], table: str) -> None:
        name = ".".join(f"`{part.replace('`', '``')}`" for part in table.split(".") if part)
        with (
            _asking("OPTIMIZE TABLE"),
            self.connect(where[1], read_timeout=None) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(f"OPTIMIZE TABLE {name}")
            for row in cur.fetchall():  # its result rows say whether it worked
                if str(row[2]).lower() == "error":
                    raise TargetError(f"OPTIMIZE TABLE {table} failed: {row[3]}")

    def replica_lag(self) -> float | None:
        with (
            _asking("reading replication status"),
            self.connect(cursorclass=pymysql.cursors.DictCursor) as conn,
            conn.cursor() as cur,
        ):
            try:
                cur.execute("SHOW REPLICA STATUS")
            except pymysql.err.ProgrammingError:  # before MySQL 8.0.22 / MariaDB 10.5.1
                cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
        if not row:
            return None
        behind = row.get("Seconds_Behind_Source", row.get("Seconds_Behind_Master"))
        return float("inf") if behind is None else float(behind)

    def change(self, where: tuple[str, str], lock_wait_seconds: int) -> Change:
        # FOUND_ROWS: an UPDATE reports the rows it matched, as on the other engines, not
        # only those whose values changed. No read timeout: a long statement is not a failure.
        conn = self.connect(
            where[1],
            autocommit=False,
            read_timeout=None,
            client_flag=CLIENT.FOUND_ROWS,
            local_infile=True,  # answered only for OpenDMS's own data (see _Connection)
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (lock_wait_seconds,))
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{OWN_SCHEMA}`")
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {_PROGRESS} (run_key VARCHAR(191) NOT NULL "
                    "PRIMARY KEY, result MEDIUMTEXT NOT NULL, done_at DATETIME(6) NOT NULL) "
                    "ENGINE=InnoDB"
                )
            conn.commit()
        except pymysql.err.MySQLError as exc:
            conn.close()
            raise TargetError(
                f"OpenDMS keeps its progress markers in database {OWN_SCHEMA} on the instance "
                f"and could not create it: {_error_text(exc)}; grant the instance's user "
                f"CREATE, SELECT and INSERT on `{OWN_SCHEMA}`.*"
            ) from exc
        return MysqlChange(conn)

    def definitions(
        self, where: tuple[str, str], names: Collection[str] | None = None
    ) -> dict[str, Table]:
        with _asking("reading table definitions"), self.connect() as conn:
            return read_definitions(conn, where[1], names)

    def try_script(
        self,
        where: tuple[str, str],
        setup: Sequence[str],
        script: Sequence[str],
        names: Sequence[str],
    ) -> dict[str, Table]:
        with _asking("reading the database's character set"), self.connect() as conn:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                    "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                    (where[1],),
                )
                found = cur.fetchone()
            if found is None:
                raise TargetError(f"database {where[1]} does not exist")
            charset = (str(found[0]), str(found[1]))
            return try_mysql(conn, charset, setup, script, names, read_definitions, _error_text)

    def schemas(self, only: tuple[str, str] | None = None) -> list[SchemaInfo]:
        try:
            with self.connect() as conn:
                return self._describe(conn, only)
        except pymysql.err.MySQLError as exc:
            if isinstance(exc, TargetError):
                raise
            raise TargetError(f"reading metadata failed: {exc}") from exc

    def _describe(self, conn: Any, only: tuple[str, str] | None) -> list[SchemaInfo]:
        if only is not None:
            where, args = "= %s", [only[1]]
        else:
            where, args = (
                f"NOT IN ({', '.join(['%s'] * len(SYSTEM_SCHEMAS))})",
                list(SYSTEM_SCHEMAS),
            )
        with conn.cursor() as cur:
            cur.execute(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
                f"WHERE SCHEMA_NAME {where} ORDER BY SCHEMA_NAME",
                args,
            )
            schemas = {name: SchemaInfo("def", name, charset) for name, charset in cur.fetchall()}
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, TABLE_ROWS, "
                "COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), TABLE_COMMENT "
                f"FROM information_schema.TABLES WHERE TABLE_SCHEMA {where} "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME",
                args,
            )
            tables: dict[tuple[str, str], TableInfo] = {}
            for sch, name, ttype, engine, collation, rows, size, comment in cur.fetchall():
                table = TableInfo(
                    name=name,
                    table_type=ttype,
                    engine=engine or "",
                    encoding=(collation or "").split("_")[0],
                    rows=int(rows or 0),
                    size_bytes=int(size or 0),
                    comment=comment or "",
                )
                tables[(sch, name)] = table
                if sch in schemas:
                    schemas[sch].tables.append(table)
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, "
                "IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, EXTRA, "
                "COLUMN_DEFAULT, COLUMN_COMMENT FROM information_schema.COLUMNS "
                f"WHERE TABLE_SCHEMA {where} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
                args,
            )
            for (
                sch,
                tname,
                col,
                pos,
                ctype,
                nullable,
                length,
                prec,
                scale,
                extra,
                default,
                comment,
            ) in cur.fetchall():
                owner = tables.get((sch, tname))
                if owner is None:
                    continue
                owner.columns.append(
                    ColumnInfo(
                        name=col,
                        position=int(pos),
                        column_type=ctype,
                        nullable=nullable == "YES",
                        data_length=int(length) if length is not None else None,
                        data_precision=int(prec) if prec is not None else None,
                        data_scale=int(scale) if scale is not None else None,
                        auto_increment="auto_increment" in (extra or "").lower(),
                        default_value=None if default is None else str(default),
                        comment=comment or "",
                    )
                )
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, "
                "INDEX_COMMENT FROM information_schema.STATISTICS "
                f"WHERE TABLE_SCHEMA {where} "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
                args,
            )
            found: dict[tuple[str, str], dict[str, IndexInfo]] = defaultdict(dict)
            for sch, tname, iname, non_unique, col, comment in cur.fetchall():
                by_name = found[(sch, tname)]
                if iname not in by_name:
                    kind = "PRIMARY" if iname == "PRIMARY" else "NORMAL" if non_unique else "UNIQUE"
                    by_name[iname] = IndexInfo(iname, kind, [], comment or "")
                if col:
                    by_name[iname].columns.append(col)
            for key, by_name in found.items():
                if key in tables:
                    tables[key].indexes = list(by_name.values())
        return list(schemas.values())
