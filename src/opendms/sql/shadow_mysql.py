"""The text of an online schema change on MySQL/MariaDB: the ALGORITHM a native attempt asks
for, and a shadow-table copy's names, triggers, chunk statements and swap; read from the
statement and the tables' definitions, what a statement does to the columns (renames, drops)
and what makes a shadow copy unsafe. Pure: nothing here connects.

A copy chunk is one READ COMMITTED transaction: the chunk's source rows are share-locked
first (``locked``: the read that finds the chunk's end, LOCK IN SHARE MODE, record locks
only), then copied (``copy_fast``, its warnings read back; ``copy`` when they overflow), then
counted on both sides (``check``) unless the new shape can refuse no row
(``refuses_nothing``). A writer's trigger locks the shadow's row only after the writer
holds its source row, so the copier, holding its source rows before it touches the shadow,
takes locks in the writers' order and the two cannot wait on each other in a cycle
(``docs/DESIGN-NOTES.md``, issue 21).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from opendms.schema.model import Column, Table
from opendms.sql.chunks import Chunking
from opendms.sql.statements import render

NAME_LIMIT = 64  # characters in a MySQL/MariaDB table or trigger name
INSTANT, INPLACE = "INSTANT", "INPLACE"
SOURCE, SHADOW_ROW = "_src", "_dst"  # the copy's aliases: nothing a user names collides


def quote(name: str) -> str:
    """An identifier as MySQL reads it, whatever it holds (every name in the text built here
    goes through this: hence the ``noqa: S608`` below)."""
    return "`" + name.replace("`", "``") + "`"


def qualified(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def target(node: exp.Expr) -> exp.Table | None:
    """The live table an ALTER TABLE, CREATE INDEX or DROP INDEX changes; None for any
    other statement (a new table, a dropped one: nothing to keep writers going on)."""
    if isinstance(node, exp.Alter) and str(node.args.get("kind") or "").upper() == "TABLE":
        return node.this if isinstance(node.this, exp.Table) else None
    if isinstance(node, exp.Create) and str(node.args.get("kind") or "").upper() == "INDEX":
        index = node.this
        table = index.args.get("table") if isinstance(index, exp.Index) else None
        return table if isinstance(table, exp.Table) else None
    if isinstance(node, exp.Drop) and str(node.args.get("kind") or "").upper() == "INDEX":
        on = node.args.get("cluster")
        return (
            on.this if isinstance(on, exp.OnProperty) and isinstance(on.this, exp.Table) else None
        )
    return None


def names_algorithm(node: exp.Expr) -> bool:
    """The statement says itself how the server is to run it (ALGORITHM=, LOCK=): it runs as
    written, the author's choice is not second-guessed."""
    if not isinstance(node, exp.Alter):
        return False
    options = node.args.get("options") or []
    return any(isinstance(o, exp.AlgorithmProperty | exp.LockProperty) for o in options)


def native(node: exp.Expr, engine: str, algorithm: str) -> str:
    """The statement asking the server for ``algorithm``; INPLACE with LOCK=NONE (an in-place
    change that blocks writes is no better than the copy)."""
    clauses = [("ALGORITHM", algorithm)] + ([("LOCK", "NONE")] if algorithm == INPLACE else [])
    if isinstance(node, exp.Alter):
        asked = node.copy()
        options = list(asked.args.get("options") or [])
        options.append(exp.AlgorithmProperty(this=exp.var(algorithm)))
        if algorithm == INPLACE:
            options.append(exp.LockProperty(this=exp.var("NONE")))
        asked.set("options", options)
        return render(asked, engine)
    # CREATE INDEX … ON t (…) and DROP INDEX … ON t take them after the statement, unseparated
    return render(node, engine) + "".join(f" {k}={v}" for k, v in clauses)


def on_shadow(node: exp.Expr, schema: str, shadow: str, engine: str) -> str:
    """The statement applied to the shadow table instead of its own."""
    moved = node.copy()
    table = target(moved)
    if table is None:
        raise ValueError("the statement changes no table")
    table.replace(exp.table_(shadow, db=schema or None, quoted=True))
    return render(moved, engine)


