"""What differs between two definitions of a table: each difference named, in words a DBA
reads ("column name: varchar(50) → varchar(100)"), with a category for summaries.

``compare(source, target)`` lists what ``target`` lacks or has otherwise than ``source``; the
DDL that makes target match source (``schema.render``) is generated from this very list, so
that every difference shown has its statement and no statement runs that no difference
asked for. Both tables are in one engine's spelling: a source from another engine is
translated first (``schema.translate.prepare``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from opendms.schema.model import Column, ForeignKey, Index, Table
from opendms.schema.spelling import expression_key, family


class Category(StrEnum):
    CREATE_TABLE = "create table"  # the target lacks the table
    DROP_TABLE = "drop table"  # only the target has it
    ADD_COLUMN = "add column"
    DROP_COLUMN = "drop column"
    MODIFY_COLUMN = "modify column"  # its ``attributes`` say what
    MOVE_COLUMN = "move column"  # MySQL/MariaDB: the column stands elsewhere in the table
    PRIMARY_KEY = "primary key"
    ADD_INDEX = "add index"
    DROP_INDEX = "drop index"
    MODIFY_INDEX = "modify index"
    ADD_FOREIGN_KEY = "add foreign key"
    DROP_FOREIGN_KEY = "drop foreign key"
    MODIFY_FOREIGN_KEY = "modify foreign key"
    ADD_CHECK = "add check"
    DROP_CHECK = "drop check"
    MODIFY_CHECK = "modify check"
    TABLE_OPTIONS = "table options"  # MySQL/MariaDB storage engine, charset, collation
    TABLE_COMMENT = "table comment"


@dataclass(frozen=True)
class Difference:
    category: Category
    name: str  # what differs: the table, column, index, key or check, as the source spells it
    text: str  # for people: "column name: varchar(50) → varchar(100)"
    # MODIFY_COLUMN: which of the column's attributes (type, nullable, default, …);
    # TABLE_OPTIONS: which options (engine, charset, collation)
    attributes: tuple[str, ...] = ()


# GetStructSyncJobAnalyzeResult's CompareType of a table (dms-api.md); DROP_TABLE is
# OpenDMS's own: DMS never drops a target's table in a structure sync.
CREATE_TABLE = "CREATE_TABLE"
ALTER_TABLE = "ALTER_TABLE"
EQUAL_TABLE = "EQUAL_TABLE"
DROP_TABLE = "DROP_TABLE"


def compare_type(differences: Sequence[Difference]) -> str:
    """A table's CompareType, from its differences."""
    kinds = {d.category for d in differences}
    if Category.CREATE_TABLE in kinds:
        return CREATE_TABLE
    if Category.DROP_TABLE in kinds:
        return DROP_TABLE
    return ALTER_TABLE if differences else EQUAL_TABLE


def folds(engine: str | None) -> bool:
    """Whether names compare case-insensitively: MySQL/MariaDB column, index and constraint
    names always do (SQLite's too); PostgreSQL's are as stored, and a quoted "Id" is not id."""
    return engine != "postgresql"


T = TypeVar("T")


def pairs(
    source: Iterable[T], target: Iterable[T], name: Callable[[T], str], fold: bool
) -> tuple[list[T], list[tuple[T, T]], list[T]]:
    """Objects only in source (in its order), in both, only in target, matched by name."""

    def key(item: T) -> str:
        return name(item).lower() if fold else name(item)

    theirs = {key(t): t for t in target}
    ours = {key(s) for s in source}
    only_source = [s for s in source if key(s) not in theirs]
    both = [(s, theirs[key(s)]) for s in source if key(s) in theirs]
    only_target = [t for t in target if key(t) not in ours]
    return only_source, both, only_target


def _said(value: str | None) -> str:
    return "none" if value is None or value == "" else value


def _words(column: Column) -> str:
    """A column's definition in short, for an added or dropped column's line."""
    parts = [column.type, "NULL" if column.nullable else "NOT NULL"]
    if column.default is not None:
        parts.append(f"DEFAULT {column.default}")
    if column.auto_increment:
        parts.append("AUTO_INCREMENT")
    if column.generated:
        kind = "STORED" if column.generated_stored else "VIRTUAL"
        parts.append(f"AS ({column.generated}) {kind}")
    return " ".join(parts)


