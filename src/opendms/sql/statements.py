"""What a batch of SQL does: the kind of each statement, the tables it names, and the rows an
INSERT … VALUES carries. Approval routing and review read this; nothing here connects."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

# sqlglot's parser is pure Python (seconds per megabyte on this class of machine); a request
# analyses at most this much and reports the rest as not analysed. The precheck job reads all.
ANALYSIS_LIMIT_BYTES = 256 * 1024

# sqlglot warns on stderr for every statement it keeps as a bare command; that is expected here.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

DIALECTS = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgres", "sqlite": "sqlite"}

KINDS = (
    "SELECT",
    "INSERT",
    "REPLACE",
    "UPDATE",
    "DELETE",
    "MERGE",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "RENAME",
    "GRANT",
    "REVOKE",
    "CALL",
    "SET",
    "OTHER",
)
_BY_CLASS: dict[type[exp.Expression], str] = {
    exp.Select: "SELECT",
    exp.Union: "SELECT",
    exp.Intersect: "SELECT",
    exp.Except: "SELECT",
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.Create: "CREATE",
    exp.Alter: "ALTER",
    exp.Drop: "DROP",
    exp.TruncateTable: "TRUNCATE",
    exp.Grant: "GRANT",
    exp.Set: "SET",
}


@dataclass(frozen=True)
class Statement:
    kind: str
    tables: tuple[str, ...]  # as written: "t" or "db.t", lower-cased
    # Rows an INSERT … VALUES writes; None when the statement alone cannot tell.
    literal_rows: int | None
    # SELECT … LIMIT n: at most n rows.
    limit: int | None


@dataclass(frozen=True)
class Analysis:
    statements: tuple[Statement, ...]
    complete: bool  # False when part of the text could not be analysed

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(s.kind for s in self.statements)


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        word = str(node.this).split()[0].upper() if node.this else "OTHER"
        return word if word in KINDS else "OTHER"
    for cls, kind in _BY_CLASS.items():
        if isinstance(node, cls):
            return kind
    return "OTHER"


def _table_name(table: exp.Table) -> str:
    parts = [p for p in (table.catalog, table.db, table.name) if p]
    return ".".join(parts[-2:]).lower()


def _limit(node: exp.Expression) -> int | None:
    limit = node.args.get("limit")
    if isinstance(limit, exp.Limit) and isinstance(limit.expression, exp.Literal):
        text = limit.expression.name
        if text.isdigit():
            return int(text)
    return None


def _statement(node: exp.Expression) -> Statement:
    kind = _kind(node)
    ctes = {c.alias_or_name.lower() for c in node.find_all(exp.CTE)}
    tables = tuple(
        dict.fromkeys(
            name
            for t in node.find_all(exp.Table)
            if t.name and (name := _table_name(t)) not in ctes
        )
    )
    rows = None
    if isinstance(node, exp.Insert) and isinstance(node.expression, exp.Values):
        rows = len(node.expression.expressions)
    return Statement(kind, tables, rows, _limit(node) if kind == "SELECT" else None)


def _command_fallback(text: str) -> Statement:
    """What sqlglot keeps as a bare command (REPLACE INTO, RENAME TABLE, CALL …): the first
    word says the kind; the table after INTO/TABLE, when there is one."""
    words = text.split()
    kind = words[0].upper() if words else "OTHER"
    kind = kind if kind in KINDS else "OTHER"
    tables: tuple[str, ...] = ()
    for i, word in enumerate(words[:-1]):
        if word.upper() in ("INTO", "TABLE"):
            tables = (words[i + 1].strip('`"(').split("(")[0].lower(),)
            break
    return Statement(kind, tables, None, None)


def analyse(text: str, engine: str) -> Analysis:
    """Statements of ``text`` in the dialect of ``engine`` (an instance type)."""
    complete = len(text.encode()) <= ANALYSIS_LIMIT_BYTES
    if not complete:
        return Analysis((), complete=False)
    try:
        parsed = sqlglot.parse(text, read=DIALECTS.get(engine, "mysql"))
    except SqlglotError:
        return Analysis((Statement("OTHER", (), None, None),), complete=False)
    out = []
    for node in parsed:
        if not isinstance(node, exp.Expression):
            continue
        if isinstance(node, exp.Command):
            out.append(_command_fallback(node.sql()))
        else:
            out.append(_statement(node))
    return Analysis(tuple(out), complete=True)
