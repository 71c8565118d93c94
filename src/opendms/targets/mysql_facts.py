"""What an online schema change reads of one MySQL/MariaDB table before it touches it: its
definition (columns, keys), what hangs on it (triggers, foreign keys both ways), its storage
engine and size, and how the server logs changes. Read live through the change's own
connection, each read a short transaction of its own, never from the catalog OpenDMS keeps
(which may be older than the table)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from opendms.schema.model import Column, Index, Table
from opendms.targets.base import StatementError
from opendms.targets.mysql import MysqlChange

_NO_TABLE = 1146  # ER_NO_SUCH_TABLE


@dataclass(frozen=True)
class TableFacts:
    table: Table  # columns, primary key, indexes (foreign keys are in the fields below)
    create: str  # SHOW CREATE TABLE
    kind: str  # information_schema's TABLE_TYPE: BASE TABLE, VIEW, …
    engine: str  # lower-cased: innodb, myisam, …
    rows: int  # the server's estimate
    triggers: tuple[str, ...]  # triggers on the table
    referenced_by: tuple[str, ...]  # foreign keys of other tables (or itself) naming it, "t.fk"
    references: tuple[str, ...]  # its own foreign keys' names


def schema_of(change: MysqlChange, schema: str) -> str:
    """``schema``, or the change's own database when it is ""."""
    if schema:
        return schema
    found = change.rows("SELECT DATABASE()")
    return str(found[0][0]) if found and found[0][0] is not None else ""


def create_text(change: MysqlChange, schema: str, name: str) -> str | None:
    """SHOW CREATE TABLE of ``schema.name``; None when there is no such table."""
    quoted = ".".join("`" + p.replace("`", "``") + "`" for p in (schema, name) if p)
    try:
        found = change.rows(f"SHOW CREATE TABLE {quoted}")
    except StatementError as exc:
        if exc.code == _NO_TABLE:
            return None
        raise
    return str(found[0][1]) if found else None


def names_in(change: MysqlChange, schema: str) -> tuple[list[str], list[str]]:
    """The names of the tables (and views) and of the triggers in ``schema``."""
    tables = change.rows(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (schema,)
    )
    triggers = change.rows(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
        (schema,),
    )
    return [str(r[0]) for r in tables], [str(r[0]) for r in triggers]


def exists(change: MysqlChange, schema: str, name: str) -> bool:
    found = change.rows(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (schema, name),
    )
    return bool(found)


def statement_logging(change: MysqlChange) -> bool:
    """The server writes a statement-based binary log, under which InnoDB refuses writes in
    READ COMMITTED (they cannot be replayed in order)."""
    found = change.rows("SELECT @@GLOBAL.log_bin, @@SESSION.binlog_format")
    if not found:
        return False
    log_bin, form = found[0]
    return bool(int(log_bin or 0)) and str(form or "").upper() == "STATEMENT"


def table_facts(change: MysqlChange, schema: str, name: str) -> TableFacts | None:
    """What there is to know of ``schema.name`` (``schema`` as :func:`schema_of` gives it);
    None when there is no such table."""
    create = create_text(change, schema, name)
    if create is None:
        return None
    where = (schema, name)
    found = change.rows(
        "SELECT TABLE_TYPE, ENGINE, TABLE_ROWS FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        where,
    )
    kind, engine, rows = found[0] if found else ("BASE TABLE", "", 0)
    columns = [
        Column(
            name=str(col),
            type=str(ctype).lower(),
            nullable=nullable == "YES",
            default=None if default is None else str(default),
            auto_increment="auto_increment" in str(extra or "").lower(),
            generated=str(generated or "") if "generated" in str(extra or "").lower() else "",
            generated_stored="stored" in str(extra or "").lower(),
            collation=str(collation or ""),
        )
        for col, ctype, nullable, default, extra, generated, collation in change.rows(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, "
            "GENERATION_EXPRESSION, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            where,
        )
    ]
    parts: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    unique: dict[str, bool] = {}
    for index, non_unique, column, sub_part in change.rows(
        "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        where,
    ):
        # a functional key part (MySQL 8) has no column: its expression is no whole column
        parts[str(index)].append((str(column or ""), None if sub_part is None else int(sub_part)))
        unique[str(index)] = not int(non_unique)
    primary = tuple(c for c, _ in parts.pop("PRIMARY", []))
    indexes = tuple(
        Index(
            name=index,
            columns=tuple(c for c, _ in cols),
            unique=unique[index] and all(c for c, _ in cols),
            lengths=tuple(n for _, n in cols) if any(n is not None for _, n in cols) else (),
        )
        for index, cols in parts.items()
    )
    triggers = change.rows(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
        "WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_OBJECT_TABLE = %s",
        where,
    )
    referenced_by = change.rows(
        "SELECT DISTINCT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE REFERENCED_TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME = %s",
        where,
    )
    references = change.rows(
        "SELECT DISTINCT CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND REFERENCED_TABLE_NAME IS NOT NULL",
        where,
    )
    return TableFacts(
        table=Table(name=name, columns=tuple(columns), primary_key=primary, indexes=indexes),
        create=create,
        kind=str(kind or ""),
        engine=str(engine or "").lower(),
        rows=int(rows or 0),
        triggers=tuple(str(r[0]) for r in triggers),
        referenced_by=tuple(f"{r[0]}.{r[1]}" for r in referenced_by),
        references=tuple(str(r[0]) for r in references),
    )
