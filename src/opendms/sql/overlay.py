"""The tables as a script leaves them, statement by statement.

Review walks a script in order; each statement is judged against the tables as the
statements before it leave them: the catalog's, with what the script has created, altered,
renamed and dropped so far laid over them. A table created earlier in the script exists
(and is empty); one dropped earlier does not. A statement OpenDMS cannot read (sqlglot keeps
it as a bare command) leaves its table's definition unknown, so that no rule judges later
statements against a shape that is no longer true.

Names are keys as written, lower-cased ("t" or "schema.t"), as the catalog takes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlglot import exp

from opendms.schema.model import Table
from opendms.sql import ddl
from opendms.sql.statements import table_name
from opendms.sql.tables import Catalog


@dataclass(frozen=True)
class _State:
    exists: bool
    table: Table | None = None  # None while it exists: its definition is not known
    created: bool = False  # by this script: it is empty


T = TypeVar("T")
_RENAME_PAIR = re.compile(r"([\w`\".$]+)\s+TO\s+([\w`\".$]+)", re.IGNORECASE)


def unquoted(name: str) -> str:
    return ".".join(part.strip('`"') for part in name.split(".")).lower()


def command_words(node: exp.Command) -> list[str]:
    rest = node.expression
    text = rest.name if isinstance(rest, exp.Expression) else str(rest or "")
    return [str(node.this).upper(), *text.split()]


def renamed_tables(node: exp.Command) -> list[tuple[str, str]]:
    """MySQL's RENAME TABLE a TO b, c TO d (a bare command to sqlglot): the pairs, in order."""
    words = command_words(node)
    if words[:2] != ["RENAME", "TABLE"]:
        return []
    return [(unquoted(a), unquoted(b)) for a, b in _RENAME_PAIR.findall(" ".join(words[2:]))]


def opaque_table(node: exp.Command) -> str | None:
    """The table a bare ``ALTER TABLE name …`` command names."""
    words = command_words(node)
    if words[:2] == ["ALTER", "TABLE"] and len(words) > 2:
        rest = words[2:]
        while rest and rest[0].upper() in ("IF", "EXISTS", "ONLY"):
            rest = rest[1:]
        return unquoted(rest[0]) if rest else None
    return None


def validates(node: exp.Command) -> bool:
    """PostgreSQL's ALTER TABLE t VALIDATE CONSTRAINT c (a bare command to sqlglot): it checks
    the rows against a constraint added NOT VALID, and changes no definition."""
    words = [w.upper() for w in command_words(node)]
    return words[:2] == ["ALTER", "TABLE"] and words[-3:-1] == ["VALIDATE", "CONSTRAINT"]


