"""What lock-free DDL on PostgreSQL reads from the catalog of the table it changes: whether an
index is there and valid, the table's key, columns, indexes, foreign keys, sequences,
grants, and what depends on its name (which a shadow copy's swap would break).

Each read runs in the change's current transaction (``PostgresChange.rows``): the caller
decides whether it is the swap's own, under its locks, or a short one of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from opendms.schema.model import Column, Table
from opendms.targets.postgres import PostgresChange


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind: r table, p partitioned table, i index…
    persistence: str  # p permanent, u unlogged, t temporary
    partition: bool  # a partition of another table
    owner: str
    tablespace: str  # "" for the database's default
    options: tuple[str, ...]  # reloptions: "fillfactor=70"…
    replica_identity: str  # d default, n nothing, f full, i an index
    row_security: bool
    comment: str | None


_RELATION = """
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relpersistence::text, c.relispartition,
       pg_get_userbyid(c.relowner), COALESCE(t.spcname, ''), COALESCE(c.reloptions, '{}'),
       c.relreplident::text, c.relrowsecurity, obj_description(c.oid, 'pg_class')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
WHERE c.oid = to_regclass(%s)
"""


def relation(change: PostgresChange, name: str) -> Relation | None:
    """The relation ``name`` (as SQL writes it: ``t``, ``s.t``, ``"T"``) names on the
    change's search path; None when there is none."""
    found = change.rows(_RELATION, (name,))
    if not found:
        return None
    row = found[0]
    return Relation(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        bool(row[5]),
        str(row[6]),
        str(row[7]),
        tuple(row[8]),
        str(row[9]),
        bool(row[10]),
        None if row[11] is None else str(row[11]),
    )


def index_valid(change: PostgresChange, name: str) -> bool | None:
    """Whether index ``name`` is valid (a ``CREATE INDEX CONCURRENTLY`` that failed leaves it
    invalid); None when there is no such index."""
    found = change.rows(
        "SELECT i.indisvalid AND i.indisready FROM pg_index i WHERE i.indexrelid = to_regclass(%s)",
        (name,),
    )
    return bool(found[0][0]) if found else None


def volatility(change: PostgresChange, names: Iterable[str]) -> dict[str, str]:
    """The most volatile of each function's overloads (``v`` > ``s`` > ``i``), by name;
    names of no function are left out."""
    wanted = sorted({n.lower() for n in names})
    if not wanted:
        return {}
    rows = change.rows(
        "SELECT proname, CASE WHEN bool_or(provolatile = 'v') THEN 'v' "
        "WHEN bool_or(provolatile = 's') THEN 's' ELSE 'i' END "
        "FROM pg_proc WHERE proname = ANY(%s) GROUP BY proname",
        (wanted,),
    )
    return {str(r[0]): str(r[1]) for r in rows}


def checked_domains(change: PostgresChange, names: Iterable[str]) -> set[str]:
    """Which of ``names`` (type names as SQL writes them) are domains with constraints."""
    found = set()
    for name in {n for n in names if n}:
        rows = change.rows(
            "SELECT EXISTS (SELECT 1 FROM pg_type t JOIN pg_constraint c ON c.contypid = t.oid "
            "WHERE t.oid = to_regtype(%s) AND t.typtype = 'd')",
            (name,),
        )
        if rows and rows[0][0]:
            found.add(name)
    return found


def primary_key(change: PostgresChange, oid: int) -> tuple[str, ...]:
    rows = change.rows(
        "SELECT a.attname FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.ord",
        (oid,),
    )
    return tuple(str(r[0]) for r in rows)


@dataclass(frozen=True)
class ColumnFacts:
    name: str
    generated: bool  # a stored generated column: computed, never written
    identity: str  # "" / "a" (GENERATED ALWAYS) / "d" (BY DEFAULT)


def columns(change: PostgresChange, oid: int) -> list[ColumnFacts]:
    rows = change.rows(
        "SELECT attname, attgenerated <> '', attidentity::text FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (oid,),
    )
    return [ColumnFacts(str(r[0]), bool(r[1]), str(r[2])) for r in rows]


@dataclass(frozen=True)
class IndexFacts:
    name: str
    primary: bool
    unique: bool
    columns: tuple[str, ...]  # expression parts as "" (their text is not compared)


