"""The SQL of a shadow copy on PostgreSQL: a statement that would rewrite a live table runs on
an empty copy of it instead, which is filled in key order and kept current by triggers, then
renamed into the table's place (``execution.online_postgres_shadow`` runs it).

Writers and the copier take their row locks in one order: a writer locks its row of the
table, then its trigger the shadow's row; a chunk of the copy first locks its rows of the
table (``SELECT … FOR SHARE``, in key order), then writes theirs into the shadow (``ON
CONFLICT DO NOTHING``: what a trigger wrote is newer). A row a writer deletes while its
chunk is copied waits for the chunk, so the copy cannot bring it back, and no writer and
chunk wait on each other in a circle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from opendms.sql.chunks import Chunking
from opendms.sql.online_postgres import NAME_BYTES, folded

SOURCE = "opendms_src"  # the table's alias in the copy's statements


def quote(*parts: str) -> str:
    """A (qualified) name, each part quoted as PostgreSQL reads it back exactly."""
    return ".".join(exp.to_identifier(p, quoted=True).sql(dialect="postgres") for p in parts)


def literal(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="postgres")


def _fit(prefix: str, name: str, suffix: str) -> str:
    """``prefix + name + suffix`` with ``name`` cut so that it fits a PostgreSQL name."""
    room = NAME_BYTES - len((prefix + suffix).encode())
    return prefix + name.encode()[:room].decode(errors="ignore") + suffix


@dataclass(frozen=True)
class ShadowNames:
    """What a shadow copy names on the target, derived from the statement's key."""

    schema: str
    table: str
    tag: str  # 8 hex digits of the statement's key
    own_schema: str  # where the trigger function lives (OpenDMS's own schema)

    @property
    def shadow(self) -> str:
        return _fit("_", self.table, f"_{self.tag}_new")

    @property
    def old(self) -> str:
        return _fit("_", self.table, f"_{self.tag}_old")

    @property
    def function(self) -> str:
        return f"sync_{self.tag}"

    @property
    def trigger(self) -> str:
        return f"opendms_sync_{self.tag}"

    @property
    def truncate_trigger(self) -> str:
        return f"opendms_sync_{self.tag}_truncate"

    @property
    def qualified_table(self) -> str:
        return quote(self.schema, self.table)

    @property
    def qualified_shadow(self) -> str:
        return quote(self.schema, self.shadow)

    @property
    def qualified_function(self) -> str:
        return quote(self.own_schema, self.function)

    def aside(self, name: str) -> str:
        """A name for one of the old table's indexes or sequences, freeing ``name`` for the
        new table's."""
        return _fit("_", name, f"_{self.tag}_old")


def shadow_names(schema: str, table: str, key: str, own_schema: str) -> ShadowNames:
    return ShadowNames(schema, table, hashlib.sha256(key.encode()).hexdigest()[:8], own_schema)


def create_shadow(
    names: ShadowNames, persistence: str, options: Sequence[str], tablespace: str
) -> str:
    """The empty copy: the table's columns, defaults, constraints (but foreign keys), indexes,
    identity, storage, comments and statistics; its storage options and tablespace."""
    unlogged = "UNLOGGED " if persistence == "u" else ""
    text = (
        f"CREATE {unlogged}TABLE {names.qualified_shadow} "
        f"(LIKE {names.qualified_table} INCLUDING ALL)"
    )
    if options:
        text += f" WITH ({', '.join(options)})"
    if tablespace:
        text += f" TABLESPACE {quote(tablespace)}"
    return text


def alter_shadow(alter: str, names: ShadowNames, renamed: Mapping[str, str]) -> str:
    """The statement, run on the shadow; a constraint that is also an index (a key) is
    named there as the shadow's copy of it (``renamed``: the table's name -> the copy's),
    since index names are unique in a schema."""
    node = sqlglot.parse_one(alter, read="postgres")
    for action in node.args.get("actions") or []:
        if (
            isinstance(action, exp.Drop)
            and str(action.args.get("kind", "")).upper() == "CONSTRAINT"
        ):
            for target in action.args.get("tables") or action.expressions:
                name = folded(target)
                if name in renamed:
                    target.set("this", exp.to_identifier(renamed[name], quoted=True))
    node.set("this", exp.to_table(names.qualified_shadow, dialect="postgres"))
    return node.sql(dialect="postgres", comments=False, normalize_functions=False)


