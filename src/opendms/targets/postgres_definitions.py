"""Table definitions (``schema.model``) read from PostgreSQL's catalog (pg_catalog): four
queries for a whole schema, whatever its number of tables.

An identity column and a serial (a sequence the column owns, drawn by its default) are both
``auto_increment`` without a default: the sequence's name is the server's. A UNIQUE
constraint is an index with ``constraint`` set (it is added and dropped by ALTER TABLE, not
CREATE INDEX); the primary key's index is the primary key. Literal defaults lose the cast
``pg_get_expr`` adds to them; expressions lose their outer parentheses.

The queries are put together from fixed SQL and placeholders only (hence their S608 waivers).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

import psycopg

from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from opendms.schema.spelling import postgres_default, postgres_type, unwrapped

# The schema's base tables (partitions are read as their parent), ``names`` only if given.
_TABLES = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND (%(names)s::text[] IS NULL OR c.relname = ANY(%(names)s::text[]))
"""
_TABLE_ROWS = f"""
SELECT c.oid, c.relname, COALESCE(obj_description(c.oid, 'pg_class'), ''),
       GREATEST(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
FROM pg_class c WHERE c.oid IN ({_TABLES})
"""  # noqa: S608
_COLUMNS = f"""
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid),
       COALESCE(col_description(a.attrelid, a.attnum), ''),
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN co.collname END,
       EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid
               WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
                 AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
                 AND dep.deptype = 'a' AND s.relkind = 'S')
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid IN ({_TABLES}) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""  # noqa: S608
_CONSTRAINTS = f"""
SELECT con.conrelid, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       rn.nspname, rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
       con.confupdtype, con.confdeltype, pg_get_expr(con.conbin, con.conrelid)
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid IN ({_TABLES}) AND con.contype IN ('p', 'f', 'c')
ORDER BY con.conrelid, con.conname
"""  # noqa: S608
# Secondary indexes (a primary key's is the key; an exclusion constraint's is not read)
_INDEXES = f"""
SELECT ix.indrelid, i.relname, ix.indisunique, am.amname,
       ARRAY(SELECT COALESCE(a.attname, pg_get_indexdef(ix.indexrelid, k, true))
             FROM generate_series(1, ix.indnkeyatts) k
             LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid
                  AND a.attnum = ix.indkey[k - 1] AND ix.indkey[k - 1] <> 0
             ORDER BY k),
       ARRAY(SELECT (ix.indoption[k - 1] & 1) = 1 FROM generate_series(1, ix.indnkeyatts) k
             ORDER BY k),
       pg_get_expr(ix.indpred, ix.indrelid),
       COALESCE(obj_description(ix.indexrelid, 'pg_class'), ''),
       con.contype
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_am am ON am.oid = i.relam
LEFT JOIN pg_constraint con ON con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid
     AND con.contype IN ('p', 'u', 'x')
WHERE ix.indrelid IN ({_TABLES}) AND NOT ix.indisprimary
  AND (con.contype IS NULL OR con.contype = 'u')
"""  # noqa: S608
_ACTIONS = {"a": "", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def read_definitions(
    conn: psycopg.Connection[Any], schema: str, names: Collection[str] | None
) -> dict[str, Table]:
    if names is not None and not names:
        return {}
    args = {"schema": schema, "names": list(names) if names is not None else None}
    tables = {r[0]: r[1:] for r in conn.execute(_TABLE_ROWS, args).fetchall()}
    columns: dict[int, list[Column]] = defaultdict(list)
    for row in conn.execute(_COLUMNS, args).fetchall():
        columns[row[0]].append(_column(row[1:]))
    keys: dict[int, tuple[str, tuple[str, ...]]] = {}
    fks: dict[int, list[ForeignKey]] = defaultdict(list)
    checks: dict[int, list[Check]] = defaultdict(list)
    for row in conn.execute(_CONSTRAINTS, args).fetchall():
        oid, name, kind, cols, ref_schema, ref_table, ref_cols, update, delete, expression = row
        if kind == "p":
            keys[oid] = (name, tuple(cols))
        elif kind == "f":
            fks[oid].append(
                ForeignKey(
                    name=name,
                    columns=tuple(cols),
                    ref_table=ref_table if ref_schema == schema else f"{ref_schema}.{ref_table}",
                    ref_columns=tuple(ref_cols),
                    on_delete=_ACTIONS.get(delete, ""),
                    on_update=_ACTIONS.get(update, ""),
                )
            )
        else:
            checks[oid].append(Check(name, unwrapped(expression or "")))
    indexes: dict[int, list[Index]] = defaultdict(list)
    for oid, name, unique, method, parts, desc, where, comment, contype in conn.execute(
        _INDEXES, args
    ).fetchall():
        indexes[oid].append(
            Index(
                name=name,
                columns=tuple(parts),
                unique=bool(unique),
                descending=tuple(desc) if any(desc) else (),
                method="" if method == "btree" else method,
                where=unwrapped(where) if where else "",
                constraint=contype == "u",
                comment=comment,
            )
        )
    out: dict[str, Table] = {}
    for oid, (name, comment, rows, size) in tables.items():
        key_name, key = keys.get(oid, ("", ()))
        out[name] = Table(
            name=name,
            columns=tuple(columns[oid]),
            primary_key=key,
            primary_key_name=key_name,
            indexes=tuple(sorted(indexes[oid], key=lambda i: i.name)),
            foreign_keys=tuple(fks[oid]),
            checks=tuple(checks[oid]),
            comment=comment,
            rows=int(rows),
            size_bytes=int(size),
        )
    return out


def _column(row: tuple[Any, ...]) -> Column:
    name, ctype, nullable, identity, generated, default, comment, collation, owns_sequence = row
    type_ = postgres_type(ctype)
    serial = owns_sequence and str(default or "").startswith("nextval(")
    auto = bool(identity) or serial
    if generated:
        expression, default = unwrapped(default or ""), None
    else:
        expression = ""
        default = None if auto or default is None else postgres_default(default, type_)
    return Column(
        name=name,
        type=type_,
        nullable=bool(nullable),
        default=default,
        auto_increment=auto,
        comment=comment,
        collation=collation or "",
        generated=expression,
        generated_stored=bool(generated),
    )
