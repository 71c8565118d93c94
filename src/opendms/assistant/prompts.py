"""What the language model is told: the engine and its dialect, the tables the caller may
read (names, columns, indexes, comments from the catalog: never a row of data), and the
caller's question. Nothing else of the server or its other databases goes in."""

from __future__ import annotations

from collections.abc import Collection

from opendms.assistant.llm import Message
from opendms.assistant.scope import Scope, TableMeta

MAX_SCHEMA_CHARS = 48_000


def _table(meta: TableMeta) -> str:
    head = f"TABLE {meta.name}"
    if meta.rows:
        head += f" (about {meta.rows:,} rows)"
    if meta.comment:
        head += f" -- {meta.comment}"
    lines = [head]
    for c in meta.columns:
        line = f"  {c.name} {c.type}{'' if c.nullable else ' NOT NULL'}"
        lines.append(line + (f" -- {c.comment}" if c.comment else ""))
    for ix in meta.indexes:
        lines.append(f"  {ix.kind} INDEX {ix.name} ({', '.join(ix.columns)})")
    return "\n".join(lines)


def schema(scope: Scope, only: Collection[str] | None = None) -> str:
    """The readable tables (those of ``only``, lower-cased names, when given), within
    :data:`MAX_SCHEMA_CHARS`."""
    tables = [m for key, m in scope.tables.items() if only is None or key in only]
    if not tables:
        return "(no table you may read)"
    out: list[str] = []
    size = 0
    for i, meta in enumerate(tables):
        text = _table(meta)
        if size + len(text) > MAX_SCHEMA_CHARS:
            out.append(f"({len(tables) - i} more tables not shown)")
            break
        out.append(text)
        size += len(text) + 1
    return "\n".join(out)


def _database(scope: Scope) -> str:
    version = f" {scope.inst.server_version}" if scope.inst.server_version else ""
    return (
        f"The database is {scope.engine}{version} (SQL dialect: {scope.dialect}), "
        f"schema {scope.db.schema_name}."
    )


def generate(
    scope: Scope, question: str, knowledge: str | None, only: Collection[str] | None
) -> list[Message]:
    system = (
        "You write SQL. "
        + _database(scope)
        + " Write exactly one read-only query (SELECT, or WITH ... SELECT) that answers the "
        "user's question, using only the tables and columns below. Answer with the query in "
        "one ```sql block, then at most three sentences on how it answers the question. If "
        "these tables cannot answer it, say so and write no SQL.\n\nTables:\n" + schema(scope, only)
    )
    user = question if not knowledge else f"{question}\n\nWhat I know that may help:\n{knowledge}"
    return [Message("system", system), Message("user", user)]


def answer(scope: Scope, question: str) -> list[Message]:
    system = (
        "You answer questions about SQL syntax. "
        + _database(scope)
        + " Answer for that engine and version, briefly; put SQL in ```sql blocks. For "
        "examples you may use these tables:\n" + schema(scope)
    )
    return [Message("system", system), Message("user", question)]


def second_opinion(
    scope: Scope, task: str, sql: str, error: str, remarks: str, analysis: str
) -> list[Message]:
    """Fix (``task="fix"``) or optimize a statement, given OpenDMS's own analysis."""
    goal = (
        "correct the SQL below so that it runs"
        if task == "fix"
        else "make the SQL below faster without changing its result"
    )
    system = (
        "You help with SQL. "
        + _database(scope)
        + f" Your task: {goal}. Write the statement you propose in one ```sql block and "
        "explain briefly. Use only these tables:\n" + schema(scope)
    )
    parts = [f"SQL:\n```sql\n{sql}\n```"]
    if error:
        parts.append(f"The database said: {error}")
    if remarks:
        parts.append(f"Remarks: {remarks}")
    parts.append(f"OpenDMS's own analysis:\n{analysis}")
    return [Message("system", system), Message("user", "\n\n".join(parts))]
