"""Review rules for the indexes a schema change adds: how many, how wide, and whether one
repeats another, on the table as the statement leaves it (its existing indexes included).

An index is compared by its key parts (column, prefix length) in order, and only with
indexes of the same method: a FULLTEXT or GIN index does not serve what a b-tree does, and a
partial index (PostgreSQL ``WHERE``) covers only some rows, so neither repeats a plain one.
"""

from __future__ import annotations

from collections.abc import Iterator

from opendms.schema.model import Index, Table
from opendms.sql import column_types as types
from opendms.sql.review_base import Subject, rule
from opendms.sql.review_ddl_base import (
    MYSQL,
    added_indexes,
    before,
    effective_charset,
    every_index,
    existing,
)

ADDS = frozenset({"CREATE", "ALTER"})


def _parts(index: Index) -> tuple[tuple[str, int | None], ...]:
    lengths = index.lengths or (None,) * len(index.columns)
    return tuple((c.lower(), n) for c, n in zip(index.columns, lengths, strict=False))


def _comparable(a: Index, b: Index) -> bool:
    return (
        a.method == b.method
        and not a.where
        and not b.where
        and a.method
        not in (
            "fulltext",
            "spatial",
        )
    )


def _label(index: Index) -> str:
    what = "primary key" if index.name == "PRIMARY" else f"index {index.name}"
    return f"{what} ({', '.join(index.columns)})"


@rule(
    "TOO_MANY_INDEXES",
    "WARNING",
    "A table with more secondary indexes than the limit (16).",
    kinds=ADDS,
)
def _too_many(s: Subject) -> Iterator[str]:
    found = added_indexes(s)
    if found is None:
        return
    table, new = found
    if [i for i in new if i.name != "PRIMARY"] and len(table.indexes) > s.limits.max_indexes:
        yield (
            f"Table {table.name} would have {len(table.indexes)} indexes (limit "
            f"{s.limits.max_indexes}): each one slows every write. Drop those no query needs "
            "(or that another index's left prefix already serves)."
        )


@rule(
    "INDEX_TOO_MANY_COLUMNS",
    "WARNING",
    "An index over more columns than the limit (5).",
    kinds=ADDS,
)
def _too_many_columns(s: Subject) -> Iterator[str]:
    found = added_indexes(s)
    for index in found[1] if found is not None else ():
        if len(index.columns) > s.limits.max_index_columns:
            yield (
                f"The {_label(index)} on {found[0].name if found else ''} has "
                f"{len(index.columns)} columns (limit {s.limits.max_index_columns}): a query "
                "uses only a left prefix of it. Keep the columns queries filter on, most "
                "selective first."
            )


def _key_width(table: Table, index: Index, engine: str) -> tuple[int, str] | None:
    """The index's key bytes, or (-1, column) for a TEXT/BLOB part without a prefix length;
    None if a part's width is not known."""
    total = 0
    lengths = index.lengths or (None,) * len(index.columns)
    for name, prefix in zip(index.columns, lengths, strict=False):
        column = table.column(name)
        dtype = types.datatype(column.type, engine) if column is not None else None
        if column is None or dtype is None:
            return None
        width = types.key_bytes(dtype, effective_charset(column, table), prefix)
        if width is None:
            if dtype.this in types.LOBS:
                return -1, column.name
            return None
        total += width
    return total, ""