class Overlay:
    def __init__(
        self, catalog: Catalog | None, engine: str, script: Iterable[exp.Expression] = ()
    ) -> None:
        self.catalog, self.engine = catalog, engine
        self._states: dict[str, _State] = {}
        # the ALTER TABLE statements of each table so far, by statement number
        self.alters: dict[str, list[int]] = {}
        # columns the script has added to tables it did not create: (table, column), lower-cased
        self.new_columns: set[tuple[str, str]] = set()
        # what COMMENT ON (PostgreSQL) or ALTER TABLE … COMMENT (MySQL) anywhere in the script
        # describes: (table, "") and (table, column)
        self.commented: set[tuple[str, str]] = set()
        # what the rules worked out about the statement under review (its table before and
        # after it…), asked by many rules: kept until the statement is applied
        self._memo: dict[tuple[int, str], Any] = {}
        for node in script:
            self._note_comments(node)

    def memo(self, node: exp.Expression, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per statement (``node``) and ``key``."""
        found = self._memo.get((id(node), key), self._memo)
        if found is self._memo:
            found = self._memo[id(node), key] = compute()
        return found  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ questions

    def exists(self, name: str) -> bool | None:
        """Whether table ``name`` exists before this statement; None when nothing can tell
        (no catalog, and the script has not touched it)."""
        state = self._states.get(name.lower())
        if state is not None:
            return state.exists
        if self.catalog is None:
            return None
        return self.catalog.table(name.lower()) is not None

    def definition(self, name: str) -> Table | None:
        """Table ``name`` as this statement finds it; None when it does not exist or its
        definition is not known."""
        state = self._states.get(name.lower())
        if state is not None:
            return state.table if state.exists else None
        return self.catalog.definition(name.lower()) if self.catalog is not None else None

    def gone(self, name: str) -> bool:
        """Dropped or renamed away earlier in this script."""
        state = self._states.get(name.lower())
        return state is not None and not state.exists

    def added(self, table: str, column: str) -> bool:
        """Column ``column`` was added to ``table`` earlier in this script (it holds no data
        the rows had before)."""
        return (table.lower(), column.lower()) in self.new_columns

    def created(self, name: str) -> bool:
        """Created earlier in this script (so it holds no rows yet)."""
        state = self._states.get(name.lower())
        return state is not None and state.exists and state.created

    def index_owner(self, index: str) -> str | None:
        """The table, among those the script has touched, that has index ``index``
        (PostgreSQL's DROP INDEX names no table)."""
        low = index.lower().rpartition(".")[2]
        for key, state in self._states.items():
            if state.table is not None and state.table.index(low) is not None:
                return key
        return None

    # ------------------------------------------------------------------ changes

    def _set(self, name: str, state: _State) -> None:
        self._states[name.lower()] = state

    def _replaced(self, name: str) -> None:
        """``name`` is created, dropped or renamed: what the script did to the table of that
        name before is about another table."""
        self.alters.pop(name.lower(), None)
        self.new_columns = {(t, c) for t, c in self.new_columns if t != name.lower()}

    def _known(self, name: str) -> _State:
        """The state of a table a statement changes: its definition if known."""
        state = self._states.get(name.lower())
        if state is not None:
            return state
        return _State(exists=True, table=self.definition(name))

    def _change(self, name: str, table: Table | None) -> None:
        before = self._known(name)
        self._set(name, replace(before, exists=True, table=table))

    def apply(self, node: exp.Expression, number: int = 0) -> None:
        """Lay what ``node`` (statement ``number``) changes over the tables."""
        self._memo.clear()
        if isinstance(node, exp.Create):
            self._create(node)
        elif isinstance(node, exp.Alter):
            self._alter(node, number)
        elif isinstance(node, exp.Drop):
            self._drop(node)
        elif isinstance(node, exp.TruncateTable):
            for t in node.expressions:
                if isinstance(t, exp.Table) and (found := self.definition(table_name(t))):
                    self._change(table_name(t), replace(found, rows=0, size_bytes=0))
        elif isinstance(node, exp.Comment):
            self._comment(node)
        elif isinstance(node, exp.Command):
            for old, new in renamed_tables(node):
                self._rename(old, new)
            opaque = opaque_table(node)
            if opaque is not None and not validates(node):
                self._change(opaque, None)
                self.alters.setdefault(opaque, []).append(number)

    def _create(self, node: exp.Create) -> None:
        target = ddl.created_table(node)
        if target is not None:
            name = table_name(target)
            if node.args.get("exists") and self.exists(name):
                return  # CREATE TABLE IF NOT EXISTS of a table already there changes nothing
            table = ddl.table_of(node, self.engine)
            like = _like(node)
            if like is not None and (source := self.definition(table_name(like))):
                table = replace(source, name=ddl.ident(target, self.engine), rows=0)
            self._set(name, _State(exists=True, table=table, created=True))
            self._replaced(name)
            return
        made = ddl.index_of_create(node, self.engine)
        if made is not None:
            owner, index = made
            found = self.definition(table_name(owner))
            if found is not None and found.index(index.name) is None:
                self._change(table_name(owner), replace(found, indexes=(*found.indexes, index)))

    def _alter(self, node: exp.Alter, number: int) -> None:
        target = node.this
        if not isinstance(target, exp.Table):
            return
        name = table_name(target)
        kind = str(node.args.get("kind") or "").upper()
        if kind == "INDEX":
            self._rename_index(name, ddl.renamed_to(node))
            return
        self.alters.setdefault(name, []).append(number)
        for action in node.args.get("actions") or ():
            if isinstance(action, exp.ColumnDef) and not self.created(name):
                self.new_columns.add((name, ddl.ident(action.this, self.engine).lower()))
        found = self.definition(name)
        if found is not None:
            self._change(name, ddl.altered(found, node, self.engine))
        new = ddl.renamed_to(node)
        if new is not None:
            self._rename(name, table_name(new))

    def _rename(self, old: str, new: str) -> None:
        before = self._known(old)
        table = before.table
        if table is not None:
            table = replace(table, name=new.rpartition(".")[2])
        self._replaced(new)
        self._replaced(old)
        self._set(new, replace(before, exists=True, table=table))
        self._set(old, _State(exists=False))

    def _rename_index(self, old: str, new: exp.Table | None) -> None:
        owner = self.index_owner(old)
        found = self.definition(owner) if owner is not None else None
        if owner is None or found is None or new is None:
            return
        low, to = old.rpartition(".")[2].lower(), ddl.ident(new, self.engine)
        indexes = tuple(replace(i, name=to) if i.name.lower() == low else i for i in found.indexes)
        self._change(owner, replace(found, indexes=indexes))

    def _drop(self, node: exp.Drop) -> None:
        kind = str(node.args.get("kind") or "").upper()
        targets = [t for t in node.args.get("tables") or () if isinstance(t, exp.Table)]
        if kind == "TABLE":
            for t in targets:
                self._set(table_name(t), _State(exists=False))
                self._replaced(table_name(t))
        elif kind == "INDEX":
            on = node.args.get("cluster")
            for t in targets:
                owner = (
                    table_name(on.this)
                    if isinstance(on, exp.OnProperty) and isinstance(on.this, exp.Table)
                    else self.index_owner(table_name(t))
                )
                found = self.definition(owner) if owner is not None else None
                if owner is not None and found is not None:
                    low = t.name.lower()
                    kept = tuple(i for i in found.indexes if i.name.lower() != low)
                    self._change(owner, replace(found, indexes=kept))

    def _comment(self, node: exp.Comment) -> None:
        kind = str(node.args.get("kind") or "").upper()
        text = node.expression.name if isinstance(node.expression, exp.Expression) else ""
        target = node.this
        if kind == "TABLE" and isinstance(target, exp.Table):
            name = table_name(target)
            if (found := self.definition(name)) is not None:
                self._change(name, replace(found, comment=text))
        elif kind == "COLUMN" and isinstance(target, exp.Column):
            name, column = comment_target(target)
            found = self.definition(name)
            if found is not None and (col := found.column(column)) is not None:
                columns = tuple(replace(c, comment=text) if c is col else c for c in found.columns)
                self._change(name, replace(found, columns=columns))

    def _note_comments(self, node: exp.Expression) -> None:
        if isinstance(node, exp.Comment):
            kind = str(node.args.get("kind") or "").upper()
            if kind == "TABLE" and isinstance(node.this, exp.Table):
                self.commented.add((table_name(node.this), ""))
            elif kind == "COLUMN" and isinstance(node.this, exp.Column):
                name, column = comment_target(node.this)
                self.commented.add((name, column.lower()))
        elif (
            isinstance(node, exp.Alter)
            and isinstance(node.this, exp.Table)
            and "comment" in ddl.table_options(node)
        ):
            self.commented.add((table_name(node.this), ""))


def comment_target(column: exp.Column) -> tuple[str, str]:
    """COMMENT ON COLUMN [schema.]table.column: the table (as a key) and the column."""
    parts = [p for p in (column.args.get("db"), column.args.get("table")) if p is not None]
    table = ".".join(p.name for p in parts).lower()
    return table, column.name


def _like(node: exp.Create) -> exp.Table | None:
    props = node.args.get("properties")
    for p in props.expressions if isinstance(props, exp.Properties) else ():
        if isinstance(p, exp.LikeProperty) and isinstance(p.this, exp.Table):
            return p.this
    return None
