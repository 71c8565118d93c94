"""The command line: its output and exit code, in this process (tests/cli_support.py),
and as a real process where the wiring itself is what is checked."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opendms.catalog import dba
from opendms.store.db import Store
from opendms.store.models import Instance
from tests.cli_support import (
    assert_one_line_error,
    opendms,
    opendms_process,
)


def test_init_contract(tmp_path: Path) -> None:
    first = json.loads(opendms("init", "--json", data_dir=tmp_path).stdout)
    assert set(first) == {"Tid", "Uid", "UserName", "AccessKeyId", "AccessKeySecret", "Endpoint"}
    assert first["Endpoint"] == "127.0.0.1:8080"
    second = json.loads(opendms("init", "--json", data_dir=tmp_path).stdout)
    assert (second["Tid"], second["Uid"], second["UserName"]) == (
        first["Tid"],
        first["Uid"],
        first["UserName"],
    )
    assert second["AccessKeyId"] != first["AccessKeyId"]
    # the secret is on screen once and never on disk in clear
    for f in tmp_path.iterdir():
        assert first["AccessKeySecret"].encode() not in f.read_bytes()


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


def test_tenants(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    assert "Tid 2" in opendms("tenant", "create", "second", data_dir=tmp_path).stdout
    made = json.loads(opendms("user", "create", "--tid", "2", data_dir=tmp_path).stdout)
    assert made["Tid"] == 2
    missing = opendms("user", "list", "--tid", "99", data_dir=tmp_path, ok=False)
    assert_one_line_error(missing, "TenantNotFound")


def test_actions_listing_is_derived_from_the_table() -> None:
    from opendms.actions import ALL

    rows = json.loads(opendms("actions", "--json").stdout)
    assert [r["Action"] for r in rows] == [a.name for a in ALL]
    assert all(r["RamAction"] == f"dms:{r['Action']}" for r in rows)
    assert "errors" in opendms("--help").stdout


def test_business_errors_are_listed() -> None:
    out = opendms("errors").stdout
    assert "UserNotFound" in out and "UnknownError" in out


def test_unreachable_database(tmp_path: Path) -> None:
    result = opendms_process(
        "user",
        "list",
        "--database-url",
        "postgresql+psycopg://x:pw@127.0.0.1:1/none",
        data_dir=tmp_path,
        ok=False,
    )
    assert_one_line_error(result, "cannot open the metadata store")
    assert "pw@" not in result.stderr


def _modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (itself as ".") and its permission bits."""
    found = {".": stat.S_IMODE(root.lstat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _owner_only(root: Path) -> bool:
    found = _modes(root)
    return all(m == (0o700 if (root / p).is_dir() else 0o600) for p, m in found.items())


def test_init_makes_the_data_dir_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    opendms("init", "--json", data_dir=data)
    assert {".", "opendms.db", "master.key"} <= set(_modes(data))
    assert _owner_only(data), _modes(data)


def _loosen(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_any_command_repairs_loose_modes_and_says_so_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    opendms("init", "--json", data_dir=data)
    _loosen(data)
    repaired = opendms("tenant", "list", data_dir=data)
    assert repaired.stderr.startswith("warning: made 3 paths owner-only"), repaired.stderr
    assert str(data / "master.key") in repaired.stderr
    assert _owner_only(data), _modes(data)
    assert opendms("tenant", "list", data_dir=data).stderr == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_repairs_loose_modes_and_its_store_files_are_owner_only(tmp_path: Path) -> None:
    """The real server: its data directory as it runs, the store's -wal and -shm included."""
    data = tmp_path / "data"
    opendms("init", "--json", data_dir=data)
    (data / "files").mkdir()
    (data / "files" / "left-by-an-old-version").write_bytes(b"x")
    _loosen(data)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENDMS_")}
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opendms", "serve", "--port", str(port), "--data-dir", data],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**env, "COLUMNS": "200"},
        )
    try:
        deadline = time.monotonic() + 60
        while not (data / "opendms.db-shm").exists() or not _listening(port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        found = _modes(data)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert {"opendms.db-wal", "opendms.db-shm", "files/left-by-an-old-version"} <= set(found)
    assert all(m == (0o700 if (data / p).is_dir() else 0o600) for p, m in found.items()), found
    assert log.read_text().count("owner-only") == 1


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_unwritable_data_dir(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/opendms-cannot-write-here")
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    result = opendms("init", data_dir=target, ok=False)
    assert_one_line_error(result, "not writable")


def test_bad_flag_gets_usage_not_traceback() -> None:
    result = opendms_process("serve", "--no-such-flag", ok=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "No such option" in result.stderr


@pytest.mark.parametrize("group", ["user", "key", "policy", "tenant"])
def test_help_everywhere(group: str) -> None:
    assert "Usage" in opendms(group, "--help").stdout


def test_instances(tmp_path: Path) -> None:
    from opendms.targets.demo import ensure_demo_target

    data = tmp_path / "data"  # "elsewhere" is outside it
    opendms("init", "--json", data_dir=data)
    target = ensure_demo_target(data / "targets")
    made = json.loads(
        opendms(
            "instance",
            "register",
            "--type",
            "sqlite",
            "--host",
            str(target),
            "--alias",
            "demo",
            "--env",
            "dev",
            data_dir=data,
        ).stdout
    )
    assert made["Databases"] == 1 and made["Version"].startswith("SQLite")
    listed = opendms("instance", "list", data_dir=data).stdout
    assert "demo" in listed and "sqlite" in listed
    assert "synced" in opendms("instance", "sync", str(made["InstanceId"]), data_dir=data).stdout
    outside = ensure_demo_target(tmp_path / "elsewhere")
    refused = opendms(
        "instance",
        "register",
        "--type",
        "sqlite",
        "--host",
        str(outside),
        data_dir=data,
        ok=False,
    )
    assert_one_line_error(refused, "TargetHostNotAllowed")
    missing = opendms("instance", "sync", "99", data_dir=data, ok=False)
    assert_one_line_error(missing, "InstanceNotFound")

    # the operator assigns a DBA, who then holds a DBA's rights over the instance's tickets
    dora = json.loads(opendms("user", "create", "--roles", "DBA", data_dir=data).stdout)
    instance_id = str(made["InstanceId"])
    assigned = opendms("instance", "dba", instance_id, str(dora["UserId"]), data_dir=data)
    assert f"DBA is user {dora['UserId']}" in assigned.stdout
    st = Store(f"sqlite:///{data / 'opendms.db'}")
    try:
        with st.session() as s:
            assert dba.dba_of(s.get_one(Instance, made["InstanceId"])) == dora["UserId"]
    finally:
        st.dispose()
    nobody = opendms("instance", "dba", instance_id, "9999", data_dir=data, ok=False)
    assert_one_line_error(nobody, "UserNotFound")


def test_orders_and_uploads(tmp_path: Path) -> None:
    from opendms.targets.demo import ensure_demo_target

    opendms("init", "--json", data_dir=tmp_path)
    target = ensure_demo_target(tmp_path / "targets")
    opendms("instance", "register", "--type", "sqlite", "--host", str(target), data_dir=tmp_path)
    sql_file = tmp_path / "fix.sql"
    sql_file.write_text("UPDATE orders SET status = 'paid' WHERE id = 1;\n")
    up = json.loads(opendms("upload", str(sql_file), data_dir=tmp_path).stdout)
    assert up["AttachmentKey"].startswith("att-") and up["Size"] == sql_file.stat().st_size
    made = json.loads(
        opendms(
            "order",
            "create",
            "--type",
            "DC_COMMON",
            "--comment",
            "fix",
            "--db",
            "1",
            "--sql",
            "DELETE FROM orders WHERE id = 2",
            "--rows",
            "1",
            "--attachment",
            up["AttachmentKey"],
            data_dir=tmp_path,
        ).stdout
    )
    assert made["StatusCode"] == "new"
    param = json.dumps(
        {
            "DbItemList": [{"DbId": 1}],
            "SqlType": "ATTACHMENT",
            "AttachmentName": up["AttachmentKey"],
            "EstimateAffectRows": 1,
        }
    )
    second = json.loads(
        opendms(
            "order",
            "create",
            "--type",
            "DC_COMMON",
            "--comment",
            "file",
            "--param",
            param,
            data_dir=tmp_path,
        ).stdout
    )
    listed = opendms("order", "list", data_dir=tmp_path).stdout
    assert "2 tickets" in listed and "DC_COMMON" in listed
    shown = json.loads(opendms("order", "show", str(made["OrderId"]), data_dir=tmp_path).stdout)
    assert shown["Param"]["ExecSQL"] == "DELETE FROM orders WHERE id = 2"
    assert (
        "closed"
        in opendms(
            "order", "close", str(second["OrderId"]), "--reason", "dup", data_dir=tmp_path
        ).stdout
    )
    bad = opendms(
        "order",
        "create",
        "--type",
        "DC_COMMON",
        "--comment",
        "x",
        "--param",
        '{"SqlType": "TEXT"}',
        data_dir=tmp_path,
        ok=False,
    )
    assert_one_line_error(bad, "InvalidParameter")
    missing = opendms("order", "show", "99", data_dir=tmp_path, ok=False)
    assert_one_line_error(missing, "OrderNotFound")


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
