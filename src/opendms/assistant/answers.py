"""What a model answers, held to the database's SQL before anyone is shown it: its SQL
blocks must parse in the engine's dialect; a query it generates must be a read the SQL
console would run, on tables the caller may read."""

from __future__ import annotations

import re
from dataclasses import dataclass

from opendms.assistant.scope import Scope
from opendms.errors import DmsError, ErrorCode
from opendms.sql.console import ConsoleRefused, read_script
from opendms.sql.script import ScriptError, split
from opendms.sql.statements import opaque, parse_piece

_BLOCK = re.compile(r"```[ \t]*(?:sql|SQL|[A-Za-z]*)?[ \t]*\r?\n(.*?)```", re.S)


@dataclass(frozen=True)
class Generated:
    sql: str
    thought: str
    tables: tuple[str, ...]


def _refusal(sql: str, engine: str) -> str | None:
    """Why ``sql`` does not parse as statements OpenDMS can read; None when it does."""
    try:
        pieces = split(sql, engine)
    except ScriptError as exc:
        return str(exc)
    for piece in pieces:
        parsed = parse_piece(piece, engine)
        if parsed.error is not None:
            return parsed.error
        if any(opaque(n) for n in parsed.nodes):
            return f"statement {piece.number} is a form OpenDMS cannot parse"
    return None


def checked(text: str, engine: str) -> str:
    """``text`` with each SQL block that does not parse for ``engine`` left out, saying so."""

    def keep(block: re.Match[str]) -> str:
        why = _refusal(block.group(1), engine)
        if why is None:
            return block.group(0)
        return f"(OpenDMS left out SQL of the model's that does not parse for {engine}: {why})"

    return _BLOCK.sub(keep, text)


def generated(text: str, scope: Scope) -> Generated:
    """The one query a model's answer holds, or GeneratedSqlRefused saying why not."""
    blocks = _BLOCK.findall(text)
    sql = (blocks[0] if blocks else text).strip().rstrip(";").strip()
    thought = _BLOCK.sub("", text).strip()[:4000] if blocks else ""

    def refused(why: str) -> DmsError:
        said = "" if blocks else f" It answered: {text.strip()[:300]}"
        return DmsError(ErrorCode.GENERATED_SQL_REFUSED, f"The model's SQL {why}.{said}")

    if not sql:
        raise refused("is empty")
    try:
        found = read_script(sql, scope.engine, 1000)
    except ConsoleRefused as exc:
        raise refused(f"cannot be read: {exc}") from None
    if len(found) != 1:
        raise refused(f"holds {len(found)} statements, not one query")
    (st,) = found
    if st.refusal is not None:
        raise refused(f"is not one the SQL console runs: {st.refusal}")
    if st.changes or st.kind != "SELECT":
        raise refused(f"is a {st.kind}, not a query")
    unknown = [t for t in st.tables if scope.table(t) is None]
    if unknown:
        raise refused(f"reads {', '.join(unknown)}, not a table you may read")
    return Generated(sql, thought, st.tables)
