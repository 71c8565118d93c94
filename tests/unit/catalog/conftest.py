"""A tenant with the demo SQLite target registered as an instance, and a second tenant."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendms.catalog import instances, queries
from opendms.catalog.instances import InstanceSpec
from opendms.identity import service as identity
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path):
    targets = tmp_path / "targets"
    path = ensure_demo_target(targets)
    policy = TargetPolicy("", targets)
    with store.session() as s:
        tid = identity.create_tenant(s, "t").tid
        other = identity.create_tenant(s, "u").tid
        user = identity.register_user(s, None, tid, "5", roles="USER")
        inst = instances.register_instance(
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


def tables_of(s, tid, instance_id):
    """The demo database and its tables' ids by name."""
    (db,) = queries.list_databases(s, tid, instance_id).items
    return db, {t.name: t.table_id for t in queries.list_tables(s, tid, db.db_id, size=100).items}
