"""``opendms init`` and ``opendms serve``: the key init prints, the endpoint it reports,
and the data directory both keep owner-only."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_support import opendms, opendms_process


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


def test_init_reports_the_endpoint_serve_would_listen_on(tmp_path: Path) -> None:
    made = json.loads(opendms("init", "--json", "--port", "9000", data_dir=tmp_path).stdout)
    assert made["Endpoint"] == "127.0.0.1:9000"
    made = json.loads(
        opendms("init", "--json", "--host", "0.0.0.0", "--port", "9001", data_dir=tmp_path).stdout
    )
    assert made["Endpoint"] == "127.0.0.1:9001"  # what a client on this machine dials


def test_init_reads_the_port_from_the_environment_as_serve_does(tmp_path: Path) -> None:
    made = opendms_process("init", "--json", data_dir=tmp_path, env={"OPENDMS_PORT": "9002"})
    assert json.loads(made.stdout)["Endpoint"] == "127.0.0.1:9002"


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
