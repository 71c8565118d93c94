"""``opendms actions`` and ``opendms errors``."""

from __future__ import annotations

import json

from tests.cli_support import opendms


def test_actions_listing_is_derived_from_the_table() -> None:
    from opendms.actions import ALL

    rows = json.loads(opendms("actions", "--json").stdout)
    assert [r["Action"] for r in rows] == [a.name for a in ALL]
    assert all(r["RamAction"] == f"dms:{r['Action']}" for r in rows)
    assert "errors" in opendms("--help").stdout


def test_business_errors_are_listed() -> None:
    out = opendms("errors").stdout
    assert "UserNotFound" in out and "UnknownError" in out
