"""Table shapes for SQL review, read from the catalog of the demo target."""

from __future__ import annotations

from pathlib import Path

from opendms.catalog.shapes import CatalogShapes, model_type
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


def test_definitions_of_the_demo_tables(store: Store, box: SecretBox, tmp_path: Path) -> None:
    world = World.build(store, box, tmp_path / "targets")
    with store.session() as s:
        db = s.get(Database, world.db_id)
        assert db is not None
        shapes = CatalogShapes(s, [db])
        orders = shapes.definition("orders")
        assert orders is not None and shapes.definition("ORDERS") == orders
        assert shapes.definition("main.orders") == orders
        assert shapes.definition("nothere") is None
        assert orders.name == "orders" and orders.primary_key == ("id",)
        assert [c.name for c in orders.columns] == [
            "id",
            "customer_id",
            "status",
            "amount_cents",
            "created_at",
        ]
        status = orders.column("status")
        assert status is not None and (status.type, status.nullable) == ("text", False)
        assert [(i.name, i.columns, i.unique) for i in orders.indexes] == [
            ("ix_orders_created_at", ("created_at",), False)
        ]
        assert orders.rows == 5000
        found = review(
            "ALTER TABLE orders ADD COLUMN status TEXT; CREATE INDEX ix_again ON orders "
            "(created_at); ALTER TABLE ghosts ADD COLUMN a INT",
            "sqlite",
            ("CREATE", "ALTER"),
            catalog=shapes,
        )
    codes = {f.code for f in found}
    assert {"ALREADY_EXISTS", "DUPLICATE_INDEX", "TABLE_NOT_FOUND"} <= codes


def test_postgresql_type_spellings_read_as_the_model_spells_them() -> None:
    assert model_type("character varying(64)", "postgresql") == "varchar(64)"
    assert model_type("character(3)", "postgresql") == "char(3)"
    assert model_type("timestamp with time zone", "postgresql") == "timestamp with time zone"
    assert model_type("INT(11) UNSIGNED", "mariadb") == "int(11) unsigned"
