"""The ``site`` fixture of the command-line tests (tests/unit/cli/site.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.cli.site import Site, make_site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)
