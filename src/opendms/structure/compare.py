"""Comparing one database's tables with the definitions they should have: per table, how it
differs (DMS's CompareType) and the DDL, in the database's own dialect, that makes it match.

Nothing here connects: the definitions are read by the callers (``structure.sync``), so the
same comparison serves a structure sync's target and a schema design's stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opendms.schema import render
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
) -> tuple[list[TableResult], list[str]]:
    """Each pair compared, and all their DDL in the order to run it: every table's foreign
    keys dropped, then every table's own changes, then the foreign keys added. A target table
    not in any pair is left alone. Raises ``schema.translate.SchemaRefused`` for what the
    target's engine cannot hold."""
    results: list[TableResult] = []
    phases: tuple[list[str], list[str], list[str]] = ([], [], [])
    for pair in pairs:
        wanted, found = source[pair.source], target.get(pair.target)
        how = {"name": pair.target, "source_engine": source_engine}
        plan = render.sync_plan(wanted, found, engine, **how)
        if found is None:
            kind = "CREATE_TABLE"
        elif plan.statements:
            kind = "ALTER_TABLE"
        else:
            kind = "EQUAL_TABLE"
        differences = (
            [d.text for d in render.differences(wanted, found, engine, **how)] if found else []
        )
        results.append(TableResult(pair.source, pair.target, kind, differences, plan.statements))
        for phase, part in zip(phases, (plan.before, plan.main, plan.after), strict=True):
            phase.extend(part)
    return results, [st for phase in phases for st in phase]


def by_name(tables: Mapping[str, Table], name: str) -> str | None:
    """The name ``tables`` spells ``name`` with, matched exactly first, then regardless of
    case (MySQL on a case-insensitive file system, unquoted PostgreSQL names)."""
    if name in tables:
        return name
    lowered = name.lower()
    return next((n for n in tables if n.lower() == lowered), None)