def statement_refusal(node: exp.Expr) -> str | None:
    """Why the statement cannot be run as a shadow copy, whatever the table; None: it can."""
    if not isinstance(node, exp.Alter):
        return None
    if any(isinstance(a, exp.AlterRename) for a in node.args.get("actions") or []):
        return (
            "it renames the table, and a shadow copy swaps in a table of the same name; run "
            "the rename as a statement of its own"
        )
    if node.find(exp.ForeignKey, exp.Reference) is not None:
        return (
            "it adds a foreign key, which would check every copied row against its parent "
            "while writers wait, and be named twice in the schema (shadow and old table); "
            "add it with DdlOnline 0 or 1"
        )
    return None


def column_changes(node: exp.Expr) -> tuple[dict[str, str], frozenset[str]]:
    """What an ALTER does to existing columns: renamed (old name, lower-cased, to the new
    name: CHANGE a b …, RENAME COLUMN a TO b) and dropped (lower-cased)."""
    renamed: dict[str, str] = {}
    dropped: set[str] = set()
    if not isinstance(node, exp.Alter):
        return renamed, frozenset()
    for action in node.args.get("actions") or []:
        if isinstance(action, exp.ModifyColumn) and action.args.get("rename_from") is not None:
            renamed[action.args["rename_from"].name.lower()] = action.this.name
        elif isinstance(action, exp.RenameColumn) and action.args.get("to") is not None:
            renamed[action.this.name.lower()] = action.args["to"].name
        elif isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() == (
            "COLUMN"
        ):
            dropped.update(t.name.lower() for t in action.args.get("tables") or [])
    return renamed, frozenset(dropped)


def walk_key(table: Table) -> tuple[str, ...] | None:
    """The key a copy walks: the primary key, else a unique key of whole NOT NULL columns."""
    if table.primary_key:
        return table.primary_key
    for index in table.indexes:
        columns = [table.column(c) for c in index.columns]
        if (
            index.unique
            and not any(n is not None for n in index.lengths)
            and all(c is not None and not c.nullable for c in columns)
        ):
            return index.columns
    return None


def copied_columns(
    old: Table, new: Table, renamed: dict[str, str], dropped: Collection[str]
) -> tuple[tuple[str, str], ...]:
    """(old name, new name) of each column whose values the copy carries: in both shapes
    (under its new name when renamed), neither dropped nor computed by the new shape."""
    pairs = []
    for column in old.columns:
        low = column.name.lower()
        if low in renamed:
            name = renamed[low]
        elif low in dropped:
            continue
        else:
            name = column.name
        found = new.column(name)
        if found is not None and not found.generated:
            pairs.append((column.name, found.name))
    return tuple(pairs)


def key_refusal(
    old: Table, new: Table, key: tuple[str, ...], columns: tuple[tuple[str, str], ...]
) -> str | None:
    """Why the walked ``key`` (old names) cannot find rows in the new shape: the triggers and
    the copy find a row there by it, so it must stay a unique key of NOT NULL columns that
    compare alike in both shapes (a key range over the table is the same range over the
    shadow)."""
    mapped = {o.lower(): n for o, n in columns}
    lost = [k for k in key if k.lower() not in mapped]
    if lost:
        return f"it drops or recomputes key column {', '.join(lost)}, by which the copy finds rows"
    for k in key:
        before, after = old.column(k), new.column(mapped[k.lower()])
        if before is not None and after is not None and before.collation != after.collation:
            return (
                f"key column {k} changes its collation ({before.collation} to "
                f"{after.collation}): keys would compare differently in the two tables"
            )
    wanted = {mapped[k.lower()].lower() for k in key}
    if {c.lower() for c in new.primary_key} == wanted:
        return None
    for index in new.indexes:
        cols = [new.column(c) for c in index.columns]
        if (
            index.unique
            and {c.lower() for c in index.columns} == wanted
            and not any(n is not None for n in index.lengths)
            and all(c is not None and not c.nullable for c in cols)
        ):
            return None
    shown = ", ".join(mapped[k.lower()] for k in key)
    return (
        f"in the new shape ({shown}) is no longer a unique key of NOT NULL columns, and the "
        "copy and its triggers find rows by it; change the primary key with DdlOnline 0"
    )


def _unique_keys(table: Table) -> list[dict[str, int | None]]:
    """Each unique key of ``table`` (its primary key too): column (lower-cased) → its
    prefix length (None: the whole value)."""
    keys: list[dict[str, int | None]] = []
    if table.primary_key:
        keys.append(dict.fromkeys((c.lower() for c in table.primary_key), None))
    for index in table.indexes:
        if index.unique:
            lengths = index.lengths or (None,) * len(index.columns)
            keys.append({c.lower(): n for c, n in zip(index.columns, lengths, strict=True)})
    return keys


