from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from opendms.catalog import permissions
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from tests.unit.catalog.conftest import tables_of


def test_permissions_grant_expiry_scope_and_revoke(world) -> None:
    store, _box, _policy, tid, _other, user_id, instance_id, _path = world
    with store.session() as s:
        db, _ = tables_of(s, tid, instance_id)
        later = datetime.now() + timedelta(days=1)
        table = permissions.GrantTarget("TABLE", instance_id, db.db_id, "orders")
        (correct,) = permissions.grant(s, tid, user_id, table, "CORRECT", later)
        assert permissions.holds(s, tid, user_id, db.db_id, "CORRECT", "orders")
        assert not permissions.holds(s, tid, user_id, db.db_id, "CORRECT", "customers")
        assert not permissions.holds(s, tid, user_id, db.db_id, "CORRECT")
        whole = permissions.GrantTarget("INSTANCE", instance_id)
        permissions.grant(s, tid, user_id, whole, "QUERY", datetime(2000, 1, 1))
        assert not permissions.holds(s, tid, user_id, db.db_id, "QUERY")  # expired
        permissions.grant(s, tid, user_id, whole, "QUERY", later)  # granting again extends
        assert permissions.holds(s, tid, user_id, db.db_id, "QUERY", "customers")
        assert permissions.revoke(s, tid, user_id, correct.id, "CORRECT") == 1
        assert not permissions.holds(s, tid, user_id, db.db_id, "CORRECT", "orders")
        with pytest.raises(DmsError) as again:
            permissions.revoke(s, tid, user_id, correct.id, "CORRECT")
        assert again.value.code is ErrorCode.PERMISSION_NOT_FOUND
        page = permissions.list_for_user(s, tid, user_id)
        assert page.total == 1 and page.items[0].ds_type == "INSTANCE"


def test_only_overseers_see_other_peoples_privileges(world) -> None:
    _store, *_ = world
    plain = Caller("AK", "5", 9, 1, "t", (Role.USER,))
    with pytest.raises(DmsError):
        permissions.require_overseer(plain)
    permissions.require_overseer(Caller("AK", "5", 9, 1, "t", (Role.DBA,)))


def test_permission_listings_take_a_dms_search_pattern(world) -> None:
    """ListUserPermissions' SearchKey and ListDatabaseUserPermssions' UserName (store.search)."""
    store, _box, _policy, tid, _other, user_id, instance_id, _path = world
    with store.session() as s:
        db, _ = tables_of(s, tid, instance_id)
        later = datetime.now() + timedelta(days=1)
        permissions.grant(
            s,
            tid,
            user_id,
            permissions.GrantTarget("DATABASE", instance_id, db.db_id),
            "QUERY",
            later,
        )
        permissions.grant(
            s,
            tid,
            user_id,
            permissions.GrantTarget("TABLE", instance_id, db.db_id, "orders"),
            "CORRECT",
            later,
        )
        for text, found in (("%", 2), ("MAIN", 2), ("ORD_RS", 1), ("\\%", 0)):
            assert permissions.list_for_user(s, tid, user_id, search=text).total == found, text
        nick = identity.users_by_id(s, [user_id])[user_id].nick_name
        for text, found in (("%", 2), (nick.upper(), 2), ("_" + nick[1:], 2), ("\\%", 0)):
            page = permissions.list_for_database(s, tid, db.db_id, user_name=text)
            assert page.total == found, text