def _same_name(a: str, b: str, fold: bool) -> bool:
    return a.lower() == b.lower() if fold else a == b


def _same_names(a: Sequence[str], b: Sequence[str], fold: bool) -> bool:
    return len(a) == len(b) and all(_same_name(x, y, fold) for x, y in zip(a, b, strict=True))


def _same_expression(a: str | None, b: str | None, engine: str | None) -> bool:
    if not a or not b:
        return (a or "") == (b or "")
    return a == b or expression_key(a, engine) == expression_key(b, engine)


def column_changes(source: Column, target: Column, engine: str | None) -> list[tuple[str, str]]:
    """The attributes in which ``target`` differs from ``source``, each with its words
    (target's value → source's: what it becomes)."""
    mysql = family(engine) == "mysql"
    out: list[tuple[str, str]] = []
    if source.type != target.type:
        out.append(("type", f"{target.type} → {source.type}"))
    if source.nullable != target.nullable:
        words = {True: "NULL", False: "NOT NULL"}
        out.append(("nullable", f"{words[target.nullable]} → {words[source.nullable]}"))
    if not _same_expression(source.default, target.default, engine):
        out.append(("default", f"default {_said(target.default)} → {_said(source.default)}"))
    if source.auto_increment != target.auto_increment:
        words = {True: "auto-increment", False: "not auto-increment"}
        out.append(
            ("auto_increment", f"{words[target.auto_increment]} → {words[source.auto_increment]}")
        )
    if source.comment != target.comment:
        out.append(("comment", f"comment {target.comment!r} → {source.comment!r}"))
    for attr in ("charset", "collation"):
        mine, theirs = getattr(source, attr), getattr(target, attr)
        # MySQL: a source that names none (carried from another engine) takes the target's
        if (mysql and not mine) or mine.lower() == theirs.lower():
            continue
        out.append((attr, f"{attr} {_said(theirs)} → {_said(mine)}"))
    if not _same_expression(source.generated, target.generated, engine) or (
        source.generated and source.generated_stored != target.generated_stored
    ):

        def said(c: Column) -> str:
            kind = "STORED" if c.generated_stored else "VIRTUAL"
            return f"AS ({c.generated}) {kind}" if c.generated else "not generated"

        out.append(("generated", f"{said(target)} → {said(source)}"))
    if not _same_expression(source.on_update or None, target.on_update or None, engine):
        out.append(
            ("on_update", f"on update {_said(target.on_update)} → {_said(source.on_update)}")
        )
    return out


def moved_columns(source: Sequence[str], target: Sequence[str]) -> set[str]:
    """Which of the columns both tables have (``source`` and ``target``: their names in each
    table's order, folded alike) must move for target's order to be source's: all but a
    longest run that already stands in source's order."""
    where = {name: i for i, name in enumerate(source)}
    order = [where[name] for name in target if name in where]
    # longest increasing subsequence of source positions, in target order (patience sort)
    tails: list[int] = []
    tail_at: list[int] = []
    parent: list[int] = [-1] * len(order)
    for i, pos in enumerate(order):
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if tails[mid] < pos:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(tails):
            tails.append(pos)
            tail_at.append(i)
        else:
            tails[lo] = pos
            tail_at[lo] = i
        parent[i] = tail_at[lo - 1] if lo else -1
    keep: set[int] = set()
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        keep.add(order[i])
        i = parent[i]
    return {source[pos] for pos in order if pos not in keep}


def _index_key(index: Index, engine: str | None, fold: bool) -> tuple[object, ...]:
    parts = tuple(
        (c.lower() if fold else c) if _plain_name(c) else expression_key(c, engine)
        for c in index.columns
    )
    lengths = index.lengths if any(n is not None for n in index.lengths) else ()
    descending = index.descending if any(index.descending) else ()
    where = expression_key(index.where, engine) if index.where else ""
    return (
        parts,
        index.unique,
        lengths,
        descending,
        index.method.lower(),
        where,
        index.constraint,
        index.comment,
    )


def _plain_name(part: str) -> bool:
    """An index part that is a column name rather than an expression."""
    return "(" not in part and " " not in part


