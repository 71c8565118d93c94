"""Who may name an instance's DBA, and whom the naming gives a DBA's rights."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from opendms.catalog import dba, instances
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.roles import parse_roles
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Instance, User
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target


def as_caller(user: User) -> Caller:
    return Caller("AK", user.uid, user.user_id, user.tid, "t", parse_roles(user.roles))


class Place:
    """A tenant with an ADMIN, two DBAs (dora, dave) and a USER, and fresh SQLite targets."""

    def __init__(self, store: Store, box: SecretBox, root: Path) -> None:
        self.store, self.box, self.root = store, box, root
        self.policy = TargetPolicy("", root)
        self.count = itertools.count()
        with store.session() as s:
            self.tid = identity.create_tenant(s, "t").tid
            self.people = {
                name: identity.register_user(s, None, self.tid, uid, roles=roles)
                for name, uid, roles in (
                    ("admin", "1", "ADMIN"),
                    ("dora", "2", "DBA"),
                    ("dave", "3", "DBA"),
                    ("ursula", "4", "USER"),
                )
            }
            s.expunge_all()

    def id(self, name: str) -> int:
        return self.people[name].user_id

    def register(self, actor: str | None, dba_name: str | None) -> Instance:
        """``actor`` (None: the operator) registers a fresh target naming ``dba_name``."""
        host = ensure_demo_target(self.root / f"t{next(self.count)}", customers=1, orders_each=1)
        spec = instances.InstanceSpec(
            instance_type="sqlite",
            host=str(host),
            dba_user_id=self.id(dba_name) if dba_name else None,
        )
        by = as_caller(self.people[actor]) if actor else None
        with self.store.session() as s:
            inst = instances.register_instance(s, self.box, self.policy, self.tid, spec, actor=by)
            s.expunge(inst)
        return inst

    def set_dba(self, actor: str | None, instance_id: int, dba_name: str) -> Instance:
        by = as_caller(self.people[actor]) if actor else None
        spec = instances.InstanceSpec(dba_user_id=self.id(dba_name))
        with self.store.session() as s:
            inst = instances.update_instance(
                s, self.box, self.policy, self.tid, instance_id, spec, actor=by
            )
            s.expunge(inst)
        return inst


@pytest.fixture
def place(store: Store, box: SecretBox, tmp_path: Path) -> Place:
    return Place(store, box, tmp_path / "targets")


def refused(call: Callable[[], object], code: ErrorCode = ErrorCode.PERMISSION_DENIED) -> str:
    with pytest.raises(DmsError) as info:
        call()
    assert info.value.code is code
    return info.value.message


def test_a_dba_cannot_make_itself_the_dba_of_another_instance(place: Place) -> None:
    theirs = place.register(None, "dave")
    message = refused(lambda: place.set_dba("dora", theirs.instance_id, "dora"))
    assert "Only an ADMIN" in message
    # nor hand it to somebody else, nor take away their own
    refused(lambda: place.set_dba("dave", theirs.instance_id, "dora"))
    # passing the DBA it has changes nothing, not even who assigned it
    again = place.set_dba("dora", theirs.instance_id, "dave")
    assert (again.dba_user_id, again.dba_assigned_by) == (place.id("dave"), dba.OPERATOR)


def test_a_non_admin_registering_an_instance_names_only_itself_and_gets_no_rights(
    place: Place,
) -> None:
    message = refused(lambda: place.register("dora", "dave"))
    assert "naming yourself" in message
    mine = place.register("dora", "dora")
    assert (mine.dba_user_id, mine.dba_assigned_by) == (place.id("dora"), place.id("dora"))
    assert dba.dba_of(mine) is None
    assert not dba.is_instance_dba(mine, place.id("dora"))
    # saying it again is still only its own word
    assert dba.dba_of(place.set_dba("dora", mine.instance_id, "dora")) is None
    # an ADMIN's word makes it so
    confirmed = place.set_dba("admin", mine.instance_id, "dora")
    assert confirmed.dba_assigned_by == place.id("admin")
    assert dba.is_instance_dba(confirmed, place.id("dora"))


def test_admins_and_the_operator_name_anyone_but_themselves(place: Place) -> None:
    by_admin = place.register("admin", "dora")
    assert dba.dba_of(by_admin) == place.id("dora")
    by_operator = place.register(None, "admin")
    assert dba.dba_of(by_operator) == place.id("admin")
    assert (by_operator.dba_assigned_by, dba.OPERATOR) == (0, 0)
    # an ADMIN naming themselves is a self-assignment like any other
    self_named = place.set_dba("admin", by_admin.instance_id, "admin")
    assert dba.dba_of(self_named) is None
    moved = place.set_dba("admin", by_admin.instance_id, "dave")
    assert dba.dba_of(moved) == place.id("dave")
    # a DBA must be a user of the tenant
    with place.store.session() as s:
        spec = instances.InstanceSpec(dba_user_id=9999)
        refused(
            lambda: instances.update_instance(
                s, place.box, place.policy, place.tid, moved.instance_id, spec, actor=None
            ),
            ErrorCode.USER_NOT_FOUND,
        )


def test_the_sql_twin_says_what_the_rule_says(place: Place) -> None:
    """Every mix of DBA and assigner, including an assignment nobody recorded (before
    migration 0012): ``is_dba_clause`` picks exactly the rows ``is_instance_dba`` accepts."""
    dora, dave = place.id("dora"), place.id("dave")
    people = (None, dora, dave)
    with place.store.session() as s:
        rows = []
        for n, (who, by) in enumerate(itertools.product(people, (*people, dba.OPERATOR))):
            inst = Instance(
                tid=place.tid,
                alias=f"i{n}",
                instance_type="sqlite",
                host=f"/nowhere/{n}",
                dba_user_id=who,
                dba_assigned_by=by,
            )
            s.add(inst)
            rows.append(inst)
        s.flush()
        for user_id in (dora, dave):
            in_sql = set(
                s.scalars(
                    select(Instance.instance_id).where(
                        Instance.tid == place.tid, dba.is_dba_clause(user_id)
                    )
                )
            )
            in_python = {i.instance_id for i in rows if dba.is_instance_dba(i, user_id)}
            assert in_sql == in_python
            # named by the other DBA or by the operator: 2 rows each
            assert len(in_python) == 2
