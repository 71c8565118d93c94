"""``opendms instance``: registering (and where it connects), listing, syncing, the DBA the
operator assigns, and the throttle."""

from __future__ import annotations

import json
from pathlib import Path

from opendms import cli
from opendms.catalog import dba
from opendms.store.db import Store
from opendms.store.models import Instance
from tests.cli_support import assert_one_line_error, opendms, result_is_one_line_error
from tests.unit.cli.site import Site


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


def test_instance_register_says_where_it_connects_on_stderr(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    closed = opendms(
        "instance",
        "register",
        "--type",
        "mysql",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        data_dir=tmp_path,
        ok=False,
    )
    assert closed.returncode == cli.EXIT_FAILED
    first, *rest = closed.stderr.splitlines()
    assert first == "connecting to mysql at 127.0.0.1:1 (gives up after 5 s)…"
    assert len(rest) == 1 and rest[0].startswith("error: ")
    assert closed.stdout == ""


def test_an_instances_throttle_is_set_and_checked(site: Site) -> None:
    shown = site.run("instance", "throttle", str(site.instance_id), "--max-running", "8").stdout
    assert json.loads(shown) == {"max_running": 8}
    shown = site.run("instance", "throttle", str(site.instance_id), "--max-lag", "2.5").stdout
    assert json.loads(shown) == {"max_running": 8, "max_lag_seconds": 2.5}
    with site.store().session() as s:
        inst = s.get(Instance, site.instance_id)
        assert inst is not None and inst.throttle["max_lag_seconds"] == 2.5

    refused = site.run(
        "instance", "throttle", str(site.instance_id), "--max-running", "0", ok=False
    )
    assert result_is_one_line_error(refused, "InvalidParameter")
    itself = site.run(
        "instance", "throttle", str(site.instance_id), "--replica", str(site.instance_id), ok=False
    )
    assert result_is_one_line_error(itself, "InvalidParameter")
    unknown = site.run("instance", "throttle", str(site.instance_id), "--replica", "999", ok=False)
    assert result_is_one_line_error(unknown, "InstanceNotFound")