def _expression(text: str, qualifier: str) -> exp.Expression:
    """A USING expression over the table's columns, each column read from ``qualifier``."""
    select = sqlglot.parse_one(f"SELECT {text}", read="postgres")
    node: exp.Expression = select.expressions[0].copy()
    for column in list(node.find_all(exp.Column)):
        column.set("table", exp.to_identifier(qualifier, quoted=qualifier != "NEW"))
        column.set("db", None)
    return node


def copied(
    shadow_columns: Iterable[str],
    table_columns: Iterable[str],
    added: Iterable[str],
    using: Mapping[str, str],
) -> list[str]:
    """The shadow's columns a row of the table fills: those it has of the table's (by name),
    but those the statement adds (a dropped column of the same name is not the same)."""
    present = set(table_columns)
    new = set(added)
    return [c for c in shadow_columns if c not in new and (c in present or c in using)]


def _values(columns: Sequence[str], using: Mapping[str, str], qualifier: str) -> list[str]:
    out = []
    for column in columns:
        if column in using:
            out.append(_expression(using[column], qualifier).sql(dialect="postgres"))
        elif qualifier == "NEW":
            out.append(f"NEW.{quote(column)}")
        else:
            out.append(f"{quote(qualifier)}.{quote(column)}")
    return out


def sync_function(
    names: ShadowNames, columns: Sequence[str], key: Sequence[str], using: Mapping[str, str]
) -> str:
    """The trigger function that keeps the shadow current: a row inserted or updated is
    written over the shadow's (by the key), a row deleted (or moved to another key) is
    removed, a TRUNCATE empties it. It runs as its owner (OpenDMS's user, who made the
    shadow): a writer allowed to change the table need not be allowed to change the copy."""
    shadow = names.qualified_shadow
    cols = ", ".join(quote(c) for c in columns)
    values = ", ".join(_values(columns, using, "NEW"))
    match_old = " AND ".join(f"{quote(k)} = OLD.{quote(k)}" for k in key)
    old_key = ", ".join(f"OLD.{quote(k)}" for k in key)
    new_key = ", ".join(f"NEW.{quote(k)}" for k in key)
    others = [c for c in columns if c not in key]
    on_conflict = (
        "DO UPDATE SET " + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in others)
        if others
        else "DO NOTHING"
    )
    conflict_key = ", ".join(quote(k) for k in key)
    # Only what the server itself defines is looked up by name, so no one who may create
    # objects can hijack a call made with OpenDMS's rights; a USING expression is read as
    # the statement was, in the table's schema too.
    path = f"pg_catalog, {quote(names.schema)}, pg_temp" if using else "pg_catalog, pg_temp"
    quote_tag = f"$opendms_{names.tag}$"
    return f"""CREATE FUNCTION {names.qualified_function}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path} AS {quote_tag}
#variable_conflict use_column
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE {shadow};
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND ROW({old_key}) IS DISTINCT FROM ROW({new_key})) THEN
    DELETE FROM {shadow} WHERE {match_old};
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO {shadow} ({cols}) OVERRIDING SYSTEM VALUE VALUES ({values})
    ON CONFLICT ({conflict_key}) {on_conflict};
  END IF;
  RETURN NULL;
END
{quote_tag}"""  # noqa: S608


def disarmed_function(names: ShadowNames) -> str:
    """The trigger function replaced by one that does nothing: no lock on the table."""
    return (
        f"CREATE OR REPLACE FUNCTION {names.qualified_function}() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$"
    )


