"""SQLite targets: a database file (the embedded demo, and tests)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from opendms.targets.base import (
    ColumnInfo,
    Connector,
    IndexInfo,
    SchemaInfo,
    TableInfo,
    TargetError,
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteConnector(Connector):
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

    def ping(self) -> str:
        with self._connect() as conn:
            return f"SQLite {conn.execute('SELECT sqlite_version()').fetchone()[0]}"

    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        with self._connect() as conn:  # opened read-only
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                row = conn.execute(query).fetchone()
            except sqlite3.OperationalError as exc:
                if "interrupted" in str(exc):
                    return None
                raise
            return int(row[0]) if row else 0

    def estimate(self, where: tuple[str, str], statement: str) -> int | None:
        return None  # SQLite's planner gives no row estimates

    def schemas(self, only: tuple[str, str] | None = None) -> list[SchemaInfo]:
        conn = self._connect()
        try:
            encoding = conn.execute("PRAGMA encoding").fetchone()[0]
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
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
