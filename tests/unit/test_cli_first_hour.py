"""Issue 17's first hour on the command line: exit codes a script can tell apart, read-only
commands that create nothing, the endpoint `init` reports, and `serve --help`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opendms import cli
from tests.cli_support import assert_one_line_error, opendms, opendms_process

READ_ONLY = [
    ("order", "list"),
    ("order", "show", "1"),
    ("instance", "list"),
    ("user", "list"),
    ("tenant", "list"),
    ("key", "list"),
]


@pytest.mark.parametrize("command", READ_ONLY, ids=[" ".join(c) for c in READ_ONLY])
def test_a_read_only_command_on_no_data_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    result = opendms(*command, data_dir=data, ok=False)
    assert result.returncode == cli.EXIT_NO_STORE
    assert_one_line_error(result, f"no OpenDMS data in {data}")
    assert "run `opendms init` or `opendms serve` first" in result.stderr
    assert not data.exists()
    data.mkdir()
    assert opendms(*command, data_dir=data, ok=False).returncode == cli.EXIT_NO_STORE
    assert list(data.iterdir()) == []


def test_a_store_without_its_master_key_is_not_given_a_new_one(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    (tmp_path / "master.key").unlink()
    result = opendms("user", "list", data_dir=tmp_path, ok=False)
    assert result.returncode == cli.EXIT_NO_STORE
    assert_one_line_error(result, "no master key")
    assert not (tmp_path / "master.key").exists()


def test_init_reports_the_endpoint_serve_would_listen_on(tmp_path: Path) -> None:
    made = json.loads(opendms("init", "--json", "--port", "9000", data_dir=tmp_path).stdout)
    assert made["Endpoint"] == "127.0.0.1:9000"
    made = json.loads(
        opendms("init", "--json", "--host", "0.0.0.0", "--port", "9001", data_dir=tmp_path).stdout
    )
    assert made["Endpoint"] == "127.0.0.1:9001"  # what a client on this machine dials


def test_help_names_the_exit_codes_and_serve_shows_its_defaults() -> None:
    assert "Exit codes: 0 done; 1 refused or failed" in opendms("--help").stdout
    shown = " ".join(opendms("serve", "--help").stdout.split())
    assert "later" not in shown
    assert "[default: (8080)]" in shown and "[default: (127.0.0.1)]" in shown
    assert "job runner" in shown


def test_an_unknown_order_is_a_refusal(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    missing = opendms("order", "show", "99", data_dir=tmp_path, ok=False)
    assert missing.returncode == cli.EXIT_FAILED
    assert_one_line_error(missing, "OrderNotFound")


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


def test_init_reads_the_port_from_the_environment_as_serve_does(tmp_path: Path) -> None:
    made = opendms_process("init", "--json", data_dir=tmp_path, env={"OPENDMS_PORT": "9002"})
    assert json.loads(made.stdout)["Endpoint"] == "127.0.0.1:9002"
