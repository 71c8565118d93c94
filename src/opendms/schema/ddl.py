"""What every engine's DDL writer shares: the plan of work read from the differences, names
and literals quoted by sqlglot, and each statement read back by sqlglot before it is handed
out, so that the text given is the very text ``sql.statements.render`` makes of it (the
product parses, reviews and runs that)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.schema.diff import Category, Difference, folds, pairs
from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from opendms.schema.spelling import canonical_type, dialect
from opendms.schema.translate import SchemaRefused


@dataclass(frozen=True)
class SyncPlan:
    """The statements that make a target table match, in three phases. When several tables
    are synced together, run every table's ``before`` (foreign keys dropped), then every
    ``main``, then every ``after`` (foreign keys added, once what they reference exists)."""

    before: tuple[str, ...] = ()
    main: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    @property
    def statements(self) -> list[str]:
        return [*self.before, *self.main, *self.after]


class Writer(ABC):
    """One engine's DDL for one table: quoted, and read back, in its dialect."""

    def __init__(self, engine: str, table: str) -> None:
        self.engine = engine
        self.dialect = dialect(engine)
        self.table = table

    def q(self, name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql(dialect=self.dialect)

    def qualified(self, name: str) -> str:
        """A table as a foreign key names it: ``t`` or ``schema.t``."""
        return ".".join(self.q(part) for part in name.split("."))

    def lit(self, text: str) -> str:
        return exp.Literal.string(text).sql(dialect=self.dialect)

    def names(self, columns: tuple[str, ...] | list[str]) -> str:
        return ", ".join(self.q(c) for c in columns)

    def foreign_key(self, fk: ForeignKey) -> str:
        """A foreign key's clause, as every engine here writes it."""
        text = (
            f"CONSTRAINT {self.q(fk.name)} FOREIGN KEY ({self.names(fk.columns)}) "
            f"REFERENCES {self.qualified(fk.ref_table)} ({self.names(fk.ref_columns)})"
        )
        if fk.on_delete:
            text += f" ON DELETE {fk.on_delete}"
        if fk.on_update:
            text += f" ON UPDATE {fk.on_update}"
        return text

    def type_of(self, column: Column) -> str:
        if not _survives(column.type, self.engine):
            raise SchemaRefused(
                f"table {self.table}, column {column.name}: OpenDMS cannot write type "
                f"{column.type} in {self.engine} DDL that it can read back"
            )
        return column.type

    @abstractmethod
    def create(self, table: Table) -> SyncPlan:
        """The table made anew."""

    @abstractmethod
    def drop(self, table: Table) -> SyncPlan: ...

    @abstractmethod
    def alter(self, work: Work) -> SyncPlan:
        """The table changed as ``work`` says."""

    def finish(self, statement: str) -> str:
        """``statement`` as sqlglot writes it back: what the product's parser will read and
        run. A statement it cannot read, or reads only as an opaque command, is refused."""
        try:
            node = sqlglot.parse_one(statement, read=self.dialect)
        except SqlglotError as exc:
            raise SchemaRefused(
                f"table {self.table}: OpenDMS cannot read back {statement!r}: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        if isinstance(node, exp.Command):
            raise SchemaRefused(
                f"table {self.table}: OpenDMS cannot review {statement!r} (sqlglot reads it "
                "only as an opaque command)"
            )
        return node.sql(dialect=self.dialect, comments=False, normalize_functions=False)


@lru_cache(maxsize=1024)
def _survives(type_text: str, engine: str) -> bool:
    """Whether sqlglot reads ``type_text`` in a column definition and writes it back as the
    same type (it reads PostgreSQL's BIT VARYING only as a command, MySQL's POINT not at
    all)."""
    d = dialect(engine)
    head = "ALTER TABLE x ADD COLUMN y "
    try:
        node = sqlglot.parse_one(head + type_text, read=d)
    except SqlglotError:
        return False
    if isinstance(node, exp.Command):
        return False
    out = node.sql(dialect=d)
    return out.startswith(head) and canonical_type(out[len(head) :], engine) == canonical_type(
        type_text, engine
    )


def is_column(part: str, table: Table) -> bool:
    """An index part that names a column of ``table`` (otherwise it is an expression)."""
    return table.column(part) is not None


N = TypeVar("N", Index, ForeignKey, Check)


@dataclass
class Work:
    """What an ALTER must do, read from the differences between source and target."""

    source: Table
    target: Table
    fold: bool
    added: list[Column] = field(default_factory=list)  # in source order
    dropped: list[Column] = field(default_factory=list)
    # source and target column, and which attributes differ
    modified: list[tuple[Column, Column, tuple[str, ...]]] = field(default_factory=list)
    moved: set[str] = field(default_factory=set)  # keys (folded names)
    rebuilt: set[str] = field(default_factory=set)  # dropped and added again (generated)
    primary_key: bool = False
    drop_indexes: list[Index] = field(default_factory=list)
    add_indexes: list[Index] = field(default_factory=list)
    drop_fks: list[ForeignKey] = field(default_factory=list)
    add_fks: list[ForeignKey] = field(default_factory=list)
    drop_checks: list[Check] = field(default_factory=list)
    add_checks: list[Check] = field(default_factory=list)
    options: tuple[str, ...] = ()
    comment: bool = False
    named: dict[Category, set[str]] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return name.lower() if self.fold else name

    def modified_column(self, name: str) -> tuple[str, ...]:
        """The attributes in which column ``name`` changes (none: it does not)."""
        return next((a for s, _, a in self.modified if self.key(s.name) == self.key(name)), ())

    @classmethod
    def of(cls, source: Table, target: Table, differences: list[Difference], engine: str) -> Work:
        work = cls(source, target, folds(engine))
        for d in differences:
            work.named.setdefault(d.category, set()).add(work.key(d.name))
        work.added = [c for c in source.columns if work.has(Category.ADD_COLUMN, c.name)]
        work.dropped = [c for c in target.columns if work.has(Category.DROP_COLUMN, c.name)]
        attributes = {
            work.key(d.name): d.attributes
            for d in differences
            if d.category is Category.MODIFY_COLUMN
        }
        for mine in source.columns:
            found = attributes.get(work.key(mine.name))
            theirs = target.column(mine.name)
            if found and theirs is not None:
                work.modified.append((mine, theirs, found))
                # a column generated otherwise is made again (its values are derived); one
                # that stops being generated is changed in place, where the engine can
                if "generated" in found and mine.generated:
                    work.rebuilt.add(work.key(mine.name))
        work.moved = work.named.get(Category.MOVE_COLUMN, set())
        work.primary_key = Category.PRIMARY_KEY in work.named or any(
            work.key(c) in work.rebuilt for c in source.primary_key
        )
        work.options = next(
            (d.attributes for d in differences if d.category is Category.TABLE_OPTIONS), ()
        )
        work.comment = Category.TABLE_COMMENT in work.named
        work.drop_indexes, work.add_indexes = work._plan(
            source.indexes,
            target.indexes,
            (Category.ADD_INDEX, Category.DROP_INDEX, Category.MODIFY_INDEX),
            lambda i: work._touches(i.columns, (*i.columns, i.where)),
        )
        work.drop_fks, work.add_fks = work._plan(
            source.foreign_keys,
            target.foreign_keys,
            (Category.ADD_FOREIGN_KEY, Category.DROP_FOREIGN_KEY, Category.MODIFY_FOREIGN_KEY),
            lambda f: work._touches(f.columns),
        )
        work.drop_checks, work.add_checks = work._plan(
            source.checks,
            target.checks,
            (Category.ADD_CHECK, Category.DROP_CHECK, Category.MODIFY_CHECK),
            lambda c: work._touches((), (c.expression,)),
        )
        return work

    def has(self, category: Category, name: str) -> bool:
        return self.key(name) in self.named.get(category, set())

    def _touches(self, columns: tuple[str, ...], expressions: tuple[str, ...] = ()) -> bool:
        """Whether an index, key or check involves a column dropped and added again (which
        takes it away with it)."""
        if any(self.key(c) in self.rebuilt for c in columns):
            return True
        return any(
            re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", text, re.IGNORECASE)
            for name in self.rebuilt
            for text in expressions
            if text
        )

    def _plan(
        self,
        mine: tuple[N, ...],
        theirs: tuple[N, ...],
        categories: tuple[Category, Category, Category],
        touches: Callable[[N], bool],
    ) -> tuple[list[N], list[N]]:
        """The target's objects to drop and the source's to add: those only on one side,
        those that differ (dropped and added), and those a rebuilt column takes along."""
        add, drop, modify = categories
        changed = self.named.get(modify, set())
        added = self.named.get(add, set()) | changed
        dropped = self.named.get(drop, set()) | changed
        if self.rebuilt:
            _, both, _ = pairs(mine, theirs, lambda o: o.name, self.fold)
            for s, t in both:
                if touches(s) or touches(t):
                    added.add(self.key(s.name))
                    dropped.add(self.key(t.name))
        return (
            [o for o in theirs if self.key(o.name) in dropped],
            [o for o in mine if self.key(o.name) in added],
        )
