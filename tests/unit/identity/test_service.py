from __future__ import annotations

import pytest
from sqlalchemy import select

from opendms.errors import DmsError, ErrorCode
from opendms.identity import service
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import AccessKey, Account


def caller_for(user, roles: tuple[Role, ...]) -> Caller:
    return Caller("AK", user.uid, user.user_id, user.tid, "t", roles)


def test_bootstrap_is_idempotent_but_mints_fresh_keys(store: Store, box: SecretBox) -> None:
    with store.session() as s:
        first = service.bootstrap_admin(s, box)
    with store.session() as s:
        second = service.bootstrap_admin(s, box)
    assert first.tenant.tid == second.tenant.tid
    assert first.admin.user_id == second.admin.user_id
    assert first.access_key_id != second.access_key_id
    with store.session() as s:
        stored = s.scalars(select(AccessKey.secret_enc)).all()
    assert len(stored) == 2
    assert all(first.access_key_secret not in enc for enc in stored)  # encrypted at rest
    assert box.decrypt(stored[0]) in (first.access_key_secret, second.access_key_secret)


def test_register_find_list_and_search(store: Store) -> None:
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        service.register_user(s, None, tid, "100", nick_name="alice_1", roles="DBA,user")
        service.register_user(s, None, tid, "200", nick_name="bob%", roles="USER")
        with pytest.raises(DmsError) as dup:
            service.register_user(s, None, tid, "100")
        assert dup.value.code is ErrorCode.USER_ALREADY_EXISTS
    with store.session() as s:
        assert service.find_user(s, tid, uid="100").roles == "USER,DBA"
        assert service.list_users(s, tid).total == 2
        assert [u.uid for u in service.list_users(s, tid, role=Role.DBA).users] == ["100"]
        # SearchKey is a DMS pattern (store.search): % and _ are wildcards, \ escapes them
        assert [u.uid for u in service.list_users(s, tid, search="%").users] == ["100", "200"]
        assert [u.uid for u in service.list_users(s, tid, search="\\%").users] == ["200"]
        assert [u.uid for u in service.list_users(s, tid, search="B_B").users] == ["200"]
        assert [u.uid for u in service.list_users(s, tid, search="e_1").users] == ["100"]
        page = service.list_users(s, tid, page=2, size=1)
        assert page.total == 2
        assert [u.uid for u in page.users] == ["200"]


def test_users_are_scoped_to_their_tenant(store: Store) -> None:
    with store.session() as s:
        a = service.create_tenant(s, "a").tid
        b = service.create_tenant(s, "b").tid
        user = service.register_user(s, None, a, "300")
    with store.session() as s, pytest.raises(DmsError) as info:
        service.find_user(s, b, user_id=user.user_id)
    assert info.value.code is ErrorCode.USER_NOT_FOUND
    with store.session() as s:
        assert service.list_users(s, b).total == 0


def test_invalid_uid_and_role(store: Store) -> None:
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        for bad in ("abc", "", "1" * 21):
            with pytest.raises(DmsError):
                service.register_user(s, None, tid, bad)
        with pytest.raises(DmsError, match="valid roles"):
            service.register_user(s, None, tid, "5", roles="KING")


def test_only_admins_grant_privileged_roles(store: Store) -> None:
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        sec = service.register_user(s, None, tid, "1", roles="SECURITY_ADMIN")
        service.register_user(s, None, tid, "9", roles="ADMIN")
        actor = caller_for(sec, (Role.SECURITY_ADMIN,))
        with pytest.raises(DmsError) as info:
            service.register_user(s, actor, tid, "2", roles="ADMIN")
        assert info.value.code is ErrorCode.PERMISSION_DENIED
        service.register_user(s, actor, tid, "3", roles="DBA")
        with pytest.raises(DmsError):
            service.update_user(s, actor, tid, "3", roles="SECURITY_ADMIN")


def test_state_changes_bump_auth_version_and_guard_self_and_last_admin(store: Store) -> None:
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        admin = service.register_user(s, None, tid, "1", roles="ADMIN")
        user = service.register_user(s, None, tid, "2")
        version = user.auth_version
        actor = caller_for(admin, (Role.ADMIN,))
        assert service.set_user_state(s, actor, tid, "2", "DISABLE").auth_version > version
        with pytest.raises(DmsError) as own:
            service.set_user_state(s, actor, tid, "1", "DISABLE")
        assert own.value.code is ErrorCode.CANNOT_CHANGE_SELF
        with pytest.raises(DmsError) as last:
            service.set_user_state(s, None, tid, "1", "DELETE")
        assert last.value.code is ErrorCode.LAST_ADMINISTRATOR
        with pytest.raises(DmsError):
            service.update_user(s, None, tid, "1", roles="USER")
        service.set_user_state(s, actor, tid, "2", "NORMAL")
        service.set_user_state(s, actor, tid, "2", "DELETE")
        with pytest.raises(DmsError):
            service.set_user_state(s, actor, tid, "2", "NORMAL")
        # a deleted user comes back only by registering again
        assert service.register_user(s, None, tid, "2").state == "NORMAL"


