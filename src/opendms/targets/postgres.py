"""PostgreSQL targets through psycopg 3: every (database, schema) is one DMS database."""

from __future__ import annotations

import select
import zlib
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
import psycopg.rows
import psycopg.sql
from psycopg import pq
from sqlglot import exp

from opendms.schema.model import Table
from opendms.targets.base import (
    OWN_SCHEMA,
    Change,
    ColumnInfo,
    Connector,
    CsvRecords,
    IndexInfo,
    Load,
    RowBlock,
    SchemaInfo,
    Snapshot,
    StatementError,
    TableInfo,
    TargetError,
)
from opendms.targets.postgres_definitions import read_definitions
from opendms.targets.scratch import try_postgres

_SCHEMAS = """
SELECT nspname FROM pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema', %(own)s)
  AND nspname NOT LIKE 'pg\\_toast%%' AND nspname NOT LIKE 'pg\\_temp%%'
  AND (%(schema)s::text IS NULL OR nspname = %(schema)s)
ORDER BY nspname
"""
_TABLES = """
SELECT n.nspname, c.relname,
       CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'BASE TABLE' END,
       GREATEST(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid),
       COALESCE(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition AND n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2
"""
_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
       NOT a.attnotnull,
       CASE WHEN a.atttypid IN (1042, 1043) AND a.atttypmod > 0 THEN a.atttypmod - 4 END,
       CASE WHEN a.atttypid = 1700 AND a.atttypmod > 0 THEN ((a.atttypmod - 4) >> 16) & 65535 END,
       CASE WHEN a.atttypid = 1700 AND a.atttypmod > 0 THEN (a.atttypmod - 4) & 65535 END,
       a.attidentity <> '' OR COALESCE(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%%',
       pg_get_expr(d.adbin, d.adrelid),
       COALESCE(col_description(c.oid, a.attnum), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
  AND n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2, 4
"""
_INDEXES = """
SELECT n.nspname, t.relname, i.relname, ix.indisprimary, ix.indisunique,
       ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord),
       COALESCE(obj_description(i.oid, 'pg_class'), '')
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2, ix.indisprimary DESC, 3
"""


_PROGRESS = psycopg.sql.SQL("{}.progress").format(psycopg.sql.Identifier(OWN_SCHEMA))
# lock_not_available (lock_timeout ran out), deadlock_detected
_LOST_LOCK = {"55P03", "40P01"}


def _error_text(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary if exc.diag else None
    return primary or str(exc).strip().splitlines()[0] or type(exc).__name__


@contextmanager
def _asking(what: str) -> Iterator[None]:
    """A read's failure (a table dropped since the catalog saw it…) as a TargetError."""
    try:
        yield
    except psycopg.Error as exc:
        raise TargetError(f"{what} failed: {_error_text(exc)}") from exc


def _settle(conn: psycopg.Connection[Any], where: tuple[str, str], lock_wait_seconds: int) -> None:
    """A change's session settings (in autocommit): its schema first, its lock waits cut."""
    conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(where[1])))
    conn.execute(f"SET lock_timeout = '{int(lock_wait_seconds)}s'")


