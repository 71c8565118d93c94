"""``identity.acting.act_for``: the Caller a call acting for another user runs as."""

from __future__ import annotations

import pytest

from opendms.errors import DmsError, ErrorCode
from opendms.identity import acting, service
from opendms.identity.caller import Caller
from opendms.identity.roles import Role, parse_roles
from opendms.store.db import Store


def _caller(s, tid: int, uid: str) -> Caller:
    user = service.find_user(s, tid, uid=uid)
    return Caller("AK-1", user.uid, user.user_id, tid, "t", parse_roles(user.roles), "boss")


def test_the_acted_for_user_with_the_keys_owner_beside(store: Store, tid: int) -> None:
    with store.session() as s:
        boss = service.register_user(s, None, tid, "10", nick_name="boss", roles="ADMIN")
        dba = service.register_user(s, None, tid, "11", nick_name="dee", roles="DBA,USER")
        acted = acting.act_for(s, _caller(s, tid, "10"), " 11 ")
    assert acted == Caller(
        "AK-1",  # the key that signed the call
        "11",
        dba.user_id,
        tid,
        "t",
        (Role.USER, Role.DBA),
        "dee",
        by_user_id=boss.user_id,
        by_uid="10",
    )


def test_nothing_changes_for_ones_own_uid_or_none(store: Store, tid: int) -> None:
    with store.session() as s:
        service.register_user(s, None, tid, "12")  # a USER: may not act for others
        me = _caller(s, tid, "12")
        assert acting.act_for(s, me, "12") is me
        assert acting.act_for(s, me, "") is me


def test_a_deleted_user_is_no_user(store: Store, tid: int) -> None:
    with store.session() as s:
        service.register_user(s, None, tid, "13", roles="ADMIN")
        service.register_user(s, None, tid, "14")
        service.set_user_state(s, None, tid, "14", "DELETE")
        with pytest.raises(DmsError) as err:
            acting.act_for(s, _caller(s, tid, "13"), "14")
    assert err.value.code == ErrorCode.USER_NOT_FOUND
    assert err.value.message == f"RealLoginUserUid 14: no user with that Uid in tenant {tid}."
