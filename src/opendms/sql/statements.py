"""What a batch of SQL does: the kind of each statement, the tables it names, and the rows an
INSERT … VALUES carries. Approval routing and review read this; nothing here connects."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from opendms.sql.script import Piece, ScriptError, split

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
    "COMMENT",
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
    exp.Comment: "COMMENT",
    exp.Grant: "GRANT",
    exp.Revoke: "REVOKE",
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
    # Table references, counting a table read twice (a self-join, a UNION) twice.
    references: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Analysis:
    statements: tuple[Statement, ...]
    complete: bool  # False when part of the text could not be analysed
    # Why not: each failure names the statement, its line and column in the script.
    errors: tuple[str, ...] = ()

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(s.kind for s in self.statements)


def kind_of(node: exp.Expr) -> str:
    if node.meta.get("replace"):
        return "REPLACE"
    if isinstance(node, exp.Command):
        word = str(node.this).split()[0].upper() if node.this else "OTHER"
        return word if word in KINDS else "OTHER"
    for cls, kind in _BY_CLASS.items():
        if isinstance(node, cls):
            return kind
    return "OTHER"


def table_name(table: exp.Table) -> str:
    parts = [p for p in (table.catalog, table.db, table.name) if p]
    return ".".join(parts[-2:]).lower()


def _limit(node: exp.Expr) -> int | None:
    limit = node.args.get("limit")
    if isinstance(limit, exp.Limit) and isinstance(limit.expression, exp.Literal):
        text = limit.expression.name
        if text.isdigit():
            return int(text)
    return None


def _target(node: exp.Expr) -> exp.Table | None:
    """The table a DML statement writes: a CTE of the same name does not hide it."""
    if isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Merge):
        written = node.this
        return written if isinstance(written, exp.Table) else node.find(exp.Table)
    return None


def _inside_cte_named(table: exp.Table, name: str) -> bool:
    """``WITH orders AS (SELECT * FROM orders)``: inside its own definition a CTE's name is
    the real table; under ``WITH RECURSIVE`` it is the CTE itself, which names no table."""
    cte = table.find_ancestor(exp.CTE)
    if cte is None or cte.alias_or_name.lower() != name:
        return False
    return not (isinstance(cte.parent, exp.With) and cte.parent.args.get("recursive"))


def _statement(node: exp.Expr) -> Statement:
    ctes = {c.alias_or_name.lower() for c in node.find_all(exp.CTE)}
    found = [t for t in node.find_all(exp.Table) if t.name]
    aliases = {t.alias.lower(): table_name(t) for t in found if t.alias}
    target = _target(node)
    names = []
    for t in found:
        name = table_name(t)
        if not t.alias and name in aliases and aliases[name] != name:
            name = aliases[name]  # MySQL's DELETE o FROM orders o: an alias, not a table
        elif name in ctes and t is not target and not _inside_cte_named(t, name):
            continue  # a reference to a CTE, not to a table
        names.append(name)
    if isinstance(node, exp.Delete) and node.args.get("tables"):
        # the tables deleted from come first: they are what the statement changes
        deleted = [aliases.get(table_name(t), table_name(t)) for t in node.args["tables"]]
        names = deleted + names
    rows = None
    if isinstance(node, exp.Insert) and isinstance(node.expression, exp.Values):
        rows = len(node.expression.expressions)
    kind = kind_of(node)
    return Statement(
        kind,
        tuple(dict.fromkeys(names)),
        rows,
        _limit(node) if kind == "SELECT" else None,
        references=len(names),
    )


def _unquoted(name: str) -> str:
    bare = name.split("(", maxsplit=1)[0]
    return ".".join(part.strip('`"[]') for part in bare.split(".")).lower()


_RENAMED = re.compile(r"([\w`\".$\[\]]+)\s+TO\s+([\w`\".$\[\]]+)", re.IGNORECASE)


def _command_fallback(text: str) -> Statement:
    """What sqlglot keeps as a bare command (REPLACE INTO, RENAME TABLE, CALL …): the first
    word says the kind; RENAME names every table on both sides, others the table after
    INTO/TABLE, when there is one."""
    words = text.split()
    kind = words[0].upper() if words else "OTHER"
    kind = kind if kind in KINDS else "OTHER"
    tables: list[str] = []
    if kind == "RENAME":
        tables = [_unquoted(n) for pair in _RENAMED.findall(text) for n in pair]
    else:
        for i, word in enumerate(words[:-1]):
            if word.upper() in ("INTO", "TABLE"):
                tables = [_unquoted(words[i + 1])]
                break
    return Statement(kind, tuple(dict.fromkeys(tables)), None, None, references=len(tables))


_SQLGLOT_CLASS = re.compile(r"<class 'sqlglot\.[\w.]*\.(\w+)'>")


def parse_failure(piece: Piece, exc: SqlglotError) -> str:
    """Where a statement fails to parse, as a place in the whole script."""
    found = exc.errors[0] if isinstance(exc, ParseError) and exc.errors else {}
    near = str(found.get("highlight") or "")
    line = int(found.get("line") or 1)
    col = max(1, int(found.get("col") or 1) - len(near) + 1)  # sqlglot marks the token's end
    column = piece.column + col - 1 if line == 1 else col
    what = str(found.get("description") or exc).split(" but got <Token", 1)[0].splitlines()[0]
    what = _SQLGLOT_CLASS.sub(lambda m: m.group(1), what)  # <class 'sqlglot…EQ'> -> EQ
    where = f"statement {piece.number} (line {piece.line + line - 1}, column {column})"
    return f"{where}: {what}" + (f" near {near!r}" if near else "")


@dataclass(frozen=True)
class Parsed:
    """One statement of a script as sqlglot read it."""

    piece: Piece
    nodes: tuple[exp.Expression, ...]  # empty when the piece holds only a comment
    error: str | None = None  # the parse failure, naming the statement, line and column


def parse_script(text: str, engine: str) -> list[Parsed]:
    """Every statement of ``text`` in the dialect of ``engine`` (an instance type), parsed
    once for everyone who reads it. Raises :class:`ScriptError` when the text does not split."""
    return [parse_piece(piece, engine) for piece in split(text, engine)]


def parse_piece(piece: Piece, engine: str) -> Parsed:
    """One statement of a script, parsed in the dialect of ``engine``."""
    dialect = DIALECTS.get(engine, "mysql")
    try:
        found = sqlglot.parse(piece.text, read=dialect)
        nodes = tuple(
            n for n in found if isinstance(n, exp.Expression) and not isinstance(n, exp.Semicolon)
        )
        if dialect == "mysql" and len(nodes) == 1 and _replace(nodes[0]):
            nodes = (_as_insert(piece.text, dialect),)
    except SqlglotError as exc:
        return Parsed(piece, (), parse_failure(piece, exc))
    return Parsed(piece, nodes)


def _replace(node: exp.Expression) -> bool:
    return isinstance(node, exp.Command) and str(node.this).upper() == "REPLACE"


def _as_insert(text: str, dialect: str) -> exp.Expression:
    """MySQL's REPLACE, which sqlglot keeps as a bare command, read as the INSERT it is
    shaped like (marked, so that :func:`render` writes REPLACE again): the checks then see
    its tables, columns and functions like any INSERT's."""
    node = sqlglot.parse_one("INSERT" + text[len("REPLACE") :], read=dialect)
    if not isinstance(node, exp.Insert):
        raise SqlglotError("REPLACE is not followed by what an INSERT takes")
    node.meta["replace"] = True
    return node