def refuses_nothing(old: Table, new: Table, columns: tuple[tuple[str, str], ...]) -> bool:
    """Whether the new shape can refuse none of the table's rows for a duplicate: each of
    its unique keys (the primary key too) is a unique key of the table over the same copied
    columns, each unchanged (type, charset, collation), prefix for prefix. The rows the table
    holds are then unique there in the new shape too, so a copy chunk's ON DUPLICATE KEY
    UPDATE meets only the rows the triggers wrote, and a writer's REPLACE displaces only its
    own row: the row counts checked per chunk and before the swap could find no difference,
    and are not read (they scan every row twice)."""
    back = {n.lower(): o.lower() for o, n in columns}
    unchanged = set()
    for o, n in columns:
        before, after = old.column(o), new.column(n)
        if before is not None and after is not None and _same_values(before, after):
            unchanged.add(n.lower())
    had = _unique_keys(old)
    for key in _unique_keys(new):
        if not set(key) <= unchanged:
            return False
        if {back[c]: n for c, n in key.items()} not in had:
            return False
    return True


def _same_values(before: Column, after: Column) -> bool:
    return (before.type.lower(), before.charset.lower(), before.collation.lower()) == (
        after.type.lower(),
        after.charset.lower(),
        after.collation.lower(),
    )


def unfilled(new: Table, columns: tuple[tuple[str, str], ...]) -> list[str]:
    """New columns the copy does not fill that have no value of their own: NOT NULL without
    a DEFAULT. ALTER gives them the type's implicit default; an INSERT in strict mode fails,
    and a writer's trigger would fail the writer's statement."""
    filled = {n.lower() for _, n in columns}
    return [
        c.name
        for c in new.columns
        if c.name.lower() not in filled
        and not c.nullable
        and c.default is None
        and not c.auto_increment
        and not c.generated
    ]


# The warnings a fast copy chunk (``ShadowCopy.copy_fast``) lets by: a duplicate of the key
# (a row the triggers wrote), and a statement logged unsafely for a statement-based binary
# log (the strict copy is as unsafe there). Notes are what strict mode lets by as well (a
# DECIMAL rounded).
HARMLESS_WARNINGS = frozenset({1062, 1592})
WARNINGS_KEPT = 65_535  # max_error_count a fast chunk asks for: the most the servers keep


def copy_refusal(warnings: Sequence[Sequence[Any]]) -> str | None:
    """The first of a fast copy chunk's warnings (SHOW WARNINGS: level, code, message) that
    strict mode would have refused the row for; None when there is none."""
    for level, code, message in warnings:
        if str(level).lower() != "note" and int(code) not in HARMLESS_WARNINGS:
            return f"{message} (MySQL warning {code})"
    return None


_TABLE_OPTIONS = re.compile(r"\n\)([^\n]*)")  # SHOW CREATE TABLE's line after the columns
_AUTO_INCREMENT = re.compile(r"\bAUTO_INCREMENT=(\d+)")


def auto_increment(create_text: str) -> int | None:
    """The table's AUTO_INCREMENT counter, read from its table options (SHOW CREATE TABLE),
    not from a column's comment; None when it shows none."""
    options = _TABLE_OPTIONS.findall(create_text)
    found = _AUTO_INCREMENT.search(options[-1]) if options else None
    return int(found.group(1)) if found else None


def shape_of(create_text: str | None) -> str:
    """A table's definition (SHOW CREATE TABLE) reduced to a digest that changes when a DDL
    statement changes the table and not otherwise: the AUTO_INCREMENT counter is left out.
    "" for a table that does not exist."""
    if create_text is None:
        return ""
    text = re.sub(r" AUTO_INCREMENT=\d+", "", create_text)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ShadowNames:
    shadow: str  # the new shape, filled while the table lives
    old: str  # where the table's old shape goes at the swap
    triggers: tuple[str, str, str]  # after DELETE, UPDATE, INSERT: made in this order


