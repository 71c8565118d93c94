import pytest
from tests.e2e.conftest import Dms, Server
from tests.e2e.test_sdk_more import World, world, grant  # noqa

pytestmark = [pytest.mark.e2e]

def test_probe(world: World):
    admin = world.dms("Perm Admin", "v3")
    g = world.uid("Grantee v3")
    print(grant(admin, g, "DATABASE", "QUERY", db_id=str(world.db_id)).to_map())
    print(grant(admin, g, "TABLE", "QUERY", db_id=str(world.db_id), table_name="no_such_table").to_map())
    r = admin.call("ListUserPermissions", user_id=str(g), perm_type="COLUMN")
    print("COLUMN", r.total_count, [(u.ds_type, u.table_name, u.table_id) for u in r.user_permissions.user_permission])
    r = admin.call("ListDatabaseUserPermssions", db_id=str(world.db_id), perm_type="COLUMN")
    print("DB COLUMN", r.total_count)
    r = admin.call("ListUserPermissions", user_id=str(g), perm_type="TABLE")
    print("TABLE", [(u.ds_type, u.table_name, u.table_id) for u in r.user_permissions.user_permission])
    print(grant(admin, g, "DATABASE", "QUERY", db_id=str(world.db_id), expire_date="2001-01-01 00:00:00") if False else "")
