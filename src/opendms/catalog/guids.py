"""A table's GUID, as DMS spells it: ``IDB_<DatabaseId>.<schema>.<table>``. ListTables
(ReturnGuid=true) hands it out and GetMetaTableDetailInfo / GetMetaTableColumn take it
back; this module is the one place that writes and reads it.

Schema and table names may themselves hold dots, so a GUID is read against the catalog: the
database id says which schema must follow, and the rest is the table's name, exactly.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.store.models import Database, DbTable

PREFIX = "IDB_"
_GUID = re.compile(r"IDB_([0-9]{1,18})\.(.+)", re.DOTALL)


def table_guid(db: Database, table: str) -> str:
    return f"{PREFIX}{db.db_id}.{db.schema_name}.{table}"


def find_table(s: Session, tid: int, guid: str) -> tuple[DbTable, Database]:
    """The table ``guid`` names in tenant ``tid``."""
    shown = guid if len(guid) <= 300 else guid[:300] + "…"
    if guid.startswith(PREFIX + "L_"):
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"TableGuid {shown!r} names a logical table; OpenDMS has no logical databases.",
        )
    found = _GUID.fullmatch(guid)
    if found is None:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"TableGuid {shown!r} is not a table GUID: ListTables with ReturnGuid=true gives "
            "them, as IDB_<DatabaseId>.<schema>.<table>.",
        )
    db_id, rest = int(found.group(1)), found.group(2)
    db = s.get(Database, db_id)
    table = None
    # another tenant's database is not found either
    if db is not None and db.tid == tid and rest.startswith(db.schema_name + "."):
        name = rest[len(db.schema_name) + 1 :]
        table = s.scalars(
            select(DbTable).where(DbTable.db_id == db_id, DbTable.name == name)
        ).first()
    if table is None or db is None:
        raise DmsError(ErrorCode.TABLE_NOT_FOUND, f"No table {shown!r} in the catalog.")
    return table, db
