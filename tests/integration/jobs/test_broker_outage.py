"""A Celery worker (``jobs.broker.run_worker``) that holds a message when its Redis broker
goes away keeps running, reconnects once the broker is back and takes the next message.

It once exited instead ("Unrecoverable error: AttributeError"): with Redis's emulation of
acknowledgements, kombu restores the unacknowledged message over the connection it has just
closed. The store's leases and the sweeper make that emulation needless (``jobs.broker``)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from opendms.jobs.broker import BrokerWaker, Queues, celery_app
from opendms.jobs.dispatch import Due
from opendms.store.models import utcnow
from tests.e2e.mariadb_server import started
from tests.e2e.redis_server import RedisServer, private_redis

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
# A worker of two threads (the default concurrency: with one, kombu's restore happens to
# work) whose job N says "start N", waits for the file "go", and says "end N".
WORKER = """
import sys, time
from pathlib import Path
from opendms.jobs import broker

url, here = sys.argv[1], Path(sys.argv[2])
queues = broker.Queues("outage")

def run_job(job_id):
    with (here / "said").open("a") as out:
        out.write(f"start {job_id}\\n")
    deadline = time.monotonic() + 60
    while not (here / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with (here / "said").open("a") as out:
        out.write(f"end {job_id}\\n")

options = broker.WorkerOptions(2, (queues.jobs,), "outage@test")
broker.run_worker(broker.celery_app(url, queues), run_job, options, on_shutdown=lambda: None)
"""


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _send(redis: RedisServer, job_id: int) -> None:
    queues = Queues("outage")
    BrokerWaker(celery_app(redis.url, queues), queues).send(
        Due(job_id, "execute", utcnow() - timedelta(seconds=1))
    )


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with ExitStack() as stack:
        yield started(stack, "A private Redis server", private_redis())


def test_a_worker_holding_a_message_outlives_its_broker(redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "said").touch()
    (tmp_path / "worker.py").write_text(WORKER)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, str(tmp_path / "worker.py"), redis.url, str(tmp_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT / "src"), "TMPDIR": str(tmp_path)},
        )

    def said() -> str:
        return (tmp_path / "said").read_text()

    def logged() -> str:
        return log.read_text(errors="replace")

    try:
        _wait("the worker to be ready", lambda: "ready." in logged())
        _send(redis, 1)
        _wait("job 1 to start", lambda: "start 1" in said())
        redis.stop()  # while the worker holds job 1's message
        _wait(
            "the worker to notice",
            lambda: "Connection to broker lost" in logged() or worker.poll() is not None,
        )
        (tmp_path / "go").touch()
        _wait("job 1 to end", lambda: "end 1" in said())
        redis.start()
        _send(redis, 2)
        _wait(
            "job 2, sent once the broker is back (or the worker to exit)",
            lambda: "end 2" in said() or worker.poll() is not None,
        )
        assert worker.poll() is None, logged()[-3000:]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
