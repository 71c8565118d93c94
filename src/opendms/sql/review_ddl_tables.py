"""Review rules for the tables a schema change creates or alters: primary key, comments,
character set, storage engine, partitioning, width. A rule that needs a table's definition
stays silent where it is not known; MySQL and MariaDB are one dialect here except where their
servers differ (noted in the rule)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from opendms.sql import column_types as types
from opendms.sql import ddl
from opendms.sql.review_base import Subject, rule
from opendms.sql.review_ddl_base import (
    MYSQL,
    added_columns,
    after,
    before,
    column_defs,
    effective_charset,
    name_of,
    opaque_words,
    read_column,
)

# ------------------------------------------------------------------ tables


@rule(
    "PRIMARY_KEY_MISSING",
    "WARNING",
    "CREATE TABLE without a primary key, or ALTER TABLE that drops it without a new one.",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _primary_key_missing(s: Subject) -> Iterator[str]:
    now = after(s)
    if now is None or now.primary_key or not (isinstance(s.node, exp.Create) or before(s)):
        return
    if isinstance(s.node, exp.Create) and ddl.created_table(s.node) is None:
        return
    was = before(s)
    if isinstance(s.node, exp.Alter) and (was is None or not was.primary_key):
        return
    verb = "has" if isinstance(s.node, exp.Create) else "would have"
    yield (
        f"Table {now.name} {verb} no primary key: replicas apply its row changes by scanning, "
        "lock-free changes and OpenDMS's chunked changes and backups need one. Add one (for "
        "example id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, or bigint GENERATED ALWAYS AS "
        "IDENTITY PRIMARY KEY on PostgreSQL)."
    )


@rule(
    "TABLE_WITHOUT_COMMENT",
    "WARNING",
    "CREATE TABLE without a comment (MySQL COMMENT=; PostgreSQL COMMENT ON TABLE later in "
    "the script).",
    kinds=frozenset({"CREATE"}),
)
def _table_comment(s: Subject) -> Iterator[str]:
    now = after(s) if ddl.created_table(s.node) is not None else None
    if now is None or now.comment or s.engine not in (*MYSQL, "postgresql"):
        return
    if (name_of(s), "") not in s.tables.commented:
        how = (
            f"COMMENT ON TABLE {now.name} IS '…' after it"
            if s.engine == "postgresql"
            else "COMMENT='…' at its end"
        )
        yield f"Table {now.name} has no comment: say what it holds ({how})."


@rule(
    "COLUMN_WITHOUT_COMMENT",
    "WARNING",
    "A new column without a comment (MySQL COMMENT '…'; PostgreSQL COMMENT ON COLUMN later in "
    "the script).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _column_comment(s: Subject) -> Iterator[str]:
    if s.engine not in (*MYSQL, "postgresql"):
        return
    table = name_of(s)
    for cdef in added_columns(s.node):
        column = read_column(s, cdef)
        if column.comment or (table, column.name.lower()) in s.tables.commented:
            continue
        how = (
            f"COMMENT ON COLUMN {table}.{column.name} IS '…' after it"
            if s.engine == "postgresql"
            else "COMMENT '…' in its definition"
        )
        yield f"Column {table}.{column.name} has no comment: say what it holds ({how})."


def _charset_words(s: Subject) -> Iterator[tuple[str, str]]:
    """(where, charset or collation) the statement sets, for MySQL/MariaDB."""
    table = name_of(s)
    opts = ddl.table_options(s.node) if isinstance(s.node, exp.Create | exp.Alter) else {}
    for key in ("charset", "collation"):
        if key in opts:
            yield f"table {table}", opts[key]
    for cdef in column_defs(s.node, s.engine):
        column = read_column(s, cdef)
        for value in (column.charset, column.collation):
            if value:
                yield f"column {table}.{column.name}", value
    words = [w.lower() for w in opaque_words(s)]
    for i, w in enumerate(words):
        if w in ("set", "charset", "collate") and i + 1 < len(words) and words[i - 1] != "default":
            value = words[i + 1].strip("=;,'\"")
            if value and value != "=":
                yield f"table {table or (words[2] if len(words) > 2 else '')}", value


@rule(
    "CHARSET_NOT_UTF8MB4",
    "WARNING",
    "A character set or collation other than utf8mb4 (MySQL/MariaDB).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _charset(s: Subject) -> Iterator[str]:
    if s.engine not in MYSQL:
        return
    for where, value in _charset_words(s):
        if value in {"binary", "utf8mb4"} or value.startswith("utf8mb4_"):
            continue
        note = (
            " (utf8 is utf8mb3: three bytes a character, no emoji or rarer CJK characters)"
            if value.startswith(("utf8_", "utf8mb3")) or value == "utf8"
            else ""
        )
        yield f"The {where} uses {value}{note}: use utf8mb4 (and a utf8mb4_ collation)."


@rule(
    "COLUMN_CHARSET_DIFFERS",
    "WARNING",
    "A column whose character set or collation differs from its table's (MySQL/MariaDB).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _column_charset(s: Subject) -> Iterator[str]:
    now = after(s)
    if s.engine not in MYSQL or now is None:
        return
    for cdef in column_defs(s.node, s.engine):
        column = read_column(s, cdef)
        differs = [
            (what, mine, theirs)
            for what, mine, theirs in (
                ("character set", column.charset, now.charset),
                ("collation", column.collation, now.collation),
            )
            if mine and theirs and mine != theirs
        ]
        for what, mine, theirs in differs:
            yield (
                f"Column {now.name}.{column.name} uses the {what} {mine}, table {now.name} "
                f"{theirs}: comparing or joining it with other columns converts every value "
                "and cannot use an index. Leave the column's own setting out."
            )


@rule(
    "NON_INNODB_ENGINE",
    "WARNING",
    "A table on a storage engine other than InnoDB (MySQL/MariaDB).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _engine(s: Subject) -> Iterator[str]:
    if s.engine not in MYSQL or not isinstance(s.node, exp.Create | exp.Alter):
        return
    engine = ddl.table_options(s.node).get("engine", "")
    if engine and engine != "innodb":
        yield (
            f"Table {name_of(s)} would use {engine.upper()}, which cannot roll back a change or "
            "recover from a crash, and data change tickets are refused on it "
            "(NON_TRANSACTIONAL_TABLE): use InnoDB."
        )


@rule(
    "PARTITIONED_TABLE",
    "WARNING",
    "A partitioned table (PARTITION BY).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _partitioned(s: Subject) -> Iterator[str]:
    words = [w.upper() for w in opaque_words(s)]
    if ddl.partitioned(s.node) or "PARTITION" in words:
        yield (
            f"Table {name_of(s) or ' '.join(words[2:3]).lower()} is partitioned: every unique key "
            "must contain the partitioning columns, a query that does not filter on them reads "
            "every partition, and lock-free changes cannot copy it. Make sure the data needs it."
        )


@rule(
    "TOO_MANY_COLUMNS",
    "WARNING",
    "A table with more columns than the limit (64).",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _too_many_columns(s: Subject) -> Iterator[str]:
    now = after(s)
    if now is not None and added_columns(s.node) and len(now.columns) > s.limits.max_columns:
        yield (
            f"Table {now.name} would have {len(now.columns)} columns (limit "
            f"{s.limits.max_columns}): split what is read together from what is not into "
            "another table."
        )


@rule(
    "ROW_TOO_WIDE",
    "ERROR",
    "Columns wider than MySQL/MariaDB's 65,535-byte row: the server refuses the table.",
    kinds=frozenset({"CREATE", "ALTER"}),
)
def _row_too_wide(s: Subject) -> Iterator[str]:
    now = after(s)
    if s.engine not in MYSQL or now is None or not column_defs(s.node, s.engine):
        return
    total = (sum(c.nullable for c in now.columns) + 7) // 8
    for column in now.columns:
        dtype = types.datatype(column.type, s.engine)
        if dtype is None:
            return  # a type OpenDMS cannot size: say nothing rather than guess
        total += types.row_bytes(dtype, effective_charset(column, now))
    if total > types.MAX_ROW_BYTES:
        yield (
            f"Table {now.name}'s columns take up to {total:,} bytes a row, over MySQL's "
            f"{types.MAX_ROW_BYTES:,} (utf8mb4 counts 4 bytes a character): the server refuses "
            "it. Make the longest VARCHAR columns shorter, or TEXT."
        )
