"""What the SQL console (``ExecuteScript``) may run: each statement of a script read as a
read or a change, with the text that runs, or refused with the reason.

An allowlist, statement by statement:

- reads: a query (SELECT, WITH … SELECT, UNION …) by the export's rule (``sql.export``), its
  row count capped in the tree; EXPLAIN of such a query, or of a data change (which EXPLAIN
  plans without running; EXPLAIN ANALYZE, which runs it, only of a query); MySQL's
  DESCRIBE and the SHOW forms that describe tables and the server's settings (their LIKE /
  WHERE filter by the read rules, no subquery); PostgreSQL's SHOW of a setting;
- changes: INSERT, REPLACE, UPDATE, DELETE (functions by the change allowlist); CREATE,
  ALTER and DROP of tables, indexes and views; TRUNCATE. (MySQL's RENAME TABLE, which
  sqlglot keeps as a bare command, is refused with them; ALTER TABLE … RENAME is not.)

Everything else is refused: what sqlglot keeps as a bare command cannot be checked, and
GRANT, SET, CALL, LOCK, KILL … are not the console's to run. What runs is generated from
the checked tree (``statements.render``) and read back: a text that does not parse to the
same tree is refused rather than run (sqlglot writes some SHOW forms it reads wrongly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.sql import functions
from opendms.sql.export import file_refusal, read_refusal
from opendms.sql.script import Piece, ScriptError, split
from opendms.sql.statements import (
    DIALECTS,
    Parsed,
    describe,
    kind_of,
    opaque,
    parse_piece,
    render,
)

DATA_CHANGES = frozenset({"INSERT", "REPLACE", "UPDATE", "DELETE"})
SCHEMA_CHANGES = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME"})
# CREATE / DROP of these only: a routine's or trigger's body is code no check reads.
_SCHEMA_OBJECTS = frozenset({"TABLE", "INDEX", "VIEW"})
# MySQL's SHOW forms that describe tables or the server, never rows of data (SHOW
# PROCESSLIST shows other sessions' statements, SHOW BINLOG EVENTS their changes).
_SHOWN = frozenset(
    {
        "TABLES",
        "COLUMNS",
        "INDEX",
        "CREATE TABLE",
        "CREATE VIEW",
        "TABLE STATUS",
        "DATABASES",
        "VARIABLES",
        "STATUS",
        "WARNINGS",
        "ERRORS",
        "ENGINES",
        "CHARACTER SET",
        "COLLATION",
    }
)
_PG_SHOW = re.compile(
    r"\s*SHOW\s+(ALL|TIME\s+ZONE|TRANSACTION\s+ISOLATION\s+LEVEL|SESSION\s+AUTHORIZATION"
    r"|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*",
    re.I,
)
# EXPLAIN's options, per dialect, as the console writes them again.
_EXPLAIN = re.compile(r"\s*(?:EXPLAIN|DESCRIBE|DESC)\b", re.I)
_OPTIONS = {
    "mysql": re.compile(r"\s*(ANALYZE\b|FORMAT\s*=\s*(?:TRADITIONAL|JSON|TREE)\b)?", re.I),
    "postgres": re.compile(
        r"\s*(\(\s*(?:(?:ANALYZE|VERBOSE|COSTS|BUFFERS|TIMING|SUMMARY|SETTINGS|WAL)"
        r"(?:\s+(?:ON|OFF|TRUE|FALSE))?|FORMAT\s+(?:TEXT|JSON|YAML|XML))"
        r"(?:\s*,\s*(?:(?:ANALYZE|VERBOSE|COSTS|BUFFERS|TIMING|SUMMARY|SETTINGS|WAL)"
        r"(?:\s+(?:ON|OFF|TRUE|FALSE))?|FORMAT\s+(?:TEXT|JSON|YAML|XML)))*\s*\)"
        r"|(?:ANALYZE\b\s*)?(?:VERBOSE\b)?)?",
        re.I,
    ),
    "sqlite": re.compile(r"\s*(QUERY\s+PLAN\b)?", re.I),
}
_ANALYZE = re.compile(r"\bANALYZE\b(?:\s+(ON|OFF|TRUE|FALSE)\b)?")


class ConsoleRefused(ValueError):
    """The statement is not one the console runs; the message says why."""


@dataclass(frozen=True)
class ConsoleStatement:
    number: int  # 1-based, in script order
    line: int
    written: str  # as submitted (the audit keeps it)
    kind: str  # SELECT, EXPLAIN, DESCRIBE, SHOW, INSERT, …, CREATE …
    tables: tuple[str, ...]  # read or changed, as ``statements.table_name`` names them
    run: str  # what runs: generated from the checked tree
    query: exp.Query | None = None  # a query's tree (its result columns are masked by it)
    parsed: Parsed | None = None  # a change's parse (the SQL review reads it)
    refusal: str | None = None
    plans_change: bool = False  # EXPLAIN of a data change: planned, never run

    @property
    def changes(self) -> bool:
        return self.kind in DATA_CHANGES or self.kind in SCHEMA_CHANGES


def read_back(node: exp.Expr, engine: str) -> str:
    """``node`` as it runs, refused unless the text parses back to the same tree. Comments
    are no part of either side: they are left out of what runs."""
    text = render(node, engine)
    dialect = DIALECTS.get(engine, "mysql")
    again = parse_piece(Piece(0, text, 1, 1), engine)  # as a script's statement is read
    if len(again.nodes) != 1 or again.nodes[0].sql(dialect=dialect, comments=False) != node.sql(
        dialect=dialect, comments=False
    ):
        raise ConsoleRefused(f"OpenDMS cannot write this {kind_of(node)} back faithfully")
    return text


def capped(node: exp.Query, rows: int) -> exp.Query:
    """``node`` returning at most ``rows`` rows: a smaller LIMIT / FETCH it has stays."""
    current = node.args.get("limit")
    count = None
    if isinstance(current, exp.Limit):
        count = current.expression
    elif isinstance(current, exp.Fetch):
        count = current.args.get("count")
    if isinstance(count, exp.Literal) and count.is_int and int(count.name) <= rows:
        return node
    return node.limit(rows)


def _query(node: exp.Expr, text: str, engine: str) -> None:
    why = file_refusal(text, engine) or read_refusal(node, engine)
    if why is not None:
        raise ConsoleRefused(why)


def _change(node: exp.Expr, engine: str) -> str:
    kind = kind_of(node)
    if kind in SCHEMA_CHANGES and isinstance(node, exp.Create | exp.Drop):
        what = str(node.args.get("kind") or "").upper()
        if what not in _SCHEMA_OBJECTS:
            raise ConsoleRefused(
                f"the console creates and drops tables, indexes and views, not {what or kind}"
            )
    called = functions.refused(node, engine, change=True)
    if called:
        raise ConsoleRefused(functions.refusal(called))
    return read_back(node, engine)


def _explain(piece_text: str, engine: str, number: int, line: int) -> ConsoleStatement | None:
    """EXPLAIN [options] <statement>, or None when the text is no EXPLAIN."""
    dialect = DIALECTS.get(engine, "mysql")
    head = _EXPLAIN.match(piece_text)
    if head is None:
        return None
    options = _OPTIONS[dialect].match(piece_text, head.end())
    assert options is not None  # every pattern matches the empty string
    rest = piece_text[options.end() :]
    if dialect == "mysql" and head.group(0).strip().upper() != "EXPLAIN":
        # DESCRIBE t / DESC t: a table's columns; DESCRIBE SELECT … is EXPLAIN
        first = rest.lstrip().split(None, 1)[0].upper() if rest.strip() else ""
        if first not in ("SELECT", "WITH", "INSERT", "REPLACE", "UPDATE", "DELETE", "("):
            return None
    try:
        nodes = [n for n in sqlglot.parse(rest, read=dialect) if n is not None]
    except SqlglotError as exc:
        raise ConsoleRefused(f"what it explains does not parse: {exc}") from None
    if len(nodes) != 1 or opaque(nodes[0]):
        raise ConsoleRefused("EXPLAIN takes one SELECT, INSERT, UPDATE or DELETE")
    inner = nodes[0]
    words = " ".join(options.group(0).split()).upper()
    # PostgreSQL takes the last of repeated options: any ANALYZE not switched off runs it
    runs = any(m.group(1) not in ("OFF", "FALSE") for m in _ANALYZE.finditer(words))
    if isinstance(inner, exp.Query):
        _query(inner, rest, engine)
    elif kind_of(inner) in DATA_CHANGES and not runs:
        functions_called = functions.refused(inner, engine, change=True)
        if functions_called:
            raise ConsoleRefused(functions.refusal(functions_called))
    else:
        raise ConsoleRefused(
            "EXPLAIN ANALYZE runs what it explains: only of a SELECT"
            if runs
            else f"EXPLAIN of {kind_of(inner)} is not run by the console"
        )
    text = "EXPLAIN" + (f" {words}" if words else "") + " " + read_back(inner, engine)
    return ConsoleStatement(
        number,
        line,
        piece_text,
        "EXPLAIN",
        describe(inner).tables,
        text,
        plans_change=not isinstance(inner, exp.Query),
    )


def _show(node: exp.Show, engine: str) -> tuple[str, tuple[str, ...]]:
    what = str(node.name).upper()
    if what not in _SHOWN:
        raise ConsoleRefused(
            f"SHOW {what} is not run by the console; it shows " + ", ".join(sorted(_SHOWN))
        )
    if node.args.get("db") is not None:
        raise ConsoleRefused(
            "SHOW … FROM another database: run it on that database (its DbId) instead"
        )
    # SHOW … LIKE / WHERE filters its rows with an expression: a subquery there would read
    # tables unchecked, and a function off the allowlist would run (blindly, row by row).
    if node.find(exp.Query) is not None:
        raise ConsoleRefused("SHOW … WHERE with a subquery: query the table with SELECT instead")
    called = functions.refused(node, engine, change=False)
    if called:
        raise ConsoleRefused(functions.refusal(called))
    target = node.args.get("target")
    table = target.name if isinstance(target, exp.Expression) else str(target or "")
    return read_back(node, engine), ((table.lower(),) if table else ())


def classify(
    piece_text: str, number: int, line: int, parsed: Parsed, engine: str, max_rows: int
) -> ConsoleStatement:
    """One statement, read or change, or refused (``refusal`` set)."""

    def refused(kind: str, why: str) -> ConsoleStatement:
        return ConsoleStatement(number, line, piece_text, kind, (), "", refusal=why)

    try:
        explained = _explain(piece_text, engine, number, line)
    except ConsoleRefused as exc:
        return refused("EXPLAIN", str(exc))
    if explained is not None:
        return explained
    into_file = file_refusal(piece_text, engine)  # sqlglot reads no INTO OUTFILE: say why
    if into_file is not None:
        return refused("SELECT", into_file)
    if parsed.error is not None:
        return refused("OTHER", f"it does not parse: {parsed.error}")
    if len(parsed.nodes) != 1:
        return refused("OTHER", f"it reads as {len(parsed.nodes)} statements, not one")
    node = parsed.nodes[0]
    kind = "SHOW" if isinstance(node, exp.Show) else kind_of(node)
    try:
        if isinstance(node, exp.Query):
            _query(node, piece_text, engine)
            limited = capped(node, max_rows + 1)
            return ConsoleStatement(
                number,
                line,
                piece_text,
                "SELECT",
                describe(node).tables,
                read_back(limited, engine),
                query=node,
            )
        if isinstance(node, exp.Describe) and isinstance(node.this, exp.Table):
            return ConsoleStatement(
                number,
                line,
                piece_text,
                "DESCRIBE",
                describe(node.this).tables,
                read_back(node, engine),
            )
        if isinstance(node, exp.Show):
            text, tables = _show(node, engine)
            return ConsoleStatement(number, line, piece_text, "SHOW", tables, text)
        if DIALECTS.get(engine) == "postgres" and opaque(node):
            shown = _PG_SHOW.fullmatch(piece_text)
            if shown is not None:
                setting = " ".join(shown.group(1).split())
                return ConsoleStatement(number, line, piece_text, "SHOW", (), f"SHOW {setting}")
        if opaque(node):
            raise ConsoleRefused(f"OpenDMS cannot check this form of {kind}")
        if kind in DATA_CHANGES or kind in SCHEMA_CHANGES:
            return ConsoleStatement(
                number,
                line,
                piece_text,
                kind,
                describe(node).tables,
                _change(node, engine),
                parsed=parsed,
            )
    except ConsoleRefused as exc:
        return refused(kind, str(exc))
    what = kind if kind != "OTHER" else node.key.upper()
    return refused(kind, f"the console runs queries, data changes and table changes, not {what}")


# Scripts up to this size are remembered once read (per process, the most recent 512): the
# same dashboards' and agents' queries come again and again, and reading one with sqlglot
# costs more than running it. A read is a pure function of the text, the engine and the cap;
# what it returns is frozen (the query trees are only ever copied or read).
CACHED_SCRIPT_BYTES = 16 * 1024


def read_script(script: str, engine: str, max_rows: int) -> tuple[ConsoleStatement, ...]:
    """Every statement of ``script``, classified; :class:`ConsoleRefused` when the script
    itself cannot be split (an unterminated string, hidden code)."""
    if len(script) <= CACHED_SCRIPT_BYTES:
        return _remembered(script, engine, max_rows)
    return _read(script, engine, max_rows)


def _read(script: str, engine: str, max_rows: int) -> tuple[ConsoleStatement, ...]:
    try:
        pieces = split(script, engine)
    except ScriptError as exc:
        raise ConsoleRefused(str(exc)) from None
    out = []
    for piece in pieces:
        parsed = parse_piece(piece, engine)
        if not parsed.nodes and parsed.error is None:
            continue  # only a comment
        out.append(classify(piece.text, piece.number, piece.line, parsed, engine, max_rows))
    return tuple(out)


_remembered = lru_cache(maxsize=512)(_read)
