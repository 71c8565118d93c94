"""A private Redis server for the tests that stop their broker: the machine's shared one
carries other tests' queues side by side.

``redis-server`` on a free loopback port, keeping nothing on disk (``--save ''``,
``--appendonly no``): stopped, it forgets every message, as a broker that lost its memory
would; started again, it listens on the same port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.mariadb_server import LOOPBACK, START_SECONDS, CannotStart, free_port


@dataclass
class RedisServer:
    port: int
    root: Path
    program: str
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    def _answers(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        """Start it and wait until it answers PING; CannotStart if it does not."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    self.program,
                    "--port",
                    str(self.port),
                    "--bind",
                    LOOPBACK,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.root),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self.proc.poll() is not None:
                said = self.log.read_text(errors="replace")[-2000:]
                raise CannotStart(f"redis-server exited with {self.proc.returncode}:\n{said}")
            if time.monotonic() > deadline:
                raise CannotStart(f"redis-server did not answer within {START_SECONDS:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, and wait until it is gone (it saves nothing)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A fresh Redis server on a free loopback port, stopped when the block ends. Raises
    :class:`CannotStart` if it cannot be had."""
    program = shutil.which("redis-server")
    if program is None:
        raise CannotStart("redis-server is not installed")
    with tempfile.TemporaryDirectory(prefix="opendms-redis-") as tmp:
        for attempt in range(3):  # another process may take the free port before it binds
            server = RedisServer(free_port(), Path(tmp), program)
            try:
                server.start()
            except CannotStart:
                server.stop()
                if attempt < 2 and "Address already in use" in server.log.read_text(
                    errors="replace"
                ):
                    continue
                raise
            try:
                yield server
            finally:
                server.stop()
            return
