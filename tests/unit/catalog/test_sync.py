from __future__ import annotations

import sqlite3

from opendms.catalog import sync
from tests.unit.catalog.conftest import tables_of


def test_sync_keeps_ids_adds_and_drops_tables(world) -> None:
    store, box, policy, tid, _other, _user, instance_id, path = world
    with store.session() as s:
        db, before = tables_of(s, tid, instance_id)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE refunds (id INTEGER PRIMARY KEY)")
        conn.execute("DROP TABLE customers")
    with store.session() as s:
        sync.sync_database(s, box, policy, tid, db.db_id)
    with store.session() as s:
        again, after = tables_of(s, tid, instance_id)
    assert again.db_id == db.db_id
    assert after["orders"] == before["orders"]
    assert set(after) == {"orders", "refunds"}
