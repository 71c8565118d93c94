"""Syncing a whole schema the way a structure sync does, for the integration tests: every
table's plan in three phases, each statement parsed and rendered as the product will before
it runs, and the check that matters: read both sides again, nothing differs."""

from __future__ import annotations

from collections.abc import Callable

from opendms.schema.model import Table
from opendms.schema.render import differences, sync_plan, sync_statements
from opendms.sql.statements import opaque, parse_script, render


def as_run(statement: str, engine: str) -> str:
    """What the product runs of ``statement``: its one parsed statement, rendered again,
    which must be the statement itself."""
    (parsed,) = parse_script(statement, engine)
    assert parsed.error is None, parsed.error
    (node,) = parsed.nodes
    assert not opaque(node), statement
    text = render(node, engine)
    assert text == statement
    return text


def sync(
    source: dict[str, Table],
    target: dict[str, Table],
    engine: str,
    execute: Callable[[str], None],
    *,
    source_engine: str | None = None,
) -> list[str]:
    """Make ``target``'s tables match ``source``'s (both keyed by name): every table's
    foreign keys dropped, then its own changes, then foreign keys added."""
    plans = [
        sync_plan(source.get(n), target.get(n), engine, source_engine=source_engine)
        for n in sorted(set(source) | set(target))
    ]
    statements = [s for p in plans for s in p.before]
    statements += [s for p in plans for s in p.main]
    statements += [s for p in plans for s in p.after]
    for statement in statements:
        execute(as_run(statement, engine))
    return statements


def assert_same(
    source: dict[str, Table],
    target: dict[str, Table],
    engine: str,
    *,
    source_engine: str | None = None,
) -> None:
    assert sorted(source) == sorted(target)
    for name, table in source.items():
        found = differences(table, target[name], engine, source_engine=source_engine)
        assert found == [], f"{name}: {[d.text for d in found]}"
        again = sync_statements(table, target[name], engine, source_engine=source_engine)
        assert again == [], f"{name}: {again}"
