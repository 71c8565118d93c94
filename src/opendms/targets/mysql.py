"""MySQL and MariaDB targets through PyMySQL; metadata from information_schema in a few bulk
queries per instance rather than a query per table."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pymysql
import pymysql.cursors

from opendms.targets.base import (
    ColumnInfo,
    Connector,
    IndexInfo,
    SchemaInfo,
    TableInfo,
    TargetError,
)

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
# Server error codes that mean "who you are" rather than "where you are".
_AUTH_ERRORS = {1044, 1045, 1049, 1698}
# max_statement_time (MariaDB) and max_execution_time (MySQL) ran out.
_TIMED_OUT = {1969, 3024}


class MysqlConnector(Connector):
    def connect(self, database: str | None = None) -> pymysql.connections.Connection[Any]:
        ep = self.endpoint
        try:
            return pymysql.connect(
                host=ep.host,
                port=ep.port or 3306,
                user=ep.user,
                password=ep.password,
                database=database,
                connect_timeout=ep.connect_timeout,
                read_timeout=300,
                charset="utf8mb4",
                autocommit=True,
            )
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            text = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise TargetError(
                f"cannot connect to {ep.engine} at {ep.host}:{ep.port}: {text}",
                auth=code in _AUTH_ERRORS,
            ) from exc

    def ping(self) -> str:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            row = cur.fetchone()
            return str(row[0]) if row else ""

    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        with self.connect(where[1]) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()
            mariadb = "mariadb" in str(version[0] if version else "").lower()
            if mariadb:
                cur.execute("SET SESSION max_statement_time = %s", (timeout,))
            else:
                cur.execute("SET SESSION max_execution_time = %s", (int(timeout * 1000),))
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
        with self.connect(where[1]) as conn, conn.cursor() as cur:
            cur.execute(f"EXPLAIN {statement}")
            names = [d[0].lower() for d in cur.description or ()]
            if "rows" not in names:
                return None
            rows = [r[names.index("rows")] for r in cur.fetchall()]
            known = [int(r) for r in rows if r is not None]
            return max(known) if known else None

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
