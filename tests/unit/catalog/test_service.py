from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from opendms.catalog import permissions, service
from opendms.catalog.service import InstanceSpec
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Instance
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target
from tests import local_servers


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path):
    targets = tmp_path / "targets"
    path = ensure_demo_target(targets)
    policy = TargetPolicy("", targets)
    with store.session() as s:
        tid = identity.create_tenant(s, "t").tid
        other = identity.create_tenant(s, "u").tid
        user = identity.register_user(s, None, tid, "5", roles="USER")
        inst = service.register_instance(
            s,
            box,
            policy,
            tid,
            InstanceSpec(
                alias="demo",
                instance_type="SQLite",
                host=str(path),
                env_type="dev",
                database_password="secret-pw",
            ),
            actor=None,
        )
    return store, box, policy, tid, other, user.user_id, inst.instance_id, path


def _tables(s, tid, instance_id):
    (db,) = service.list_databases(s, tid, instance_id).items
    return db, {t.name: t.table_id for t in service.list_tables(s, tid, db.db_id, size=100).items}


def test_register_stores_metadata_and_encrypts_the_password(world) -> None:
    store, box, _policy, tid, _other, _user, instance_id, _path = world
    with store.session() as s:
        inst = service.get_instance(s, tid, instance_id)
        assert inst.instance_type == "sqlite" and inst.port == 0
        assert (
            "secret-pw" not in inst.password_enc and box.decrypt(inst.password_enc) == "secret-pw"
        )
        _db, tables = _tables(s, tid, instance_id)
        assert set(tables) == {"customers", "orders"}
        cols = service.list_columns(s, tid, tables["orders"])
        assert [c.name for c in cols][:2] == ["id", "customer_id"]
        assert {i.index_type for i in service.list_indexes(s, tid, tables["orders"])} == {
            "PRIMARY",
            "NORMAL",
        }


def test_sync_keeps_ids_adds_and_drops_tables(world) -> None:
    store, box, policy, tid, _other, _user, instance_id, path = world
    with store.session() as s:
        db, before = _tables(s, tid, instance_id)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE refunds (id INTEGER PRIMARY KEY)")
        conn.execute("DROP TABLE customers")
    with store.session() as s:
        service.sync_database(s, box, policy, tid, db.db_id)
    with store.session() as s:
        again, after = _tables(s, tid, instance_id)
    assert again.db_id == db.db_id
    assert after["orders"] == before["orders"]
    assert set(after) == {"orders", "refunds"}


def test_other_tenants_see_nothing(world) -> None:
    store, box, policy, tid, other, _user, instance_id, _path = world
    with store.session() as s:
        db, tables = _tables(s, tid, instance_id)
        for call in (
            lambda: service.get_instance(s, other, instance_id),
            lambda: service.list_databases(s, other, instance_id),
            lambda: service.list_tables(s, other, db.db_id),
            lambda: service.list_columns(s, other, tables["orders"]),
            lambda: service.sync_instance(s, box, policy, other, instance_id),
        ):
            with pytest.raises(DmsError):
                call()
        assert service.list_instances(s, other).total == 0


def test_registration_refusals(world, tmp_path: Path) -> None:
    store, box, policy, tid, *_ = world
    outside = ensure_demo_target(tmp_path / "elsewhere")
    cases = [
        (InstanceSpec(instance_type="oracle", host="h"), ErrorCode.UNSUPPORTED_ENGINE),
        (InstanceSpec(instance_type="sqlite", host=str(outside)), ErrorCode.TARGET_NOT_ALLOWED),
        (
            InstanceSpec(instance_type="mysql", host="127.0.0.1", database_user="u"),
            ErrorCode.TARGET_NOT_ALLOWED,
        ),
        (InstanceSpec(instance_type="mysql", host="127.0.0.1"), ErrorCode.INVALID_PARAMETER),
        (
            InstanceSpec(instance_type="sqlite", host="x", env_type="moon"),
            ErrorCode.INVALID_PARAMETER,
        ),
        (
            InstanceSpec(instance_type="sqlite", host=str(tmp_path / "targets" / "none.db")),
            ErrorCode.TARGET_CONNECT_FAILED,
        ),
    ]
    with store.session() as s:
        for spec, code in cases:
            with pytest.raises(DmsError) as info:
                service.register_instance(s, box, policy, tid, spec, actor=None)
            assert info.value.code is code, spec


def test_permissions_grant_expiry_scope_and_revoke(world) -> None:
    store, _box, _policy, tid, _other, user_id, instance_id, _path = world
    with store.session() as s:
        db, _ = _tables(s, tid, instance_id)
        later = datetime.now() + timedelta(days=1)
        table = permissions.Target("TABLE", instance_id, db.db_id, "orders")
        (correct,) = permissions.grant(s, tid, user_id, table, "CORRECT", later)
        assert permissions.holds(s, tid, user_id, db.db_id, "CORRECT", "orders")
        assert not permissions.holds(s, tid, user_id, db.db_id, "CORRECT", "customers")
        assert not permissions.holds(s, tid, user_id, db.db_id, "CORRECT")
        whole = permissions.Target("INSTANCE", instance_id)
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


