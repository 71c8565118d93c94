"""Review rules for the names a schema change gives tables, columns and indexes (the name
rules themselves: ``sql/names.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from opendms.sql import names
from opendms.sql.review_base import DDL, Subject, rule
from opendms.sql.review_ddl_base import (
    after,
    before,
    given_names,
    plain_column,
)

# ------------------------------------------------------------------ names


@rule(
    "NAME_TOO_LONG",
    "ERROR",
    "A table, column or index name longer than the engine allows (64 characters on "
    "MySQL/MariaDB, 63 bytes on PostgreSQL).",
    kinds=DDL,
)
def _too_long(s: Subject) -> Iterator[str]:
    for n in given_names(s):
        limit = names.too_long(n.name, s.engine)
        if limit is not None:
            effect = (
                "PostgreSQL would cut it short, so the object would not have the name the "
                "design gives it"
                if s.engine == "postgresql"
                else "the server refuses it"
            )
            yield f"The {n.what} name {n.name} is over {limit} characters: {effect}. Shorten it."


@rule(
    "NAME_RESERVED_WORD",
    "WARNING",
    "A reserved word as a name: every statement that names it must quote it.",
    kinds=DDL,
)
def _reserved(s: Subject) -> Iterator[str]:
    words = names.reserved(s.engine)
    for n in given_names(s):
        if n.name.lower() in words:
            unquoted = "" if n.quoted else " (unquoted here, the server may refuse this one too)"
            yield (
                f"The {n.what} name {n.name} is a reserved word in {s.engine}: every query must "
                f"quote it, and one that forgets fails{unquoted}. Choose another name."
            )


def _snake(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^a-z0-9_]+", "_", spaced.lower()).strip("_") or "name"


@rule(
    "NAME_NOT_SNAKE_CASE",
    "WARNING",
    "A name that is not lower-case snake_case (letters, digits and _, starting with a letter).",
    kinds=DDL,
)
def _not_snake(s: Subject) -> Iterator[str]:
    for n in given_names(s):
        if n.what in ("table", "column", "index") and not names.snake_case(n.name):
            why = (
                "PostgreSQL needs it quoted in every query"
                if s.engine == "postgresql" and n.name.lower() != n.name and n.quoted
                else "mixed case and other characters read differently across servers "
                "(lower_case_table_names) and tools"
            )
            yield (
                f"The {n.what} name {n.name} is not lower-case snake_case: {why}. Call it "
                f"{_snake(n.name)}."
            )


@rule(
    "INDEX_NAME_PREFIX",
    "WARNING",
    f"An index name without its prefix: {names.INDEX_PREFIX} for an index, "
    f"{names.UNIQUE_PREFIX} for a unique one (or no name at all).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _index_prefix(s: Subject) -> Iterator[str]:
    was, now = before(s), after(s)
    if now is None:
        return
    had = {i.name.lower() for i in was.indexes} if was is not None else set()
    named = {n.name.lower() for n in given_names(s) if n.what in ("index", "constraint")}
    for index in now.indexes:
        if index.name.lower() in had or index.method in ("fulltext", "spatial"):
            continue
        prefix = names.UNIQUE_PREFIX if index.unique else names.INDEX_PREFIX
        if index.name.lower().startswith(prefix):
            continue
        columns = "_".join(c for c in index.columns if plain_column(c)) or "expr"
        suggestion = f"{prefix}{columns}"
        what = f"{'unique ' if index.unique else ''}index"
        if index.name.lower() not in named:
            yield (
                f"The {what} on {now.name} ({', '.join(index.columns)}) has no name: the server "
                f"makes one up. Name it {suggestion}."
            )
        else:
            yield (
                f"The {what} {index.name} on {now.name} should start with {prefix}: call it "
                f"{suggestion}."
            )
