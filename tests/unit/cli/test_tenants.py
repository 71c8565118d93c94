"""``opendms tenant``, and ``--tid`` choosing one."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_support import assert_one_line_error, opendms


def test_tenants(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    assert "Tid 2" in opendms("tenant", "create", "second", data_dir=tmp_path).stdout
    made = json.loads(opendms("user", "create", "--tid", "2", data_dir=tmp_path).stdout)
    assert made["Tid"] == 2
    missing = opendms("user", "list", "--tid", "99", data_dir=tmp_path, ok=False)
    assert_one_line_error(missing, "TenantNotFound")
