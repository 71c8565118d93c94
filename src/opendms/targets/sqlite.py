"""SQLite targets: a database file (the embedded demo, and tests)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlglot import exp

from opendms.schema.model import Column, ForeignKey, Index, Table
from opendms.schema.spelling import compact
from opendms.targets.base import (
    OWN_SCHEMA,
    Change,
    ColumnInfo,
    Connector,
    CsvRecords,
    IndexInfo,
    InsertKeys,
    RowBlock,
    SchemaInfo,
    Snapshot,
    StatementError,
    TableInfo,
    TargetError,
)
from opendms.targets.scratch import try_sqlite

# INSERT … RETURNING arrived in SQLite 3.35 (the library Python links, not a server's).
_KEYS = InsertKeys(
    sqlite3.sqlite_version_info >= (3, 35), server=f"SQLite {sqlite3.sqlite_version}"
)

# One file is one database, so OpenDMS's table sits beside the user's, behind a prefix.
_PROGRESS = f'"{OWN_SCHEMA}_progress"'


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _guarded() -> Iterator[None]:
    """A busy file is a lock lost (the executor waits and tries again); anything else is the
    statement's error."""
    try:
        yield
    except sqlite3.Error as exc:
        text = str(exc)
        raise StatementError(text, lost_lock="locked" in text or "busy" in text) from exc


class SqliteChange(Change):
    concurrent_writes = False

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def begin(self) -> None:
        with _guarded():
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        with _guarded():
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        with _guarded():
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def execute(self, statement: str) -> int:
        with _guarded():
            return self.conn.execute(statement).rowcount

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        with _guarded():
            return list(self.conn.execute(statement).fetchall())

    def insert_keys(self) -> InsertKeys:
        return _KEYS

    def own_table(self, name: str) -> exp.Table:
        return exp.Table(this=exp.to_identifier(f"{OWN_SCHEMA}_{name}", quoted=True))

    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: RowBlock | CsvRecords,
        mode: str,
        key: Sequence[str],
    ) -> int:
        assert isinstance(rows, RowBlock), "reads_csv: SQLite has no CSV loader"
        verb = {"INSERT": "INSERT", "IGNORE": "INSERT OR IGNORE", "REPLACE": "INSERT OR REPLACE"}
        names = ", ".join(_quote(c) for c in columns)
        marks = ", ".join("?" * len(columns))
        statement = f"{verb[mode]} INTO {_quote(table)} ({names}) VALUES ({marks})"
        with _guarded():
            return self.conn.executemany(statement, rows.rows).rowcount

    def own_tables(self, prefix: str) -> list[str]:
        own = f"{OWN_SCHEMA}_"
        with _guarded():
            rows = self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
                (own + prefix + "%",),
            ).fetchall()
        return [str(n)[len(own) :] for (n,) in rows if str(n).startswith(own)]

    def marker(self, key: str) -> str | None:
        with _guarded():
            row = self.conn.execute(
                f"SELECT result FROM {_PROGRESS} WHERE run_key = ?",  # noqa: S608
                (key,),
            ).fetchone()
        return str(row[0]) if row else None

    def mark(self, key: str, result: str) -> None:
        try:
            self.conn.execute(
                f"INSERT INTO {_PROGRESS} (run_key, result, done_at) "  # noqa: S608
                "VALUES (?, ?, datetime('now'))",
                (key, result),
            )
        except sqlite3.IntegrityError as exc:
            raise StatementError(f"progress marker {key} is already recorded") from exc
        except sqlite3.Error as exc:
            raise StatementError(str(exc), lost_lock="locked" in str(exc)) from exc

    def move(self, key: str, result: str) -> None:
        with _guarded():
            self.conn.execute(
                f"UPDATE {_PROGRESS} SET result = ?, done_at = datetime('now') "  # noqa: S608
                "WHERE run_key = ?",
                (result, key),
            )


