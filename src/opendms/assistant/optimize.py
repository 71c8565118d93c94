"""``OptimizeSqlByMetaAgent`` without a model: for each statement the SQL review's
findings, its plan from the live database, and index suggestions from the catalog.

The plan is read through the SQL console (``console.service.execute_script``), as if the
caller had typed ``EXPLAIN …`` there: their QUERY permission, the read-only transaction, the
instance's ``QueryTimeout`` and the audit log all apply, and a refusal is reported, not
worked around. Schema changes are not explained (the console does not explain them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from sqlglot import exp

from opendms.assistant.fix import REVIEWED
from opendms.assistant.indexes import IndexAdvice, suggest
from opendms.assistant.scope import Scope
from opendms.console import service as console
from opendms.errors import DmsError
from opendms.identity.caller import Caller
from opendms.means import Means
from opendms.precheck.review import review_for_parsed
from opendms.sql.console import DATA_CHANGES
from opendms.sql.review import Finding
from opendms.sql.script import ScriptError
from opendms.sql.statements import kind_of, opaque, parse_script

MAX_STATEMENTS = 20  # each is explained on the live database
_PG_SCAN = re.compile(r"Seq Scan on (\S+)")
_SQLITE_SCAN = re.compile(r"SCAN (?:TABLE )?(\S+)")


@dataclass
class Plan:
    ran: bool
    message: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)  # tables the plan reads whole


@dataclass
class StatementAdvice:
    number: int
    text: str
    kind: str
    parse_error: str | None = None
    plan: Plan | None = None
    indexes: list[IndexAdvice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class OptimizeReport:
    statements: list[StatementAdvice]
    findings: list[Finding]
    script_error: str | None = None
    left_out: int = 0  # statements past MAX_STATEMENTS, not looked at


def _explain_text(text: str, engine: str) -> str:
    return ("EXPLAIN QUERY PLAN " if engine == "sqlite" else "EXPLAIN ") + text


def full_scans(engine: str, rows: list[dict[str, Any]]) -> list[str]:
    """Tables a plan reads from end to end, as the engine names them."""
    found: list[str] = []
    for row in rows:
        if engine in ("mysql", "mariadb"):
            # ALL: every row; index: every entry of an index (in its order, which spares a
            # sort but still reads the whole table's worth)
            if str(row.get("type") or "").upper() in ("ALL", "INDEX") and row.get("table"):
                found.append(str(row["table"]))
        elif engine == "postgresql":
            found += _PG_SCAN.findall(str(row.get("QUERY PLAN") or ""))
        else:
            detail = str(row.get("detail") or "")
            seen = _SQLITE_SCAN.match(detail)
            if seen is not None and "USING" not in detail:  # SCAN t USING INDEX: an index
                found.append(seen.group(1))
    return list(dict.fromkeys(found))


def explain(s: Session, means: Means, caller: Caller, scope: Scope, text: str) -> Plan:
    """``text``'s plan, run as the caller through the SQL console."""
    try:
        (result,) = console.execute_script(
            s, means, caller, scope.db.db_id, _explain_text(text, scope.engine)
        )
    except DmsError as exc:
        return Plan(False, f"{exc.code}: {exc.message}")
    if not result.success:
        return Plan(False, result.message)
    return Plan(
        True,
        result.message,
        result.columns,
        result.rows,
        full_scans(scope.engine, result.rows),
    )


def optimize(s: Session, means: Means, caller: Caller, scope: Scope, sql: str) -> OptimizeReport:
    try:
        parsed = [p for p in parse_script(sql, scope.engine) if p.nodes or p.error]
    except ScriptError as exc:
        return OptimizeReport([], [], str(exc))
    out: list[StatementAdvice] = []
    for one in parsed[:MAX_STATEMENTS]:
        text = one.piece.text.strip()
        if one.error is not None:
            out.append(StatementAdvice(one.piece.number, text, "OTHER", one.error))
            continue
        node = one.nodes[0] if len(one.nodes) == 1 else None
        if node is None or opaque(node):
            out.append(StatementAdvice(one.piece.number, text, "OTHER"))
            continue
        kind = kind_of(node)
        advice = StatementAdvice(one.piece.number, text, kind)
        if isinstance(node, exp.Query) or kind in DATA_CHANGES:
            advice.plan = explain(s, means, caller, scope, text)
            advice.indexes, advice.notes = suggest(node, scope)
        out.append(advice)
    readable = [p for p in parsed[:MAX_STATEMENTS] if p.error is None]
    findings = (
        [
            f
            for f in review_for_parsed(s, scope.inst, scope.db, readable, REVIEWED)
            if f.code != "SQL_PARSE"
        ]
        if readable
        else []
    )
    return OptimizeReport(out, findings, left_out=max(0, len(parsed) - MAX_STATEMENTS))
