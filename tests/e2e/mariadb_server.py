"""A second MariaDB server for the end-to-end tests that need two: a MariaDB server has one
namespace of databases, so a schema design carried from a dev database to a product one of
the same name needs a server of its own for the product stage; and a test that restarts its
target database (``MariadbServer.stop`` / ``start``) must not restart the one other tests use.

It is made from scratch in a temporary directory (``mariadb-install-db``) and run by this
process (``mariadbd``) on a free loopback port, with the character set and collation of the
shared test server so that the same CREATE TABLE gives the same table on both. Both programs
are started with ``--no-defaults``: the machine's ``my.cnf`` names another user, data
directory and log file, which a private server must not share.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pymysql

from tests.conftest import require_service

LOOPBACK = "127.0.0.1"
START_SECONDS = 60.0
T = TypeVar("T")


class CannotStart(Exception):
    """The server could not be made or did not answer; the message says why."""


def started(stack: ExitStack, what: str, server: AbstractContextManager[T]) -> T:
    """A private ``server`` (this module's, ``pg_server``'s, ``redis_server``'s), entered on
    ``stack``. One that cannot start fails the test in CI and skips it elsewhere
    (``require_service``); once started, a failure to start it again fails the test."""
    try:
        return stack.enter_context(server)
    except CannotStart as exc:
        require_service(what, str(exc))
        raise  # not reached: require_service fails or skips


@dataclass
class MariadbServer:
    port: int
    data_dir: Path
    argv: list[str] = field(default_factory=list, repr=False)  # how it is started
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=LOOPBACK,
            port=self.port,
            user="root",
            password="",
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def start(self) -> None:
        """Start the server (again, on the same port and data) and wait until it answers;
        CannotStart if it does not."""
        assert self.log is not None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        _wait_until_answering(self, self.proc, self.log)

    def stop(self) -> None:
        """A normal shutdown (SIGTERM): statements running are cut off, as when an operator
        restarts the server."""
        if self.proc is not None:
            _stop(self.proc)


def _program(name: str) -> str:
    """The program on PATH, or where Debian puts it (/usr/sbin is not on every PATH)."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found is None:
        raise CannotStart(f"{name} is not installed")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _server_charset() -> tuple[str, str]:
    """The shared test server's character set and collation, to make the second alike."""
    try:
        conn = pymysql.connect(host=LOOPBACK, port=3306, user="root", password="")
    except pymysql.err.OperationalError as exc:
        raise CannotStart(f"the shared MariaDB server does not answer: {exc}") from None
    with conn, conn.cursor() as cur:
        cur.execute("SELECT @@character_set_server, @@collation_server")
        row = cur.fetchone()
        assert row is not None
        return str(row[0]), str(row[1])


def _wait_until_answering(server: MariadbServer, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_text(errors="replace")[-3000:]
            raise CannotStart(f"mariadbd exited with {proc.returncode}:\n{said}")
        try:
            server.connect().close()
            return
        except pymysql.err.OperationalError as exc:
            last = str(exc)
            time.sleep(0.2)
    raise CannotStart(f"mariadbd did not answer within {START_SECONDS:.0f}s: {last}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def second_mariadb() -> Iterator[MariadbServer]:
    """A fresh MariaDB server on a free loopback port, root without a password, stopped and
    removed when the block ends. Raises :class:`CannotStart` if it cannot be had."""
    install, daemon = _program("mariadb-install-db"), _program("mariadbd")
    charset, collation = _server_charset()
    with tempfile.TemporaryDirectory(prefix="opendms-mariadb-") as tmp:
        data_dir, log = Path(tmp) / "data", Path(tmp) / "mariadbd.log"
        made = subprocess.run(
            [
                install,
                "--no-defaults",
                "--user=root",
                f"--datadir={data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if made.returncode != 0:
            raise CannotStart(f"mariadb-install-db failed:\n{made.stdout}{made.stderr}"[-3000:])
        for attempt in range(3):  # another process may take the free port before it binds
            port = free_port()
            argv = [
                daemon,
                "--no-defaults",
                "--user=root",
                f"--datadir={data_dir}",
                f"--port={port}",
                f"--bind-address={LOOPBACK}",
                f"--socket={tmp}/sock",
                f"--pid-file={tmp}/mariadbd.pid",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
                f"--character-set-server={charset}",
                f"--collation-server={collation}",
            ]
            server = MariadbServer(port, data_dir, argv, log)
            try:
                server.start()
            except CannotStart:
                server.stop()
                if attempt < 2 and "already in use" in log.read_text(errors="replace"):
                    continue
                raise
            try:
                yield server
            finally:
                server.stop()
            return
