"""``opendms workflow``: approval nodes and templates."""

from __future__ import annotations

from pathlib import Path

from tests.cli_support import assert_one_line_error, opendms


def test_workflows(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    listed = opendms("workflow", "list", data_dir=tmp_path).stdout
    assert "Owner -> DBA -> Admin" in listed
    opendms("workflow", "node", "Release managers", "--approvers", "1", data_dir=tmp_path)
    made = opendms(
        "workflow", "template", "RM then DBA", "--nodes", "Release managers,DBA", data_dir=tmp_path
    ).stdout
    assert "Release managers -> DBA" in made
    bad = opendms(
        "workflow", "template", "Broken", "--nodes", "Nobody", data_dir=tmp_path, ok=False
    )
    assert_one_line_error(bad, "InvalidParameter")