class SqliteSnapshot(Snapshot):
    def __init__(self, cur: sqlite3.Cursor) -> None:
        self.cur = cur
        self.columns = [d[0] for d in cur.description or ()]

    def batches(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        try:
            while batch := self.cur.fetchmany(size):
                yield batch
        except sqlite3.Error as exc:
            raise TargetError(f"exporting failed: {exc}") from exc


class SqliteConnector(Connector):
    def insert_keys(self) -> InsertKeys:
        return _KEYS

    def _connect(self) -> sqlite3.Connection:
        path = Path(self.endpoint.host)
        if not path.is_file():
            raise TargetError(f"SQLite database file {self.endpoint.host} does not exist.")
        try:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=self.endpoint.connect_timeout
            )
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise TargetError(
                f"{self.endpoint.host} is not a readable SQLite database: {exc}"
            ) from exc
        return conn

    def ping(self, timeout: float | None = None) -> str:
        with self._connect() as conn:  # a local file: nothing to wait for
            return f"SQLite {conn.execute('SELECT sqlite_version()').fetchone()[0]}"

    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        with self._connect() as conn:  # opened read-only
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                row = conn.execute(query).fetchone()
            except sqlite3.Error as exc:
                if "interrupted" in str(exc):
                    return None
                raise TargetError(f"counting rows failed: {exc}") from exc
            return int(row[0]) if row else 0

    def estimate(self, where: tuple[str, str], statement: str) -> int | None:
        return None  # SQLite's planner gives no row estimates

    def read(self, where: tuple[str, str], query: str) -> Iterator[dict[str, Any]]:
        conn = self._connect()
        try:
            cur = conn.execute(query)
            names = [d[0] for d in cur.description or ()]
            for row in cur:
                yield dict(zip(names, row, strict=True))
        except sqlite3.Error as exc:
            raise TargetError(f"reading {self.endpoint.host} failed: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def snapshot(self, where: tuple[str, str], query: str, timeout: float) -> Iterator[Snapshot]:
        deadline = time.monotonic() + timeout
        conn = self._connect()  # opened read-only
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            conn.execute("BEGIN")  # the first read fixes the snapshot for the rest
            yield SqliteSnapshot(conn.execute(query))
        except sqlite3.Error as exc:
            raise TargetError(f"exporting failed: {exc}") from exc
        finally:
            conn.close()

    def reclaim(self, where: tuple[str, str], table: str) -> None:
        conn = self._connect()
        try:
            conn.execute("VACUUM")  # SQLite gives space back for the whole file only
        except sqlite3.Error as exc:
            raise TargetError(f"VACUUM failed: {exc}") from exc
        finally:
            conn.close()

    def change(self, where: tuple[str, str], lock_wait_seconds: int) -> Change:
        self._connect().close()  # the same checks: the file exists and is a database
        conn = sqlite3.connect(self.endpoint.host, timeout=lock_wait_seconds, isolation_level=None)
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_PROGRESS} (run_key TEXT PRIMARY KEY, "
                "result TEXT NOT NULL, done_at TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            conn.close()
            raise TargetError(f"cannot write to {self.endpoint.host}: {exc}") from exc
        return SqliteChange(conn)

    def console_connect(self, catalog: str) -> sqlite3.Connection:
        self._connect().close()  # the same checks: the file exists and is a database
        return sqlite3.connect(
            self.endpoint.host,
            timeout=self.endpoint.connect_timeout,
            isolation_level=None,
            check_same_thread=False,  # pooled: lent to one thread at a time
        )

    def console_begin(
        self, conn: Any, where: tuple[str, str], *, read_only: bool, timeout: float
    ) -> None:
        # SQLite has no server to stop a statement: its progress handler is the engine's own
        # way to interrupt one, from inside the statement.
        deadline = time.monotonic() + timeout
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        conn.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
        conn.execute("BEGIN")

    def console_failure(self, exc: Exception) -> StatementError | TargetError | None:
        if isinstance(exc, sqlite3.Error):
            text = str(exc)
            return StatementError(text, timed_out="interrupted" in text)
        return None

    def try_script(
        self,
        where: tuple[str, str],
        setup: Sequence[str],
        script: Sequence[str],
        names: Sequence[str],
    ) -> dict[str, Table]:
        try:
            return try_sqlite(setup, script, names, _definition)
        except sqlite3.DatabaseError as exc:
            raise TargetError(f"trying the script failed: {exc}") from exc

    def definitions(
        self, where: tuple[str, str], names: Collection[str] | None = None
    ) -> dict[str, Table]:
        """From SQLite's PRAGMAs, a few per table (the file is local): columns, keys,
        indexes and foreign keys; SQLite keeps no comments, and its CHECKs only in the
        CREATE TABLE text, which is not read."""
        conn = self._connect()
        try:
            found = [
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE ? ESCAPE '\\' ORDER BY name",
                    (OWN_SCHEMA.replace("_", "\\_") + "\\_%",),
                )
            ]
            wanted = set(names) if names is not None else None
            return {n: _definition(conn, n) for n in found if wanted is None or n in wanted}
        except sqlite3.DatabaseError as exc:
            raise TargetError(
                f"reading table definitions of {self.endpoint.host} failed: {exc}"
            ) from exc
        finally:
            conn.close()

    def schemas(self, only: tuple[str, str] | None = None) -> list[SchemaInfo]:
        conn = self._connect()
        try:
            encoding = conn.execute("PRAGMA encoding").fetchone()[0]
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE ? ESCAPE '\\' "
                    "ORDER BY name",
                    (OWN_SCHEMA.replace("_", "\\_") + "\\_%",),
                )
            ]
            return [SchemaInfo("main", "main", encoding, [self._table(conn, n) for n in names])]
        except sqlite3.DatabaseError as exc:
            raise TargetError(f"reading the schema of {self.endpoint.host} failed: {exc}") from exc
        finally:
            conn.close()

    @staticmethod
    def _table(conn: sqlite3.Connection, name: str) -> TableInfo:
        q = _quote(name)
        columns = []
        pk: list[tuple[int, str]] = []
        for cid, col, ctype, notnull, default, pk_pos in conn.execute(f"PRAGMA table_info({q})"):
            columns.append(
                ColumnInfo(
                    name=col,
                    position=cid + 1,
                    column_type=ctype or "",
                    nullable=not notnull and not pk_pos,
                    default_value=default,
                )
            )
            if pk_pos:
                pk.append((pk_pos, col))
        indexes = []
        if pk:
            indexes.append(IndexInfo("PRIMARY", "PRIMARY", [c for _, c in sorted(pk)]))
            if len(pk) == 1:
                only = next(c for c in columns if c.name == pk[0][1])
                only.auto_increment = only.column_type.upper() == "INTEGER"
        for _seq, iname, unique, origin, _partial in conn.execute(f"PRAGMA index_list({q})"):
            if origin == "pk":
                continue
            cols = [r[2] for r in conn.execute(f"PRAGMA index_info({_quote(iname)})")]
            indexes.append(IndexInfo(iname, "UNIQUE" if unique else "NORMAL", cols))
        rows = conn.execute(f"SELECT count(*) FROM {q}").fetchone()[0]  # noqa: S608
        return TableInfo(name=name, rows=rows, columns=columns, indexes=indexes)


