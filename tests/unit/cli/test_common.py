"""What every command shares (opendms.cli.common): exit codes a script can tell apart,
read-only commands that create nothing, one-line errors, repaired modes, usage errors."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from opendms import cli
from opendms.cli.common import AsUser, InTenant, OrderArg, shared_options
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


def test_an_unknown_order_is_a_refusal(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    missing = opendms("order", "show", "99", data_dir=tmp_path, ok=False)
    assert missing.returncode == cli.EXIT_FAILED
    assert_one_line_error(missing, "OrderNotFound")


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


def test_help_names_the_exit_codes_and_serve_shows_its_defaults() -> None:
    assert "Exit codes: 0 done; 1 refused or failed" in opendms("--help").stdout
    shown = " ".join(opendms("serve", "--help").stdout.split())
    assert "later" not in shown
    assert "[default: (8080)]" in shown and "[default: (127.0.0.1)]" in shown
    assert "job runner" in shown


def test_shared_options_come_after_a_commands_own_and_build_who_acts() -> None:
    seen: list[AsUser] = []

    @shared_options
    def command(order_id: OrderArg, *, who: AsUser) -> None:
        seen.append(who)

    shown = list(inspect.signature(command).parameters)
    assert shown == ["order_id", "uid", "tid", "data_dir", "database_url"]
    command(order_id=7, uid="ann", tid=2, data_dir=Path("/d"), database_url=None)
    assert seen == [AsUser(data_dir=Path("/d"), database_url=None, tid=2, uid="ann")]


def test_shared_options_refuse_a_command_that_takes_no_place_or_shadows_one() -> None:
    def no_place(order_id: OrderArg) -> None:
        pass

    def shadows(tid: OrderArg, *, at: InTenant) -> None:
        pass

    with pytest.raises(TypeError, match="the last parameter is not a Place"):
        shared_options(no_place)
    with pytest.raises(TypeError, match="tid is a shared option"):
        shared_options(shadows)
