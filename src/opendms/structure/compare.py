"""Comparing one database's tables with the definitions they should have: per table, how it
differs (DMS's CompareType) and the DDL, in the database's own dialect, that makes it match.

Nothing here connects: the definitions are read by the callers (``structure.sync``), so the
same comparison serves a structure sync's target and a schema design's stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opendms.schema import diff, render
from opendms.schema.model import Table


@dataclass(frozen=True)
class Pair:
    """A table of the source and the table of the target it should make match."""

    source: str
    target: str


@dataclass
class TableResult:
    source: str
    target: str
    compare_type: str  # CREATE_TABLE, ALTER_TABLE, EQUAL_TABLE, PASS_TABLE
    differences: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def dumps(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "compare_type": self.compare_type,
            "differences": self.differences,
            "statements": self.statements,
        }


def compare_tables(
    pairs: Sequence[Pair],
    source: Mapping[str, Table],
    target: Mapping[str, Table],
    *,
    engine: str,
    source_engine: str,
) -> list[TableResult]:
    """Each pair compared. A source table that is missing was named by the ticket and is an
    error the caller raised already; a target table not in any pair is left alone."""
    results = []
    for pair in pairs:
        wanted = replace(source[pair.source], name=pair.target)
        found = target.get(pair.target)
        statements = render.sync_statements(
            wanted, found, engine, name=pair.target, source_engine=source_engine
        )
        if found is None:
            kind = "CREATE_TABLE"
        elif statements:
            kind = "ALTER_TABLE"
        else:
            kind = "EQUAL_TABLE"
        differences = [str(d) for d in diff.compare(wanted, found)] if found is not None else []
        results.append(TableResult(pair.source, pair.target, kind, differences, statements))
    return results


def by_name(tables: Mapping[str, Table], name: str) -> str | None:
    """The name ``tables`` spells ``name`` with, matched exactly first, then regardless of
    case (MySQL on a case-insensitive file system, unquoted PostgreSQL names)."""
    if name in tables:
        return name
    lowered = name.lower()
    return next((n for n in tables if n.lower() == lowered), None)