def _index_words(index: Index) -> str:
    parts = []
    for i, column in enumerate(index.columns):
        text = column
        if i < len(index.lengths) and index.lengths[i] is not None:
            text += f"({index.lengths[i]})"
        if i < len(index.descending) and index.descending[i]:
            text += " DESC"
        parts.append(text)
    kind = "UNIQUE " if index.unique else ""
    kind += f"{index.method.upper()} " if index.method else ""
    words = f"{kind}({', '.join(parts)})"
    if index.where:
        words += f" WHERE {index.where}"
    return words


def _fk_words(fk: ForeignKey) -> str:
    words = f"({', '.join(fk.columns)}) REFERENCES {fk.ref_table} ({', '.join(fk.ref_columns)})"
    if fk.on_delete:
        words += f" ON DELETE {fk.on_delete}"
    if fk.on_update:
        words += f" ON UPDATE {fk.on_update}"
    return words


def _same_fk(a: ForeignKey, b: ForeignKey, fold: bool) -> bool:
    return (
        _same_names(a.columns, b.columns, fold)
        and _same_name(a.ref_table, b.ref_table, fold)
        and _same_names(a.ref_columns, b.ref_columns, fold)
        and a.on_delete.upper() == b.on_delete.upper()
        and a.on_update.upper() == b.on_update.upper()
    )


def compare(
    source: Table | None, target: Table | None, engine: str | None = None
) -> list[Difference]:
    """What ``target`` lacks or has otherwise than ``source``, both as ``engine``
    (mysql, mariadb, postgresql, sqlite; None: MySQL's rules) spells them. Column order counts
    on MySQL/MariaDB only (PostgreSQL cannot move a column); rows and sizes never count."""
    if source is None and target is None:
        return []
    if target is None:
        assert source is not None
        return [
            Difference(
                Category.CREATE_TABLE, source.name, f"table {source.name}: not in the target"
            )
        ]
    if source is None:
        return [
            Difference(Category.DROP_TABLE, target.name, f"table {target.name}: only in the target")
        ]
    fold = folds(engine)
    out: list[Difference] = []
    out += _columns(source, target, engine, fold)
    if not _same_names(source.primary_key, target.primary_key, fold):
        old = ", ".join(target.primary_key) or "none"
        new = ", ".join(source.primary_key) or "none"
        name = source.primary_key_name or target.primary_key_name or "PRIMARY"
        out.append(Difference(Category.PRIMARY_KEY, name, f"primary key: ({old}) → ({new})"))
    out += _indexes(source, target, engine, fold)
    out += _foreign_keys(source, target, fold)
    out += _checks(source, target, engine, fold)
    out += _options(source, target, engine)
    return out


def _columns(source: Table, target: Table, engine: str | None, fold: bool) -> list[Difference]:
    out: list[Difference] = []
    added, both, dropped = pairs(source.columns, target.columns, lambda c: c.name, fold)
    for column in added:
        out.append(
            Difference(
                Category.ADD_COLUMN,
                column.name,
                f"column {column.name}: missing ({_words(column)})",
            )
        )
    for column in dropped:
        out.append(
            Difference(
                Category.DROP_COLUMN, column.name, f"column {column.name}: only in the target"
            )
        )
    for mine, theirs in both:
        changes = column_changes(mine, theirs, engine)
        if changes:
            words = "; ".join(w for _, w in changes)
            out.append(
                Difference(
                    Category.MODIFY_COLUMN,
                    mine.name,
                    f"column {mine.name}: {words}",
                    tuple(a for a, _ in changes),
                )
            )
    if family(engine) == "mysql":

        def key(name: str) -> str:
            return name.lower() if fold else name

        common = {key(t.name) for _, t in both}
        order = [key(c.name) for c in source.columns if key(c.name) in common]
        theirs_order = [key(c.name) for c in target.columns if key(c.name) in common]
        moved = moved_columns(order, theirs_order)
        names = [c.name for c in source.columns]
        for i, column in enumerate(source.columns):
            if key(column.name) in moved:
                after = f"after {names[i - 1]}" if i else "first"
                out.append(
                    Difference(
                        Category.MOVE_COLUMN, column.name, f"column {column.name}: moves {after}"
                    )
                )
    return out


