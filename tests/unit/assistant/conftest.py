"""The approval world (tests/approval_world.py) on the SQLite demo target, with a helper
that grants QUERY on single tables."""

from __future__ import annotations

from datetime import timedelta

from opendms.assistant.scope import Scope, scope_of
from opendms.catalog import permissions
from opendms.store.models import utcnow
from tests.approval_world import World


def grant_tables(world: World, who: str, *tables: str) -> None:
    """QUERY on ``tables`` of the world's database, and nothing else."""
    with world.store.session() as s:
        for table in tables:
            permissions.grant(
                s,
                world.tid,
                world.id(who),
                permissions.GrantTarget("TABLE", world.instance_id, world.db_id, table),
                "QUERY",
                utcnow() + timedelta(days=1),
            )


def scope(world: World, who: str) -> Scope:
    with world.store.session() as s:
        found = scope_of(s, world.as_(who), world.db_id)
        s.expunge_all()
        return found
