"""Registering and changing instances: what is checked, what is stored, and where a stored
password may go."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opendms.catalog import instances, queries
from opendms.catalog.instances import InstanceSpec
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Instance
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target
from tests import local_servers
from tests.unit.catalog.conftest import tables_of


def test_register_stores_metadata_and_encrypts_the_password(world) -> None:
    store, box, _policy, tid, _other, _user, instance_id, _path = world
    with store.session() as s:
        inst = queries.get_instance(s, tid, instance_id)
        assert inst.instance_type == "sqlite" and inst.port == 0
        assert (
            "secret-pw" not in inst.password_enc and box.decrypt(inst.password_enc) == "secret-pw"
        )
        _db, tables = tables_of(s, tid, instance_id)
        assert set(tables) == {"customers", "orders"}
        cols = queries.list_columns(s, tid, tables["orders"])
        assert [c.name for c in cols][:2] == ["id", "customer_id"]
        assert {i.index_type for i in queries.list_indexes(s, tid, tables["orders"])} == {
            "PRIMARY",
            "NORMAL",
        }


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
                instances.register_instance(s, box, policy, tid, spec, actor=None)
            assert info.value.code is code, spec


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
            instances.update_instance(
                s, box, policy, tid, instance_id, InstanceSpec(**change), actor=None
            )
        assert info.value.code == ErrorCode.INVALID_PARAMETER
        assert "DatabasePassword" in info.value.message
    with store.session() as s:
        inst = queries.get_instance(s, tid, instance_id)
        assert (inst.host, inst.port, inst.env_type) == (str(path), 0, "dev")
        # the same address again (as a client that sends every field does) needs nothing
        instances.update_instance(
            s, box, policy, tid, instance_id, InstanceSpec(host=f" {path} "), actor=None
        )
    with store.session() as s:
        spec = InstanceSpec(host=str(copy), database_password="typed-again")
        instances.update_instance(s, box, policy, tid, instance_id, spec, actor=None)
    with store.session() as s:
        inst = queries.get_instance(s, tid, instance_id)
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
            instances.update_instance(
                s, box, policy, tid, instance_id, InstanceSpec(port=port), actor=None
            )
        assert "DatabasePassword" in refused.value.message
        with store.session() as s, pytest.raises(DmsError) as tried:
            spec = InstanceSpec(port=port, database_password="typed-now")
            instances.update_instance(s, box, policy, tid, instance_id, spec, actor=None)
        assert tried.value.code == ErrorCode.TARGET_AUTH_FAILED
    assert received == [b"typed-now"]
    with store.session() as s:
        assert queries.get_instance(s, tid, instance_id).port == 5432
