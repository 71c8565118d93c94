"""The README's production block, run as written on this machine's PostgreSQL and Redis: two
API processes and two workers on one store and broker. A ticket filed through one API is
read and approved through the other and run by a worker; SIGTERM to the block's processes
then stops each the graceful way, and none is left.

What is this run's own, so that runs never meet: the database's name (the block creates it,
the test drops it) and the two ports, put in place of the README's; the data directory and
the prefix of the broker's queues, which the block leaves to the environment
(OPENDMS_DATA_DIR, OPENDMS_BROKER_QUEUE)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import PG_ADMIN, require_service
from tests.e2e.conftest import (
    OPENDMS,
    Creds,
    Dms,
    Server,
    _child_env,
    file_change,
    free_port,
    prechecked,
    register_target,
    target_database,
    wait_for,
)
from tests.e2e.readme_blocks import block

# one cluster on the shared PostgreSQL at a time (tests/e2e/scale/cluster.py): two at once
# come near its 100 connections
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("shared-store-cluster")]

PRODUCTION = block("## Production", "bash")
README_PORTS = ("8081", "8082")
REDIS = "redis://127.0.0.1:6379/0"
DEADLINE = 180.0  # for each wait: starting, a precheck, an execution, stopping
# What the test adds after the block: the shell writes down its settings (the block's
# exports, for the operator's commands the test runs next; renamed into place once whole),
# then waits for the processes it started, deaf to the SIGTERM meant for them, so that it
# reaps each one as it ends.
EPILOGUE = '\nenv -0 > block.env.part\nmv block.env.part block.env\ntrap "" TERM\nwait\n'


def this_run(text: str, database: str, ports: tuple[int, int]) -> str:
    """The block with this run's database name and ports in place of the README's. Each must
    be found where the test expects it: a README edit that moves one fails here, rather than
    running against a database or port another run may use."""
    text, created = re.subn(r"^(createdb .*) opendms\b", rf"\1 {database}", text, flags=re.M)
    text, named = re.subn(r"5432/opendms\b", f"5432/{database}", text)
    assert (created, named) == (1, 1), text
    for readme_port, port in zip(README_PORTS, ports, strict=True):
        assert text.count(f"--port {readme_port}") == 1, text
        text = text.replace(readme_port, str(port))
    return text


@dataclass
class BlockServer(Server):
    """One API process the block started; the operator's CLI runs with the block's settings
    (its store and master key), as a command typed in the block's shell would."""

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [OPENDMS, *args],
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"opendms {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout


def api(
    cwd: Path, port: int, shell: subprocess.Popen[bytes], key: Creds, settings: dict[str, str]
) -> BlockServer:
    """The API process the block started on ``port``."""
    log = cwd / f"api-{port}.log"
    return BlockServer(
        data_dir=cwd / "data",
        port=port,
        proc=shell,
        stderr_path=log,
        stdout_path=log,
        init={},
        admin=key,
        env=settings,
    )


def group_members(pgid: int) -> list[str]:
    """The processes of process group ``pgid`` (their command lines)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(fields[2]) == pgid:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


@dataclass
class Shell:
    """The block's shell; ``left``: the processes of its group still there once it ended."""

    proc: subprocess.Popen[bytes]
    left: list[str] = field(default_factory=list)