def indexes(change: PostgresChange, oid: int) -> list[IndexFacts]:
    """The table's indexes in the order of their OIDs (the order ``CREATE TABLE … LIKE …
    INCLUDING INDEXES`` makes them in)."""
    rows = change.rows(
        "SELECT c.relname, i.indisprimary, i.indisunique, "
        "ARRAY(SELECT COALESCE(a.attname, '') FROM unnest(i.indkey) WITH ORDINALITY AS k(n, o) "
        "LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s ORDER BY i.indexrelid",
        (oid,),
    )
    return [IndexFacts(str(r[0]), bool(r[1]), bool(r[2]), tuple(r[3])) for r in rows]


@dataclass(frozen=True)
class ForeignKeyFacts:
    name: str
    definition: str  # pg_get_constraintdef: FOREIGN KEY (a) REFERENCES u(id) …
    columns: tuple[str, ...]


def foreign_keys(change: PostgresChange, oid: int) -> list[ForeignKeyFacts]:
    """The foreign keys the table holds (a self-reference among them)."""
    rows = change.rows(
        "SELECT c.conname, pg_get_constraintdef(c.oid), "
        "ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, o) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_constraint c WHERE c.conrelid = %s AND c.contype = 'f' ORDER BY c.conname",
        (oid,),
    )
    return [ForeignKeyFacts(str(r[0]), str(r[1]), tuple(r[2])) for r in rows]


@dataclass(frozen=True)
class SequenceFacts:
    name: str  # regclass text
    column: str
    identity: bool  # an identity column's own sequence (else a serial's, owned by the column)


def sequences(change: PostgresChange, oid: int) -> list[SequenceFacts]:
    rows = change.rows(
        "SELECT d.objid::regclass::text, a.attname, d.deptype = 'i' FROM pg_depend d "
        "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "AND d.refobjid = %s AND d.deptype IN ('a', 'i') ORDER BY a.attnum",
        (oid,),
    )
    return [SequenceFacts(str(r[0]), str(r[1]), bool(r[2])) for r in rows]


@dataclass(frozen=True)
class Grant:
    privilege: str  # SELECT, INSERT…
    grantee: str  # a role name; "" for PUBLIC
    grantable: bool
    column: str = ""  # a column's own grant


def grants(change: PostgresChange, oid: int) -> list[Grant]:
    """The table's privileges and its columns', as GRANT would give them again (the owner's
    own, which every owner has, left out)."""
    rows = change.rows(
        "SELECT g.privilege_type, CASE WHEN g.grantee = 0 THEN '' "
        "ELSE pg_get_userbyid(g.grantee) END, g.is_grantable, '' "
        "FROM pg_class c, aclexplode(c.relacl) g WHERE c.oid = %(oid)s "
        "AND g.grantee <> c.relowner "
        "UNION ALL "
        "SELECT g.privilege_type, CASE WHEN g.grantee = 0 THEN '' "
        "ELSE pg_get_userbyid(g.grantee) END, g.is_grantable, a.attname "
        "FROM pg_attribute a, aclexplode(a.attacl) g WHERE a.attrelid = %(oid)s "
        "AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY 4, 2, 1",
        {"oid": oid},
    )
    return [Grant(str(r[0]), str(r[1]), bool(r[2]), str(r[3])) for r in rows]


