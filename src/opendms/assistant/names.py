"""Names a statement uses that the catalog does not have for the caller, with the closest
names it does have, and the statement with them put right where each has one clear match."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlglot import exp

from opendms.assistant.scope import Scope
from opendms.sql.statements import table_name

# What MySQL/MariaDB, PostgreSQL and SQLite say about a missing table or column.
_MISSING_TABLE = re.compile(
    r"Table '(?:[^'.]+\.)?([^']+)' doesn't exist|relation \"(?:[^\".]+\.)?([^\"]+)\" does not "
    r"exist|no such table: (?:\w+\.)?(\w+)",
    re.I,
)
_MISSING_COLUMN = re.compile(
    r"Unknown column '(?:[^']*\.)?([^'.]+)'|column \"?(?:\w+\.)?([^\" ]+?)\"? does not exist"
    r"|no such column: (?:\w+\.)?(\w+)",
    re.I,
)
_CUTOFF = 0.6


@dataclass(frozen=True)
class Unknown:
    what: str  # table, column
    name: str  # as written
    closest: tuple[str, ...]  # the catalog's names, best first
    table: str = ""  # a column's table, where one is known


def closest(name: str, names: Iterable[str]) -> tuple[str, ...]:
    by_lower: dict[str, str] = {}
    for n in names:
        by_lower.setdefault(n.lower(), n)
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=_CUTOFF)
    return tuple(by_lower[f] for f in found)


def named_in_error(error: str) -> tuple[list[str], list[str]]:
    """The tables and the columns a database's error message says are missing."""
    tables = [next(g for g in m.groups() if g) for m in _MISSING_TABLE.finditer(error)]
    columns = [next(g for g in m.groups() if g) for m in _MISSING_COLUMN.finditer(error)]
    return tables, columns


def _sources(node: exp.Expr) -> dict[str, str]:
    """Alias or name (lower-cased) -> the table it stands for, as ``table_name`` writes it."""
    return {t.alias_or_name.lower(): table_name(t) for t in node.find_all(exp.Table) if t.name}


def _ctes(node: exp.Expr) -> set[str]:
    return {c.alias_or_name.lower() for c in node.find_all(exp.CTE)}


def unknown_names(node: exp.Expr, scope: Scope, error: str = "") -> list[Unknown]:
    """Tables the statement names that the caller may not read (or that do not exist), and
    columns their tables lack; names the error message calls missing are looked at too."""
    out: list[Unknown] = []
    ctes = _ctes(node)
    sources = _sources(node)
    readable = [t.name for t in scope.tables.values()]
    seen: set[str] = set()
    for name in dict.fromkeys(sources.values()):
        if name not in ctes and scope.table(name) is None and name not in seen:
            seen.add(name)
            out.append(Unknown("table", name, closest(name.rpartition(".")[2], readable)))
    known = {
        alias: meta
        for alias, name in sources.items()
        if (meta := scope.table(name)) is not None and meta.columns
    }
    aliases = {a.alias.lower() for a in node.find_all(exp.Alias) if a.alias}
    only = next(iter(known.values())) if len(known) == 1 and len(sources) == 1 else None
    for column in node.find_all(exp.Column):
        if not column.name or isinstance(column.this, exp.Star):
            continue
        name = column.name
        if column.table:
            meta = known.get(column.table.lower())
        elif only is not None and name.lower() not in aliases:
            meta = only
        else:
            meta = None
        if meta is None or meta.has_column(name):
            continue
        key = f"{meta.name}.{name}".lower()
        if key not in seen:
            seen.add(key)
            out.append(Unknown("column", name, closest(name, meta.column_names()), meta.name))
    missing_tables, missing_columns = named_in_error(error)
    for name in missing_tables:
        if name.lower() not in seen:
            seen.add(name.lower())
            out.append(Unknown("table", name, closest(name, readable)))
    statement_tables = list(known.values())
    for name in missing_columns:
        if any(u.what == "column" and u.name.lower() == name.lower() for u in out):
            continue
        if any(m.has_column(name) for m in statement_tables):
            continue
        candidates = [c for m in statement_tables for c in m.column_names()]
        out.append(Unknown("column", name, closest(name, candidates)))
    return out


def _identifier(name: str) -> exp.Identifier:
    # PostgreSQL folds unquoted names to lower case: a name that is not all lower is quoted.
    return exp.to_identifier(name, quoted=not re.fullmatch(r"[a-z_][a-z0-9_]*", name))


def renamed(node: exp.Expr, unknown: Iterable[Unknown]) -> exp.Expr | None:
    """``node`` with each unknown name that has a close match replaced by its best match;
    None when no name has one."""
    tables = {u.name.lower(): u.closest[0] for u in unknown if u.what == "table" and u.closest}
    columns = {
        (u.table.lower(), u.name.lower()): u.closest[0]
        for u in unknown
        if u.what == "column" and u.closest and u.table
    }
    if not tables and not columns:
        return None
    fixed = node.copy()
    sources = _sources(fixed)
    single = next(iter(sources.values())) if len(sources) == 1 else None
    for column in list(fixed.find_all(exp.Column)):
        table = sources.get(column.table.lower()) if column.table else single
        new = columns.get(((table or "").rpartition(".")[2], column.name.lower()))
        if new is not None:
            column.set("this", _identifier(new))
    for found in list(fixed.find_all(exp.Table)):
        new = tables.get(table_name(found))
        if new is not None:
            found.set("this", _identifier(new))
    return fixed
