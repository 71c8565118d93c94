"""The approval world (``tests.approval_world``) on a copy of the SQLite demo target, for the
flow's tests; ``test_facts.py`` builds a lighter world of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from tests.approval_world import World


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets")
