"""Sensitive columns: which columns of a database exports mask, and how (issue 7).

A flag names a table and column of the catalog; it is kept by name (``sensitive_columns``),
so a catalog sync, which rewrites the catalog's columns, keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from opendms.catalog.queries import get_database
from opendms.errors import DmsError, ErrorCode
from opendms.store.models import DbColumn, DbTable, SensitiveColumn, utcnow

# Strongest first: FULL shows nothing, HASH only which values are equal, LAST4 the end.
MASKS = ("FULL", "HASH", "LAST4")


def set_mask(
    s: Session, tid: int, db_id: int, table: str, column: str, mask: str | None, by: int | None
) -> SensitiveColumn | None:
    """Flag ``table.column`` of the database sensitive with ``mask``; ``mask`` None clears
    the flag. The column must be in the catalog (sync the database first)."""
    get_database(s, tid, db_id)
    if mask is not None and mask not in MASKS:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"Mask {mask[:32]!r} is not one of {', '.join(MASKS)}."
        )
    found = s.execute(
        select(DbTable.name, DbColumn.name)
        .join(DbColumn, DbColumn.table_id == DbTable.table_id)
        .where(
            DbTable.db_id == db_id,
            func.lower(DbTable.name) == table.lower(),
            func.lower(DbColumn.name) == column.lower(),
        )
    ).first()
    if found is None:
        raise DmsError(
            ErrorCode.TABLE_NOT_FOUND,
            f"Database {db_id} has no column {table[:64]}.{column[:64]} in its catalog.",
        )
    key = (SensitiveColumn.db_id == db_id, SensitiveColumn.table_name == table.lower())
    s.execute(delete(SensitiveColumn).where(*key, SensitiveColumn.column_name == column.lower()))
    if mask is None:
        s.flush()
        return None
    row = SensitiveColumn(
        db_id=db_id,
        table_name=table.lower(),
        column_name=column.lower(),
        mask=mask,
        set_by=by,
        set_at=utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def listed(s: Session, tid: int, db_id: int) -> Sequence[SensitiveColumn]:
    get_database(s, tid, db_id)
    return s.scalars(
        select(SensitiveColumn)
        .where(SensitiveColumn.db_id == db_id)
        .order_by(SensitiveColumn.table_name, SensitiveColumn.column_name)
    ).all()


def masks_of(s: Session, db_id: int) -> dict[tuple[str, str], str]:
    """(table, column), lower-cased -> mask, for the database."""
    rows = s.execute(
        select(SensitiveColumn.table_name, SensitiveColumn.column_name, SensitiveColumn.mask).where(
            SensitiveColumn.db_id == db_id
        )
    ).all()
    return {(t, c): m for t, c, m in rows}


def columns_of(s: Session, db_id: int, tables: Iterable[str]) -> dict[str, dict[str, str]]:
    """table -> column -> type from the catalog, for the named tables (lower-cased names;
    "schema.table" is looked up by its table)."""
    wanted = {t.rpartition(".")[2].lower() for t in tables}
    out: dict[str, dict[str, str]] = {}
    rows = s.execute(
        select(DbTable.name, DbColumn.name, DbColumn.column_type)
        .join(DbColumn, DbColumn.table_id == DbTable.table_id)
        .where(DbTable.db_id == db_id, func.lower(DbTable.name).in_(wanted))
        .order_by(DbTable.name, DbColumn.position)
    ).all()
    for table, column, kind in rows:
        out.setdefault(table.lower(), {})[column.lower()] = kind
    return out