def test_tenants_of_and_active_flag(store: Store) -> None:
    with store.session() as s:
        a = service.create_tenant(s, "a").tid
        b = service.create_tenant(s, "b").tid
        service.register_user(s, None, a, "7")
        service.register_user(s, None, b, "7")
        members = service.tenants_of(s, "7")
    assert [(m.tenant.tid, m.active) for m in members] == [(a, True), (b, False)]


def test_policies_attach_replace_detach(store: Store) -> None:
    allow = '{"Version":"1","Statement":[{"Effect":"Allow","Action":"dms:X"}]}'
    deny = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:X"}]}'
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        user = service.register_user(s, None, tid, "1")
        v0 = user.auth_version
        service.attach_policy(s, tid, "1", "p", allow, actor=None)
        service.attach_policy(s, tid, "1", "p", deny, actor=None)
        assert user.auth_version > v0
        ((name, doc),) = service.attached_policies(s, user.user_id)
        assert name == "p"
        assert doc.Statement[0].Effect == "Deny"
        with pytest.raises(DmsError) as bad:
            service.attach_policy(s, tid, "1", "q", "{}", actor=None)
        assert bad.value.code is ErrorCode.POLICY_INVALID
        service.detach_policy(s, tid, "1", "p", actor=None)
        assert service.attached_policies(s, user.user_id) == []
        with pytest.raises(DmsError):
            service.detach_policy(s, tid, "1", "p", actor=None)


def test_access_keys(store: Store, box: SecretBox) -> None:
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        user = service.register_user(s, None, tid, "1")
        key, secret = service.create_access_key(s, box, user.uid, "ci", actor=None)
        assert len(key.access_key_id) == 24
        assert len(secret) == 30
        assert box.decrypt(key.secret_enc) == secret
        service.set_access_key_status(s, key.access_key_id, active=False, actor=None)
        assert service.list_access_keys(s, user.uid)[0].status == "Inactive"
        with pytest.raises(DmsError):
            service.set_access_key_status(s, "nope", active=True, actor=None)
        with pytest.raises(DmsError):
            service.create_access_key(s, box, "424242", actor=None)


def test_only_an_admin_changes_an_admin_or_a_security_admin(store: Store, box: SecretBox) -> None:
    """Every path that changes a user asks the one guard: a SECURITY_ADMIN manages users,
    but not the ADMINs and SECURITY_ADMINs beside and above them, themselves included."""
    allow = '{"Version":"1","Statement":[{"Effect":"Allow","Action":"dms:X"}]}'
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        boss = service.register_user(s, None, tid, "1", roles="ADMIN")
        sec = service.register_user(s, None, tid, "2", roles="SECURITY_ADMIN")
        service.register_user(s, None, tid, "3", roles="ADMIN")
        service.register_user(s, None, tid, "4", roles="SECURITY_ADMIN")
        service.register_user(s, None, tid, "5", roles="USER")
        service.register_user(s, None, tid, "6", roles="ADMIN")
        service.set_user_state(s, None, tid, "6", "DELETE")
        (key, _) = service.create_access_key(s, box, "3", actor=None)
        service.attach_policy(s, tid, "3", "p", allow, actor=None)
        actor = caller_for(sec, (Role.SECURITY_ADMIN,))
        changes = {
            "demote": lambda uid: service.update_user(s, actor, tid, uid, roles="USER"),
            "rename": lambda uid: service.update_user(s, actor, tid, uid, nick_name="x"),
            "attach": lambda uid: service.attach_policy(s, tid, uid, "q", allow, actor=actor),
            "detach": lambda uid: service.detach_policy(s, tid, uid, "q", actor=actor),
            "new key": lambda uid: service.create_access_key(s, box, uid, actor=actor),
            "disable": lambda uid: service.set_user_state(s, actor, tid, uid, "DISABLE"),
            "enable": lambda uid: service.set_user_state(s, actor, tid, uid, "NORMAL"),
            "delete": lambda uid: service.set_user_state(s, actor, tid, uid, "DELETE"),
        }
        for uid in ("3", "4", "2"):  # an ADMIN, another SECURITY_ADMIN, the actor itself
            for name, change in changes.items():
                if uid == "2" and name in ("disable", "delete", "new key"):
                    continue  # CannotChangeSelf says so first; one's own keys are one's own
                with pytest.raises(DmsError) as info:
                    change(uid)
                assert info.value.code is ErrorCode.PERMISSION_DENIED, (uid, name)
        with pytest.raises(DmsError) as revoke:
            service.set_access_key_status(s, key.access_key_id, active=False, actor=actor)
        assert revoke.value.code is ErrorCode.PERMISSION_DENIED
        with pytest.raises(DmsError) as back:  # a deleted ADMIN comes back only by an ADMIN
            service.register_user(s, actor, tid, "6", roles="USER")
        assert back.value.code is ErrorCode.PERMISSION_DENIED
        # nothing changed
        assert [(u.uid, u.roles, u.state) for u in service.list_users(s, tid).users] == [
            ("1", "ADMIN", "NORMAL"),
            ("2", "SECURITY_ADMIN", "NORMAL"),
            ("3", "ADMIN", "NORMAL"),
            ("4", "SECURITY_ADMIN", "NORMAL"),
            ("5", "USER", "NORMAL"),
            ("6", "ADMIN", "DELETE"),
        ]
        assert service.list_access_keys(s, "3")[0].status == "Active"
        # a SECURITY_ADMIN still manages a USER; an ADMIN manages everyone
        for change in changes.values():
            change("5")
        admin = caller_for(boss, (Role.ADMIN,))
        assert service.update_user(s, admin, tid, "3", roles="USER").roles == "USER"
        assert service.set_user_state(s, admin, tid, "4", "DISABLE").state == "DISABLE"
        assert service.register_user(s, admin, tid, "6", roles="USER").state == "NORMAL"