def shadow_names(table: str, key: str, taken: Collection[str]) -> ShadowNames | None:
    """``_<t>_new`` and ``_<t>_old`` (pt-online-schema-change's names) unless the schema holds
    one already, else the same with a tag of the statement's key; triggers always carry the
    tag. Names are cut to MySQL's 64 characters; None when even the tagged ones are taken."""
    tag = hashlib.sha256(key.encode()).hexdigest()[:8]

    def fit(middle: str, suffix: str) -> str:
        tail = (f"_{middle}" if middle else "") + f"_{suffix}"
        return f"_{table[: NAME_LIMIT - 1 - len(tail)]}{tail}"

    busy = {t.lower() for t in taken}
    for middle in ("", tag):
        shadow, old = fit(middle, "new"), fit(middle, "old")
        if shadow.lower() not in busy and old.lower() not in busy:
            triggers = (fit(tag, "del"), fit(tag, "upd"), fit(tag, "ins"))
            return ShadowNames(shadow, old, triggers)
    return None


@dataclass(frozen=True)
class ShadowCopy:
    """The statements of one shadow copy of ``schema.table`` into ``shadow``."""

    schema: str  # "" : the change's own database
    table: str
    shadow: str
    columns: tuple[tuple[str, str], ...]  # (old name, new name), in the table's order
    key: tuple[str, ...]  # the walked key, old names
    engine: str = "mysql"

    @property
    def new_key(self) -> tuple[str, ...]:
        mapped = {o.lower(): n for o, n in self.columns}
        return tuple(mapped[k.lower()] for k in self.key)

    @property
    def source(self) -> str:
        return qualified(self.schema, self.table)

    @property
    def target(self) -> str:
        return qualified(self.schema, self.shadow)

    def _values(self, row: str) -> str:
        return ", ".join(f"{row}.{quote(o)}" for o, _ in self.columns)

    def _into(self) -> str:
        return f"{self.target} ({', '.join(quote(n) for _, n in self.columns)})"

    def _matches(self, row: str, new_row: str = "") -> str:
        """The shadow's row whose key equals ``row``'s (OLD, NEW, or the source's alias)."""
        side = f"{new_row}." if new_row else ""
        return " AND ".join(
            f"{side}{quote(n)} = {row}.{quote(o)}"
            for o, n in zip(self.key, self.new_key, strict=True)
        )

    def triggers(self, names: tuple[str, str, str]) -> list[str]:
        """CREATE TRIGGER for DELETE, UPDATE and INSERT, in that order: while they are made
        one by one, a row reaches the shadow only once the triggers that would remove or
        correct it are there (pt-online-schema-change's order)."""
        on = self.source
        delete, update, insert = (qualified(self.schema, n) for n in names)
        moved = " AND ".join(f"OLD.{quote(k)} <=> NEW.{quote(k)}" for k in self.key)
        return [
            f"CREATE TRIGGER {delete} AFTER DELETE ON {on} FOR EACH ROW "  # noqa: S608
            f"DELETE FROM {self.target} WHERE {self._matches('OLD')}",
            # a row whose key changed leaves its old key's row behind unless it is removed;
            # only then, so that a plain update takes no lock on a missing shadow row
            f"CREATE TRIGGER {update} AFTER UPDATE ON {on} FOR EACH ROW BEGIN "  # noqa: S608
            f"IF NOT ({moved}) THEN DELETE FROM {self.target} WHERE {self._matches('OLD')}; "
            f"END IF; REPLACE INTO {self._into()} VALUES ({self._values('NEW')}); END",
            f"CREATE TRIGGER {insert} AFTER INSERT ON {on} FOR EACH ROW "  # noqa: S608
            f"REPLACE INTO {self._into()} VALUES ({self._values('NEW')})",
        ]

    def drop_triggers(self, names: tuple[str, str, str]) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {qualified(self.schema, n)}" for n in names]

    def chunking(self) -> Chunking:
        """The key walk over the source table (boundaries and key ranges)."""
        return self._walk(self.table, self.key)

    def shadow_range(self) -> Chunking:
        """The same key ranges over the shadow (its names for the key's columns)."""
        return self._walk(self.shadow, self.new_key)

    def _walk(self, name: str, key: tuple[str, ...]) -> Chunking:
        source = exp.table_(name, db=self.schema or None, quoted=True, alias=SOURCE)
        node = exp.select(exp.Star()).from_(source.copy())
        return Chunking("INSERT", name, key, self.engine, node, source)

    @staticmethod
    def locked(boundary: str) -> str:
        """A chunk's boundary query (``Chunking.boundary``) as a locking read: it share-locks
        every row it passes, which are the chunk's rows (record locks only under READ
        COMMITTED; checked on MariaDB: the rows it skips by its OFFSET are locked, the row
        after its boundary is not). The chunk then holds its rows with one scan fewer; when
        it finds no boundary (the last chunk) it has locked the rest of the table."""
        return f"{boundary} LOCK IN SHARE MODE"

    def lock(self, where: str) -> str:
        """Share-lock the chunk's source rows (record locks under READ COMMITTED): a writer
        cannot change or delete them until the chunk commits, so the copy cannot bring back
        a row deleted meanwhile; the count is the rows walked."""
        return (
            f"SELECT COUNT(*) FROM {self.source} AS {SOURCE} "  # noqa: S608
            f"WHERE {where} LOCK IN SHARE MODE"
        )

    def copy_fast(self, where: str) -> str:
        """Copy the chunk's rows, a fifth faster than :meth:`copy` (MariaDB 10.11, 1,000,000
        rows in chunks of 15,000: 3.2 to 3.7 s against 4.0 to 4.5 s): a row already there (the
        triggers wrote it, in the form copied) is left as it is, with a warning 1062; but
        IGNORE makes a warning of whatever strict mode would refuse too (a value out of
        range, a string cut short), which the chunk must read back (``SHOW WARNINGS``,
        :func:`copy_refusal`) and fail on: then nothing is ever changed silently."""
        return (
            f"INSERT IGNORE INTO {self._into()} SELECT {self._values(SOURCE)} "  # noqa: S608
            f"FROM {self.source} AS {SOURCE} WHERE {where}"
        )

    def copy(self, where: str) -> str:
        """Copy the chunk's rows. A row a writer changed since the copy began is in the
        shadow already, in its latest form, which is the form copied (the source row is
        share-locked): the duplicate is left as it is (``k = k``, not ``VALUES(k)``, which
        would rewrite another row's key on a clash over a new unique key). Not INSERT
        IGNORE, which would turn a value the new shape refuses into a silent change; a row
        the new shape refuses for a duplicate of a new unique key is left out, and the
        chunk's :meth:`check` finds it missing. (NOT EXISTS on the shadow instead makes the
        server buffer every chunk: more than twice the time.)"""
        first = quote(self.new_key[0])
        return (
            f"INSERT INTO {self._into()} SELECT {self._values(SOURCE)} "  # noqa: S608
            f"FROM {self.source} AS {SOURCE} WHERE {where} "
            f"ON DUPLICATE KEY UPDATE {self.target}.{first} = {self.target}.{first}"
        )

    def check(self, where: str, shadow_where: str) -> str:
        """The chunk's rows in the table and in the shadow, read in one snapshot (one
        statement) after the copy: every committed row of the range is in both (the
        triggers write the shadow in the writer's transaction), so a difference is a row
        the new shape refused."""
        return (
            f"SELECT (SELECT COUNT(*) FROM {self.source} AS {SOURCE} WHERE {where}), "  # noqa: S608
            f"(SELECT COUNT(*) FROM {self.target} AS {SOURCE} WHERE {shadow_where})"
        )

    def missing(self, where: str, limit: int = 3) -> str:
        """Keys of the range's rows that are not in the shadow (what :meth:`check` found)."""
        keys = ", ".join(f"{SOURCE}.{quote(k)}" for k in self.key)
        return (
            f"SELECT {keys} FROM {self.source} AS {SOURCE} WHERE {where} "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {self.target} AS {SHADOW_ROW} "
            f"WHERE {self._matches(SOURCE, SHADOW_ROW)}) LIMIT {int(limit)}"
        )

    def counts(self) -> tuple[str, str]:
        """The table's and the shadow's row counts, read in one snapshot before the swap:
        equal unless a row went missing (a writer's REPLACE displacing a row on a new
        unique key)."""
        return (
            f"SELECT COUNT(*) FROM {self.source}",  # noqa: S608
            f"SELECT COUNT(*) FROM {self.target}",  # noqa: S608
        )

    def swap(self, old: str) -> str:
        """The table to ``old`` and the shadow to the table's name, in one atomic RENAME."""
        return (
            f"RENAME TABLE {self.source} TO {qualified(self.schema, old)}, "
            f"{self.target} TO {self.source}"
        )
