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
