"""The query of an export ticket (dms-api.md A.1.6, A.4; issue 7): exactly one SELECT that
reads and changes nothing.

Refused, each with the reason: several statements; anything but a query; MySQL code in a
comment (``/*! … */``: sql.script); ``SELECT … INTO`` (a table, or with MySQL's
``OUTFILE`` / ``DUMPFILE`` a file on the database server); ``FOR UPDATE`` / ``FOR SHARE`` /
``LOCK IN SHARE MODE`` (row locks held for the whole export); a write hidden in a
data-modifying ``WITH``; and any function not on the read allowlist (sql.functions). The
export runs the text generated from the tree checked here (``ExportQuery.text``), in a
read-only transaction as well: this check names the problem before approval, the
transaction is a second wall.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import SqlglotError

from opendms.sql import functions
from opendms.sql.script import ScriptError
from opendms.sql.statements import DIALECTS, parse_script, render, table_name


class ExportRefused(ValueError):
    """The text is not one read-only query; the message says why."""


@dataclass(frozen=True)
class ExportQuery:
    node: exp.Query
    tables: tuple[str, ...]  # read, as written ("t" or "db.t"), lower-cased, sorted; no CTEs
    text: str  # what the export runs: generated from ``node``


def _into_file(text: str, dialect: str) -> str | None:
    """MySQL's ``INTO OUTFILE`` / ``INTO DUMPFILE`` (which sqlglot does not parse)."""
    try:
        tokens = sqlglot.tokenize(text, read=dialect)
    except SqlglotError:
        return None
    for this, after in itertools.pairwise(tokens):
        if this.token_type == TokenType.INTO and after.text.upper() in ("OUTFILE", "DUMPFILE"):
            return after.text.upper()
    return None


def file_refusal(text: str, engine: str) -> str | None:
    """Why ``text`` may not run as a read: MySQL's ``SELECT … INTO OUTFILE/DUMPFILE``,
    which sqlglot does not parse, writes a file on the database server."""
    into_file = _into_file(text, DIALECTS.get(engine, "mysql"))
    if into_file is None:
        return None
    return f"SELECT … INTO {into_file} writes a file on the database server"


def read_refusal(node: exp.Expr, engine: str) -> str | None:
    """Why ``node`` is not a query that reads and changes nothing (None: it is one). The
    export's rule, and the SQL console's for what it runs as a read."""
    if not isinstance(node, exp.Query):
        return f"only a SELECT reads, not {node.key.upper()}"
    if node.args.get("into") is not None:
        return "SELECT … INTO creates a table; a query only reads"
    if any(select.args.get("locks") for select in node.find_all(exp.Select)):
        return "FOR UPDATE / FOR SHARE would hold row locks"
    writes = [w.key.upper() for w in node.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge)]
    if writes:
        return f"it hides a write ({writes[0]}) inside the query"
    called = functions.refused(node, engine, change=False)
    if called:
        return functions.refusal(called)
    return None


def export_query(text: str, engine: str) -> ExportQuery:
    """``text`` as the one read-only query an export runs, or :class:`ExportRefused`."""
    into_file = file_refusal(text, engine)
    if into_file is not None:
        raise ExportRefused(f"{into_file}; an export writes its file itself")
    try:
        parsed = parse_script(text, engine)
    except ScriptError as exc:
        raise ExportRefused(str(exc)) from None
    failed = [p.error for p in parsed if p.error is not None]
    if failed:
        raise ExportRefused(f"it does not parse: {failed[0]}")
    found = [node for p in parsed for node in p.nodes]
    if len(found) != 1:
        raise ExportRefused(f"an export runs exactly one SELECT; this has {len(found)} statements")
    node = found[0]
    why = read_refusal(node, engine)
    if why is not None:
        raise ExportRefused(why)
    assert isinstance(node, exp.Query)  # read_refusal refuses anything else
    ctes = {cte.alias_or_name.lower() for cte in node.find_all(exp.CTE)}
    read = {table_name(t) for t in node.find_all(exp.Table)}
    tables = tuple(sorted(name for name in read if name and name not in ctes))
    return ExportQuery(node, tables, render(node, engine))
