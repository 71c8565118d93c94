"""PLACEHOLDER until the schema-diff branch merges (never lands)."""

from __future__ import annotations

from opendms.schema.model import Table


def sync_statements(
    source: Table | None,
    target: Table | None,
    engine: str,
    *,
    name: str | None = None,
    source_engine: str | None = None,
) -> list[str]:
    raise NotImplementedError