def test_keys_of_an_account_in_other_tenants_are_the_operators(
    store: Store, box: SecretBox
) -> None:
    """A key opens every tenant its account belongs to: one tenant's ADMIN cannot mint or
    revoke a key that also opens another tenant."""
    with store.session() as s:
        a = service.create_tenant(s, "a").tid
        b = service.create_tenant(s, "b").tid
        admin = service.register_user(s, None, a, "1", roles="ADMIN")
        service.register_user(s, None, a, "2")
        service.register_user(s, None, b, "2", roles="ADMIN")
        service.register_user(s, None, b, "3")
        actor = caller_for(admin, (Role.ADMIN,))
        with pytest.raises(DmsError) as both:
            service.create_access_key(s, box, "2", actor=actor)
        assert both.value.code is ErrorCode.PERMISSION_DENIED
        with pytest.raises(DmsError) as elsewhere:
            service.create_access_key(s, box, "3", actor=actor)
        assert elsewhere.value.code is ErrorCode.USER_NOT_FOUND
        own, _ = service.create_access_key(s, box, "1", actor=actor)
        assert service.set_access_key_status(s, own.access_key_id, False, actor=actor).status == (
            "Inactive"
        )


def test_only_people_managers_touch_another_users_keys(store: Store, box: SecretBox) -> None:
    """The console reaches keys under the action that reads one's own user, so the service
    holds the line: a USER or a DBA manages their own keys and nobody else's."""
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        dba = service.register_user(s, None, tid, "1", roles="DBA")
        service.register_user(s, None, tid, "2")
        theirs, _ = service.create_access_key(s, box, "2", actor=None)
        actor = caller_for(dba, (Role.DBA,))
        for act in (
            lambda: service.create_access_key(s, box, "2", actor=actor),
            lambda: service.set_access_key_status(s, theirs.access_key_id, False, actor=actor),
            lambda: service.create_access_key(s, box, "999", actor=actor),  # nobody's: same answer
        ):
            with pytest.raises(DmsError) as info:
                act()
            assert info.value.code is ErrorCode.PERMISSION_DENIED
        assert [k.status for k in service.list_access_keys(s, "2")] == ["Active"]
        own, _ = service.create_access_key(s, box, "1", "mine", actor=actor)
        assert service.set_access_key_status(s, own.access_key_id, False, actor=actor).status == (
            "Inactive"
        )
        with pytest.raises(DmsError) as long:
            service.create_access_key(s, box, "1", "x" * 257, actor=actor)
        assert long.value.code is ErrorCode.INVALID_PARAMETER


def test_console_passwords_are_set_by_an_admin_for_this_tenants_accounts(
    store: Store,
) -> None:
    from opendms.identity import passwords

    with store.session() as s:
        a = service.create_tenant(s, "a").tid
        b = service.create_tenant(s, "b").tid
        boss = service.register_user(s, None, a, "1", roles="ADMIN")
        sec = service.register_user(s, None, a, "2", roles="SECURITY_ADMIN")
        service.register_user(s, None, a, "3", nick_name="carol")
        service.register_user(s, None, a, "4")
        service.register_user(s, None, b, "4")
        admin = caller_for(boss, (Role.ADMIN,))
        user = service.set_console_password(s, admin, a, "carol", "a long enough password")
        assert user.uid == "3"
        assert passwords.verify(s.get(Account, "3"), "a long enough password")
        for actor, name, code in (
            (caller_for(sec, (Role.SECURITY_ADMIN,)), "3", ErrorCode.PERMISSION_DENIED),
            (admin, "4", ErrorCode.PERMISSION_DENIED),  # its password opens tenant b too
            (admin, "nobody", ErrorCode.USER_NOT_FOUND),
        ):
            with pytest.raises(DmsError) as info:
                service.set_console_password(s, actor, a, name, "another long password")
            assert info.value.code is code
        with pytest.raises(DmsError) as weak:
            service.set_console_password(s, admin, a, "3", "short")
        assert weak.value.code is ErrorCode.INVALID_PARAMETER
        # the operator (the CLI) sets anyone's
        service.set_console_password(s, None, a, "4", "the operator's choice")
        assert passwords.verify(s.get(Account, "4"), "the operator's choice")
