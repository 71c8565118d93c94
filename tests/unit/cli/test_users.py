"""``opendms user``, ``key`` and ``policy``: a user made with a key, keys revoked, policies
attached and shown."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_support import assert_one_line_error, opendms


def test_users_keys_and_policies(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    made = json.loads(
        opendms(
            "user",
            "create",
            "--uid",
            "4242",
            "--nick",
            "ann",
            "--roles",
            "DBA",
            "--with-key",
            data_dir=tmp_path,
        ).stdout
    )
    assert made["Uid"] == "4242"
    assert made["AccessKeyId"].startswith("ODMS")
    listed = opendms("user", "list", data_dir=tmp_path).stdout
    assert "4242" in listed and "DBA" in listed
    opendms("user", "disable", "4242", data_dir=tmp_path)
    assert "DISABLE" in opendms("user", "list", data_dir=tmp_path).stdout

    key = json.loads(opendms("key", "create", "4242", data_dir=tmp_path).stdout)
    assert key["AccessKeyId"] in opendms("key", "list", "--uid", "4242", data_dir=tmp_path).stdout
    opendms("key", "revoke", key["AccessKeyId"], data_dir=tmp_path)
    assert "Inactive" in opendms("key", "list", data_dir=tmp_path).stdout

    policy = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:List*"}]}'
    opendms("policy", "attach", "4242", policy, "--name", "no-list", data_dir=tmp_path)
    shown = json.loads(opendms("policy", "show", "4242", data_dir=tmp_path).stdout)
    assert shown["no-list"]["Statement"][0]["Effect"] == "Deny"
    assert "role:DBA" in shown

    bad = opendms("policy", "attach", "4242", "{}", data_dir=tmp_path, ok=False)
    assert_one_line_error(bad, "InvalidPolicyDocument")
