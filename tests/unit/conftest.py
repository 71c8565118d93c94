"""Fixtures many unit packages share: a tenant, and the approval world (tests/approval_world.py)
on a copy of the SQLite demo target.

A module that needs the world set up further overrides ``world`` and asks for this one
(``def world(world: World) -> World``). tests/unit/catalog and tests/unit/tickets/test_service.py
keep worlds of their own, smaller ones of another shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendms.identity import service as identity
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from tests.approval_world import World


@pytest.fixture
def tid(store: Store) -> int:
    """A tenant of its own, with nobody in it."""
    with store.session() as s:
        return identity.create_tenant(s, "t").tid


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets")