@contextlib.contextmanager
def shell_running(script: str, cwd: Path, env: dict[str, str]) -> Iterator[Shell]:
    """``script`` in ``bash -e`` in a process group of its own (every background process of
    it is in the group); afterwards SIGTERM to the group, as a service manager stops it, and
    once the shell ended (or the deadline passed) what is left of the group is noted, then
    killed."""
    with (cwd / "shell.log").open("wb") as log:
        shell = Shell(
            subprocess.Popen(
                ["bash", "-e", "-o", "pipefail", "-c", script],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    group = shell.proc.pid
    try:
        yield shell
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            shell.proc.wait(timeout=DEADLINE)
        shell.left = group_members(group)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        shell.proc.wait()


def said(cwd: Path) -> str:
    """Every log of the run: the shell's and each process's."""
    return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')}" for p in cwd.glob("*.log"))


def block_done(shell: subprocess.Popen[bytes], cwd: Path) -> dict[str, str]:
    """The shell's settings once the block has run (it wrote them down): init done and the
    four processes started."""
    written = cwd / "block.env"

    def done() -> bool:
        assert shell.poll() is None, f"the block failed (exit {shell.returncode}):\n{said(cwd)}"
        return written.is_file()

    wait_for("the block to run", done, timeout=DEADLINE)
    items = written.read_bytes().decode().split("\0")
    return dict(item.split("=", 1) for item in items if "=" in item)


def administrator(cwd: Path) -> Creds:
    """The key `opendms init --json` printed in the block."""
    for line in (cwd / "shell.log").read_text().splitlines():
        if line.startswith("{"):
            made = json.loads(line)
            return Creds(
                int(made["Tid"]), made["Uid"], made["AccessKeyId"], made["AccessKeySecret"]
            )
    raise AssertionError(f"no key printed by opendms init --json:\n{said(cwd)}")


def answering(api: Dms, shell: subprocess.Popen[bytes], cwd: Path) -> None:
    """Wait until ``api`` answers a signed call (its process still starting until then)."""

    def answers() -> bool:
        assert shell.poll() is None, f"the shell ended (exit {shell.returncode}):\n{said(cwd)}"
        try:
            return bool(api.call("GetUserActiveTenant").success)
        except Exception:  # not listening yet
            time.sleep(0.2)
            return False

    wait_for(f"the API on port {api.server.port} to answer", answers, timeout=DEADLINE)


@contextlib.contextmanager
def dropped_afterwards(database: str, queue: str) -> Iterator[None]:
    """The database the block creates and the broker's keys of this run's queues, removed
    afterwards."""
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        require_service("Redis", str(exc))
    try:
        yield
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        with redis.Redis.from_url(REDIS) as broker:
            for key in broker.scan_iter(match=f"*{queue}*"):
                broker.delete(key)


def test_the_production_block_works_as_written(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:12]
    database, queue = f"opendms_readme_{run}", f"opendms-readme-{run}"
    ports = (free_port(), free_port())
    while ports[1] == ports[0]:
        ports = (ports[0], free_port())
    env = _child_env(
        {
            "OPENDMS_DATA_DIR": str(tmp_path / "data"),
            "OPENDMS_BROKER_QUEUE": queue,
            "PATH": f"{Path(OPENDMS).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    script = this_run(PRODUCTION, database, ports) + EPILOGUE
    setup = (
        "CREATE TABLE orders (id INT PRIMARY KEY, status TEXT NOT NULL)",
        "INSERT INTO orders VALUES (7, 'new'), (8, 'new')",
    )
    with (
        target_database("postgresql", *setup) as (name, query, where),
        dropped_afterwards(database, queue),
    ):
        with shell_running(script, tmp_path, env) as shell:
            settings = block_done(shell.proc, tmp_path)
            key = administrator(tmp_path)
            a, b = (
                Dms(api(tmp_path, port, shell.proc, key, settings), key, "v3") for port in ports
            )
            answering(a, shell.proc, tmp_path)
            answering(b, shell.proc, tmp_path)

            db_id = register_target(a.server, a, name, where, "readme-production", "DC_COMMON")
            order_id = file_change(a, db_id, "UPDATE orders SET status = 'paid' WHERE id = 7")
            # read through the other API; the precheck ran on a worker (no API runs jobs)
            assert prechecked(b, order_id, DEADLINE).status == "precheck_success", b.last_raw
            assert b.call("SubmitOrderApproval", order_id=order_id).success is True, b.last_raw
            executed = a.call("ExecuteDataCorrect", order_id=order_id, action_detail={})
            assert executed.success is True, a.last_raw
            wait_for(
                f"ticket {order_id} to succeed",
                lambda: (
                    b.call("GetOrderBaseInfo", order_id=order_id).order_base_info.status_code
                    == "success"
                ),
                timeout=DEADLINE,
            )
            assert query("SELECT id, status FROM orders ORDER BY id") == [(7, "paid"), (8, "new")]

        # the shell reaped every process it started, each stopped by SIGTERM its own way
        assert shell.proc.returncode == 0, said(tmp_path)
        assert shell.left == [], said(tmp_path)
        logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
        for port in ports:
            assert "Finished server process" in logs[f"api-{port}.log"], said(tmp_path)
            assert "Traceback" not in logs[f"api-{port}.log"], said(tmp_path)
        workers = [logs["worker-1.log"], logs["worker-2.log"]]
        assert all("Warm shutdown" in w for w in workers), said(tmp_path)
        # the precheck and the execution ran in the workers
        ran = sum(len(re.findall(r"Task opendms\.run_job\[\S+\] succeeded", w)) for w in workers)
        assert ran >= 2, said(tmp_path)