def render(node: exp.Expr, engine: str) -> str:
    """The text a target runs for ``node``: generated from the very tree OpenDMS's checks
    read, never the submitted text, so that whatever a parser and a server might read
    differently in it (comments, quoting, escapes) cannot make them disagree. Comments are
    left out; function names keep their spelling (a quoted name is case-sensitive)."""
    dialect = DIALECTS.get(engine, "mysql")
    text = node.sql(dialect=dialect, comments=False, normalize_functions=False)
    if node.meta.get("replace"):
        return "REPLACE" + text[len("INSERT") :]
    return text


def opaque(node: exp.Expr) -> bool:
    """A statement sqlglot kept as a bare command: no check can see what it does."""
    return isinstance(node, exp.Command) and not _replace(node)


class Unreadable(ValueError):
    """A statement OpenDMS cannot read as exactly one statement it can check."""


def one_statement(piece: Piece, engine: str) -> exp.Expression:
    """The one statement ``piece`` holds, parsed: or :class:`Unreadable`, naming the
    statement, when it does not parse, reads as several, or is a bare command."""
    parsed = parse_piece(piece, engine)
    if parsed.error is not None:
        raise Unreadable(parsed.error)
    where = f"statement {piece.number} (line {piece.line})"
    if len(parsed.nodes) != 1:
        raise Unreadable(f"{where} reads as {len(parsed.nodes)} statements, not one")
    node = parsed.nodes[0]
    if opaque(node):
        raise Unreadable(f"{where}: OpenDMS cannot parse this form of {kind_of(node)}")
    return node


def describe(node: exp.Expr) -> Statement:
    """A parsed statement's kind, tables and literal row count."""
    if isinstance(node, exp.Command):
        return _command_fallback(node.sql())
    return _statement(node)


def analyse(text: str, engine: str) -> Analysis:
    """Statements of ``text`` in the dialect of ``engine`` (an instance type)."""
    if len(text.encode()) > ANALYSIS_LIMIT_BYTES:
        return Analysis((), complete=False)
    try:
        parsed = parse_script(text, engine)
    except ScriptError as exc:
        return Analysis((Statement("OTHER", (), None, None),), False, (str(exc),))
    out: list[Statement] = []
    errors = []
    for one in parsed:
        if one.error is not None:
            out.append(Statement("OTHER", (), None, None))
            errors.append(one.error)
        out.extend(describe(node) for node in one.nodes)
    return Analysis(tuple(out), not errors, tuple(errors))
