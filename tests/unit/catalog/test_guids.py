"""Table GUIDs (catalog.guids): what ListTables hands out is what the GUID actions take back."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from opendms.catalog import guids
from opendms.errors import DmsError, ErrorCode
from opendms.store.models import Database, DbTable
from tests.unit.catalog.conftest import tables_of


def test_a_guid_names_its_table_and_reads_back(world) -> None:
    store, _box, _policy, tid, _other, _user, instance_id, _path = world
    with store.session() as s:
        db, tables = tables_of(s, tid, instance_id)
        guid = guids.table_guid(db, "orders")
        assert guid == f"IDB_{db.db_id}.main.orders"
        table, found_db = guids.find_table(s, tid, guid)
        assert (table.table_id, found_db.db_id) == (tables["orders"], db.db_id)


def test_dots_in_schema_and_table_names(world) -> None:
    """The database id says which schema comes first: the rest is the table's whole name."""
    store, _box, _policy, tid, _other, _user, instance_id, _path = world
    with store.session() as s:
        db, tables = tables_of(s, tid, instance_id)
        s.execute(update(Database).where(Database.db_id == db.db_id).values(schema_name="a.b"))
        s.execute(
            update(DbTable).where(DbTable.table_id == tables["orders"]).values(name="x.orders")
        )
        s.refresh(db)
        table, _ = guids.find_table(s, tid, guids.table_guid(db, "x.orders"))
        assert table.table_id == tables["orders"]
        with pytest.raises(DmsError) as other_split:
            guids.find_table(s, tid, f"IDB_{db.db_id}.a.b.x")
        assert other_split.value.code is ErrorCode.TABLE_NOT_FOUND


@pytest.mark.parametrize(
    "guid",
    [
        "orders",
        "IDB_.main.orders",
        "IDB_x.main.orders",
        "IDB_12",
        "IDB_12.",
        "idb_1.main.orders",
        "IDB_-1.main.orders",
        "IDB_1234567890123456789.main.orders",  # beyond any id
        "IDB_L_9032.db.t",  # a logical table
        " IDB_1.main.orders",
    ],
)
def test_malformed_guids_are_invalid_parameters(world, guid: str) -> None:
    store, _box, _policy, tid, *_ = world
    with store.session() as s, pytest.raises(DmsError) as refused:
        guids.find_table(s, tid, guid)
    assert refused.value.code is ErrorCode.INVALID_PARAMETER
    assert "TableGuid" in refused.value.message


def test_unknown_tables_and_other_tenants_are_not_found(world) -> None:
    store, _box, _policy, tid, other, _user, instance_id, _path = world
    with store.session() as s:
        db, _ = tables_of(s, tid, instance_id)
        for guid, caller_tid in (
            (f"IDB_{db.db_id}.main.nope", tid),
            (f"IDB_{db.db_id}.main.ORDERS", tid),  # names are matched exactly
            (f"IDB_{db.db_id}.other.orders", tid),  # not this database's schema
            (f"IDB_{db.db_id}.main.", tid),
            (f"IDB_{db.db_id + 1000}.main.orders", tid),
            (guids.table_guid(db, "orders"), other),  # another tenant's database
        ):
            with pytest.raises(DmsError) as missing:
                guids.find_table(s, caller_tid, guid)
            assert missing.value.code is ErrorCode.TABLE_NOT_FOUND, guid