_NO_ACTION = ("NO ACTION", "")


def _definition(conn: sqlite3.Connection, name: str) -> Table:
    q = _quote(name)
    columns = []
    key: list[tuple[int, str]] = []
    for _cid, col, ctype, notnull, default, pk_pos in conn.execute(f"PRAGMA table_info({q})"):
        columns.append(
            Column(
                name=col,
                type=compact(ctype or ""),
                nullable=not notnull and not pk_pos,
                default=default,
            )
        )
        if pk_pos:
            key.append((pk_pos, col))
    primary_key = tuple(c for _, c in sorted(key))
    if len(primary_key) == 1:  # INTEGER PRIMARY KEY: the rowid, numbered by SQLite
        rowid = primary_key[0]
        columns = [
            replace(c, auto_increment=True) if c.name == rowid and c.type == "integer" else c
            for c in columns
        ]
    indexes = []
    for _seq, iname, unique, origin, _partial in conn.execute(f"PRAGMA index_list({q})"):
        if origin == "pk":
            continue
        parts = [r for r in conn.execute(f"PRAGMA index_xinfo({_quote(iname)})") if r[5]]
        descending = tuple(bool(r[3]) for r in parts)
        indexes.append(
            Index(
                name=iname,
                columns=tuple(r[2] if r[2] is not None else "<expression>" for r in parts),
                unique=bool(unique),
                descending=descending if any(descending) else (),
                constraint=origin == "u",
            )
        )
    keys: dict[int, list[tuple[object, ...]]] = {}
    for row in conn.execute(f"PRAGMA foreign_key_list({q})"):
        keys.setdefault(row[0], []).append(row)
    fks = tuple(
        ForeignKey(
            name=f"{name}_fk_{fid}",  # SQLite keeps no names for them
            columns=tuple(str(r[3]) for r in rows),
            ref_table=str(rows[0][2]),
            ref_columns=tuple(str(r[4]) for r in rows),
            on_delete="" if rows[0][6] in _NO_ACTION else str(rows[0][6]),
            on_update="" if rows[0][5] in _NO_ACTION else str(rows[0][5]),
        )
        for fid, rows in sorted(keys.items())
    )
    rows = conn.execute(f"SELECT count(*) FROM {q}").fetchone()[0]  # noqa: S608
    return Table(
        name=name,
        columns=tuple(columns),
        primary_key=primary_key,
        indexes=tuple(sorted(indexes, key=lambda i: i.name)),
        foreign_keys=fks,
        rows=int(rows),
    )