# ------------------------------------------------------------------ credentials and probes


def test_moving_an_instance_needs_its_password_again(world) -> None:
    """The stored password is only sent where it was given for: a new host, port or user
    needs it typed again."""
    store, box, policy, tid, _other, _user, instance_id, path = world
    copy = path.with_name("copy.db")
    shutil.copyfile(path, copy)
    for change in (
        {"host": str(copy)},
        {"port": 5433},
        {"database_user": "someone-else"},
        {"host": str(copy), "env_type": "test"},
    ):
        with store.session() as s, pytest.raises(DmsError) as info:
            service.update_instance(
                s, box, policy, tid, instance_id, InstanceSpec(**change), actor=None
            )
        assert info.value.code == ErrorCode.INVALID_PARAMETER
        assert "DatabasePassword" in info.value.message
    with store.session() as s:
        inst = service.get_instance(s, tid, instance_id)
        assert (inst.host, inst.port, inst.env_type) == (str(path), 0, "dev")
        # the same address again (as a client that sends every field does) needs nothing
        service.update_instance(
            s, box, policy, tid, instance_id, InstanceSpec(host=f" {path} "), actor=None
        )
    with store.session() as s:
        spec = InstanceSpec(host=str(copy), database_password="typed-again")
        service.update_instance(s, box, policy, tid, instance_id, spec, actor=None)
    with store.session() as s:
        inst = service.get_instance(s, tid, instance_id)
        assert inst.host == str(copy) and box.decrypt(inst.password_enc) == "typed-again"


def test_a_stored_password_never_reaches_another_server(store: Store, box: SecretBox) -> None:
    """Issue 16, finding 6: moving a PostgreSQL instance to a server that asks for the
    password in clear handed it the stored one."""
    policy = TargetPolicy("127.0.0.0/8")
    with store.session() as s:
        tid = identity.create_tenant(s, "t").tid
        inst = Instance(
            tid=tid,
            alias="pg",
            instance_type="postgresql",
            host="127.0.0.1",
            port=5432,
            database_user="app",
            password_enc=box.encrypt("stored-secret"),
        )
        s.add(inst)
        s.flush()
        instance_id = inst.instance_id
    received: list[bytes] = []
    with local_servers.raw(local_servers.postgres_asking_cleartext(received)) as port:
        with store.session() as s, pytest.raises(DmsError) as refused:
            service.update_instance(
                s, box, policy, tid, instance_id, InstanceSpec(port=port), actor=None
            )
        assert "DatabasePassword" in refused.value.message
        with store.session() as s, pytest.raises(DmsError) as tried:
            spec = InstanceSpec(port=port, database_password="typed-now")
            service.update_instance(s, box, policy, tid, instance_id, spec, actor=None)
        assert tried.value.code == ErrorCode.TARGET_AUTH_FAILED
    assert received == [b"typed-now"]
    with store.session() as s:
        assert service.get_instance(s, tid, instance_id).port == 5432


def _register(store: Store, box: SecretBox, engine: str, port: int) -> DmsError:
    """Registering ``engine`` at ``port`` fails; how. A connection test there gives up after
    2 s to connect and 1 s waiting for an answer."""
    probed = TargetPolicy("127.0.0.0/8", test_connect_seconds=2, test_read_seconds=1)
    with store.session() as s:
        tid = identity.create_tenant(s, f"probe-{engine}-{port}").tid
    spec = InstanceSpec(
        alias="x", instance_type=engine, host="127.0.0.1", port=port, database_user="root"
    )
    with store.session() as s, pytest.raises(DmsError) as info:
        service.register_instance(s, box, probed, tid, spec, actor=None)
    return info.value


@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_a_port_that_says_nothing_fails_the_test_within_seconds(
    store: Store, box: SecretBox, engine: str
) -> None:
    """Issue 16, finding 5: a "mysql" instance at a Redis port (which waits for the client
    to speak first) held a thread for 300 s."""
    stop = threading.Event()
    try:
        with local_servers.raw(local_servers.silent(stop)) as port:
            error = _register(store, box, engine, port)
    finally:
        stop.set()
    assert error.code == ErrorCode.TARGET_CONNECT_FAILED
    assert f"cannot connect to {engine} at 127.0.0.1:{port}" in error.message
    if engine == "mysql":
        assert "no answer within 1 s; is a mysql server listening there?" in error.message
    else:
        assert "timeout" in error.message


@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_a_port_that_speaks_something_else_fails_clearly(
    store: Store, box: SecretBox, engine: str
) -> None:
    with local_servers.raw(local_servers.garbage) as port:
        error = _register(store, box, engine, port)
    assert error.code == ErrorCode.TARGET_CONNECT_FAILED
    assert f"cannot connect to {engine} at 127.0.0.1:{port}" in error.message
    if engine == "mysql":
        assert "does not speak the MySQL protocol" in error.message
