"""``FixSqlByMetaAgent`` without a model: where each statement stops parsing, a corrected
statement where sqlglot can make one, the names the catalog does not have (with the
closest it has), and the SQL review's findings.

A corrected statement is offered only once it parses in the database's dialect to the tree
it was written from (``sql.console.read_back``): written for another dialect (``TOP 10``,
backticks on PostgreSQL), read by OpenDMS where the database reported a syntax error, or with
misspelt names replaced by the catalog's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlalchemy.orm import Session
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.assistant.names import Unknown, renamed, unknown_names
from opendms.assistant.scope import Scope
from opendms.precheck.review import review_for_parsed
from opendms.sql.console import DATA_CHANGES, SCHEMA_CHANGES, ConsoleRefused, read_back
from opendms.sql.review import Finding
from opendms.sql.script import ScriptError
from opendms.sql.statements import Parsed, opaque, parse_script

# The dialects SQL is most often brought from, tried in this order on a statement that does
# not parse in the database's own.
OTHER_DIALECTS = (
    "tsql",
    "oracle",
    "mysql",
    "postgres",
    "sqlite",
    "snowflake",
    "bigquery",
    "spark",
    "duckdb",
    "clickhouse",
)
# Statement kinds the review is asked about: what the SQL console runs.
REVIEWED = frozenset({"SELECT"}) | DATA_CHANGES | SCHEMA_CHANGES
_SYNTAX = re.compile(r"syntax|parse error|unexpected", re.I)


@dataclass(frozen=True)
class Repair:
    sql: str
    why: str


@dataclass
class StatementFix:
    number: int
    line: int
    text: str
    parse_error: str | None = None
    unknown: list[Unknown] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)


@dataclass
class FixReport:
    statements: list[StatementFix]
    findings: list[Finding]
    script_error: str | None = None


def _checked(node: exp.Expr, engine: str) -> str | None:
    try:
        return read_back(node, engine)
    except ConsoleRefused:
        return None


def from_other_dialect(text: str, engine: str, dialect: str) -> tuple[exp.Expr, str] | None:
    """The first other dialect that reads ``text`` as one statement OpenDMS can check: its
    tree and the dialect's name."""
    for other in OTHER_DIALECTS:
        if other == dialect:
            continue
        try:
            nodes = [n for n in sqlglot.parse(text, read=other) if n is not None]
        except SqlglotError:
            continue
        if len(nodes) == 1 and not opaque(nodes[0]) and _checked(nodes[0], engine) is not None:
            return nodes[0], other
    return None


def _with_names(fix: StatementFix, node: exp.Expr, scope: Scope, error: str, how: str) -> bool:
    """Note the names the catalog lacks; offer the statement with the closest ones (a second
    pass sees the columns of a table whose name the first put right). Whether it did."""
    fix.unknown = unknown_names(node, scope, error)
    better = renamed(node, fix.unknown)
    if better is None:
        return False
    more = [
        u
        for u in unknown_names(better, scope)
        if u.what == "column" and all(k.name.lower() != u.name.lower() for k in fix.unknown)
    ]
    fix.unknown += more
    better = renamed(better, more) or better
    text = _checked(better, scope.engine)
    if text is None:
        return False
    names = ", ".join(
        f"{u.name} -> {u.closest[0]}"
        for u in fix.unknown
        if u.closest and (u.table or u.what == "table")
    )
    fix.repairs.append(Repair(text, f"{how}with the catalog's names ({names})"))
    return True


def _statement(one: Parsed, scope: Scope, error: str) -> StatementFix:
    piece = one.piece
    fix = StatementFix(piece.number, piece.line, piece.text.strip(), one.error)
    engine = scope.engine
    if one.error is not None:
        found = from_other_dialect(piece.text, engine, scope.dialect)
        if found is None:
            return fix
        node, other = found
        text = _checked(node, engine)
        assert text is not None  # from_other_dialect checked it
        how = f"read as {other} and written for {engine}"
        if not _with_names(fix, node, scope, error, how + ", "):
            fix.repairs.append(Repair(text, how))
        return fix
    if len(one.nodes) != 1 or opaque(one.nodes[0]):
        return fix
    node = one.nodes[0]
    if _SYNTAX.search(error):
        text = _checked(node, engine)
        if text is not None and " ".join(text.split()) != " ".join(piece.text.split()):
            fix.repairs.append(
                Repair(text, "as OpenDMS reads it (check that it says what you meant)")
            )
    _with_names(fix, node, scope, error, "")
    return fix


def fix(s: Session, scope: Scope, sql: str, error: str) -> FixReport:
    try:
        parsed = [p for p in parse_script(sql, scope.engine) if p.nodes or p.error]
    except ScriptError as exc:
        return FixReport([], [], str(exc))
    statements = [_statement(one, scope, error) for one in parsed]
    findings = _review(s, scope, parsed)
    return FixReport(statements, findings)


def _review(s: Session, scope: Scope, parsed: Sequence[Parsed]) -> list[Finding]:
    readable = [p for p in parsed if p.error is None]
    if not readable:
        return []
    found = review_for_parsed(s, scope.inst, scope.db, readable, REVIEWED)
    return [f for f in found if f.code != "SQL_PARSE"]
