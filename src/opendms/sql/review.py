"""SQL review: small pure rules over each statement's AST, in one ordered table.

Each rule has a code, a default level (``ERROR`` stops a ticket's precheck, ``WARNING`` is
reported, ``OFF`` is not run) that a security rule set may override, and yields a message for
each problem it sees (``review_base``). The table holds the data-change rules
(``review_dml``), then the schema-change rules (``review_ddl_objects``, ``_names``,
``_tables``, ``_columns``, ``_indexes``, ``_changes``), in that order. Rules that need the
target's shape read it from a :class:`Catalog`; without one (a script reviewed on its own)
they stay silent rather than guess. A script is reviewed in order, each statement against
the tables as the statements before it leave them (``overlay``). Fixture cases for every rule
live in ``tests/fixtures/review/``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

# the rule modules register their rules in the table
from opendms.sql import review_ddl_changes as _ddl_changes
from opendms.sql import review_ddl_columns as _ddl_columns
from opendms.sql import review_ddl_indexes as _ddl_indexes
from opendms.sql import review_ddl_names as _ddl_names
from opendms.sql import review_ddl_objects as _ddl_objects
from opendms.sql import review_ddl_tables as _ddl_tables
from opendms.sql import review_dml as _dml
from opendms.sql.overlay import Overlay
from opendms.sql.review_base import (
    DML,
    LEVELS,
    RULES,
    Finding,
    Limits,
    ReviewRule,
    Subject,
    applies,
)
from opendms.sql.review_dml import NONDETERMINISTIC, leading_wildcards, wrapped_columns
from opendms.sql.script import ScriptError
from opendms.sql.statements import Parsed, kind_of, parse_script
from opendms.sql.tables import TRANSACTIONAL_ENGINES, Catalog, TableShape

__all__ = [
    "DML",
    "LEVELS",
    "NONDETERMINISTIC",
    "RULES",
    "TRANSACTIONAL_ENGINES",
    "Catalog",
    "Finding",
    "Limits",
    "ReviewRule",
    "Subject",
    "TableShape",
    "leading_wildcards",
    "review",
    "review_parsed",
    "wrapped_columns",
]
# The table's order: data-change rules, then schema-change rules, each module's in
# definition order (the imports above are sorted by name, so the order is said here).
_ORDER = [
    m.__name__
    for m in (_dml, _ddl_objects, _ddl_names, _ddl_tables, _ddl_columns, _ddl_indexes, _ddl_changes)
]
RULES.sort(key=lambda r: _ORDER.index(r.check.__module__))


# ------------------------------------------------------------------ running them


def _levels(overrides: Mapping[str, str]) -> dict[str, str]:
    known = {r.code for r in RULES}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown review rule {', '.join(bad)}")
    return {r.code: r.level if r.fixed else overrides.get(r.code, r.level) for r in RULES}


def review(
    script: str,
    engine: str,
    allowed_kinds: Collection[str],
    *,
    catalog: Catalog | None = None,
    levels: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    env_type: str = "",
    reason: str = "",
) -> list[Finding]:
    """Every finding of every rule that is not OFF, statement by statement, in table order.
    A script that does not split or a statement that does not parse is an ``SQL_PARSE``
    error naming where. ``env_type`` is the environment of the database it runs in (an
    instance's EnvType; "" when unknown) and ``reason`` why the ticket makes the change
    ("" when none was given): the rules on dropping and emptying tables read them."""
    try:
        parsed = parse_script(script, engine)
    except ScriptError as exc:
        return [Finding("SQL_PARSE", "ERROR", 0, exc.line, exc.column, str(exc))]
    return review_parsed(
        parsed,
        allowed_kinds,
        engine,
        catalog=catalog,
        levels=levels,
        limits=limits,
        env_type=env_type,
        reason=reason,
    )


def review_parsed(
    parsed: Sequence[Parsed],
    allowed_kinds: Collection[str],
    engine: str,
    *,
    catalog: Catalog | None = None,
    levels: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    env_type: str = "",
    reason: str = "",
) -> list[Finding]:
    """:func:`review` of a script already parsed (the precheck parses once for all steps)."""
    level_of = _levels(levels or {})
    active = [(r, level_of[r.code]) for r in RULES if level_of[r.code] != "OFF"]
    findings: list[Finding] = []
    allowed = frozenset(allowed_kinds)
    overlay = Overlay(catalog, engine, (node for one in parsed for node in one.nodes))
    for one in parsed:
        piece = one.piece
        if one.error is not None:
            findings.append(
                Finding("SQL_PARSE", "ERROR", piece.number, piece.line, piece.column, one.error)
            )
            continue
        for node in one.nodes:
            subject = Subject(
                node,
                kind_of(node),
                piece,
                allowed,
                catalog,
                limits or Limits(),
                len(parsed),
                engine,
                env_type=env_type.strip().lower(),
                reason=reason.strip(),
                overlay=overlay,
            )
            for r, level in active:
                if applies(r, subject):
                    findings.extend(
                        Finding(r.code, level, piece.number, piece.line, piece.column, message)
                        for message in r.check(subject)
                    )
            overlay.apply(node, piece.number)
    return findings