def blockers(change: PostgresChange, oid: int, own_triggers: Iterable[str]) -> list[str]:
    """What holds on to the table by its identity, and would keep pointing at the old table
    after a rename swapped a copy in (or be lost with it): other tables' foreign keys, views,
    rules, policies, triggers, publications, inheritance, objects of its row type. Each
    named as PostgreSQL describes it."""
    ours = sorted(own_triggers)
    rows = change.rows(
        """
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d
        WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s AND d.deptype = 'n'
          AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.oid = d.objid AND c.conrelid = %(oid)s))
          AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (
                SELECT 1 FROM pg_attrdef x WHERE x.oid = d.objid AND x.adrelid = %(oid)s))
        UNION
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d JOIN pg_class c ON c.reltype = d.refobjid
        WHERE d.refclassid = 'pg_type'::regclass AND c.oid = %(oid)s AND d.deptype = 'n'
        UNION
        SELECT 'rule ' || quote_ident(r.rulename) FROM pg_rewrite r
        WHERE r.ev_class = %(oid)s AND r.rulename <> '_RETURN'
        UNION
        SELECT 'policy ' || quote_ident(p.polname) FROM pg_policy p WHERE p.polrelid = %(oid)s
        UNION
        SELECT 'trigger ' || quote_ident(t.tgname) FROM pg_trigger t
        WHERE t.tgrelid = %(oid)s AND NOT t.tgisinternal AND NOT t.tgname = ANY(%(ours)s)
        UNION
        SELECT 'publication ' || quote_ident(p.pubname) FROM pg_publication_rel r
        JOIN pg_publication p ON p.oid = r.prpubid WHERE r.prrelid = %(oid)s
        UNION
        SELECT 'inheritance with ' || i.inhrelid::regclass::text FROM pg_inherits i
        WHERE i.inhparent = %(oid)s
        UNION
        SELECT 'inheritance from ' || i.inhparent::regclass::text FROM pg_inherits i
        WHERE i.inhrelid = %(oid)s
        ORDER BY 1
        """,
        {"oid": oid, "ours": ours},
    )
    return [str(r[0]) for r in rows]


def estimated_rows(change: PostgresChange, oid: int, name: str) -> int:
    """The server's estimate of the table's rows: ``reltuples`` once VACUUM or ANALYZE has
    counted them, else the planner's guess from its size (never a count)."""
    found = change.rows("SELECT reltuples, relpages FROM pg_class WHERE oid = %s", (oid,))
    if found and found[0][0] is not None and float(found[0][0]) >= 0 and int(found[0][1]) > 0:
        return int(float(found[0][0]))
    plan = change.rows(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {name}")  # noqa: S608
    try:
        return int(plan[0][0][0]["Plan"]["Plan Rows"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0


def relations_named(change: PostgresChange, schema: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` a relation (table, index, sequence…) of ``schema`` holds."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    rows = change.rows(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (schema, wanted),
    )
    return {str(r[0]) for r in rows}


def relations_of(change: PostgresChange, oid: int) -> list[tuple[str, str]]:
    """The names of the table's indexes and of the sequences it owns (kind ``i`` or ``S``)."""
    rows = change.rows(
        "SELECT c.relname, c.relkind::text FROM pg_index i JOIN pg_class c "
        "ON c.oid = i.indexrelid WHERE i.indrelid = %(oid)s "
        "UNION ALL "
        "SELECT s.relname, 'S' FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
        "AND s.relkind = 'S' WHERE d.classid = 'pg_class'::regclass "
        "AND d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s "
        "AND d.deptype IN ('a', 'i') ORDER BY 1",
        {"oid": oid},
    )
    return [(str(r[0]), str(r[1])) for r in rows]


def constraints_of(change: PostgresChange, oid: int) -> list[tuple[str, str]]:
    """The table's constraints: name and kind (``c`` check, ``f`` foreign key, ``p``, ``u``,
    ``x``: those that are an index's too)."""
    rows = change.rows(
        "SELECT conname, contype::text FROM pg_constraint WHERE conrelid = %s ORDER BY 1", (oid,)
    )
    return [(str(r[0]), str(r[1])) for r in rows]


def replica_index(change: PostgresChange, oid: int) -> str | None:
    """The index the table's REPLICA IDENTITY USING INDEX names, if it names one."""
    rows = change.rows(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s AND i.indisreplident",
        (oid,),
    )
    return str(rows[0][0]) if rows else None


def current_user(change: PostgresChange) -> str:
    rows = change.rows("SELECT current_user")
    return str(rows[0][0]) if rows else ""


def shape(change: PostgresChange, name: str) -> Table | None:
    """The columns (type as ``format_type`` spells it, nullability) and primary key of table
    ``name``: what planning a statement reads when it was given no definition."""
    found = relation(change, name)
    if found is None:
        return None
    rows = change.rows(
        "SELECT attname, format_type(atttypid, atttypmod), NOT attnotnull FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (found.oid,),
    )
    return Table(
        found.name,
        tuple(Column(str(r[0]), str(r[1]), bool(r[2])) for r in rows),
        primary_key(change, found.oid),
    )
