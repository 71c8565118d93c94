from __future__ import annotations

import pytest

from opendms.catalog import queries, sync
from opendms.errors import DmsError
from tests.unit.catalog.conftest import tables_of


def test_other_tenants_see_nothing(world) -> None:
    store, box, policy, tid, other, _user, instance_id, _path = world
    with store.session() as s:
        db, tables = tables_of(s, tid, instance_id)
        for call in (
            lambda: queries.get_instance(s, other, instance_id),
            lambda: queries.list_databases(s, other, instance_id),
            lambda: queries.list_tables(s, other, db.db_id),
            lambda: queries.list_columns(s, other, tables["orders"]),
            lambda: sync.sync_instance(s, box, policy, other, instance_id),
        ):
            with pytest.raises(DmsError):
                call()
        assert queries.list_instances(s, other).total == 0


def test_every_catalog_listing_takes_a_dms_search_pattern(world) -> None:
    """SearchName / SearchKey: % and _ are wildcards, a plain word matches anywhere in any
    case (store.search); the DMS MCP server sends % for "all tables"."""
    store, _box, _policy, tid, _other, _user, instance_id, _path = world
    with store.session() as s:
        db, tables = tables_of(s, tid, instance_id)

        def table_names(text: str) -> list[str]:
            return [t.name for t in queries.list_tables(s, tid, db.db_id, search=text).items]

        assert table_names("%") == sorted(tables) and len(tables) == 2
        assert table_names("ORD") == ["orders"]
        assert table_names("c_st") == ["customers"]
        assert table_names("o%s") == ["customers", "orders"]
        assert table_names("\\%") == []
        for text, found in (("%", 1), ("DEM", 1), ("d_mo", 1), ("\\%", 0)):
            assert queries.list_instances(s, tid, search=text).total == found, text
        for text, found in (("%", 1), ("MA_N", 1), ("ai", 1), ("x%", 0)):
            assert queries.list_databases(s, tid, instance_id, search=text).total == found
            assert queries.search_databases(s, tid, search=text).total == found
        # a PostgreSQL database is the catalog of its schemas: its name finds them too
        db.catalog_name = "Shop"
        s.flush()
        assert queries.list_databases(s, tid, instance_id, search="shop").total == 1
        assert queries.search_databases(s, tid, search="SHO_").total == 1