def sync_triggers(names: ShadowNames) -> list[str]:
    fn = names.qualified_function
    table = names.qualified_table
    return [
        f"CREATE TRIGGER {quote(names.trigger)} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {fn}()",
        f"CREATE TRIGGER {quote(names.truncate_trigger)} AFTER TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()",
    ]


def drop_sync(names: ShadowNames) -> list[str]:
    """The triggers and their function, gone (each if it is there)."""
    table = names.qualified_table
    return [
        f"DROP TRIGGER IF EXISTS {quote(names.trigger)} ON {table}",
        f"DROP TRIGGER IF EXISTS {quote(names.truncate_trigger)} ON {table}",
        f"DROP FUNCTION IF EXISTS {names.qualified_function}()",
    ]


@dataclass(frozen=True)
class CopyPlan:
    """One chunk of the copy is ``lock(after, upto)`` then ``copy(after, upto)`` in one
    transaction; ``boundary`` finds where a chunk of ``size`` keys ends."""

    locking: Chunking
    copying: Chunking
    shadow: str
    columns: tuple[str, ...]

    def boundary(self, after: tuple[object, ...] | None, size: int) -> str:
        return self.locking.boundary(after, size)

    def lock(self, after: tuple[object, ...] | None, upto: tuple[object, ...] | None) -> str:
        """Locks the chunk's rows of the table in key order (no rows are sent back)."""
        chunk = self.locking.chunk(after, upto)
        return f"SELECT count(*) FROM ({chunk}) AS opendms_locked"  # noqa: S608

    def copy(self, after: tuple[object, ...] | None, upto: tuple[object, ...] | None) -> str:
        cols = ", ".join(quote(c) for c in self.columns)
        key = ", ".join(quote(k) for k in self.locking.key)
        # only the key's conflicts are the trigger's newer rows; another unique index's
        # would be rows the new shape cannot hold, which must fail, not vanish
        return (
            f"INSERT INTO {self.shadow} ({cols}) OVERRIDING SYSTEM VALUE "
            f"{self.copying.chunk(after, upto)} ON CONFLICT ({key}) DO NOTHING"
        )


def copy_plan(
    names: ShadowNames, columns: Sequence[str], key: Sequence[str], using: Mapping[str, str]
) -> CopyPlan:
    source = exp.Table(
        this=exp.to_identifier(names.table, quoted=True),
        db=exp.to_identifier(names.schema, quoted=True),
        alias=exp.TableAlias(this=exp.to_identifier(SOURCE, quoted=True)),
    )
    keys = [exp.column(k, table=SOURCE, quoted=True) for k in key]
    everything = exp.condition("1 = 1")
    locking = (
        exp.select(exp.Literal.number(1))
        .from_(source.copy())
        .where(everything.copy())
        .order_by(*(k.copy() for k in keys))
        .lock(update=False)
    )
    values = [sqlglot.parse_one(v, read="postgres") for v in _values(columns, using, SOURCE)]
    # The copy locks what it reads too: a row committed after the first statement's snapshot
    # (so not locked by it) and deleted while the copy reads it must wait or be skipped,
    # never be copied back after its trigger removed it. Rows the first locked are ours.
    copying = exp.select(*values).from_(source.copy()).where(everything.copy()).lock(update=False)
    table = f"{names.schema}.{names.table}"
    return CopyPlan(
        Chunking("SELECT", table, tuple(key), "postgresql", locking, source),
        Chunking("SELECT", table, tuple(key), "postgresql", copying, source),
        names.qualified_shadow,
        tuple(columns),
    )


def grant(table: str, privilege: str, grantee: str, grantable: bool, column: str = "") -> str:
    what = f"{privilege} ({quote(column)})" if column else privilege
    who = quote(grantee) if grantee else "PUBLIC"
    option = " WITH GRANT OPTION" if grantable else ""
    return f"GRANT {what} ON {table} TO {who}{option}"


def rename(kind: str, schema: str, name: str, to: str) -> str:
    """``ALTER INDEX|SEQUENCE|TABLE schema.name RENAME TO to``."""
    return f"ALTER {kind} {quote(schema, name)} RENAME TO {quote(to)}"
