"""Table shapes for SQL review, read from the catalog of the demo target."""

from __future__ import annotations

from pathlib import Path

from opendms.catalog.shapes import CatalogShapes
from opendms.identity.secrets import SecretBox
from opendms.sql.review import review
from opendms.store.db import Store
from opendms.store.models import Database
from tests.approval_world import World

DC = ("INSERT", "REPLACE", "UPDATE", "DELETE")


def test_shapes_of_the_demo_tables_and_review_against_them(
    store: Store, box: SecretBox, tmp_path: Path
) -> None:
    world = World.build(store, box, tmp_path / "targets")
    with store.session() as s:
        db = s.get(Database, world.db_id)
        assert db is not None
        shapes = CatalogShapes(s, [db])
        orders = shapes.table("orders")
        assert orders is not None and orders.primary_key == ("id",)
        assert {"id", "customer_id", "status"} <= orders.columns
        assert shapes.table("ORDERS") == orders  # names are case-insensitive
        assert shapes.table("main.orders") == orders
        assert shapes.table("nothere") is None
        assert shapes.table("nosuchschema.orders") is None
        found = review(
            "UPDATE orders SET id = 2, nope = 1 WHERE status = 'x'; DELETE FROM ghosts WHERE 1",
            "sqlite",
            DC,
            catalog=shapes,
        )
    codes = sorted(f.code for f in found)
    assert codes == [
        "DML_WHERE_ALWAYS_TRUE",
        "UNKNOWN_COLUMN",
        "UNKNOWN_TABLE",
        "UPDATE_PRIMARY_KEY",
    ]