class PostgresChange(Change):
    """Not in autocommit: the first statement after a commit or rollback opens the next
    transaction, so ``begin`` has nothing to send."""

    transactional_ddl = True
    resettable = True

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """A broken connection leaves the outcome to the progress marker; any other error
        is the statement's."""
        try:
            yield
        except psycopg.Error as exc:
            if self.conn.broken or isinstance(exc, psycopg.InterfaceError):
                raise TargetError(
                    f"the connection to the database broke: {_error_text(exc)}"
                ) from exc
            raise StatementError(_error_text(exc), lost_lock=exc.sqlstate in _LOST_LOCK) from exc

    def begin(self) -> None:
        pass

    def reset(self, where: tuple[str, str], lock_wait_seconds: int) -> None:
        # DISCARD ALL ends everything a session holds (settings, temporary tables, advisory
        # locks, prepared statements, LISTENs); it runs outside a transaction
        with self._guarded():
            self.conn.rollback()
            self.conn.autocommit = True
            try:
                self.conn.execute("DISCARD ALL")
                _settle(self.conn, where, lock_wait_seconds)
            finally:
                if not self.conn.broken:
                    self.conn.autocommit = False

    def commit(self) -> None:
        with self._guarded():
            self.conn.commit()

    def rollback(self) -> None:
        with self._guarded():
            self.conn.rollback()

    def commit_soon(self) -> None:
        with self._guarded():
            self.conn.execute("SET LOCAL synchronous_commit = off")

    def close(self) -> None:
        with suppress(psycopg.Error):
            self.conn.close()

    def execute(self, statement: str) -> int:
        with self._guarded():
            return self.conn.execute(statement.encode()).rowcount

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        with self._guarded():
            return list(self.conn.execute(statement.encode()).fetchall())

    def rows(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """A parametrized read (catalog queries) in the current transaction."""
        with self._guarded():
            return list(self.conn.execute(query, params).fetchall())

    def outside_transaction(self, statement: str, lock_seconds: float) -> None:
        """Run ``statement`` in a transaction of its own making (``CREATE INDEX
        CONCURRENTLY`` and ``DROP INDEX CONCURRENTLY`` refuse a transaction block), waiting
        at most ``lock_seconds`` for each lock. The change must have none open: committed or
        rolled back work is the caller's to settle first."""
        with self._guarded():
            previous = self.conn.execute("SELECT current_setting('lock_timeout')").fetchone()
            self.conn.rollback()  # the read above opened one
            self.conn.autocommit = True
            try:
                self.conn.execute(
                    "SELECT set_config('lock_timeout', %s, false)",
                    (f"{int(lock_seconds * 1000)}ms",),
                )
                try:
                    self.conn.execute(statement.encode())
                finally:
                    if not self.conn.broken:
                        self.conn.execute(
                            "SELECT set_config('lock_timeout', %s, false)",
                            (previous[0] if previous else "0",),
                        )
            finally:
                if not self.conn.broken:
                    self.conn.autocommit = False

    def lock_timeout(self, seconds: float) -> None:
        """Lock waits of the current transaction give up after ``seconds``."""
        with self._guarded():
            self.conn.execute(
                "SELECT set_config('lock_timeout', %s, true)", (f"{int(seconds * 1000)}ms",)
            )

    def forget(self, key: str) -> None:
        """Remove the markers recorded under ``key`` and under ``key:…``, in the current
        transaction (a cancelled statement may run again from its start)."""
        with self._guarded():
            self.conn.execute(
                psycopg.sql.SQL(
                    "DELETE FROM {} WHERE run_key = %s OR left(run_key, %s) = %s"
                ).format(_PROGRESS),
                (key, len(key) + 1, key + ":"),
            )

    def own_table(self, name: str) -> exp.Table:
        return exp.Table(
            this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(OWN_SCHEMA, quoted=True)
        )

    def own_tables(self, prefix: str) -> list[str]:
        with self._guarded():
            rows = self.conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname LIKE %s",
                (OWN_SCHEMA, prefix + "%"),
            ).fetchall()
            self.conn.rollback()
        return [str(r[0]) for r in rows]

    def marker(self, key: str) -> str | None:
        with self._guarded():
            row = self.conn.execute(
                psycopg.sql.SQL("SELECT result FROM {} WHERE run_key = %s FOR UPDATE").format(
                    _PROGRESS
                ),
                (key,),
            ).fetchone()
        return str(row[0]) if row else None

    def mark(self, key: str, result: str) -> None:
        # done_at: when the marker was written, just before its commit, as NOW(6) on MySQL
        # (now() would be when the transaction began)
        with self._guarded():
            try:
                self.conn.execute(
                    psycopg.sql.SQL(
                        "INSERT INTO {} (run_key, result, done_at) "
                        "VALUES (%s, %s, statement_timestamp())"
                    ).format(_PROGRESS),
                    (key, result),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise StatementError(f"progress marker {key} is already recorded") from exc

    def move(self, key: str, result: str) -> None:
        with self._guarded():
            self.conn.execute(
                psycopg.sql.SQL(
                    "UPDATE {} SET result = %s, done_at = statement_timestamp() WHERE run_key = %s"
                ).format(_PROGRESS),
                (result, key),
            )

    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: RowBlock | CsvRecords,
        mode: str,
        key: Sequence[str],
    ) -> int:
        """COPY FROM STDIN (RowBlock's text, or the CSV records themselves): straight into
        the table, or, where duplicates are to be left out or replaced, into a temporary
        table emptied at each commit and from there with INSERT … ON CONFLICT."""
        target = psycopg.sql.Identifier(*table.split("."))
        names = psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in columns)
        with self._guarded(), self.conn.cursor() as cur:
            if mode == "INSERT":
                self._copy(cur, target, columns, rows)
                return len(rows)
            staging = psycopg.sql.Identifier(f"opendms_load_{zlib.crc32(table.encode())}")
            cur.execute(
                psycopg.sql.SQL(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS"
                ).format(staging, target)
            )
            self._copy(cur, staging, columns, rows)
            changed = [c for c in columns if c not in key]
            on_conflict: psycopg.sql.Composable
            if mode == "REPLACE" and key and changed:
                on_conflict = psycopg.sql.SQL("({}) DO UPDATE SET {}").format(
                    psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(k) for k in key),
                    psycopg.sql.SQL(", ").join(
                        psycopg.sql.SQL("{} = EXCLUDED.{}").format(
                            psycopg.sql.Identifier(c), psycopg.sql.Identifier(c)
                        )
                        for c in changed
                    ),
                )
            else:
                on_conflict = psycopg.sql.SQL("DO NOTHING")
            cur.execute(
                psycopg.sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT {}").format(
                    target, names, names, staging, on_conflict
                )
            )
            written = cur.rowcount
            cur.execute(psycopg.sql.SQL("TRUNCATE {}").format(staging))
            return written

    def reads_csv(self, rows: CsvRecords) -> bool:
        return True

    @staticmethod
    def _copy(
        cur: psycopg.Cursor[Any],
        table: psycopg.sql.Composable,
        columns: Sequence[str],
        rows: RowBlock | CsvRecords,
    ) -> None:
        """COPY of ``rows``: text format for a RowBlock; CSV for CsvRecords, an empty field
        NULL in a column where OpenDMS makes it NULL (FORCE_NULL: quoted too) and the
        empty string elsewhere (FORCE_NOT_NULL)."""
        names = psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in columns)
        statement = psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)
        if isinstance(rows, CsvRecords):
            options: list[psycopg.sql.Composable] = [psycopg.sql.SQL("FORMAT csv, ENCODING 'UTF8'")]
            nulls = dict(zip(columns, rows.empty_is_null, strict=True))
            for option, chosen in (("FORCE_NULL", True), ("FORCE_NOT_NULL", False)):
                if these := [c for c in columns if nulls[c] is chosen]:
                    options.append(
                        psycopg.sql.SQL(option + " ({})").format(
                            psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in these)
                        )
                    )
            statement = psycopg.sql.SQL("{} ({})").format(
                statement, psycopg.sql.SQL(", ").join(options)
            )
        with cur.copy(statement) as copy:
            copy.write(rows.data if isinstance(rows, CsvRecords) else rows.text)

    def load(self) -> Load:
        with self._guarded():
            row = self.conn.execute(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND backend_type = 'client backend'), "
                "(SELECT extract(epoch FROM max(replay_lag)) FROM pg_stat_replication)"
            ).fetchone()
            self.conn.rollback()
        if row is None:
            return Load()
        return Load(int(row[0]), None if row[1] is None else float(row[1]))


