"""PostgreSQL targets through psycopg 3: every (database, schema) is one DMS database."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg
import psycopg.sql

from opendms.targets.base import (
    ColumnInfo,
    Connector,
    IndexInfo,
    SchemaInfo,
    TableInfo,
    TargetError,
)

_SCHEMAS = """
SELECT nspname FROM pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema')
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

    def ping(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0]}" if row else "PostgreSQL"

    def _session(self, where: tuple[str, str]) -> psycopg.Connection[Any]:
        conn = self.connect(where[0])
        conn.execute("SET default_transaction_read_only = on")
        conn.execute(
            psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(where[1]))
        )
        return conn

    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        with self._session(where) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            try:
                row = conn.execute(query).fetchone()
            except psycopg.errors.QueryCanceled:
                return None
            return int(row[0]) if row else 0

    def estimate(self, where: tuple[str, str], statement: str) -> int | None:
        with self._session(where) as conn:
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {statement}").fetchone()
        plan = row[0][0]["Plan"] if row else None
        while plan and plan.get("Node Type") == "ModifyTable" and plan.get("Plans"):
            plan = plan["Plans"][0]  # the rows fed to the change, not what it returns
        return int(plan["Plan Rows"]) if plan else None

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
        names = [r[0] for r in conn.execute(_SCHEMAS, {"schema": schema}).fetchall()]
        schemas = {n: SchemaInfo(catalog, n, encoding) for n in names}
        tables: dict[tuple[str, str], TableInfo] = {}
        for sch, name, ttype, rows, size, comment in conn.execute(
            _TABLES, {"schemas": names}
        ).fetchall():
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