def _indexes(source: Table, target: Table, engine: str | None, fold: bool) -> list[Difference]:
    out: list[Difference] = []
    added, both, dropped = pairs(source.indexes, target.indexes, lambda i: i.name, fold)
    for index in added:
        out.append(
            Difference(
                Category.ADD_INDEX, index.name, f"index {index.name}: missing {_index_words(index)}"
            )
        )
    for index in dropped:
        if family(engine) == "mysql" and _made_for_key(index, source, fold):
            continue
        out.append(
            Difference(Category.DROP_INDEX, index.name, f"index {index.name}: only in the target")
        )
    for mine, theirs in both:
        if _index_key(mine, engine, fold) != _index_key(theirs, engine, fold):
            words = f"{_index_words(theirs)} → {_index_words(mine)}"
            if mine.constraint != theirs.constraint:
                kinds = {True: "a UNIQUE constraint", False: "an index"}
                words = f"{kinds[theirs.constraint]} → {kinds[mine.constraint]}"
            elif mine.comment != theirs.comment and _index_words(mine) == _index_words(theirs):
                words = f"comment {theirs.comment!r} → {mine.comment!r}"
            out.append(Difference(Category.MODIFY_INDEX, mine.name, f"index {mine.name}: {words}"))
    return out


def _made_for_key(index: Index, source: Table, fold: bool) -> bool:
    """MySQL/MariaDB add an index, named after the foreign key, to a table whose foreign key
    has none to use: the server's, made for a key the source has, not one to drop."""
    for fk in source.foreign_keys:
        if _same_name(fk.name, index.name, fold) and not index.unique:
            return _same_names(index.columns[: len(fk.columns)], fk.columns, fold)
    return False


def _foreign_keys(source: Table, target: Table, fold: bool) -> list[Difference]:
    out: list[Difference] = []
    added, both, dropped = pairs(source.foreign_keys, target.foreign_keys, lambda f: f.name, fold)
    for fk in added:
        out.append(
            Difference(
                Category.ADD_FOREIGN_KEY, fk.name, f"foreign key {fk.name}: missing {_fk_words(fk)}"
            )
        )
    for fk in dropped:
        out.append(
            Difference(
                Category.DROP_FOREIGN_KEY, fk.name, f"foreign key {fk.name}: only in the target"
            )
        )
    for mine, theirs in both:
        if not _same_fk(mine, theirs, fold):
            out.append(
                Difference(
                    Category.MODIFY_FOREIGN_KEY,
                    mine.name,
                    f"foreign key {mine.name}: {_fk_words(theirs)} → {_fk_words(mine)}",
                )
            )
    return out


def _checks(source: Table, target: Table, engine: str | None, fold: bool) -> list[Difference]:
    out: list[Difference] = []
    added, both, dropped = pairs(source.checks, target.checks, lambda c: c.name, fold)
    for check in added:
        out.append(
            Difference(
                Category.ADD_CHECK, check.name, f"check {check.name}: missing ({check.expression})"
            )
        )
    for check in dropped:
        out.append(
            Difference(Category.DROP_CHECK, check.name, f"check {check.name}: only in the target")
        )
    for mine, theirs in both:
        if not _same_expression(mine.expression, theirs.expression, engine):
            out.append(
                Difference(
                    Category.MODIFY_CHECK,
                    mine.name,
                    f"check {mine.name}: ({theirs.expression}) → ({mine.expression})",
                )
            )
    return out


def _options(source: Table, target: Table, engine: str | None) -> list[Difference]:
    out: list[Difference] = []
    changed = []
    for attr in ("engine", "charset", "collation"):
        mine, theirs = getattr(source, attr), getattr(target, attr)
        # a source that names none (another engine's) takes what the target has
        if mine and mine.lower() != theirs.lower():
            changed.append((attr, f"{attr} {_said(theirs)} → {mine}"))
    if changed:
        out.append(
            Difference(
                Category.TABLE_OPTIONS,
                source.name,
                f"table {source.name}: " + "; ".join(w for _, w in changed),
                tuple(a for a, _ in changed),
            )
        )
    if source.comment != target.comment:
        out.append(
            Difference(
                Category.TABLE_COMMENT,
                source.name,
                f"table {source.name}: comment {target.comment!r} → {source.comment!r}",
            )
        )
    return out
