"""A scaled-out OpenDMS on this machine, for the scale and fault tests: API processes
(`opendms serve`) and Celery workers (`opendms worker`) on one PostgreSQL store and one
broker (Redis or RabbitMQ), as the README's production section sets them up.

Every process has a data directory of its own, as it would on a machine of its own: the
master key is the same file in each (what configuration management would put there) and
uploaded files live in one shared directory (``OPENDMS_FILES_DIR``). The broker's queues
are named for the test (``OPENDMS_BROKER_QUEUE``) and deleted at the end, so tests running
side by side on one broker never take each other's messages.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest
from kombu import Connection

from tests.cli_support import opendms
from tests.conftest import _new_pg_database, require_service
from tests.e2e.conftest import (
    OPENDMS,
    Creds,
    Server,
    _child_env,
    free_port,
    wait_for,
    wait_until_listening,
)

Broker = Literal["redis", "amqp"]
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
STOP_SECONDS = 30.0


def store_url(name: str, port: int = 5432) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"


def broker_url(kind: Broker) -> str:
    return REDIS_URL if kind == "redis" else AMQP_URL


def require_broker(url: str) -> None:
    """Fail in CI, skip elsewhere, when the broker does not answer."""
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        require_service(url.split(":", 1)[0], f"{type(exc).__name__}: {exc}")


@dataclass
class ClusterApi(Server):
    """One API process; its CLI reaches the shared store (``--database-url``)."""

    store_url: str = ""

    def cli(self, *args: str) -> str:
        done = opendms(*args, "--database-url", self.store_url, data_dir=self.data_dir, ok=False)
        if done.returncode != 0:
            pytest.fail(
                f"opendms {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
            )
        return done.stdout


@dataclass
class Worker:
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def start_again(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=out, env=self.env, cwd=self.data_dir.parent
            )


@dataclass
class Cluster:
    root: Path
    store_url: str
    broker_url: str
    queue: str
    env: dict[str, str]  # every process's OPENDMS_* settings but its data directory
    init: dict[str, Any]
    admin: Creds
    apis: list[ClusterApi] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def _data_dir(self, name: str) -> Path:
        """A process's own data directory, holding the installation's master key."""
        path = self.root / name
        path.mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(self.root / "key" / "master.key", path / "master.key")
        return path

    def add_api(self, **env: str) -> ClusterApi:
        name = f"api-{len(self.apis)}"
        data_dir = self._data_dir(name)
        child_env = _child_env({**self.env, **env, "OPENDMS_DATA_DIR": str(data_dir)})
        port = free_port()
        err, out = self.root / f"{name}.stderr.log", self.root / f"{name}.stdout.log"
        with err.open("wb") as e, out.open("wb") as o:
            proc = subprocess.Popen(
                [OPENDMS, "serve", "--port", str(port)],
                stdout=o,
                stderr=e,
                env=child_env,
                cwd=self.root,
            )
        wait_until_listening(proc, port, err)
        api = ClusterApi(
            data_dir, port, proc, err, out, self.init, self.admin, child_env, None, self.store_url
        )
        self.apis.append(api)
        return api

    def add_worker(self, concurrency: int = 2, **env: str) -> Worker:
        name = f"worker-{len(self.workers)}"
        data_dir = self._data_dir(name)
        child_env = _child_env({**self.env, **env, "OPENDMS_DATA_DIR": str(data_dir)})
        argv = [OPENDMS, "worker", "--concurrency", str(concurrency)]
        log = self.root / f"{name}.log"
        worker = Worker(data_dir, subprocess.Popen(["true"]), log, argv, child_env)
        worker.proc.wait()
        worker.start_again()
        self.workers.append(worker)
        return worker

    def workers_alive(self) -> int:
        """Worker processes whose heartbeat the store holds."""
        with psycopg.connect(self.store_url.replace("+psycopg", ""), autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM processes WHERE role = 'worker'").fetchone()
            return int(row[0]) if row else 0

    def store_query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.store_url.replace("+psycopg", ""), autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    def stop_all(self) -> None:
        procs = [a.proc for a in self.apis] + [w.proc for w in self.workers]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def logs(self) -> str:
        """Every process's log, for a failing assertion's message."""
        parts = [f"--- {a.stderr_path.name}\n{a.log()[-3000:]}" for a in self.apis]
        parts += [f"--- {w.log_path.name}\n{w.log()[-3000:]}" for w in self.workers]
        return "\n".join(parts)


def _delete_queues(url: str, prefix: str) -> None:
    with contextlib.suppress(Exception), Connection(url, connect_timeout=3) as conn:
        channel = conn.channel()
        for name in (f"{prefix}.jobs", f"{prefix}.uploads"):
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.exchange_delete(name)


@contextmanager
def cluster(
    broker: Broker = "redis",
    *,
    apis: int = 2,
    workers: int = 2,
    concurrency: int = 2,
    store: str | None = None,
    broker_at: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """``apis`` API processes and ``workers`` workers on a fresh PostgreSQL store (or the
    database ``store`` names) and the machine's broker (or ``broker_at``); every process
    is stopped (SIGTERM, then SIGKILL) when the block ends, and the queues deleted."""
    url = broker_at or broker_url(broker)
    require_broker(url)
    queue = f"t{uuid.uuid4().hex[:10]}"
    with contextlib.ExitStack() as stack:
        if store is None:
            store = store_url(stack.enter_context(_new_pg_database()))
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opendms-scale-")))
        (root / "key").mkdir(mode=0o700)
        (root / "key" / "master.key").write_text(secrets.token_urlsafe(48))
        (root / "files").mkdir(mode=0o700)
        settings = {
            "OPENDMS_DATABASE_URL": store,
            "OPENDMS_BROKER_URL": url,
            "OPENDMS_BROKER_QUEUE": queue,
            "OPENDMS_FILES_DIR": str(root / "files"),
            "OPENDMS_WORKER_CONCURRENCY": str(concurrency),
            # identity connections per API process: the shared test server has 100 in all
            "OPENDMS_DB_POOL_SIZE": "4",
            **(env or {}),
        }
        done = opendms("init", "--json", "--database-url", store, data_dir=root / "key", ok=False)
        if done.returncode != 0:
            pytest.fail(f"opendms init failed ({done.returncode}):\n{done.stderr}{done.stdout}")
        init = json.loads(done.stdout)
        admin = Creds(
            int(init["Tid"]), str(init["Uid"]), init["AccessKeyId"], init["AccessKeySecret"]
        )
        found = Cluster(root, store, url, queue, settings, init, admin)
        stack.callback(_delete_queues, url, queue)
        stack.callback(found.stop_all)
        # workers first: they start while the APIs do (each API is waited for in turn)
        for _ in range(workers):
            found.add_worker(concurrency)
        for _ in range(apis):
            found.add_api()
        wait_for(
            f"{workers} worker(s) to beat",
            lambda: found.workers_alive() >= workers,
            timeout=60,
        )
        yield found
