"""PLACEHOLDER until the schema-diff branch merges (never lands)."""

from __future__ import annotations

from opendms.schema.model import Table


def compare(source: Table | None, target: Table | None) -> list[object]:
    if source == target:
        return []
    return [f"{getattr(source, 'name', '')} differs"]