@rule(
    "INDEX_KEY_TOO_LONG",
    "ERROR",
    "An index key over InnoDB's 3,072 bytes (MySQL/MariaDB; a MariaDB UNIQUE key excepted), "
    "or over a whole TEXT/BLOB column (MySQL): the server refuses it.",
    kinds=ADDS,
)
def _key_too_long(s: Subject) -> Iterator[str]:
    found = added_indexes(s) if s.engine in MYSQL else None
    if found is None:
        return
    table, new = found
    for index in new:
        if index.method in ("fulltext", "spatial"):
            continue
        if s.engine == "mariadb" and index.unique and index.name != "PRIMARY":
            continue  # MariaDB 10.4+ keeps a long UNIQUE key as a hash
        width = _key_width(table, index, s.engine)
        if width is None:
            continue
        size, lob = width
        if size < 0 and s.engine == "mysql":  # MariaDB indexes a prefix on its own
            yield (
                f"The {_label(index)} on {table.name} covers {lob}, a TEXT/BLOB column, whole: "
                f"the server refuses it. Give it a prefix length: {lob}(64)."
            )
        elif size > types.MAX_KEY_BYTES:
            yield (
                f"The {_label(index)} on {table.name} is {size:,} bytes wide (utf8mb4 counts 4 "
                f"bytes a character), over InnoDB's {types.MAX_KEY_BYTES:,}: the server refuses "
                "it. Index fewer or shorter columns, or a prefix of the long ones."
            )


def _others(table: Table, index: Index) -> list[Index]:
    return [i for i in every_index(table) if i.name.lower() != index.name.lower()]


def _pairs(s: Subject) -> Iterator[tuple[Table, Index, Index]]:
    """Each index the statement adds with each other comparable index of its table (the
    existing ones included), every pair once; both checks are symmetric in the pair."""
    found = added_indexes(s)
    if found is None:
        return
    table, new = found
    seen: set[frozenset[str]] = set()
    for index in new:
        for other in _others(table, index):
            pair = frozenset({index.name.lower(), other.name.lower()})
            if pair not in seen and _comparable(index, other):
                seen.add(pair)
                yield table, index, other


@rule(
    "DUPLICATE_INDEX",
    "WARNING",
    "An index on the same columns, in the same order, as another of its table (the existing "
    "ones included).",
    kinds=ADDS,
)
def _duplicate(s: Subject) -> Iterator[str]:
    for table, index, other in _pairs(s):
        if _parts(index) == _parts(other):
            keep = other if other.unique or not index.unique else index
            drop = index if keep is other else other
            yield (
                f"The {_label(index)} on {table.name} repeats its {_label(other)}: every "
                f"write updates both for nothing. Keep {keep.name}, drop {drop.name}."
            )


@rule(
    "REDUNDANT_INDEX",
    "WARNING",
    "An index whose columns are a left prefix of another index of its table (the existing "
    "ones included): the longer one serves its queries.",
    kinds=ADDS,
)
def _redundant(s: Subject) -> Iterator[str]:
    for table, index, other in _pairs(s):
        short, long = (index, other) if len(index.columns) < len(other.columns) else (other, index)
        if short.unique or len(short.columns) == len(long.columns):
            continue  # a unique key enforces something; equal ones are DUPLICATE_INDEX's
        if _parts(long)[: len(short.columns)] == _parts(short):
            yield (
                f"On {table.name}, the {_label(short)} is a left prefix of the "
                f"{_label(long)}, which serves the same queries: drop {short.name}"
                f"{' instead of adding it' if short is index else ''}."
            )


@rule(
    "UNIQUE_ON_EXISTING_ROWS",
    "WARNING",
    "A unique key or primary key added to a table that already holds rows.",
    kinds=ADDS,
)
def _unique_on_rows(s: Subject) -> Iterator[str]:
    found = added_indexes(s)
    if found is None or not existing(s):
        return
    table, new = found
    was = before(s)
    rows = f" (it has about {was.rows:,} rows)" if was is not None and was.rows else ""
    for index in new:
        if not index.unique:
            continue
        columns = ", ".join(index.columns)
        check = f"SELECT {columns}, COUNT(*) FROM {table.name} GROUP BY {columns}"  # noqa: S608 (shown, never run)
        yield (
            f"Adding the unique {_label(index)} to {table.name} fails if two rows already share "
            f"({columns}){rows}, and a lock-free copy would keep only one of them. Check first: "
            f"{check} HAVING COUNT(*) > 1."
        )
