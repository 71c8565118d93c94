"""What each role may do to people, keys, instances and permissions, through the signed API.

``EXPECTED`` is the table: for every action that manages any of these, cases (whom or what it
is aimed at) and, per role, the outcome: done, refused by RAM before the handler runs
(``Forbidden.RAM``), or refused by the business rule (``PermissionDenied``). An action added
to the action table that manages such things fails ``test_every_managing_action_is_in_the_table``
until it gets its row here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from opendms.actions import ALL
from opendms.catalog import instances, permissions, queries
from opendms.gateway.table import Access, Action
from opendms.gateway.wire import WIRE_TIME
from opendms.identity import service as identity
from opendms.store.models import Instance, utcnow
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target
from opendms.tickets import service as tickets
from tests.approval_world import caller
from tests.conftest import Api
from tests.local_servers import closed_port
from tests.signer import Signer

ROLES = ("ADMIN", "SECURITY_ADMIN", "DBA", "USER", "STRUCT_READ_ONLY")
DONE, RAM, REFUSED = "done", "Forbidden.RAM", "PermissionDenied"


def outcomes(done: str = "", refused: str = "") -> dict[str, str]:
    """Per role: DONE for the roles in ``done``, REFUSED for those in ``refused`` (both
    space-separated), RAM for everyone else."""
    table = dict.fromkeys(ROLES, RAM)
    table |= dict.fromkeys(done.split(), DONE)
    table |= dict.fromkeys(refused.split(), REFUSED)
    return table


ADMINS_ONLY = outcomes("ADMIN", refused="SECURITY_ADMIN")  # user managers, but ADMIN's call
USER_MANAGERS = outcomes("ADMIN SECURITY_ADMIN")
INSTANCE_MANAGERS = outcomes("ADMIN DBA")


@dataclass
class World:
    """A tenant with one caller per role, and makers of fresh things to aim calls at (made by
    the operator, so each call finds them as the case says)."""

    api: Api
    signers: dict[str, Signer] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def user(self, roles: str = "USER", state: str = "NORMAL") -> tuple[str, int]:
        """A new user: (Uid, UserId)."""
        with self.api.store.session() as s:
            made = identity.register_user(s, None, self.api.tid, identity.new_uid(), roles=roles)
            if state != "NORMAL":
                identity.set_user_state(s, None, self.api.tid, made.uid, state)
            return made.uid, made.user_id

    def target(self) -> str:
        """A SQLite database nobody registered yet."""
        where = self.api.sqlite_targets / f"t{next(self.counter)}"
        return str(ensure_demo_target(where, customers=2, orders_each=1))

    def instance(self, dba: int | None = None) -> Instance:
        """A registered instance whose DBA (by default a new DBA user) the operator named."""
        dba = dba if dba is not None else self.user("DBA")[1]
        policy = TargetPolicy("", self.api.sqlite_targets)
        with self.api.store.session() as s:
            spec = instances.InstanceSpec(
                instance_type="sqlite", host=self.target(), dba_user_id=dba
            )
            inst = instances.register_instance(
                s, self.api.box, policy, self.api.tid, spec, actor=None
            )
            s.expunge(inst)
        return inst

    def database(self) -> int:
        inst = self.instance()
        with self.api.store.session() as s:
            (db,) = queries.list_databases(s, self.api.tid, inst.instance_id).items
            return db.db_id

    def grant(self, user_id: int) -> tuple[int, int]:
        """A QUERY grant on a fresh database: (DbId, UserAccessId)."""
        db_id = self.database()
        with self.api.store.session() as s:
            db = queries.get_database(s, self.api.tid, db_id)
            target = permissions.GrantTarget("DATABASE", db.instance_id, db_id)
            expires = utcnow() + timedelta(days=1)
            (row,) = permissions.grant(s, self.api.tid, user_id, target, "QUERY", expires)
            return db_id, row.id

    def call(self, role: str, action: str, params: dict[str, Any]) -> str:
        resp = self.api.call(action, self.signers[role], **params)
        body = resp.json()
        if resp.status_code != 200:
            return str(body["Code"])
        return DONE if body["Success"] else str(body["ErrorCode"])


Params = Callable[[World, str], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    aimed_at: str
    params: Params  # (world, the calling role) -> the request's parameters
    expect: dict[str, str]


def _instance(host: str, alias: str, dba_field: str, dba: int) -> dict[str, Any]:
    """What RegisterInstance / AddInstance take for a SQLite target at ``host``."""
    return {
        "Host": host,
        "Port": 0,
        "InstanceType": "sqlite",
        "InstanceAlias": alias,
        "InstanceSource": "PUBLIC_OWN",
        "NetworkType": "VPC",
        "EnvType": "dev",
        "SafeRule": "default",
        "QueryTimeout": 60,
        "ExportTimeout": 600,
        dba_field: dba,
    }


_LOGIN = {"DatabaseUser": "u", "DatabasePassword": "p"}


def _known_address(w: World) -> dict[str, Any]:
    """SimplyAddInstance's parameters for an address registered already (nothing listens
    there: the instance is answered without connecting)."""
    port = closed_port()
    with w.api.store.session() as s:
        s.add(
            Instance(tid=w.api.tid, alias="k", instance_type="mysql", host="127.0.0.1", port=port)
        )
    return {"Host": "127.0.0.1", "Port": port, **_LOGIN}


def _register(dba_field: str) -> list[Case]:
    def fields(w: World, dba: int) -> dict[str, Any]:
        return _instance(w.target(), "new", dba_field, dba)

    return [
        Case(
            "naming the caller its DBA", lambda w, me: fields(w, w.user_ids[me]), INSTANCE_MANAGERS
        ),
        Case(
            "naming another user its DBA",
            lambda w, me: fields(w, w.user("DBA")[1]),
            outcomes("ADMIN", refused="DBA"),
        ),
    ]


def _by_uid(roles: str, state: str = "NORMAL") -> Params:
    return lambda w, me: {"Uid": w.user(roles, state)[0]}


def _grant(w: World, me: str) -> dict[str, Any]:
    db_id = w.database()
    expires = (utcnow() + timedelta(days=1)).strftime(WIRE_TIME)
    user_id = w.user()[1]
    return {
        "UserId": user_id,
        "DsType": "DATABASE",
        "DbId": db_id,
        "PermTypes": "QUERY",
        "ExpireDate": expires,
    }


def _revoke(w: World, me: str) -> dict[str, Any]:
    user_id = w.user()[1]
    db_id, access_id = w.grant(user_id)
    return {
        "UserId": user_id,
        "DsType": "DATABASE",
        "DbId": db_id,
        "PermTypes": "QUERY",
        "UserAccessId": access_id,
    }


EXPECTED: dict[str, list[Case]] = {
    # ------------------------------------------------------------------ people
    "RegisterUser": [
        Case("a new USER", lambda w, me: {"Uid": identity.new_uid()}, USER_MANAGERS),
        Case(
            "a new SECURITY_ADMIN",
            lambda w, me: {"Uid": identity.new_uid(), "RoleNames": "SECURITY_ADMIN"},
            ADMINS_ONLY,
        ),
        Case(
            "a deleted ADMIN, back as a USER",
            lambda w, me: {"Uid": w.user("ADMIN", "DELETE")[0], "RoleNames": "USER"},
            ADMINS_ONLY,
        ),
    ],
    "UpdateUser": [
        Case("a USER, renamed", lambda w, me: {"Uid": w.user()[0], "UserNick": "x"}, USER_MANAGERS),
        Case(
            "a USER, made DBA",
            lambda w, me: {"Uid": w.user()[0], "RoleNames": "DBA"},
            USER_MANAGERS,
        ),
        Case(
            "a USER, made SECURITY_ADMIN",
            lambda w, me: {"Uid": w.user()[0], "RoleNames": "SECURITY_ADMIN"},
            ADMINS_ONLY,
        ),
        Case(
            "an ADMIN, demoted to USER",
            lambda w, me: {"Uid": w.user("ADMIN")[0], "RoleNames": "USER"},
            ADMINS_ONLY,
        ),
        Case(
            "a SECURITY_ADMIN, renamed",
            lambda w, me: {"Uid": w.user("SECURITY_ADMIN")[0], "UserNick": "x"},
            ADMINS_ONLY,
        ),
    ],
    "DeleteUser": [
        Case("a USER", _by_uid("USER"), USER_MANAGERS),
        Case("an ADMIN", _by_uid("ADMIN"), ADMINS_ONLY),
        Case("a SECURITY_ADMIN", _by_uid("SECURITY_ADMIN"), ADMINS_ONLY),
    ],
    "DisableUser": [
        Case("a USER", _by_uid("USER"), USER_MANAGERS),
        Case("an ADMIN", _by_uid("ADMIN"), ADMINS_ONLY),
        Case("a SECURITY_ADMIN", _by_uid("SECURITY_ADMIN"), ADMINS_ONLY),
    ],
    "EnableUser": [
        Case("a disabled USER", _by_uid("USER", "DISABLE"), USER_MANAGERS),
        Case("a disabled ADMIN", _by_uid("ADMIN", "DISABLE"), ADMINS_ONLY),
        Case("a disabled SECURITY_ADMIN", _by_uid("SECURITY_ADMIN", "DISABLE"), ADMINS_ONLY),
    ],
    # ------------------------------------------------------------------ instances
    "RegisterInstance": _register("DbaUid"),
    "AddInstance": _register("DbaId"),
    "SimplyAddInstance": [
        Case("an address already registered", lambda w, me: _known_address(w), INSTANCE_MANAGERS),
        Case(
            "an address nothing listens at",
            lambda w, me: {"Host": "127.0.0.1", "Port": closed_port(), **_LOGIN},
            INSTANCE_MANAGERS | dict.fromkeys(("ADMIN", "DBA"), "TargetConnectFailed"),
        ),
    ],
    "UpdateInstance": [
        Case(
            "another user's instance, renamed",
            lambda w, me: {"InstanceId": w.instance().instance_id, "InstanceAlias": "x"},
            INSTANCE_MANAGERS,
        ),
        Case(
            "another user's instance, its DbaId passed unchanged",
            lambda w, me: {
                "InstanceId": (inst := w.instance()).instance_id,
                "DbaId": inst.dba_user_id,
            },
            INSTANCE_MANAGERS,
        ),
        Case(
            "another user's instance, the caller made its DBA",
            lambda w, me: {"InstanceId": w.instance().instance_id, "DbaId": w.user_ids[me]},
            outcomes("ADMIN", refused="DBA"),
        ),
        Case(
            "the caller's instance, another user made its DBA",
            lambda w, me: {
                "InstanceId": w.instance(w.user_ids[me]).instance_id,
                "DbaId": w.user("DBA")[1],
            },
            outcomes("ADMIN", refused="DBA"),
        ),
    ],
    "DeleteInstance": [
        Case(
            "another user's instance",
            lambda w, me: {"Host": w.instance().host, "Port": 0},
            INSTANCE_MANAGERS,
        ),
    ],
    "SyncInstanceMeta": [
        Case(
            "another user's instance",
            lambda w, me: {"InstanceId": w.instance().instance_id},
            INSTANCE_MANAGERS,
        ),
    ],
    "SyncDatabaseMeta": [
        Case("a database", lambda w, me: {"DbId": w.database()}, INSTANCE_MANAGERS),
    ],
    # ------------------------------------------------------------------ permissions
    "SetOwners": [
        Case(
            "a database, the caller its owner",
            lambda w, me: {
                "ResourceId": w.database(),
                "OwnerType": "DATABASE",
                "OwnerIds": w.user_ids[me],
            },
            outcomes("ADMIN"),
        ),
    ],
    "GrantUserPermission": [Case("a USER", _grant, USER_MANAGERS)],
    "RevokeUserPermission": [Case("a USER's grant", _revoke, USER_MANAGERS)],
}

# An action manages people, keys, instances or permissions when it changes something and
# lives with those actions or names such a thing.
MANAGING_MODULES = {
    "opendms.actions.users",
    "opendms.actions.catalog.instances",
    "opendms.actions.catalog.databases",
    "opendms.actions.permissions",
}
MANAGING_NAMES = re.compile(
    r"User(?!Upload)|Tenant|Key|Polic|Role|Instance|Database|Table|Owner|Permission|Authorit|Dba"
)


def manages(action: Action) -> bool:
    if action.access in (Access.GET, Access.LIST):
        return False
    return action.handler.__module__ in MANAGING_MODULES or bool(MANAGING_NAMES.search(action.name))


def test_every_managing_action_is_in_the_table() -> None:
    managing = {a.name for a in ALL if manages(a)}
    assert managing == set(EXPECTED), (
        "EXPECTED must say what each role may do with every action that manages people, "
        "keys, instances or permissions"
    )
    for name, cases in EXPECTED.items():
        for case in cases:
            assert set(case.expect) == set(ROLES), (name, case.aimed_at)


@pytest.fixture
def world(api: Api) -> World:
    w = World(api)
    for role in ROLES:
        uid, signer = api.new_user(role)
        w.signers[role] = signer
        with api.store.session() as s:
            w.user_ids[role] = identity.find_user(s, api.tid, uid=uid).user_id
    return w


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_each_role_may_do_what_the_table_says(world: World, action: str) -> None:
    seen = {
        (case.aimed_at, role): world.call(role, action, case.params(world, role))
        for case in EXPECTED[action]
        for role in ROLES
    }
    wanted = {
        (case.aimed_at, role): case.expect[role] for case in EXPECTED[action] for role in ROLES
    }
    assert seen == wanted


# ------------------------------------------------------------------ the attacks, one by one


def test_a_security_admin_can_neither_demote_nor_disable_an_admin(world: World) -> None:
    admin_uid, _ = world.user("ADMIN")
    assert world.call("SECURITY_ADMIN", "UpdateUser", {"Uid": admin_uid, "RoleNames": "USER"}) == (
        REFUSED
    )
    assert world.call("SECURITY_ADMIN", "DisableUser", {"Uid": admin_uid}) == REFUSED
    with world.api.store.session() as s:
        still = identity.find_user(s, world.api.tid, uid=admin_uid)
        assert (still.roles, still.state) == ("ADMIN", "NORMAL")


def test_a_dba_cannot_make_itself_the_dba_of_another_instance(world: World) -> None:
    """The DBA of an instance sees its tickets: taking over another instance would have shown
    the DBA the tickets of people who never asked it."""
    inst = world.instance()
    me = world.user_ids["DBA"]
    db_id = _only_database(world, inst.instance_id)
    order_id = _ticket_by_someone_else(world, db_id)
    refused = world.call("DBA", "UpdateInstance", {"InstanceId": inst.instance_id, "DbaId": me})
    assert refused == REFUSED
    with world.api.store.session() as s:
        assert s.get_one(Instance, inst.instance_id).dba_user_id == inst.dba_user_id
    assert world.call("DBA", "GetOrderBaseInfo", {"OrderId": order_id}) == "OrderNotFound"


def test_a_dba_that_registers_an_instance_naming_itself_gets_no_dba_rights(world: World) -> None:
    """The API requires a DBA, so a DBA registering a server names itself: recorded and shown,
    but someone else's tickets there stay theirs until an ADMIN assigns the DBA."""
    host = world.target()
    params = _instance(host, "mine", "DbaId", world.user_ids["DBA"])
    assert world.call("DBA", "AddInstance", params) == DONE
    shown = world.api.call("GetInstance", world.signers["DBA"], Host=host, Port=0).json()
    assert shown["Instance"]["DbaId"] == str(world.user_ids["DBA"])
    instance_id = int(shown["Instance"]["InstanceId"])
    order_id = _ticket_by_someone_else(world, _only_database(world, instance_id))
    assert world.call("DBA", "GetOrderBaseInfo", {"OrderId": order_id}) == "OrderNotFound"
    # an ADMIN assigning the same DBA is someone else's word: now the DBA sees the ticket
    confirm = {"InstanceId": instance_id, "DbaId": world.user_ids["DBA"]}
    assert world.call("ADMIN", "UpdateInstance", confirm) == DONE
    assert world.call("DBA", "GetOrderBaseInfo", {"OrderId": order_id}) == DONE


def _only_database(world: World, instance_id: int) -> int:
    with world.api.store.session() as s:
        (db,) = queries.list_databases(s, world.api.tid, instance_id).items
        return db.db_id


def _ticket_by_someone_else(world: World, db_id: int) -> int:
    uid, _ = world.user()
    with world.api.store.session() as s:
        committer = identity.find_user(s, world.api.tid, uid=uid)
        params = {
            "DbItemList": [{"DbId": db_id}],
            "EstimateAffectRows": 1,
            "SqlType": "TEXT",
            "ExecSQL": "DELETE FROM orders WHERE id = 1",
        }
        return tickets.create_order(s, caller(committer), "DC_COMMON", params, comment="c").order_id