BLOCK = 1 << 20  # bytes of COPY output handed on at a time
# ExecuteDataExport encodings as PostgreSQL names them
_PG_ENCODINGS = {
    "UTF8": "UTF8",
    "UTF8MB4": "UTF8",
    "GB2312": "EUC_CN",
    "GBK": "GBK",
    "ISO_8859_1": "LATIN1",
    "LATAIN1": "LATIN1",
    "CP1252": "WIN1252",
}


class PostgresSnapshot(Snapshot):
    def __init__(self, conn: psycopg.Connection[Any], query: str) -> None:
        self.conn, self.query = conn, query
        # the result's columns, reading no row (the query is the approved one)
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM (\n{query}\n) AS opendms_export LIMIT 0".encode())  # noqa: S608
            self.columns = [d.name for d in cur.description or ()]

    def batches(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        with _asking("exporting"), self.conn.cursor("opendms_export") as cur:
            cur.itersize = size
            cur.execute(self.query.encode())
            while batch := cur.fetchmany(size):
                yield batch

    def csv(self, encoding: str, limit: int) -> Iterator[bytes]:
        """COPY's rows read straight from libpq and joined into blocks: psycopg's ``Copy``
        costs a few microseconds of Python per row, more than the database's own work.

        libpq is asked without blocking, and the socket waited on with ``poll``: a blocking
        ``get_copy_data`` waits for the server inside libpq holding the GIL, so the thread
        compressing the zip (``exports.pipe``) stood still whenever the server was the
        slower side, which it is."""
        name = _PG_ENCODINGS.get(encoding, "UTF8")
        query = f"SELECT * FROM (\n{self.query}\n) AS opendms_export LIMIT {int(limit)}"  # noqa: S608
        copy = f"COPY (\n{query}\n) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING '{name}')"
        pgconn = self.conn.pgconn
        pgconn.send_query(copy.encode())
        started = pgconn.get_result()
        if started is None or started.status != pq.ExecStatus.COPY_OUT:
            self._finish(pgconn)
            raise TargetError(f"exporting failed: {_result_error(started, pgconn)}")
        readable = select.poll()
        readable.register(pgconn.socket, select.POLLIN)
        block = bytearray()
        while True:
            got, data = pgconn.get_copy_data(1)
            if got > 0:
                block += data
                if len(block) >= BLOCK:
                    yield bytes(block)
                    block.clear()
            elif got == 0:  # no whole row has arrived yet
                readable.poll()
                pgconn.consume_input()
            elif got == -1:
                break
            else:
                message = pgconn.error_message.decode(errors="replace").strip()
                self._finish(pgconn)
                raise TargetError(f"exporting failed: {message}")
        if block:
            yield bytes(block)
        ended = pgconn.get_result()
        self._finish(pgconn)
        if ended is None or ended.status != pq.ExecStatus.COMMAND_OK:
            raise TargetError(f"exporting failed: {_result_error(ended, pgconn)}")
        self.copied = int(ended.command_tuples or 0)

    @staticmethod
    def _finish(pgconn: Any) -> None:
        while pgconn.get_result() is not None:
            pass


def _result_error(result: Any, pgconn: Any) -> str:
    raw = (result.error_message if result is not None else b"") or pgconn.error_message
    text = raw.decode(errors="replace").strip()
    return text.removeprefix("ERROR:").strip() or "the server ended the COPY"


class PostgresConnector(Connector):
    def connect(self, database: str | None = None) -> psycopg.Connection[Any]:
        ep = self.endpoint
        try:
            return psycopg.connect(
                host=ep.host,
                port=ep.port or 5432,
                user=ep.user or None,
                password=ep.password or None,
                dbname=database or ep.database or "postgres",
                connect_timeout=ep.connect_timeout,
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            auth = "authentication" in text or "password" in text or "role" in text
            raise TargetError(
                f"cannot connect to postgresql at {ep.host}:{ep.port}: {text}", auth=auth
            ) from exc

    def ping(self, timeout: float | None = None) -> str:
        # The whole handshake is bounded by the endpoint's connect_timeout, and the server
        # says its version during it: nothing is waited for after that.
        with self.connect() as conn:
            version = conn.info.parameter_status("server_version")
            if version is None:
                row = conn.execute("SHOW server_version").fetchone()
                version = str(row[0]) if row else None
            return f"PostgreSQL {version}" if version else "PostgreSQL"

    def _session(self, where: tuple[str, str]) -> psycopg.Connection[Any]:
        conn = self.connect(where[0])
        conn.execute("SET default_transaction_read_only = on")
        conn.execute(
            psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(where[1]))
        )
        return conn

    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        with _asking("counting rows"), self._session(where) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            try:
                row = conn.execute(query.encode()).fetchone()
            except psycopg.errors.QueryCanceled:
                return None
            return int(row[0]) if row else 0

    def estimate(self, where: tuple[str, str], statement: str) -> int | None:
        with _asking("EXPLAIN"), self._session(where) as conn:
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {statement}".encode()).fetchone()
        plan = row[0][0]["Plan"] if row else None
        while plan and plan.get("Node Type") == "ModifyTable" and plan.get("Plans"):
            plan = plan["Plans"][0]  # the rows fed to the change, not what it returns
        return int(plan["Plan Rows"]) if plan else None

    def read(self, where: tuple[str, str], query: str) -> Iterator[dict[str, Any]]:
        # a named cursor streams from the server instead of loading every row
        with (
            _asking("reading"),
            self._session(where) as conn,
            conn.transaction(),
            conn.cursor("opendms_read", row_factory=psycopg.rows.dict_row) as cur,
        ):
            cur.execute(query.encode())
            yield from cur

    @contextmanager
    def snapshot(self, where: tuple[str, str], query: str, timeout: float) -> Iterator[Snapshot]:
        with _asking("exporting"), self.connect(where[0]) as conn:
            conn.autocommit = False
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            conn.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")
            conn.execute(
                psycopg.sql.SQL("SET LOCAL search_path TO {}").format(
                    psycopg.sql.Identifier(where[1])
                )
            )
            try:
                yield PostgresSnapshot(conn, query)
            finally:
                conn.rollback()

    def reclaim(self, where: tuple[str, str], table: str) -> None:
        # VACUUM runs outside a transaction; it frees dead rows for reuse without locking
        # out writers (VACUUM FULL would).
        schema, _, short = table.rpartition(".")
        name = psycopg.sql.Identifier(schema or where[1], short)
        with _asking("VACUUM"), self.connect(where[0]) as conn:
            conn.autocommit = True
            conn.execute(psycopg.sql.SQL("VACUUM (ANALYZE) {}").format(name))

    def replica_lag(self) -> float | None:
        # A replica whose replay caught up with what it received is not behind, however long
        # ago the last transaction on the primary was.
        with _asking("reading replication status"), self.connect() as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() "
                "IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 ELSE "
                "extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
            ).fetchone()
        if row is None or not row[0]:
            return None
        return float("inf") if row[1] is None else float(row[1])

    def change(self, where: tuple[str, str], lock_wait_seconds: int) -> Change:
        conn = self.connect(where[0])
        ident = psycopg.sql.Identifier
        try:
            _settle(conn, where, lock_wait_seconds)
            if conn.execute("SELECT to_regclass(%s)", (f"{OWN_SCHEMA}.progress",)).fetchone() == (
                None,
            ):
                with conn.transaction():
                    # Two first changes at once would race on IF NOT EXISTS; the lock orders them.
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('opendms.progress'))")
                    conn.execute(
                        psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(OWN_SCHEMA))
                    )
                    conn.execute(
                        psycopg.sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} (run_key text PRIMARY KEY, "
                            "result text NOT NULL, done_at timestamptz NOT NULL)"
                        ).format(_PROGRESS)
                    )
        except psycopg.Error as exc:
            conn.close()
            raise TargetError(
                f"OpenDMS keeps its progress markers in schema {OWN_SCHEMA} of database "
                f"{where[0]} and could not create it: {_error_text(exc)}; grant the instance's "
                "user CREATE on the database."
            ) from exc
        conn.autocommit = False
        # psycopg prepares a statement it runs often, on the server: a reset's DISCARD ALL
        # would drop them there while psycopg still counts on them
        conn.prepare_threshold = None
        return PostgresChange(conn)

    def console_connect(self, catalog: str) -> psycopg.Connection[Any]:
        return self.connect(catalog)

    def console_begin(
        self, conn: Any, where: tuple[str, str], *, read_only: bool, timeout: float
    ) -> None:
        ms = max(1, int(timeout * 1000))
        # one round trip: without parameters psycopg sends the statements as one simple query
        conn.execute(
            psycopg.sql.SQL(
                "BEGIN {}; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; "
                "SET LOCAL search_path TO {}"
            ).format(
                psycopg.sql.SQL("READ ONLY" if read_only else "READ WRITE"),
                psycopg.sql.Literal(ms),
                psycopg.sql.Literal(ms),
                psycopg.sql.Identifier(where[1]),
            )
        )

    def console_failure(self, exc: Exception) -> StatementError | TargetError | None:
        # no SQLSTATE: the socket broke; 08…: a connection exception; 57P01…03: the server
        # ended the session (pg_terminate_backend, a shutdown): the connection is gone
        if isinstance(exc, psycopg.OperationalError) and (
            exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))
        ):
            return TargetError(f"the connection to the database broke: {_error_text(exc)}")
        if isinstance(exc, psycopg.Error):
            return StatementError(
                _error_text(exc),
                code=exc.sqlstate,
                timed_out=isinstance(exc, psycopg.errors.QueryCanceled),
            )
        return None

    def console_text(self, statement: str) -> Any:
        return statement.encode()  # bytes: psycopg reads no placeholders in them

    def definitions(
        self, where: tuple[str, str], names: Collection[str] | None = None
    ) -> dict[str, Table]:
        with _asking("reading table definitions"), self.connect(where[0]) as conn:
            return read_definitions(conn, where[1], names)

    def try_script(
        self,
        where: tuple[str, str],
        setup: Sequence[str],
        script: Sequence[str],
        names: Sequence[str],
    ) -> dict[str, Table]:
        with self.connect(where[0]) as conn:
            return try_postgres(conn, setup, script, names, read_definitions, _error_text)

    def schemas(self, only: tuple[str, str] | None = None) -> list[SchemaInfo]:
        try:
            with self.connect() as conn:
                rows = conn.execute(
                    "SELECT datname, pg_encoding_to_char(encoding) FROM pg_database "
                    "WHERE NOT datistemplate AND datallowconn AND "
                    "(%(db)s::text IS NULL OR datname = %(db)s) ORDER BY datname",
                    {"db": only[0] if only else None},
                ).fetchall()
            out: list[SchemaInfo] = []
            for datname, encoding in rows:
                try:
                    conn = self.connect(datname)
                except TargetError:
                    # Dropped since it was listed, or not ours to CONNECT to: not a schema we
                    # can describe, and no reason to fail the others.
                    continue
                with conn:
                    try:
                        out += self._describe(conn, datname, encoding, only[1] if only else None)
                    except psycopg.OperationalError:
                        if only is not None:
                            raise
                        continue  # dropped while we read it
            return out
        except psycopg.Error as exc:
            raise TargetError(f"reading metadata failed: {exc}") from exc

    @staticmethod
    def _describe(
        conn: psycopg.Connection[Any], catalog: str, encoding: str, schema: str | None
    ) -> list[SchemaInfo]:
        names = [
            r[0] for r in conn.execute(_SCHEMAS, {"schema": schema, "own": OWN_SCHEMA}).fetchall()
        ]
        schemas = {n: SchemaInfo(catalog, n, encoding) for n in names}
        tables: dict[tuple[str, str], TableInfo] = {}
        for sch, name, ttype, rows, size, comment in conn.execute(
            _TABLES, {"schemas": names}
        ).fetchall():
            if size is None:  # dropped while it was read: pg_total_relation_size found none
                continue
            table = TableInfo(name, ttype, "", encoding, int(rows), int(size), comment)
            tables[(sch, name)] = table
            schemas[sch].tables.append(table)
        for row in conn.execute(_COLUMNS, {"schemas": names}).fetchall():
            sch, tname, col, pos, ctype, nullable, length, prec, scale, auto, default, comment = row
            owner = tables.get((sch, tname))
            if owner is not None:
                owner.columns.append(
                    ColumnInfo(
                        col,
                        int(pos),
                        ctype,
                        bool(nullable),
                        length,
                        prec,
                        scale,
                        bool(auto),
                        default,
                        comment,
                    )
                )
        found: dict[tuple[str, str], list[IndexInfo]] = defaultdict(list)
        for sch, tname, iname, primary, unique, cols, comment in conn.execute(
            _INDEXES, {"schemas": names}
        ).fetchall():
            kind = "PRIMARY" if primary else "UNIQUE" if unique else "NORMAL"
            found[(sch, tname)].append(IndexInfo(iname, kind, list(cols), comment))
        for key, indexes in found.items():
            if key in tables:
                tables[key].indexes = indexes
        return list(schemas.values())
